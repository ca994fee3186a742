"""Partitioning a mesh's cells into one part per rank, in parallel: no rank holds the cell graph.

The scheme is ParMETIS's multilevel one:

1. Coarsening. Each rank holds a contiguous range of the cells along a space-filling (Morton)
   curve. Level by level, vertices are paired with a neighbour on the same rank (heavy-edge
   matching: the neighbour sharing the most facets) and each pair becomes one vertex of the
   next graph (vertex weight: cells; edge weight: facets between the two groups), until the
   graph has at most ``max(COARSEST, cells / 64)`` vertices or stops shrinking. Graphs of up
   to ``WHOLE_GRAPH`` cells are not coarsened: METIS gets them whole.
2. Initial partition. The coarsest graph is gathered on rank 0 and split into ``P`` parts by
   METIS, or by recursive coordinate bisection (RCB) of its vertices' centroids.
3. Uncoarsening. The parts are projected back level by level; at each level, vertices on a
   part boundary move to the neighbouring part they share the most edge weight with, while
   every part stays within ``IMBALANCE`` of the mean (greedy k-way refinement, all ranks at
   once, the ghosts' parts updated by a halo exchange).

The dual graph (cells adjacent through a facet) is built in parallel: a facet is named by its
smallest corner node ids packed into integers, facets are matched on their rank first, and the
unmatched ones on the rank that holds their smallest corner in a block distribution of the nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from mpi4py import MPI

from solver.errors import CaseError
from solver.mesh import metis
from solver.mesh.cells import CELLS
from solver.parallel.buffers import offsets
from solver.parallel.exchange import HaloExchange
from solver.parallel.root import gather_rows, rank_starts, scatter_rows
from solver.parallel.routing import block_rank, block_starts, sparse_alltoallv

WHOLE_GRAPH = 100_000  # cell graphs up to this size go to METIS whole (small problems)
COARSEST = 8192  # larger ones are coarsened to at most max(COARSEST, cells / 64, 64 P) vertices first
MATCHING_ROUNDS = 12
IMBALANCE = 0.03  # parts may weigh up to 3% more than the mean (METIS's default)
SWEEPS = 8  # refinement sweeps per level


def facet_table(cell_type: str) -> np.ndarray:
    """(facets, corners) local node numbers of each facet of a linear cell type."""
    ref = CELLS[cell_type]
    if ref.affine:
        return np.array(list(combinations(range(ref.n_nodes), ref.dim)))
    return np.array(ref.facets)


_SPREAD = {  # (shift, mask) steps that put a zero bit (2D) or two (3D) between the bits of an integer
    2: [(16, 0x0000FFFF0000FFFF), (8, 0x00FF00FF00FF00FF), (4, 0x0F0F0F0F0F0F0F0F), (2, 0x3333333333333333),
        (1, 0x5555555555555555)],
    3: [(32, 0x1F00000000FFFF), (16, 0x1F0000FF0000FF), (8, 0x100F00F00F00F00F), (4, 0x10C30C30C30C30C3),
        (2, 0x1249249249249249)],
}


def morton_codes(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Morton (Z-order) codes of points in the box [lo, hi]: coordinate bits interleaved."""
    dim = points.shape[1]
    bits = 63 // dim
    scale = (2**bits - 1) / np.maximum(hi - lo, np.finfo(float).tiny)
    code = np.zeros(len(points), dtype=np.uint64)
    for a in range(dim):
        x = ((points[:, a] - lo[a]) * scale[a]).astype(np.uint64)
        for shift, mask in _SPREAD[dim]:
            x = (x | (x << np.uint64(shift))) & np.uint64(mask)
        code |= x << np.uint64(a)
    return code


def space_filling_order(points: np.ndarray, cells: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """Cells sorted along the Morton curve of their centroids (computed a chunk at a time)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    codes = np.empty(len(cells), dtype=np.uint64)
    for start in range(0, len(cells), chunk):  # chunks bound the temporaries
        centroids = points[cells[start:start + chunk]].mean(axis=1)
        codes[start:start + chunk] = morton_codes(centroids, lo, hi)
    return np.argsort(codes, kind="stable")


@dataclass
class Graph:
    """This rank's rows of a distributed graph. Vertices are numbered ``first .. first + n - 1``
    on this rank (contiguous blocks over the ranks); a neighbour is a column of
    ``[local..., ghosts...]``."""

    xadj: np.ndarray  # (n + 1,)
    columns: np.ndarray  # local vertex, or n + position in ``ghosts``
    ghosts: np.ndarray  # global numbers of the neighbours on other ranks, sorted
    first: int
    halo: HaloExchange  # values of the ghost neighbours
    edge_weights: np.ndarray  # facets between the two vertices, one per column
    vertex_weights: np.ndarray  # cells in each vertex

    @property
    def n(self) -> int:
        return len(self.xadj) - 1

    def rows(self) -> np.ndarray:
        return np.repeat(np.arange(self.n, dtype=np.int32 if self.n < 2**31 else np.int64), np.diff(self.xadj))

    def neighbour_values(self, values: np.ndarray) -> np.ndarray:
        """``values`` (one per local vertex) of every neighbour, in adjacency order (collective)."""
        extended = np.empty(self.n + len(self.ghosts), dtype=values.dtype)
        extended[:self.n] = values
        self.halo.update(extended)
        return extended[self.columns]


def _graph(comm, xadj, columns, ghosts, edge_weights, vertex_weights) -> Graph:
    n = len(xadj) - 1
    starts = rank_starts(comm, n)
    first = int(starts[comm.rank])
    halo = HaloExchange(comm, n, np.arange(first, first + n), block_rank(starts, ghosts), ghosts)
    return Graph(xadj, columns, ghosts, first, halo, edge_weights, vertex_weights)


def facet_keys(cells: np.ndarray, cell_type: str, n_nodes: int):
    """Key of every (cell, facet), row ``cell * n_facets + facet``: one int64 word (or two for
    large meshes) packing the facet's smallest ``n_key`` corner node ids in increasing order."""
    faces = facet_table(cell_type)
    nf, n_key = len(faces), min(faces.shape[1], 3)
    bits = max(int(n_nodes - 1).bit_length(), 1)
    words = 1 if n_key * bits <= 63 else 2
    if words == 2 and bits > 31:
        raise ValueError(f"meshes of more than {2**31} nodes are not supported")
    keys = np.empty((words, len(cells) * nf), dtype=np.int64)
    for f, face in enumerate(faces):  # the 3-6 facets of a cell type
        corners = np.sort(cells[:, face], axis=1)[:, :n_key].astype(np.int64)
        if words == 1:
            k = corners[:, 0]
            for j in range(1, n_key):
                k = (k << bits) | corners[:, j]
            keys[0, f::nf] = k
        else:
            keys[0, f::nf] = (corners[:, 0] << bits) | corners[:, 1]
            keys[1, f::nf] = corners[:, 2]
    smallest_shift = bits * (n_key - 1 if words == 1 else 1)
    return keys, nf, smallest_shift


def pairs_of_equal_keys(keys: np.ndarray):
    """Positions (i, j) of keys that occur twice, and the keys that occur once with their positions."""
    order = np.argsort(keys[0], kind="stable") if len(keys) == 1 else np.lexsort(keys[::-1])
    ordered = keys[:, order]
    same = np.all(ordered[:, 1:] == ordered[:, :-1], axis=0)
    twin = np.flatnonzero(same)
    single = np.ones(len(order), dtype=bool)
    single[twin] = False
    single[twin + 1] = False
    return order[twin], order[twin + 1], order[single], ordered[:, single]


def dual_graph(comm, cells: np.ndarray, cell_type: str, n_nodes: int) -> Graph:
    """The distributed dual graph of cells held in contiguous blocks (collective)."""
    n = len(cells)
    starts = rank_starts(comm, n)
    first = int(starts[comm.rank])
    keys, nf, shift = facet_keys(cells, cell_type, n_nodes)
    a, b, lone, lone_keys = pairs_of_equal_keys(keys)
    del keys
    index = np.int32 if n * (nf + 1) < 2**31 else np.int64  # local cells and ghosts
    a = (a // nf).astype(index)
    b = (b // nf).astype(index)
    # facets without a partner here: matched on the rank holding their smallest corner node
    records = np.empty((len(lone), len(lone_keys) + 1), dtype=np.int64)
    records[:, :-1] = lone_keys.T
    records[:, -1] = first + lone // nf
    del lone, lone_keys
    node_starts = block_starts(n_nodes, comm.size)
    got, _, _, _ = sparse_alltoallv(comm, block_rank(node_starts, records[:, 0] >> shift), records)
    del records
    i, j, _, _ = pairs_of_equal_keys(np.ascontiguousarray(got[:, :-1].T))
    pairs = np.concatenate([got[np.column_stack([i, j]), -1], got[np.column_stack([j, i]), -1]])
    del got
    remote, _, _, _ = sparse_alltoallv(comm, block_rank(starts, pairs[:, 0]), pairs)
    ghosts = np.unique(remote[:, 1])
    src = np.concatenate([a, b, (remote[:, 0] - first).astype(index)])
    dst = np.concatenate([b, a, (n + np.searchsorted(ghosts, remote[:, 1])).astype(index)])
    del a, b, remote
    xadj = offsets(np.bincount(src, minlength=n))
    columns = dst[np.argsort(src, kind="stable")]
    del src, dst
    unit = np.int32(1)  # unit weights, stored once
    return _graph(comm, xadj, columns, ghosts, np.broadcast_to(unit, columns.shape),
                  np.broadcast_to(unit, (n,)))


def _hash(a: np.ndarray, salt: int) -> np.ndarray:
    """Reproducible pseudo-random 16-bit integers from non-negative integers."""
    return ((a.astype(np.int64) * 2654435761 + salt * 40503) >> 9) & 0xFFFF


def _heaviest(r, c, w, key, other, salt):
    """The entries of heaviest ``w`` for each distinct ``key`` (ties broken by a hash of ``other``)."""
    order = np.lexsort((_hash(other, salt), -w, key))
    head = np.ones(len(order), dtype=bool)
    head[1:] = key[order[1:]] != key[order[:-1]]
    chosen = order[head]
    return r[chosen], c[chosen], w[chosen]


def heavy_edge_matching(graph: Graph) -> np.ndarray:
    """Coarse vertex (local number) of each vertex: pairs of neighbours on this rank.

    Each round, free vertices are split in two by a hash; each one of the first half proposes
    to its free neighbour of the second half with the heaviest edge, and each vertex of the
    second half accepts its heaviest proposal. Unmatched vertices stay single."""
    n = graph.n
    rows, cols = graph.rows(), graph.columns
    local = (cols < n) & (cols != rows)
    rows, cols, weights = rows[local], cols[local], graph.edge_weights[local]
    del local
    mate = np.full(n, -1, dtype=np.int64)
    ids = np.arange(n)
    for round_ in range(MATCHING_ROUNDS):  # a few vectorised rounds
        keep = (mate[rows] < 0) & (mate[cols] < 0)
        rows, cols, weights = rows[keep], cols[keep], weights[keep]
        side = _hash(ids, round_) & 1
        offer = (side[rows] == 0) & (side[cols] == 1)
        if not np.any(offer):
            break
        r, c, w = rows[offer], cols[offer], weights[offer]
        r, c, w = _heaviest(r, c, w, r, c, round_)  # each proposer's heaviest offer
        r, c, w = _heaviest(r, c, w, c, r, round_)  # each receiver's heaviest proposal
        mate[r] = c
        mate[c] = r
    leader = (mate < 0) | (ids < mate)
    coarse = np.full(n, -1, dtype=np.int32 if n < 2**31 else np.int64)
    coarse[leader] = np.arange(int(np.count_nonzero(leader)))
    follower = ~leader
    coarse[follower] = coarse[mate[follower]]
    return coarse


def contract(comm, graph: Graph, coarse: np.ndarray) -> Graph:
    """The graph of the coarse vertices (collective): weights add up, inner edges vanish."""
    n_coarse = int(coarse.max()) + 1 if graph.n else 0
    offset = comm.exscan(n_coarse) or 0 if comm.size > 1 else 0
    total = comm.allreduce(n_coarse)
    index = np.int32 if total < 2**31 else np.int64
    rows = coarse[graph.rows()]
    cols = graph.neighbour_values((coarse + offset).astype(index))  # coarse global numbers
    keep = cols != rows.astype(index) + offset
    key = rows[keep].astype(np.int64)  # (in place from here: the edges' keys are the largest array)
    del rows
    key *= total
    key += cols[keep]
    del cols
    unit = graph.edge_weights.strides == (0,)
    if unit:  # the cell graph: weights are counts, and the keys sort in place
        key.sort()
    else:
        order = np.argsort(key)
        key = key[order]
        sorted_weights = graph.edge_weights[keep][order]
        del order
    del keep
    start = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    if unit:
        weights = np.diff(np.append(start, len(key))).astype(np.int32)
    else:
        weights = np.add.reduceat(sorted_weights, start).astype(np.int32)
        del sorted_weights
    key = key[start]
    del start
    row = (key // total).astype(index)
    col = key
    col %= total
    del key
    local = (col >= offset) & (col < offset + n_coarse)
    remote = col[~local]
    ghosts = np.unique(remote)
    columns = np.empty(len(col), dtype=index)
    columns[local] = col[local] - offset
    columns[~local] = n_coarse + np.searchsorted(ghosts, remote)
    del col, local, remote
    xadj = offsets(np.bincount(row, minlength=n_coarse))
    del row
    vertex_weights = np.bincount(coarse, weights=graph.vertex_weights, minlength=n_coarse).astype(np.int32)
    return _graph(comm, xadj, columns, ghosts, weights, vertex_weights)


def rcb(points: np.ndarray, n_parts: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Recursive coordinate bisection: split along the longest extent, in proportion to the
    number of parts on each side (by weight), until every part is one rank's."""
    weights = np.ones(len(points)) if weights is None else np.asarray(weights, dtype=float)
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
        order = np.argsort(pts[:, axis], kind="stable")
        cumulative = np.cumsum(weights[index[order]])
        k = int(np.searchsorted(cumulative, cumulative[-1] * left / count))
        k = min(max(k, left), len(index) - (count - left))  # every part keeps at least one item
        stack.append((index[order[:k]], first, left))
        stack.append((index[order[k:]], first + left, count - left))
    return parts


def initial_partition(comm, graph: Graph, n_parts: int, use_metis: bool, centroids_fn) -> tuple[np.ndarray, str]:
    """Part of each local vertex from a partition of the whole (small) graph on rank 0 (collective).
    ``centroids_fn()`` (collective) gives the local vertices' centroids when RCB needs them."""
    rows = graph.rows()
    cols = graph.neighbour_values(np.arange(graph.first, graph.first + graph.n))
    edges = gather_rows(comm, np.column_stack([rows.astype(np.int64) + graph.first, cols, graph.edge_weights]))
    weights = gather_rows(comm, graph.vertex_weights.astype(np.int64)[:, None])
    weights = weights[:, 0] if comm.rank == 0 else None
    parts, method = None, None
    if comm.rank == 0 and use_metis:
        xadj = offsets(np.bincount(edges[:, 0], minlength=len(weights)))
        parts, method = metis.part_graph(n_parts, xadj, edges[:, 1], weights, edges[:, 2]), "metis"
        if parts is None or len(np.unique(parts)) < n_parts:  # METIS failed, or left a part empty (tiny meshes)
            parts = None
    if comm.bcast(parts is None if comm.rank == 0 else None, root=0):
        centroids = gather_rows(comm, centroids_fn())
        if comm.rank == 0:
            parts, method = rcb(centroids, n_parts, weights), "rcb"
    method = comm.bcast(method, root=0)
    return scatter_rows(comm, parts, comm.allgather(graph.n), np.int64), method


def refine(comm, graph: Graph, parts: np.ndarray, n_parts: int, sweeps: int = SWEEPS,
           imbalance: float = IMBALANCE) -> np.ndarray:
    """Greedy k-way refinement: boundary vertices move to the adjacent part that most reduces the
    edge cut. Moves go from lower to higher parts on even sweeps and back on odd ones, so that
    two neighbours never swap; quotas keep every part within ``imbalance`` of the mean weight."""
    parts = parts.astype(np.int32)
    rows = graph.rows()
    vw = graph.vertex_weights
    sizes = np.bincount(parts, weights=vw, minlength=n_parts).astype(np.int64)
    comm.Allreduce(MPI.IN_PLACE, sizes, op=MPI.SUM)
    mean = sizes.sum() / n_parts
    high = max(int(np.floor((1 + imbalance) * mean)), int(sizes.max()))
    low = min(int(np.ceil((1 - imbalance) * mean)), int(sizes.min()))
    idle = 0
    for sweep in range(sweeps):  # a few sweeps, each vectorised over the boundary vertices
        neighbours = graph.neighbour_values(parts)
        boundary = np.zeros(graph.n, dtype=bool)
        boundary[rows[neighbours != parts[rows]]] = True
        entries = boundary[rows]
        key, inverse = np.unique(rows[entries] * n_parts + neighbours[entries], return_inverse=True)
        conn = np.bincount(inverse, weights=graph.edge_weights[entries]).astype(np.int64)
        cell, target = key // n_parts, key % n_parts
        internal = np.zeros(graph.n, dtype=np.int64)
        same = target == parts[cell]
        internal[cell[same]] = conn[same]
        forward = target > parts[cell] if sweep % 2 == 0 else target < parts[cell]
        cell, target, gain = cell[forward], target[forward], conn[forward] - internal[cell[forward]]
        # improving moves, and half of the neutral ones (a different half each sweep): the
        # boundary slides along plateaus of equal cut, where improving moves may wait
        good = (gain > 0) | ((gain == 0) & (_hash(cell, sweep) & 1 == 0))
        cell, target, gain = cell[good], target[good], gain[good]
        best = np.lexsort((-gain, cell))  # per vertex, its best target first
        head = np.ones(len(best), dtype=bool)
        head[1:] = cell[best[1:]] != cell[best[:-1]]
        cell, target, gain = cell[best[head]], target[best[head]], gain[best[head]]
        source = parts[cell]
        pair = source * n_parts + target
        weight = vw[cell]
        wanted = np.bincount(pair, weights=weight, minlength=n_parts * n_parts).astype(np.int64)
        comm.Allreduce(MPI.IN_PLACE, wanted, op=MPI.SUM)
        if not wanted.any():
            idle += 1
            if idle == 2:
                break
            continue
        idle = 0
        flows = wanted.reshape(n_parts, n_parts)
        room_in = np.maximum(high - sizes, 0) / np.maximum(flows.sum(axis=0), 1)
        room_out = np.maximum(sizes - low, 0) / np.maximum(flows.sum(axis=1), 1)
        fraction = np.minimum(1.0, np.minimum(room_in[None, :], room_out[:, None])).ravel()
        quota = fraction * np.bincount(pair, weights=weight, minlength=n_parts * n_parts)
        order = np.lexsort((-gain, pair))  # best gains first within each (source, target)
        cumulative = np.cumsum(weight[order])
        group_start = np.searchsorted(pair[order], np.arange(n_parts * n_parts))
        before = np.concatenate([[0], cumulative])[group_start]
        accepted = order[cumulative - before[pair[order]] <= quota[pair[order]]]
        parts[cell[accepted]] = target[accepted]
        change = (np.bincount(target[accepted], weights=weight[accepted], minlength=n_parts)
                  - np.bincount(source[accepted], weights=weight[accepted], minlength=n_parts)).astype(np.int64)
        comm.Allreduce(MPI.IN_PLACE, change, op=MPI.SUM)
        sizes += change
    return parts


def edge_cut(comm, graph: Graph, parts: np.ndarray) -> int:
    """Edge weight (facets) between vertices of different parts (collective)."""
    cut = int(graph.edge_weights[graph.neighbour_values(parts) != parts[graph.rows()]].sum())
    return comm.allreduce(cut) // 2


def partition(comm, cells: np.ndarray, cell_type: str, n_nodes: int, centroids_fn,
              method: str = "auto") -> tuple[np.ndarray, str, int]:
    """Part of each of this rank's cells (a contiguous block along the Morton curve), the
    method used and the edge cut in facets (collective). ``centroids_fn()`` (collective) gives
    the cells' centroids, for RCB."""
    n_parts = comm.size
    use_metis = method in ("auto", "metis")
    if use_metis:
        try:
            import pymetis  # noqa: F401  (installed?)
        except ImportError:
            if method == "metis":
                raise CaseError("mesh.partitioner: \"metis\" needs pymetis, which is not installed "
                                "(pip install pymetis); without it use \"auto\" or \"rcb\"") from None
            use_metis = False
    levels = [dual_graph(comm, cells, cell_type, n_nodes)]
    maps = []
    size = comm.allreduce(levels[0].n)
    target = size if size <= WHOLE_GRAPH else max(COARSEST, size // 64, 64 * n_parts)
    while size > target:  # O(log n) levels
        coarse = heavy_edge_matching(levels[-1])
        coarser = contract(comm, levels[-1], coarse)
        new_size = comm.allreduce(coarser.n)
        if new_size > 0.9 * size:  # matching stalls: the rest is METIS's (or RCB's) job
            break
        levels.append(coarser)
        maps.append(coarse)
        size = new_size

    def coarsest_centroids():
        cell_to_coarsest = np.arange(levels[0].n)
        for coarse in maps:
            cell_to_coarsest = coarse[cell_to_coarsest]
        fine = centroids_fn()
        n, weights = levels[-1].n, levels[-1].vertex_weights
        return np.column_stack([np.bincount(cell_to_coarsest, weights=fine[:, a], minlength=n) / weights
                                for a in range(fine.shape[1])])

    parts, used = initial_partition(comm, levels[-1], n_parts, use_metis, coarsest_centroids)
    finest = levels[0]
    while levels:  # up from the coarsest, each level let go once refined (less held on the way up)
        parts = refine(comm, levels.pop(), parts, n_parts)
        if maps:
            parts = parts[maps.pop()]
    return parts, used, edge_cut(comm, finest, parts)
