"""Conformity of a mesh file: neighbouring cells share whole facets.

A non-conforming mesh (a hanging node in the middle of a neighbour's edge, a face split along
different diagonals on its two sides, two parts meshed separately that touch with nodes of their
own) leaves facets inside the domain that belong to one cell only. The solver would treat them as
insulated boundary: a crack no heat crosses, and a wrong answer without a word.

Found on rank 0 while it reads the file, on the exterior facets only (those of one cell, matched
by their sorted corner keys as in :mod:`solver.mesh.partition`): a facet whose centroid lies on
another exterior facet, among its ``NEIGHBOURS`` nearest (a k-d tree of the centroids), while
their cells lie on opposite sides of it, covers part of that facet. A genuine boundary never does;
a thin slot of any width above rounding is kept. Costs one sort of the cells' facets and one
k-nearest query of the exterior ones (about as much as reading the file's connectivity).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from solver.errors import CaseError
from solver.mesh.cells import CELLS
from solver.mesh.partition import facet_keys, facet_table, pairs_of_equal_keys

NEIGHBOURS = 8  # exterior facets near a facet that are tested against it
ON_FACET = 1e-7  # distance from a facet, relative to its size, that counts as on it


def exterior_facets(cells: np.ndarray, cell_type: str) -> tuple[np.ndarray, np.ndarray]:
    """(facets, cell): the corner nodes of each facet that only one cell has, in the facet cell's
    node order, and that cell's row."""
    linear = CELLS[cell_type].linear
    corners = np.ascontiguousarray(cells[:, : linear.n_nodes])
    table = facet_table(linear.name)
    keys, nf, _ = facet_keys(corners, linear.name, int(corners.max()) + 1 if corners.size else 1)
    _, _, single, _ = pairs_of_equal_keys(keys)
    owner, local = np.divmod(single, nf)
    return corners[owner[:, None], table[local]], owner


def overlapping_facets(points: np.ndarray, cells: np.ndarray, cell_type: str) -> np.ndarray:
    """(pairs, 2) rows of cells whose exterior facets overlap (a facet of the first covers the
    centroid of one of the second), their cells on opposite sides: the non-conformities."""
    from scipy.spatial import cKDTree

    facets, owner = exterior_facets(cells, cell_type)
    if len(facets) < 2:
        return np.empty((0, 2), dtype=np.int64)
    corners = points[facets]  # (m, k, gdim)
    centroid = corners.mean(axis=1)
    normal = _normals(corners)
    inward = points[cells[owner, : CELLS[cell_type].linear.n_nodes]].mean(axis=1) - centroid
    normal *= np.where(np.einsum("md,md->m", normal, inward) > 0, -1.0, 1.0)[:, None]  # outward
    k = min(NEIGHBOURS + 1, len(facets))
    _, near = cKDTree(centroid).query(centroid, k=k, workers=-1)
    i = np.repeat(np.arange(len(facets)), k - 1)
    j = near[:, 1:].ravel()  # the nearest is the facet itself
    opposite = np.einsum("pd,pd->p", normal[i], normal[j]) < -0.5
    i, j = i[opposite], j[opposite]
    covered = _on_facet(corners[i], normal[i], centroid[j])
    return np.unique(np.sort(np.stack([owner[i[covered]], owner[j[covered]]], axis=1), axis=1), axis=0)


def check_conforming(path: Path, points: np.ndarray, cells: np.ndarray, cell_type: str) -> None:
    """Refuse a non-conforming mesh, naming two of its cells and where they meet."""
    pairs = overlapping_facets(points, cells, cell_type)
    if len(pairs):
        a, b = (int(c) for c in pairs[0])
        at = ", ".join(f"{x:.6g}" for x in points[cells[a]].mean(axis=0))
        count = f"{len(pairs)} such pair{'s' if len(pairs) > 1 else ''}"
        raise CaseError(f"{path}: the mesh is not conforming: elements {a + 1} and {b + 1} of its kind (near {at}) "
                        f"touch along part of a facet without sharing its nodes ({count}: hanging nodes, or parts "
                        f"meshed separately); heat would not cross there. Mesh the model as one (Gmsh: "
                        f"Geometry.AutoCoherence, or BooleanFragments of its volumes)")


def _normals(corners: np.ndarray) -> np.ndarray:
    """Unit normals of segments (2D) or planar triangles and quadrilaterals (3D)."""
    if corners.shape[2] == 2:
        t = corners[:, 1] - corners[:, 0]
        n = np.stack([t[:, 1], -t[:, 0]], axis=1)
    elif corners.shape[1] == 3:
        n = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    else:  # a quadrilateral: the cross product of its diagonals
        n = np.cross(corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1])
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _on_facet(corners: np.ndarray, normal: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Whether each point ``x`` lies on its facet (``corners``, unit ``normal``), edges included."""
    size = np.linalg.norm(corners[:, 1] - corners[:, 0], axis=1)
    near_plane = np.abs(np.einsum("pd,pd->p", x - corners[:, 0], normal)) <= ON_FACET * size
    if corners.shape[2] == 2:
        t = corners[:, 1] - corners[:, 0]
        s = np.einsum("pd,pd->p", x - corners[:, 0], t) / np.einsum("pd,pd->p", t, t)
        return near_plane & (s >= -ON_FACET) & (s <= 1 + ON_FACET)
    inside = _in_triangle(corners[:, [0, 1, 2]], x)
    if corners.shape[1] == 4:
        inside |= _in_triangle(corners[:, [0, 2, 3]], x)
    return near_plane & inside


def _in_triangle(tri: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Whether ``x`` (in the triangle's plane) has barycentric coordinates >= -ON_FACET."""
    e1, e2, d = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], x - tri[:, 0]
    a11, a12, a22 = (np.einsum("pd,pd->p", u, v) for u, v in ((e1, e1), (e1, e2), (e2, e2)))
    b1, b2 = np.einsum("pd,pd->p", d, e1), np.einsum("pd,pd->p", d, e2)
    det = a11 * a22 - a12 * a12
    s, t = (a22 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det
    return (s >= -ON_FACET) & (t >= -ON_FACET) & (s + t <= 1 + ON_FACET)
