"""Parallel partitioning on 1-4 ranks: the distributed dual graph against a serial one,
coarsening invariants, and partition quality against METIS on the whole graph; and rank 0's
peak memory while a mesh file is read, partitioned and distributed."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT, run_mpi, run_script

GRAPH_CHECKS = ("graph_equal", "matching_pairs_only", "matched_pairs_are_neighbours", "weights_kept")


def test_dual_graph_coarsening_and_partition_quality(nprocs):
    r = run_script(nprocs, "partition_checks.py", timeout=120)
    for cell_type, checks in r["graphs"].items():
        assert all(checks[k] for k in GRAPH_CHECKS), (cell_type, checks)
        assert checks["shrink"] < 0.8, (cell_type, checks)  # a level of coarsening nearly halves the graph
    assert sorted(r["partition"]) == ["metis", "metis-multilevel", "rcb-multilevel"]
    for name, p in r["partition"].items():
        method = name.split("-")[0]
        assert p["used"] == method and p["empty_parts"] == 0, p
        assert p["cut"] == p["recounted_cut"], p
        assert p["imbalance"] <= 1.04, p
        if nprocs > 1:
            limit = 1.25 if method == "metis" else 2.0
            assert 0 < p["cut"] <= limit * p["metis_whole_graph_cut"], p
        else:
            assert p["cut"] == 0


@pytest.fixture(scope="module")
def box_mesh(tmp_path_factory):
    """A Gmsh 4.1 binary box of 384,000 shuffled tetrahedra, written by the benchmark."""
    path = tmp_path_factory.mktemp("box") / "box.msh"
    subprocess.run([sys.executable, ROOT / "benchmarks" / "mesh_distribution.py", "--cubes", "40", "--keep", path],
                   check=True, capture_output=True, cwd=ROOT, timeout=300)
    return path


@pytest.mark.parametrize("ranks", [2, 4])
def test_rank0_peak_memory_stays_within_3x_of_the_mesh_arrays(box_mesh, tmp_path, ranks):
    out = tmp_path / "figures.json"
    run_mpi(ranks, [ROOT / "benchmarks" / "mesh_distribution.py", "--keep", box_mesh, "--json", out, "--reference"],
            timeout=300)
    figures = json.loads(out.read_text())
    assert figures["cells"] == 384000 and figures["partitioner"] == "metis"
    assert figures["rank0_growth_over_mesh_arrays"] <= 3.0, figures
    assert figures["edge_cut"] <= 1.25 * figures["metis_whole_graph_edge_cut"], figures
    assert figures["owned_nodes_imbalance"] <= 1.08, figures
