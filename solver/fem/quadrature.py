"""Quadrature rules on the reference cells."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

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
