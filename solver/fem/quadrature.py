"""Quadrature rules on the reference cells, and the degree a kind of cell is integrated with.

Simplices: the 3- and 4-point rules up to degree 2, the Xiao-Gimbutas rules of degrees 3-4 (6 points
on a triangle, 11 on a tetrahedron) and 5-6 (12 and 23; :mod:`solver.fem.simplex_rules`), collapsed
(Duffy) Gauss rules beyond; quadrilaterals, hexahedra and lines: tensor-product Gauss rules.
:func:`cell_degree`: degree 2p for cells of Lagrange degree p with an affine map (exact for the
mass and stiffness matrices with constant coefficients), 2p + 2 on curved (isoparametric) P2/Q2
cells, whose Jacobian is not constant.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from solver.fem.simplex_rules import RULES
from solver.mesh.cells import CELLS


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
    if ref.degree > 1:  # the same points on a cell of any degree
        return quadrature(ref.linear.name, degree)
    if (cell, degree) in RULES or (cell, degree + 1) in RULES:
        points, weights = RULES.get((cell, degree)) or RULES[(cell, degree + 1)]
        return points.copy(), weights.copy()
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


def cell_degree(cell_type: str, affine: bool) -> int:
    """The quadrature degree of cells of ``cell_type``: 2 for P1/Q1 (as always), 2p for cells of
    degree p with an affine map, 2p + 2 for curved quadratic cells."""
    ref = CELLS[cell_type]
    if ref.degree == 1:
        return 2
    return 2 * ref.degree + (0 if affine else 2)
