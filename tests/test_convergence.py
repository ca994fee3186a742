"""Method of manufactured solutions: observed orders in space (all cell types) and time."""

import pytest
from conftest import run_script


@pytest.mark.parametrize("cell", ["triangle", "quadrilateral", "tetrahedron", "hexahedron"])
def test_space_order_two_in_l2(cell, nprocs):
    result = run_script(nprocs, "mms.py", "space", cell, timeout=240)
    errors, orders = result["errors"], result["orders"]
    assert errors[0] > errors[1] > errors[2] > 0
    assert len(orders) == 2 and all(abs(p - 2.0) <= 0.15 for p in orders), orders


@pytest.mark.parametrize("scheme, order", [("backward-euler", 1.0), ("crank-nicolson", 2.0)])
def test_time_order(scheme, order, nprocs):
    result = run_script(nprocs, "mms.py", "time", scheme, timeout=120)
    assert all(abs(p - order) <= 0.15 for p in result["orders"]), result
