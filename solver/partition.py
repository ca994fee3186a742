"""Partitioning the cells of a mesh into parts: METIS (pymetis) on the dual graph, or recursive
coordinate bisection when pymetis is not installed."""

from __future__ import annotations

import numpy as np


def partition_cells(cells: np.ndarray, centroids: np.ndarray, n_parts: int, n_common: int,
                    method: str = "auto") -> tuple[np.ndarray, str]:
    """Part of each cell (int64) and the method used ("metis" or "rcb")."""
    if n_parts == 1:
        return np.zeros(len(cells), dtype=np.int64), "none"
    if method in ("auto", "metis"):
        try:
            import pymetis
        except ImportError:
            if method == "metis":
                raise ImportError("mesh.partitioner = \"metis\" needs pymetis: pip install pymetis") from None
        else:
            result = pymetis.part_mesh(n_parts, cells, gtype=pymetis.GType.DUAL, ncommon=n_common)
            parts = np.asarray(result.element_part, dtype=np.int64)
            if len(np.unique(parts)) == n_parts:
                return parts, "metis"
    return rcb(centroids, n_parts), "rcb"


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


def edge_cut(cells: np.ndarray, parts: np.ndarray, n_common: int) -> int:
    """Number of facet-adjacent cell pairs in different parts (facets as sorted node tuples)."""
    from itertools import combinations

    npc = cells.shape[1]
    if npc <= 4:  # simplices: every n_common-subset of the vertices is a facet
        faces = np.array(list(combinations(range(npc), n_common)))
    else:  # quadrilateral/hexahedron: facets by their reference definition
        from solver.elements import CELLS
        faces = np.array(CELLS["hexahedron" if npc == 8 else "quadrilateral"].facets)
    keys = np.sort(cells[:, faces], axis=2).reshape(-1, faces.shape[1])
    owner = np.repeat(parts, len(faces))
    order = np.lexsort(keys.T[::-1])
    keys, owner = keys[order], owner[order]
    same = np.all(keys[1:] == keys[:-1], axis=1)  # interior facets appear twice, adjacently
    return int(np.sum(same & (owner[1:] != owner[:-1])))
