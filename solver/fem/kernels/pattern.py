"""The CSR sparsity pattern of the owned rows, in O(entries), and the slot of each element entry.

1. :func:`node_cell_offsets`, :func:`node_cells`: the cells around each owned node, by a counting
   sort (the node-to-cell adjacency ``(offsets, adjacent)``; an entry ``(c << 5) + a`` is node a
   of cell c: cells of up to 32 nodes).
2. :func:`pattern_row_lengths`: the distinct nodes of those cells, counted with a marker array
   (no sort of all entry keys).
3. :func:`pattern_fill`: the columns of each row, sorted within the (short) row by insertion,
   and the slot map: ``data[indptr[r] + slots[c, a * nn + b]]`` is entry (a, b) of cell c, r
   its node a, so that a kernel adds an element matrix with no search.

Steps 2 and 3 are the one scan of :func:`scan_rows`, inlined twice with its mode a constant.

:func:`csr_pattern` runs the three; :func:`entry_slots` finds the slots of given (row, col)
pairs by binary search in the rows (facet terms, triplets).
"""

from __future__ import annotations

import numpy as np

from solver.compiled import index_dtype, inline, jit

__all__ = ["csr_pattern", "entry_slots", "node_cell_offsets", "node_cells", "pattern_fill", "pattern_row_lengths"]

NODE_BITS = 5  # (c << NODE_BITS) + a: node a < 32 of cell c in the adjacency
NODE_MASK = (1 << NODE_BITS) - 1


@jit
def node_cell_offsets(cells, n_owned):
    """First index of each owned node's cells in the node-to-cell adjacency (n_owned + 1,)."""
    nc, nn = cells.shape
    offsets = np.zeros(n_owned + 1, np.int64)
    for c in range(nc):
        for a in range(nn):
            r = cells[c, a]
            if r < n_owned:
                offsets[r + 1] += 1
    for r in range(n_owned):
        offsets[r + 1] += offsets[r]
    return offsets


@jit
def node_cells(cells, n_owned, adjacency):
    """The cells of each owned node into ``adjacency = (offsets, adjacent)`` as ``(c << 5) + a``
    (node a of cell c): a counting sort, the cells of a node in increasing order."""
    offsets, adjacent = adjacency
    nc, nn = cells.shape
    fill = offsets[:-1].copy()
    for c in range(nc):
        for a in range(nn):
            r = cells[c, a]
            if r < n_owned:
                adjacent[fill[r]] = (c << NODE_BITS) + a
                fill[r] += 1


@inline
def scan_rows(cells, n_local, adjacency, pattern, fill):
    """The distinct nodes of the cells around each owned node (a marker per node, no sort): with
    ``fill``, the columns of each row sorted into ``indices`` (insertion sort of the short row)
    and, unless ``slots`` is empty, the slots; else the row lengths cumulated into indptr."""
    offsets, adjacent = adjacency
    indptr, indices, slots = pattern
    nn = cells.shape[1]
    marker = np.full(n_local, -1, np.int64)
    position = np.empty(n_local if fill else 0, np.int32)
    for r in range(indptr.shape[0] - 1):
        start = indptr[r]
        end = start
        for t in range(offsets[r], offsets[r + 1]):
            c = adjacent[t] >> NODE_BITS
            for b in range(nn):
                j = cells[c, b]
                if marker[j] != r:
                    marker[j] = r
                    if fill:
                        p = end  # insert j in the sorted run indices[start:end]
                        while p > start and indices[p - 1] > j:
                            indices[p] = indices[p - 1]
                            p -= 1
                        indices[p] = j
                    end += 1
        if not fill:
            indptr[r + 1] = end
        elif slots.shape[0] > 0:
            for p in range(start, end):
                position[indices[p]] = p - start
            for t in range(offsets[r], offsets[r + 1]):
                c = adjacent[t] >> NODE_BITS
                a = adjacent[t] & NODE_MASK
                for b in range(nn):
                    slots[c, a * nn + b] = position[cells[c, b]]


@jit
def pattern_row_lengths(cells, n_owned, n_local, adjacency):
    """indptr of the owned rows: the number of distinct nodes of the cells around each owned node."""
    indptr = np.zeros(n_owned + 1, np.int64)
    scan_rows(cells, n_local, adjacency, (indptr, indptr[:0], np.empty((0, 0), np.uint8)), False)
    return indptr


@jit
def pattern_fill(cells, n_local, adjacency, pattern):
    """Columns of each owned row into ``indices`` of ``pattern = (indptr, indices, slots)``, sorted,
    and, unless ``slots`` is empty, the slot of every element entry of an owned row relative to its
    row's start: ``data[indptr[r] + slots[c, a * nn + b]]`` is entry (a, b) of cell c, r its node a
    (uint8: rows of at most 256 entries)."""
    scan_rows(cells, n_local, adjacency, pattern, True)


def csr_pattern(cells: np.ndarray, n_owned: int, n_local: int, slots: bool = True, dtype=None):
    """(indptr, indices, slots) of the owned rows coupled by ``cells``, columns sorted, in
    O(entries). ``slots`` (n_cells, nn * nn) uint8: the slot of each element entry of an owned row
    relative to the row's start; empty when not asked for or when a row has more than 256 entries
    (the kernels then search the rows). ``dtype``: the index type, by default the smallest that
    holds the pattern (:func:`solver.compiled.index_dtype`)."""
    nc, nn = cells.shape
    offsets = node_cell_offsets(cells, n_owned)
    adjacency = (offsets, np.empty(int(offsets[-1]), dtype=index_dtype(nc << NODE_BITS)))
    node_cells(cells, n_owned, adjacency)
    indptr = pattern_row_lengths(cells, n_owned, n_local, adjacency)
    dtype = index_dtype(int(indptr[-1]), n_local) if dtype is None else dtype
    indices = np.empty(int(indptr[-1]), dtype=dtype)
    longest = int(np.diff(indptr).max()) if n_owned else 0
    slot_map = np.empty((nc if slots and longest <= 256 else 0, nn * nn), dtype=np.uint8)
    pattern_fill(cells, n_local, adjacency, (indptr, indices, slot_map))
    return indptr.astype(dtype), indices, slot_map


@jit
def entry_slots(indptr, indices, rows, cols, n_owned):
    """CSR slot of each (row, col) pair, -1 for rows owned elsewhere, -2 outside the pattern
    (binary search in the row)."""
    out = np.empty(rows.shape[0], np.int64)
    for e in range(rows.shape[0]):
        r = rows[e]
        if r >= n_owned:
            out[e] = -1
            continue
        lo, hi = indptr[r], indptr[r + 1]
        col = cols[e]
        while lo < hi:
            mid = (lo + hi) // 2
            if indices[mid] < col:
                lo = mid + 1
            else:
                hi = mid
        out[e] = lo if lo < indptr[r + 1] and indices[lo] == col else -2
    return out
