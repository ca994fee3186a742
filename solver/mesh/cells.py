"""Reference cells of the mesh and their P1/Q1 shape functions (the geometry map of every cell).

Reference domains are the unit simplex and the unit square/cube ``[0, 1]^d``. Vertex
orders follow VTK/XDMF so that cells are written to files unchanged; each cell also knows its
XDMF and meshio names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReferenceCell:
    name: str
    dim: int
    vertices: np.ndarray  # (n_nodes, dim)
    facets: tuple  # local vertex tuples of each facet
    facet_name: str
    xdmf: str  # XDMF TopologyType
    affine: bool  # P1 simplices: constant Jacobian per cell
    meshio: str  # meshio's cell type name

    @property
    def n_nodes(self) -> int:
        return len(self.vertices)

    def shape(self, points: np.ndarray) -> np.ndarray:
        """Shape function values, (n_points, n_nodes)."""
        p = np.atleast_2d(points)
        if self.affine:
            return np.column_stack([1.0 - p.sum(axis=1), p])
        v = self.vertices
        return np.prod(np.where(v[None, :, :] == 1, p[:, None, :], 1.0 - p[:, None, :]), axis=2)

    def grad(self, points: np.ndarray) -> np.ndarray:
        """Reference gradients, (n_points, n_nodes, dim)."""
        p = np.atleast_2d(points)
        n = len(p)
        if self.affine:
            g = np.vstack([-np.ones((1, self.dim)), np.eye(self.dim)])
            return np.broadcast_to(g, (n,) + g.shape).copy()
        v = self.vertices
        factors = np.where(v[None, :, :] == 1, p[:, None, :], 1.0 - p[:, None, :])  # (n, nn, d)
        dfac = np.where(v == 1, 1.0, -1.0)  # (nn, d)
        out = np.empty((n, len(v), self.dim))
        for d in range(self.dim):  # loop over space dimensions only
            others = np.prod(np.delete(factors, d, axis=2), axis=2)
            out[:, :, d] = dfac[None, :, d] * others
        return out


_UNIT_SQUARE = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
_UNIT_CUBE = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0],
                       [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=float)

CELLS = {
    "triangle": ReferenceCell("triangle", 2, np.array([[0, 0], [1, 0], [0, 1]], dtype=float),
                              ((1, 2), (2, 0), (0, 1)), "line", "Triangle", True, "triangle"),
    "tetrahedron": ReferenceCell("tetrahedron", 3,
                                 np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float),
                                 ((1, 2, 3), (0, 3, 2), (0, 1, 3), (0, 2, 1)), "triangle",
                                 "Tetrahedron", True, "tetra"),
    "quadrilateral": ReferenceCell("quadrilateral", 2, _UNIT_SQUARE,
                                   ((0, 1), (1, 2), (2, 3), (3, 0)), "line", "Quadrilateral", False, "quad"),
    "hexahedron": ReferenceCell("hexahedron", 3, _UNIT_CUBE,
                                ((0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5),
                                 (2, 3, 7, 6), (3, 0, 4, 7)), "quadrilateral", "Hexahedron", False, "hexahedron"),
    "line": ReferenceCell("line", 1, np.array([[0.0], [1.0]]), ((0,), (1,)), "point", "Polyline", True, "line"),
}

CELL_TYPES = ("triangle", "quadrilateral", "tetrahedron", "hexahedron")  # the cells a mesh may have
BY_MESHIO_NAME = {CELLS[name].meshio: name for name in CELL_TYPES}
