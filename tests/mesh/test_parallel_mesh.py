"""Distributed mesh, halo exchange, canonical redistribution and assembly on 1-4 ranks."""

from conftest import run_script


def test_mesh_invariants(nprocs):
    result = run_script(nprocs, "mesh_checks.py", timeout=120)
    assert result["ok"] and result["ranks"] == nprocs
    assert result["cells"] == ["file", "hexahedron", "quadrilateral", "tetrahedron", "triangle"]
