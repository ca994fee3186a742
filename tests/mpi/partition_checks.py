"""Parallel partitioning, checked against serial references on every rank count.

For each cell type a structured mesh is built (cells shuffled), cut into contiguous blocks as the
file reader does, and:

* the distributed dual graph equals a serial one built another way (``np.unique`` on whole facets);
* heavy-edge matching pairs neighbours only, and contraction keeps the vertex and edge weights;
* the partition (METIS on the whole graph, or multilevel: METIS or RCB on a coarsened graph,
  then refinement) has no empty part, keeps the balance, reports its edge cut correctly, and cuts
  at most 25% more facets than METIS on the whole graph (RCB: at most twice as many).

Usage: mpirun -n N python partition_checks.py (prints one JSON line on rank 0).
"""

import numpy as np
from _guard import run
from mpi4py import MPI

from solver.mesh import partition as P
from solver.mesh.cells import CELLS
from solver.parallel.routing import block_starts
from solver.mesh.structured import SPLITS


def box(cell_type: str, n: int, seed: int = 1):
    """Points and shuffled cells of the unit square/cube, n cells per side (split into simplices)."""
    dim = CELLS[cell_type].dim
    g = np.arange(n + 1)
    grids = np.meshgrid(*([g] * dim), indexing="ij")
    points = np.column_stack([a.ravel(order="F") for a in grids]) / n
    c = [a.ravel(order="F") for a in np.meshgrid(*([np.arange(n)] * dim), indexing="ij")]
    if dim == 2:
        offs = [(0, 0), (1, 0), (1, 1), (0, 1)]
        quads = np.stack([(c[0] + o[0]) + (n + 1) * (c[1] + o[1]) for o in offs], axis=1)
        cells = quads if cell_type == "quadrilateral" else quads[:, SPLITS["triangle"]].reshape(-1, 3)
    else:
        offs = [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)]
        hexes = np.stack([(c[0] + o[0]) + (n + 1) * ((c[1] + o[1]) + (n + 1) * (c[2] + o[2])) for o in offs], axis=1)
        cells = hexes if cell_type == "hexahedron" else hexes[:, SPLITS["tetrahedron"]].reshape(-1, 4)
    return points, cells[np.random.default_rng(seed).permutation(len(cells))]


def reference_pairs(cells: np.ndarray, cell_type: str) -> np.ndarray:
    """Serial dual graph: (cell, neighbour) pairs, both directions, from whole sorted facets."""
    faces = P.facet_table(cell_type)
    tuples = np.sort(cells[:, faces], axis=2).reshape(-1, faces.shape[1])
    _, facet = np.unique(tuples, axis=0, return_inverse=True)
    order = np.argsort(facet.ravel(), kind="stable")
    f = facet.ravel()[order]
    twin = np.flatnonzero(f[1:] == f[:-1])
    a, b = order[twin] // len(faces), order[twin + 1] // len(faces)
    pairs = np.concatenate([np.column_stack([a, b]), np.column_stack([b, a])])
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def gathered(comm, rows: np.ndarray) -> np.ndarray | None:
    parts = comm.gather(rows, root=0)
    return np.concatenate(parts) if comm.rank == 0 else None


def block_of(comm, array: np.ndarray) -> np.ndarray:
    starts = block_starts(len(array), comm.size)
    return array[starts[comm.rank]:starts[comm.rank + 1]]


def graph_pairs(comm, graph) -> np.ndarray | None:
    neighbours = graph.neighbour_values(np.arange(graph.first, graph.first + graph.n))
    pairs = gathered(comm, np.column_stack([graph.rows() + graph.first, neighbours]))
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if comm.rank == 0 else None


def check_graph(comm, cell_type: str, n: int) -> dict:
    points, cells = box(cell_type, n)
    graph = P.dual_graph(comm, block_of(comm, cells), cell_type, len(points))
    pairs = graph_pairs(comm, graph)
    ok = True
    if comm.rank == 0:
        ok = bool(np.array_equal(pairs, reference_pairs(cells, cell_type)))
    # one level of coarsening: pairs of neighbours; weights kept
    coarse = P.heavy_edge_matching(graph)
    members = np.bincount(coarse)
    rows, cols = graph.rows(), graph.columns
    mates = (cols < graph.n) & (coarse[rows] == coarse[np.minimum(cols, graph.n - 1)])
    internal = comm.allreduce(int(np.count_nonzero(mates)))
    coarser = P.contract(comm, graph, coarse)
    fine_edges = comm.allreduce(len(graph.columns))
    coarse_edges = comm.allreduce(int(coarser.edge_weights.sum()))
    matched = comm.allreduce(int(np.count_nonzero(members == 2)))
    return {"graph_equal": comm.allreduce(ok, op=MPI.LAND) if comm.size > 1 else ok,
            "matching_pairs_only": bool(comm.allreduce(int(members.max()) <= 2, op=MPI.LAND)),
            "matched_pairs_are_neighbours": internal == 2 * matched,
            "weights_kept": comm.allreduce(int(coarser.vertex_weights.sum())) == len(cells)
            and coarse_edges == fine_edges - internal,
            "shrink": comm.allreduce(coarser.n) / len(cells)}


def check_partition(comm, n: int) -> dict:
    points, cells = box("tetrahedron", n)
    order = P.space_filling_order(points, cells)
    mine = block_of(comm, cells[order])
    centroids = lambda: points[mine].mean(axis=1)  # noqa: E731
    result = {}
    whole = P.WHOLE_GRAPH
    for name, method, whole_graph in (("metis", "metis", whole), ("metis-multilevel", "metis", 0),
                                      ("rcb-multilevel", "rcb", 0)):
        P.WHOLE_GRAPH = whole_graph  # 0: coarsened to COARSEST vertices, as large meshes are
        P.COARSEST = 1024
        parts, used, cut = P.partition(comm, mine, "tetrahedron", len(points), centroids, method)
        P.WHOLE_GRAPH = whole
        all_parts = gathered(comm, parts)
        if comm.rank == 0:
            pairs = reference_pairs(cells[order], "tetrahedron")
            sizes = np.bincount(all_parts, minlength=comm.size)
            entry = {"used": used, "cut": cut,
                     "recounted_cut": int(np.count_nonzero(all_parts[pairs[:, 0]] != all_parts[pairs[:, 1]]) // 2),
                     "empty_parts": int(np.count_nonzero(sizes == 0)), "imbalance": float(sizes.max() / sizes.mean())}
            if comm.size > 1:
                import pymetis

                xadj = np.zeros(len(cells) + 1, dtype=np.int64)
                np.cumsum(np.bincount(pairs[:, 0], minlength=len(cells)), out=xadj[1:])
                entry["metis_whole_graph_cut"], _ = pymetis.part_graph(
                    comm.size, adjacency=pymetis.CSRAdjacency(xadj, pairs[:, 1]))
            result[name] = entry
    return result


def main(comm):
    results = {"graphs": {t: check_graph(comm, t, n) for t, n in
                          (("triangle", 24), ("quadrilateral", 20), ("tetrahedron", 9), ("hexahedron", 10))}}
    results["partition"] = check_partition(comm, 16)
    return results


if __name__ == "__main__":
    run(main)
