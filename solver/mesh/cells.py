"""Reference cells of the mesh and their Lagrange shape functions (:mod:`solver.mesh.lagrange`),
which are also the geometry map of every cell (isoparametric): P1/Q1 cells (``triangle``,
``quadrilateral``, ``tetrahedron``, ``hexahedron``, ``line``) and their quadratic versions
(``triangle6``, ``quadrilateral9``, ``tetrahedron10``, ``hexahedron27``, ``line3``).

Reference domains are the unit simplex and the unit square/cube ``[0, 1]^d``. Node orders follow
VTK/XDMF so that cells are written to files unchanged; each cell also knows its XDMF and meshio
names, its facets as tuples of its own nodes (in the facet cell's node order), and the linear cell
of its shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.mesh.lagrange import QUADRATIC, quadratic_nodes, simplex_grad, simplex_shape, tensor_grad, tensor_shape


@dataclass(frozen=True)
class ReferenceCell:
    name: str
    dim: int
    vertices: np.ndarray  # (n_nodes, dim): the reference coordinates of every node (vertices first)
    facets: tuple  # local node tuples of each facet
    facet_name: str
    xdmf: str  # XDMF TopologyType
    affine: bool  # P1 simplices: constant Jacobian and gradients per cell
    meshio: str  # meshio's cell type name
    degree: int = 1
    linear_name: str = ""  # the P1/Q1 cell of the same shape ("": this one)

    @property
    def n_nodes(self) -> int:
        return len(self.vertices)

    @property
    def simplex(self) -> bool:
        return self.linear.name in ("triangle", "tetrahedron", "line")

    @property
    def linear(self) -> "ReferenceCell":
        """The P1/Q1 cell of the same shape (this one for degree 1)."""
        return CELLS[self.linear_name] if self.linear_name else self

    @property
    def n_corners(self) -> int:
        """Nodes at the vertices (the first of ``vertices``)."""
        return self.linear.n_nodes

    def shape(self, points: np.ndarray) -> np.ndarray:
        """Shape function values, (n_points, n_nodes)."""
        p = np.atleast_2d(points)
        return (simplex_shape if self.simplex else tensor_shape)(self.vertices, self.degree, p)

    def grad(self, points: np.ndarray) -> np.ndarray:
        """Reference gradients, (n_points, n_nodes, dim)."""
        p = np.atleast_2d(points)
        return (simplex_grad if self.simplex else tensor_grad)(self.vertices, self.degree, p)


_UNIT_SQUARE = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
_UNIT_CUBE = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0],
                       [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=float)

LINEAR = {
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
QUADRATIC_NAMES = {"line": ("line3", "Edge_3", "line3"), "triangle": ("triangle6", "Triangle_6", "triangle6"),
                   "tetrahedron": ("tetrahedron10", "Tetrahedron_10", "tetra10"),
                   "quadrilateral": ("quadrilateral9", "Quadrilateral_9", "quad9"),
                   "hexahedron": ("hexahedron27", "Hexahedron_27", "hexahedron27")}  # ours, XDMF's, meshio's


def _quadratic_facet(linear: ReferenceCell, facet: tuple) -> tuple:
    """The nodes of a quadratic cell on one facet of ``linear`` (its corners), in the order of the
    quadratic facet cell: the corners, the midpoints of its edges, its centre (a Q2 face)."""
    edges, faces = QUADRATIC[linear.name]
    n = linear.n_nodes
    mid = {frozenset(e): n + k for k, e in enumerate(edges)}
    if len(facet) == 1:
        return facet
    ring = list(zip(facet, facet[1:] + facet[:1])) if len(facet) > 2 else [tuple(facet)]
    out = list(facet) + [mid[frozenset(e)] for e in ring]
    if len(facet) == 4:  # a quadrilateral face of a hexahedron: its centre
        out.append(n + len(edges) + [frozenset(f) for f in faces].index(frozenset(facet)))
    return tuple(out)


def _quadratic(linear: ReferenceCell) -> ReferenceCell:
    name, xdmf, meshio_name = QUADRATIC_NAMES[linear.name]
    facet_name = QUADRATIC_NAMES[linear.facet_name][0] if linear.facet_name in QUADRATIC_NAMES else "point"
    facets = tuple(_quadratic_facet(linear, f) for f in linear.facets)
    return ReferenceCell(name, linear.dim, quadratic_nodes(linear.name, linear.vertices), facets, facet_name, xdmf,
                         False, meshio_name, 2, linear.name)


CELLS = dict(LINEAR)
CELLS.update({QUADRATIC_NAMES[name][0]: _quadratic(cell) for name, cell in LINEAR.items()})

CELL_TYPES = ("triangle", "quadrilateral", "tetrahedron", "hexahedron")  # the linear cells a mesh may have
QUADRATIC_TYPES = tuple(QUADRATIC_NAMES[name][0] for name in CELL_TYPES)
BY_MESHIO_NAME = {CELLS[name].meshio: name for name in CELL_TYPES + QUADRATIC_TYPES}


def of_degree(cell_type: str, degree: int) -> str:
    """The cell of this shape with Lagrange ``degree`` (1 or 2)."""
    linear = CELLS[cell_type].linear.name
    return linear if degree == 1 else QUADRATIC_NAMES[linear][0]
