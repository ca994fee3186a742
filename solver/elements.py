"""Reference cells, P1/Q1 shape functions and quadrature rules.

Reference domains are the unit simplex and the unit square/cube ``[0, 1]^d``. Vertex
orders follow VTK/XDMF so that cells are written to files unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

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
                              ((1, 2), (2, 0), (0, 1)), "line", "Triangle", True),
    "tetrahedron": ReferenceCell("tetrahedron", 3,
                                 np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float),
                                 ((1, 2, 3), (0, 3, 2), (0, 1, 3), (0, 2, 1)), "triangle",
                                 "Tetrahedron", True),
    "quadrilateral": ReferenceCell("quadrilateral", 2, _UNIT_SQUARE,
                                   ((0, 1), (1, 2), (2, 3), (3, 0)), "line", "Quadrilateral", False),
    "hexahedron": ReferenceCell("hexahedron", 3, _UNIT_CUBE,
                                ((0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5),
                                 (2, 3, 7, 6), (3, 0, 4, 7)), "quadrilateral", "Hexahedron", False),
    "line": ReferenceCell("line", 1, np.array([[0.0], [1.0]]), ((0,), (1,)), "point", "Polyline", True),
}


def _gauss01(n: int):
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


@lru_cache(maxsize=None)
def quadrature(cell: str, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Points (n, dim) and weights (n,) exact for polynomials of total degree ``degree``."""
    ref = CELLS[cell]
    if cell == "triangle" and degree <= 2:
        p = np.array([[1 / 6, 1 / 6], [2 / 3, 1 / 6], [1 / 6, 2 / 3]])
        return p, np.full(3, 1 / 6)
    if cell == "tetrahedron" and degree <= 2:
        a, b = 0.5854101966249685, 0.1381966011250105
        p = np.array([[b, b, b], [a, b, b], [b, a, b], [b, b, a]])
        return p, np.full(4, 1 / 24)
    if not ref.affine or cell == "line":  # tensor-product Gauss
        x, w = _gauss01(max(1, math.ceil((degree + 1) / 2)))
        grids = np.meshgrid(*([x] * ref.dim), indexing="ij")
        wgrid = np.meshgrid(*([w] * ref.dim), indexing="ij")
        return (np.column_stack([g.ravel() for g in grids]),
                np.prod(np.column_stack([g.ravel() for g in wgrid]), axis=1))
    # Simplices, higher degree: collapsed (Duffy) Gauss rules, positive weights.
    x, w = _gauss01(max(1, math.ceil((degree + ref.dim) / 2)))
    if ref.dim == 2:
        s, t = np.meshgrid(x, x, indexing="ij")
        ws, wt = np.meshgrid(w, w, indexing="ij")
        pts = np.column_stack([s.ravel(), (t * (1 - s)).ravel()])
        return pts, (ws * wt * (1 - s)).ravel()
    s, t, u = np.meshgrid(x, x, x, indexing="ij")
    ws, wt, wu = np.meshgrid(w, w, w, indexing="ij")
    pts = np.column_stack([s.ravel(), (t * (1 - s)).ravel(), (u * (1 - s) * (1 - t)).ravel()])
    return pts, (ws * wt * wu * (1 - s) ** 2 * (1 - t)).ravel()
