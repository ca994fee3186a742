"""The linear triangles that draw the cells of a 2D mesh with matplotlib's ``tripcolor``: a
triangle as it is, a quadrilateral as two; a quadratic cell split at its midpoint nodes first (a
P2 triangle into four, a Q2 quadrilateral into four quadrilaterals, eight triangles), so that the
field is drawn through every node."""

from __future__ import annotations

import numpy as np

# the node tuples of the linear sub-cells of each kind of cell (VTK node order)
SUB_TRIANGLES = {
    "triangle": [(0, 1, 2)],
    "quadrilateral": [(0, 1, 2), (0, 2, 3)],
    "triangle6": [(0, 3, 5), (3, 1, 4), (5, 4, 2), (3, 4, 5)],
    "quadrilateral9": [(0, 4, 8), (0, 8, 7), (4, 1, 5), (4, 5, 8), (8, 5, 2), (8, 2, 6), (7, 8, 6), (7, 6, 3)],
}


def triangles(cell_type: str, cells: np.ndarray) -> np.ndarray:
    """(n_triangles, 3) node indices of the linear triangles that cover the cells."""
    return np.concatenate([cells[:, list(t)] for t in SUB_TRIANGLES[cell_type]])
