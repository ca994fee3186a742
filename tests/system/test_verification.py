"""The verify command as users run it: every manufactured-solution study (linear and quadratic
elements, every cell type, space and time, the curved ring, the nonlinear study) on 2 ranks, its
tables printed and its observed orders within their bounds (the command checks them itself).
It is the suite's longest single run: it runs beside the suite with the whole-run tests."""

from conftest import run_solver


def test_verify_command_prints_tables_and_passes(tmp_path):
    proc = run_solver(2, ["verify"], cwd=tmp_path, timeout=600)  # (3 minutes alone, more beside the suite)
    out = proc.stdout
    for cell in ("triangle", "quadrilateral", "tetrahedron", "hexahedron", "P2 triangle", "Q2 quadrilateral",
                 "P2 tetrahedron", "Q2 hexahedron"):
        assert f"space: {cell}, crank-nicolson" in out and f"space: {cell}, steady" in out
    for scheme in ("backward-euler", "crank-nicolson", "bdf2"):
        assert f"time: {scheme} on quadrilateral" in out
    for scheme in ("crank-nicolson", "bdf2"):
        assert f"time: {scheme} on Q2 quadrilateral" in out
    assert "curved boundary: P2 on the ring" in out  # (the orders are checked by the command itself)
    assert "L2 error" in out and "H1 error" in out and "all observed orders match the theory" in out
