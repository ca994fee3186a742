"""Structured meshes built in parallel: a rectangle or a box, each rank making only its part.

The cells of an ``nx x ny (x nz)`` grid are split among a Cartesian process grid from
``MPI.Compute_dims``. A rank owns the cells of its block and the grid nodes with indices
``[c0, c1)`` in each direction (the last block also owns the upper end), so ownership
needs no communication. Its local cells are the cells touching an owned node: its own
block plus one layer below. Canonical ids are lexicographic (x fastest); a quadrilateral
is split into 2 triangles and a hexahedron into 6 tetrahedra (Kuhn), ids ``k*cell + s``.

Quadratic cells (``degree = 2``) live on the grid of ``2n + 1`` nodes per direction: the vertices,
the edge midpoints, the face centres and the cell centres of the ``n`` cells, straight-sided, all
numbered lexicographically on that grid (so the numbering does not depend on the ranks either).
Node ``I`` of the finer grid belongs to the rank owning coarse node ``floor(I / 2)``: that rank
holds every cell around it.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from solver.errors import CaseError
from solver.mesh.cells import CELLS, of_degree
from solver.mesh.distributed import DistributedMesh, Facets, LocalPart

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


def _side_facets(cell_type: str) -> dict[str, list[tuple[int, int]]]:
    """For each side, (sub-cell, facet index) of the facets lying on it."""
    ref = CELLS[cell_type].linear
    parent = CELLS["quadrilateral" if ref.dim == 2 else "hexahedron"].vertices
    out = {}
    for side in SIDES[ref.dim]:
        axis, value = _SIDE_AXIS[side]
        found = []
        for s, sub in enumerate(SPLITS[ref.name]):
            for f, facet in enumerate(ref.facets):
                verts = sub[list(facet)]
                if np.all(parent[verts, axis] == value):
                    found.append((s, f))
        out[side] = found
    return out


def _sub_cell_nodes(cell_type: str) -> np.ndarray:
    """(sub-cells, nodes) positions of each node of each sub-cell in the ``(degree + 1)^dim`` node
    grid of one cell of the grid, as multi-indices raveled x fastest."""
    ref = CELLS[cell_type]
    linear, degree = ref.linear, ref.degree
    parent = CELLS["quadrilateral" if ref.dim == 2 else "hexahedron"].vertices * degree
    shape = linear.shape(ref.vertices)  # (nodes, vertices): the nodes through the sub-cell's vertices
    out = []
    for sub in SPLITS[linear.name]:
        position = np.rint(shape @ parent[sub]).astype(int)
        out.append(np.ravel_multi_index(position.T, [degree + 1] * ref.dim, order="F"))
    return np.array(out)


def _block(n: tuple[int, ...], dims: tuple[int, ...], rank: int):
    """This rank's cells [c0, c1) per direction, its local cells from lc0 (one layer below), and
    the first cell of every block per direction."""
    pcoord = np.unravel_index(rank, dims)
    starts = [(np.arange(p + 1) * m) // p for p, m in zip(dims, n)]
    c0 = [int(s[c]) for s, c in zip(starts, pcoord)]
    c1 = [int(s[c + 1]) for s, c in zip(starts, pcoord)]
    lc0 = [max(a - 1, 0) for a in c0]
    return c0, c1, lc0, starts


def _grid_nodes(n, dims, degree, block, geometry):
    """The local nodes of the grid of ``degree n + 1`` nodes per direction: their grid
    multi-indices (x fastest), canonical ids, owners and coordinates, and the local grid's shape."""
    c0, c1, lc0, starts = block
    lengths, origin = geometry
    ranges = [np.arange(degree * a, degree * b + 1) for a, b in zip(lc0, c1)]
    shape = tuple(len(r) for r in ranges)
    idx = [i.ravel(order="F") for i in np.meshgrid(*ranges, indexing="ij")]  # x fastest
    node_ids = np.ravel_multi_index(idx, [degree * m + 1 for m in n], order="F").astype(np.int64)
    parts = [np.clip(np.searchsorted(s, i // degree, side="right") - 1, 0, p - 1)
             for s, i, p in zip(starts, idx, dims)]
    owners = np.ravel_multi_index(parts, dims).astype(np.int64)
    h = [L / (degree * m) for L, m in zip(lengths, n)]
    coords = np.column_stack([o + i * hh for o, i, hh in zip(origin, idx, h)])
    for d in range(len(n)):  # exact end coordinates (no round-off in x0 + n*h)
        coords[idx[d] == degree * n[d], d] = origin[d] + lengths[d]
    return node_ids, owners, coords, shape


def structured_mesh(comm, cell_type: str, n: tuple[int, ...], lengths, origin, degree: int = 1) -> DistributedMesh:
    """This rank's part of a rectangle or box of ``n`` cells per direction (collective), with the
    cells of ``cell_type`` of Lagrange ``degree`` (1 or 2)."""
    dim = len(n)
    n = tuple(int(v) for v in n)
    dims = split(comm.size, n)
    block = _block(n, dims, comm.rank)
    c0, c1, lc0, _ = block
    node_ids, node_owners, coords, shape = _grid_nodes(n, dims, degree, block, (lengths, origin))

    # local grid cells, owned block first
    cell_ranges = [np.arange(a, b) for a, b in zip(lc0, c1)]
    cidx = [i.ravel(order="F") for i in np.meshgrid(*cell_ranges, indexing="ij")]
    owned = np.ones(len(cidx[0]), dtype=bool)
    for d in range(dim):
        owned &= cidx[d] >= c0[d]
    order = np.argsort(~owned, kind="stable")
    cidx = [c[order] for c in cidx]
    n_owned_q = int(owned.sum())
    q_ids = np.ravel_multi_index(cidx, n, order="F").astype(np.int64)

    # the (degree + 1)^dim nodes of each local grid cell as local node indices
    corner = [degree * (c - a) for c, a in zip(cidx, lc0)]
    offsets = np.unravel_index(np.arange((degree + 1) ** dim), [degree + 1] * dim, order="F")
    q_nodes = np.empty((len(q_ids), (degree + 1) ** dim), dtype=np.int64)
    for v, offs in enumerate(zip(*offsets)):  # loop over the nodes of one grid cell
        q_nodes[:, v] = np.ravel_multi_index([c + o for c, o in zip(corner, offs)], shape, order="F")

    cell = of_degree(cell_type, degree)
    sub_cells = _sub_cell_nodes(cell)
    ns = len(sub_cells)
    cells = q_nodes[:, sub_cells].reshape(-1, sub_cells.shape[1])  # (n_q * ns, nn)
    cell_ids = (q_ids[:, None] * ns + np.arange(ns)).ravel()

    facets_of = CELLS[cell].facets
    boundaries = {}
    for side, found in _side_facets(cell).items():
        axis, value = _SIDE_AXIS[side]
        on_side = np.flatnonzero(cidx[axis] == (0 if value == 0 else n[axis] - 1))
        blocks = [q_nodes[on_side][:, sub_cells[s][list(facets_of[f])]] for s, f in found]
        width = len(facets_of[0])
        boundaries[side] = Facets(np.concatenate(blocks) if blocks else np.empty((0, width), dtype=np.int64))
    n_global_nodes = int(np.prod([degree * m + 1 for m in n]))
    n_global_cells = int(np.prod(n)) * ns
    part = LocalPart(coords, node_ids, node_owners, cells, cell_ids, n_owned_q * ns, boundaries)
    return DistributedMesh.from_local(comm, cell, part, (n_global_nodes, n_global_cells), affine=True)


def _check_templates():
    """Every side of every cell type has facets (guards the templates above)."""
    for cell_type in SPLITS:
        for side, found in _side_facets(cell_type).items():
            assert found, (cell_type, side)


_check_templates()
