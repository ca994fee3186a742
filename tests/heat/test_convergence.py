"""Method of manufactured solutions, every cell type, every boundary-condition kind (Dirichlet,
Neumann, Robin) with anisotropic conductivity: L2 order 2 and H1 order 1 in space (transient and
steady), orders 1 / 2 / 2 in time for backward Euler / Crank-Nicolson / BDF2; 1-4 ranks."""

import pytest
from conftest import run_script


@pytest.mark.parametrize("cell", ["triangle", "quadrilateral", "tetrahedron", "hexahedron"])
def test_space_orders(cell, nprocs):
    result = run_script(nprocs, "mms.py", "space", cell, timeout=240)
    for scheme, r in result.items():
        assert r["l2"][0] > r["l2"][1] > r["l2"][2] > 0
        assert all(abs(p - 2.0) <= 0.15 for p in r["l2_orders"]), (scheme, r)
        assert all(abs(p - 1.0) <= 0.15 for p in r["h1_orders"]), (scheme, r)
    # the discrete heat balance closes: steady to 1e-8, Crank-Nicolson to solver tolerance
    assert max(result["steady"]["imbalance"]) < 1e-8
    assert max(result["crank-nicolson"]["imbalance"]) < 1e-8


@pytest.mark.parametrize("nprocs", [1, 2], ids=["np1", "np2"])  # orders; the rank agreement is tested elsewhere
def test_time_orders(nprocs):
    result = run_script(nprocs, "mms.py", "time", timeout=120)
    for scheme, order in (("backward-euler", 1.0), ("crank-nicolson", 2.0), ("bdf2", 2.0)):
        assert all(abs(p - order) <= 0.15 for p in result[scheme]["orders"]), (scheme, result[scheme])
