"""Benchmark: read, partition and distribute a tetrahedral mesh file (about 1M cells by default).

    mpirun -n 2 .venv/bin/python benchmarks/mesh_distribution.py [--cubes 55] [--keep FILE]
        [--partitioner auto|metis|rcb] [--reference] [--json FILE]

Writes a Gmsh 4.1 binary mesh of a box (cubes^3 * 6 tetrahedra, cells shuffled so that the file
order carries no locality) when FILE is missing, then times rank 0's read, the parallel partition
and the distribution, and reports each rank's peak memory growth against the size of the mesh
arrays, the edge cut (with --reference, also METIS's on the whole cell graph) and the load
imbalance. The baseline is taken after the libraries are imported (a fixed cost, not the mesh's).
Prints a summary and writes outputs/bench/mesh_distribution_<partitioner>_np<N>.json.
"""

import argparse
import json
import resource
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from solver.mesh.files import distributed_mesh  # noqa: E402
from solver.mesh.structured import SPLITS  # noqa: E402


def write_box(path: Path, n: int, seed: int = 0) -> int:
    import meshio

    g = np.arange(n + 1)
    x, y, z = np.meshgrid(g, g, g, indexing="ij")
    points = np.column_stack([x.ravel(order="F"), y.ravel(order="F"), z.ravel(order="F")]) / n
    c = np.arange(n)
    ci, cj, ck = [a.ravel(order="F") for a in np.meshgrid(c, c, c, indexing="ij")]
    offs = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]])
    hexes = np.stack([(ci + o[0]) + (n + 1) * ((cj + o[1]) + (n + 1) * (ck + o[2])) for o in offs], axis=1)
    tets = hexes[:, SPLITS["tetrahedron"]].reshape(-1, 4)
    tets = tets[np.random.default_rng(seed).permutation(len(tets))]
    mesh = meshio.Mesh(points, [("tetra", tets)], cell_data={"gmsh:physical": [np.ones(len(tets), dtype=int)],
                                                             "gmsh:geometrical": [np.ones(len(tets), dtype=int)]},
                       field_data={"box": np.array([1, 3])})
    meshio.write(path, mesh, file_format="gmsh", binary=True)
    return len(tets)


def whole_graph_metis_cut(path: str, n_parts: int) -> int:
    """Edge cut of METIS on the whole dual graph, built on one process (the serial reference)."""
    import pymetis

    from solver.mesh.files import read
    from solver.mesh.partition import dual_graph

    data = read(path)
    graph = dual_graph(MPI.COMM_SELF, data.cells, data.cell_type, len(data.points))
    cut, _ = pymetis.part_graph(n_parts, adjacency=pymetis.CSRAdjacency(graph.xadj, graph.columns))
    return int(cut)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cubes", type=int, default=55, help="cubes per side (6 tetrahedra each); 55 -> 998k cells")
    p.add_argument("--keep", type=Path, default=Path("/tmp/solver_bench_box.msh"))
    p.add_argument("--partitioner", default="auto", choices=("auto", "metis", "rcb"))
    p.add_argument("--json", type=Path, help="where to write the figures")
    p.add_argument("--reference", action="store_true",
                   help="also partition the whole cell graph with METIS on one process (serial, for the edge cut)")
    args = p.parse_args()
    comm = MPI.COMM_WORLD
    if not args.keep.exists():
        if comm.rank == 0:
            write_box(args.keep, args.cubes)
            print(f"wrote {args.keep}; run again to measure (a fresh process, so memory is not the writer's)")
        return
    import meshio  # noqa: F401  (libraries first: the baseline holds them)
    import scipy.sparse.csgraph  # noqa: F401  (the conformity check's components of cells about a node)
    import scipy.spatial  # noqa: F401  (the conformity check's k-d tree)
    try:
        import pymetis  # noqa: F401
    except ImportError:
        pass
    baseline = rss_mb()
    start = MPI.Wtime()
    mesh = distributed_mesh(comm, str(args.keep), args.partitioner)
    total = MPI.Wtime() - start
    peaks = comm.gather(rss_mb(), root=0)
    bases = comm.gather(baseline, root=0)
    if comm.rank == 0:
        info = mesh.partition.as_dict()
        mesh_mb = info["mesh_bytes"] / 2**20
        result = {
            "ranks": comm.size, "cells": mesh.n_global_cells, "nodes": mesh.n_global_nodes,
            "read_s": info["read_seconds"], "partition_s": info["partition_seconds"],
            "distribute_s": info["distribute_seconds"], "total_s": total,
            "mesh_arrays_mb": mesh_mb, "peak_rss_mb": peaks, "baseline_rss_mb": bases,
            "rank0_growth_over_mesh_arrays": (peaks[0] - bases[0]) / mesh_mb,
            "partitioner": info["partitioner"], "edge_cut": info["edge_cut"],
            "owned_nodes_imbalance": info["owned_nodes_imbalance"],
        }
        print(f"mesh: {result['cells']} tetrahedra, {result['nodes']} nodes, arrays {mesh_mb:.1f} MB, "
              f"{comm.size} ranks")
        print(f"  read {result['read_s']:.2f} s, partition ({result['partitioner']}) {result['partition_s']:.2f} s, "
              f"distribute {result['distribute_s']:.2f} s, total {total:.2f} s")
        for r, (pk, b) in enumerate(zip(peaks, bases)):
            print(f"  rank {r}: peak RSS {pk:.0f} MB (interpreter and libraries {b:.0f} MB)")
        print(f"  rank 0 memory growth / mesh arrays = {result['rank0_growth_over_mesh_arrays']:.2f}x")
        print(f"  edge cut {result['edge_cut']} facets, owned-node imbalance {result['owned_nodes_imbalance']:.3f}")
        if args.reference:
            result["metis_whole_graph_edge_cut"] = whole_graph_metis_cut(str(args.keep), comm.size)
            print(f"  METIS on the whole cell graph (one process): edge cut {result['metis_whole_graph_edge_cut']}")
        out = args.json or Path("outputs") / "bench" / f"mesh_distribution_{info['partitioner']}_np{comm.size}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
