"""Structured meshes built in parallel: a rectangle or a box, each rank making only its part.

The cells of an ``nx x ny (x nz)`` grid are split among a Cartesian process grid from
``MPI.Compute_dims``. A rank owns the cells of its block and the grid nodes with indices
``[c0, c1)`` in each direction (the last block also owns the upper end), so ownership
needs no communication. Its local cells are the cells touching an owned node: its own
block plus one layer below. Canonical ids are lexicographic (x fastest); a quadrilateral
is split into 2 triangles and a hexahedron into 6 tetrahedra (Kuhn), ids ``k*cell + s``.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from solver.errors import CaseError
from solver.mesh.cells import CELLS
from solver.mesh.distributed import DistributedMesh, Facets

SIDES = {2: ("left", "right", "bottom", "top"),
         3: ("left", "right", "bottom", "top", "front", "back")}
# side -> (axis, value): left/right are x = min/max, bottom/top y, front/back z.
_SIDE_AXIS = {"left": (0, 0), "right": (0, 1), "bottom": (1, 0), "top": (1, 1), "front": (2, 0), "back": (2, 1)}

# Sub-cells of the unit square/cube, as vertex indices of the Q1 cell.
SPLITS = {
    "quadrilateral": np.array([[0, 1, 2, 3]]),
    "triangle": np.array([[0, 1, 2], [0, 2, 3]]),
    "hexahedron": np.array([[0, 1, 2, 3, 4, 5, 6, 7]]),
    # Kuhn: the 6 paths from vertex 0 to vertex 6 along the axes; positively oriented.
    "tetrahedron": np.array([[0, 1, 2, 6], [0, 2, 3, 6], [0, 3, 7, 6],
                             [0, 7, 4, 6], [0, 4, 5, 6], [0, 5, 1, 6]]),
}


def process_grid(size: int, n_cells: tuple[int, ...]) -> tuple[int, ...]:
    """Balanced process counts per direction, more processes along the longer directions."""
    dims = MPI.Compute_dims(size, len(n_cells))  # non-increasing
    order = np.argsort(n_cells, kind="stable")[::-1]
    out = [0] * len(n_cells)
    for d, axis in zip(dims, order):
        out[axis] = d
    return tuple(out)


def split(size: int, n: tuple[int, ...]) -> tuple[int, ...]:
    """The process grid of ``size`` ranks for ``n`` cells per direction, or a CaseError when some
    direction has fewer cells than ranks (checked before any work or output)."""
    dims = process_grid(size, n)
    if any(p > m for p, m in zip(dims, n)):
        raise CaseError(f"a {'x'.join(map(str, n))} mesh cannot be split among {size} ranks "
                        f"(process grid {'x'.join(map(str, dims))}); use more cells or fewer ranks")
    return dims


def _side_facets(cell_type: str) -> dict[str, list[tuple[int, tuple]]]:
    """For each side, (sub-cell, facet vertices as Q1 vertex indices) lying on it."""
    parent = CELLS["quadrilateral" if CELLS[cell_type].dim == 2 else "hexahedron"].vertices
    ref = CELLS[cell_type]
    out = {}
    for side in SIDES[ref.dim]:
        axis, value = _SIDE_AXIS[side]
        found = []
        for s, sub in enumerate(SPLITS[cell_type]):
            for facet in ref.facets:
                verts = sub[list(facet)]
                if np.all(parent[verts, axis] == value):
                    found.append((s, tuple(facet)))
        out[side] = found
    return out


def structured_mesh(comm, cell_type: str, n: tuple[int, ...], lengths, origin) -> DistributedMesh:
    dim = len(n)
    n = tuple(int(v) for v in n)
    dims = split(comm.size, n)
    pcoord = np.unravel_index(comm.rank, dims)
    starts = [(np.arange(p + 1) * m) // p for p, m in zip(dims, n)]
    c0 = [int(s[c]) for s, c in zip(starts, pcoord)]
    c1 = [int(s[c + 1]) for s, c in zip(starts, pcoord)]
    lc0 = [max(a - 1, 0) for a in c0]  # local cells: one layer below the block

    # local grid nodes: [lc0, c1] in each direction
    node_ranges = [np.arange(a, b + 1) for a, b in zip(lc0, c1)]
    shape = tuple(len(r) for r in node_ranges)
    idx = np.meshgrid(*node_ranges, indexing="ij")
    idx = [i.ravel(order="F") for i in idx]  # x fastest
    node_ids = np.ravel_multi_index(idx, [m + 1 for m in n], order="F").astype(np.int64)
    parts = [np.clip(np.searchsorted(s, i, side="right") - 1, 0, p - 1) for s, i, p in zip(starts, idx, dims)]
    node_owners = np.ravel_multi_index(parts, dims).astype(np.int64)
    h = [L / m for L, m in zip(lengths, n)]
    coords = np.column_stack([o + i * hh for o, i, hh in zip(origin, idx, h)])
    # exact end coordinates (no round-off in x0 + n*h)
    for d in range(dim):
        coords[idx[d] == n[d], d] = origin[d] + lengths[d]

    # local cells, owned block first
    cell_ranges = [np.arange(a, b) for a, b in zip(lc0, c1)]
    cidx = [i.ravel(order="F") for i in np.meshgrid(*cell_ranges, indexing="ij")]
    owned = np.ones(len(cidx[0]), dtype=bool)
    for d in range(dim):
        owned &= cidx[d] >= c0[d]
    order = np.argsort(~owned, kind="stable")
    cidx = [c[order] for c in cidx]
    n_owned_q = int(owned.sum())
    q_ids = np.ravel_multi_index(cidx, n, order="F").astype(np.int64)

    # Q1 vertices of each local cell as local node indices
    parent = CELLS["quadrilateral" if dim == 2 else "hexahedron"].vertices.astype(int)
    local = [c - a for c, a in zip(cidx, lc0)]
    q_nodes = np.empty((len(q_ids), len(parent)), dtype=np.int64)
    for v, offs in enumerate(parent):  # loop over the 4 or 8 vertices of a cell
        q_nodes[:, v] = np.ravel_multi_index([loc + o for loc, o in zip(local, offs)], shape, order="F")

    sub_cells = SPLITS[cell_type]
    ns = len(sub_cells)
    cells = q_nodes[:, sub_cells].reshape(-1, sub_cells.shape[1])  # (n_q * ns, nn)
    cell_ids = (q_ids[:, None] * ns + np.arange(ns)).ravel()

    boundaries = {}
    for side, found in _side_facets(cell_type).items():
        axis, value = _SIDE_AXIS[side]
        on_side = np.flatnonzero(cidx[axis] == (0 if value == 0 else n[axis] - 1))
        blocks = [q_nodes[on_side][:, sub_cells[s][list(facet)]] for s, facet in found]
        boundaries[side] = Facets(np.concatenate(blocks) if blocks else np.empty((0, dim), dtype=np.int64))
    n_global_nodes = int(np.prod([m + 1 for m in n]))
    n_global_cells = int(np.prod(n)) * ns
    return DistributedMesh.from_local(comm, cell_type, coords, cells, node_ids, node_owners, cell_ids,
                                      n_owned_q * ns, boundaries, n_global_nodes, n_global_cells)


def _check_templates():
    """Every side of every cell type has facets (guards the templates above)."""
    for cell_type in SPLITS:
        for side, found in _side_facets(cell_type).items():
            assert found, (cell_type, side)


_check_templates()
