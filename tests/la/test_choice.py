"""``solver.preconditioner = "auto"`` picks as docs/guide/solvers.md documents."""

import pytest

from solver.la.choice import amg_seconds, choose_preconditioner, lu_seconds


@pytest.mark.parametrize("dim, dofs, ranks, solves, expected", [
    (2, 861, 1, 60, "bjacobi"),          # tiny: the exact LU
    (2, 30_000, 1, 20, "bjacobi"),       # one rank, small 2D: the factorisation pays for itself
    (2, 1_050_625, 1, 20, "amg"),        # the reference problem: AMG
    (2, 60_000, 1, 5000, "bjacobi"),     # ... and at 60K DOFs when it serves thousands of solves
    (2, 400_000, 1, 5000, "bjacobi"),    # ... and at 400K DOFs
    (2, 1_050_625, 1, 5000, "amg"),      # beyond LU_MAX its fill would double the memory
    (2, 50_000, 1, 1, "amg"),            # a new matrix every step (h(t)): no refactorisation per step
    (2, 861, 2, 60, "amg"),              # several ranks: block Jacobi would lose its exactness
    (3, 275_000, 1, 50, "amg"),          # 3D: the LU's fill rules it out
    (3, 1000, 1, 50, "bjacobi"),         # ... except for a tiny problem
])
def test_auto_choice(dim, dofs, ranks, solves, expected):
    choice = choose_preconditioner(dim, dofs, ranks, solves)
    assert choice.name == expected and choice.reason


def test_the_cost_model_crosses_over_once_in_the_number_of_solves():
    n = 60_000
    winners = [lu_seconds(n, s) < amg_seconds(n, s) for s in (1, 10, 100, 1000, 10000)]
    assert winners == sorted(winners)  # AMG for few solves, the LU for many


def test_auto_is_reported_by_a_run(tmp_path):
    from conftest import run_solver
    proc = run_solver(2, ["--set", "time.t_end=60.0", "--set", f"output.directory={tmp_path}"], cwd=tmp_path)
    assert "preconditioner: auto -> amg (2 ranks: multigrid iterations do not grow with the ranks)" in proc.stdout
    assert "preconditioner amg" in proc.stdout and "multigrid:" in proc.stdout
