"""Partitioning the cells of a mesh into parts: METIS (pymetis) on the dual graph, or recursive
coordinate bisection when pymetis is not installed.

The dual graph (cells adjacent through a facet) is built with NumPy: each facet is named by its
smallest ``n_key`` node ids packed into one int64 (two for a triangle or quadrilateral edge,
three for a tetrahedron or hexahedron face: three corners determine a face of a conforming
mesh), the keys are sorted once, and equal neighbours are the interior facets.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from solver.elements import CELLS


def _facet_table(cell_type: str) -> np.ndarray:
    ref = CELLS[cell_type]
    if ref.affine:
        return np.array(list(combinations(range(ref.n_nodes), ref.dim)))
    return np.array(ref.facets)


def dual_graph(cells: np.ndarray, cell_type: str, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR adjacency (xadj, adjncy) of cells sharing a facet."""
    nc = len(cells)
    faces = _facet_table(cell_type)
    n_key = min(faces.shape[1], 3)
    bits = max(int(n_nodes - 1).bit_length(), 1)
    if n_key * bits > 63:
        raise ValueError(f"meshes of more than {2 ** (63 // n_key)} nodes need a wider facet key")
    keys = np.zeros(nc * len(faces), dtype=np.int64)
    for f, face in enumerate(faces):  # loop over the 3-6 facets of a cell type
        corners = np.sort(cells[:, face], axis=1)[:, :n_key].astype(np.int64)
        k = corners[:, 0]
        for j in range(1, n_key):
            k = (k << bits) | corners[:, j]
        keys[f::len(faces)] = k
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    twin = np.flatnonzero(keys[1:] == keys[:-1])  # interior facets: two consecutive equal keys
    del keys
    a = order[twin] // len(faces)
    b = order[twin + 1] // len(faces)
    del order, twin
    src = np.concatenate([a, b])
    dst = np.concatenate([b, a])
    del a, b
    perm = np.argsort(src, kind="stable")
    adjncy = dst[perm]
    xadj = np.zeros(nc + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=nc), out=xadj[1:])
    return xadj, adjncy


def partition_cells(cells: np.ndarray, cell_type: str, centroids_fn, n_nodes: int, n_parts: int,
                    method: str = "auto") -> tuple[np.ndarray, str, int]:
    """(part of each cell, method used, edge cut in facets)."""
    if n_parts == 1:
        return np.zeros(len(cells), dtype=np.int64), "none", 0
    xadj, adjncy = dual_graph(cells, cell_type, n_nodes)
    parts, used = None, "rcb"
    if method in ("auto", "metis"):
        try:
            import pymetis
        except ImportError:
            if method == "metis":
                raise ImportError("mesh.partitioner = \"metis\" needs pymetis: pip install pymetis") from None
        else:
            _, membership = pymetis.part_graph(n_parts, xadj=xadj, adjncy=adjncy)
            parts = np.asarray(membership, dtype=np.int64)
            used = "metis"
            if len(np.unique(parts)) != n_parts:  # METIS left a part empty (tiny meshes)
                parts, used = None, "rcb"
    if parts is None:
        parts = rcb(centroids_fn(), n_parts)
    src = np.repeat(np.arange(len(cells)), np.diff(xadj))
    cut = int(np.count_nonzero(parts[src] != parts[adjncy]) // 2)
    return parts, used, cut


def rcb(points: np.ndarray, n_parts: int) -> np.ndarray:
    """Recursive coordinate bisection: split along the longest extent, in proportion to the
    number of parts on each side, until every part is one rank's."""
    parts = np.zeros(len(points), dtype=np.int64)
    stack = [(np.arange(len(points)), 0, n_parts)]
    while stack:  # one entry per part to split: O(P) iterations
        index, first, count = stack.pop()
        if count == 1:
            parts[index] = first
            continue
        left = count // 2
        pts = points[index]
        axis = int(np.argmax(pts.max(axis=0) - pts.min(axis=0)))
        k = (len(index) * left) // count
        order = np.argsort(pts[:, axis], kind="stable")
        stack.append((index[order[:k]], first, left))
        stack.append((index[order[k:]], first + left, count - left))
    return parts
