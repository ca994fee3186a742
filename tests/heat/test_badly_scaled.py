"""A system whose right-hand side is dominated by a few huge rows (a convection coefficient of
1e15, a conductivity of 1e-12 with solver.atol) met ||r|| <= rtol ||b|| before any iteration: the
run "completed" with a frozen field and exit 0. The solve's largest Jacobi correction still due
is checked with the step's vote: exit 3, one line, on every rank count; large but solvable
scales still run."""

import h5py
import numpy as np
import pytest
from conftest import one_error, run_solver

CASE = """[mesh]
nx = 20
ny = 10
lengths = [0.2, 0.1]
[material]
k = 45.0
rho = 7850.0
c = 460.0
[initial]
temperature = 20.0
[boundary.left]
type = "dirichlet"
value = 100.0
[boundary.right]
type = "robin"
h = 25.0
T_inf = 20.0
[time]
scheme = "backward-euler"
dt = 5.0
t_end = 20.0
"""


@pytest.mark.parametrize("nprocs, edits", [
    (1, ["boundary.right.h=1e15"]),
    (3, ["boundary.right.h=1e15"]),
    (1, ["time.scheme=\"steady\"", "material.k=1e-12"]),
])
def test_a_solve_stopped_by_a_badly_scaled_right_hand_side_fails(tmp_path, nprocs, edits):
    (tmp_path / "case.toml").write_text(CASE)
    args = ["case.toml", "--quiet", *[a for e in edits for a in ("--set", e)]]
    proc = run_solver(nprocs, args, cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 3 and len(errors) == 1 and "the system is badly scaled" in errors[0], proc.stderr


@pytest.mark.parametrize("nprocs, k", [(1, "1e-30*(1+T)"), (1, "1e-100*(1+T)"), (3, "1e-100*(1+T)")])
def test_a_nonlinear_solve_judged_on_round_off_of_an_exchange_fails(tmp_path, nprocs, k):
    """k(T) 1e30 times below h: the first residual is round-off of the convection rows, and Newton met
    nonlinear.rtol of it with the conduction unsolved: the steady plate "completed" at 18.09 C inside,
    below both its 100 C side and its 20 C air, with exit 0. The corrections still due are checked."""
    (tmp_path / "case.toml").write_text(CASE)
    args = ["case.toml", "--quiet", "--set", "time.scheme=\"steady\"", "--set", f"material.k=\"{k}\""]
    proc = run_solver(nprocs, args, cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 3 and len(errors) == 1 and "badly scaled" in errors[0], proc.stderr
    assert "nonlinear.rtol" in errors[0], errors[0]


def test_a_large_but_solvable_scale_runs(tmp_path):
    """h = 1e13 (a Biot number of 3e10) is still solved: the plate warms from the left."""
    (tmp_path / "case.toml").write_text(CASE)
    run_solver(1, ["case.toml", "--quiet", "--set", "boundary.right.h=1e13"], cwd=tmp_path)
    with h5py.File(tmp_path / "outputs" / "case" / "case.h5", "r") as f:
        last = f["fields/temperature"][sorted(f["fields/temperature"])[-1]][()]
    assert np.max(last) == pytest.approx(100.0) and np.sort(last)[len(last) // 2] > 20.0 + 1e-6


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_steady_body_whose_energy_overflows_still_balances_its_flows(tmp_path, nprocs):
    """A cube of side 1e103 m holds more than 1e308 J: the steady balance, which has no storage,
    subtracted its energy from itself (inf - inf), printed "relative imbalance nan" and exited 0 with
    a mean of NaN in ``info``. Its heat flows, 3e105 W in and out, balance."""
    (tmp_path / "case.toml").write_text('[mesh]\ntype = "box"\ncell = "tetrahedron"\nlengths = [1e103, 1e103, 1e103]\n'
                                        'nx = 3\nny = 3\nnz = 3\n[material]\nk = 3.0\nrho = 1.0\nc = 1.0\n'
                                        '[boundary.left]\ntype = "dirichlet"\nvalue = 0.0\n[boundary.right]\n'
                                        'type = "dirichlet"\nvalue = 100.0\n[time]\nscheme = "steady"\n')
    run_solver(nprocs, ["case.toml", "--quiet"], cwd=tmp_path)
    with h5py.File(tmp_path / "outputs" / "case" / "case.h5", "r") as f:
        assert f.attrs["balance_relative_imbalance"] < 1e-12
        assert f.attrs["balance_heat_in_right"] == pytest.approx(3e105, rel=1e-9)
    info = run_solver(1, ["info", "outputs/case/case.h5"], cwd=tmp_path).stdout
    assert "max 100, mean 50" in info, info


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_steady_source_that_cancels_over_the_body_balances_on_its_magnitude(tmp_path, nprocs):
    """f = 1000 sin(2 pi x) cos(pi y) brings in 0 W net: the balance's imbalance, 7e-12 W of a
    solve to rtol, was judged against flows of 2e-15 W and refused (exit 3, relative imbalance 1).
    Its scale is the source's magnitude, sum_i |F_i|, about 400 W."""
    (tmp_path / "case.toml").write_text('[mesh]\ncell = "quadrilateral"\nnx = 40\nny = 40\n[material]\nk = 1.0\n'
                                        'rho = 1.0\nc = 1.0\n[source]\nf = "1000*sin(2*pi*x)*cos(pi*y)"\n'
                                        '[boundary.left]\ntype = "dirichlet"\nvalue = 0.0\n[boundary.right]\n'
                                        'type = "dirichlet"\nvalue = 0.0\n[time]\nscheme = "steady"\n[solver]\n'
                                        'preconditioner = "amg"\n')
    run_solver(nprocs, ["case.toml", "--quiet"], cwd=tmp_path)
    with h5py.File(tmp_path / "outputs" / "case" / "case.h5", "r") as f:
        assert f.attrs["balance_relative_imbalance"] < 1e-10
        assert abs(f.attrs["balance_heat_in_source"]) < 1e-10


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_steady_body_at_its_ambient_temperature_balances_on_its_exchanges(tmp_path, nprocs):
    """A body convecting and radiating to 300 C with nothing else has its ambient temperature: its
    flows are round-off (1e-12 W), and the balance printed a relative imbalance of 1.00. The
    exchanges' magnitude, h (|T_inf| + |u|) and eps sigma (T_inf^4 + u^4), scales their round-off."""
    (tmp_path / "case.toml").write_text('temperature_unit = "C"\n[mesh]\nnx = 10\nny = 5\n[material]\nk = 45.0\n'
                                        'rho = 1.0\nc = 1.0\n[boundary.right]\ntype = "robin"\nh = 25.0\n'
                                        'T_inf = 300.0\n[boundary.top]\ntype = "radiation"\nepsilon = 0.5\n'
                                        'T_inf = 300.0\n[time]\nscheme = "steady"\n')
    out = run_solver(nprocs, ["case.toml"], cwd=tmp_path).stdout
    with h5py.File(tmp_path / "outputs" / "case" / "case.h5", "r") as f:
        assert f.attrs["balance_relative_imbalance"] < 1e-4, out
        assert abs(f.attrs["balance_heat_in_right"]) < 1e-8
        assert np.allclose(f["fields/temperature"][sorted(f["fields/temperature"])[-1]][()], 300.0)



@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_steady_body_held_at_one_temperature_shows_no_flows_on_any_rank_count(tmp_path, nprocs):
    """One side held at 0 C, from 20 C: the body ends at 0 C, its reactions round-off of the 20 C the
    solve started from. One rank printed left +8.79e-13 W and a relative imbalance of 1.00, three
    ranks none and 0.00: flows that are all round-off of the conduction are shown as none."""
    (tmp_path / "case.toml").write_text(CASE.split("[boundary.right]")[0] + '[time]\nscheme = "steady"\n')
    out = run_solver(nprocs, ["case.toml", "--set", "boundary.left.value=0"], cwd=tmp_path).stdout
    assert "heat balance: heat flows in (W): none; relative imbalance 0.00e+00" in out, out
    with h5py.File(tmp_path / "outputs" / "case" / "case.h5", "r") as f:
        assert f.attrs["balance_heat_in_left"] == 0.0 and f.attrs["balance_relative_imbalance"] == 0.0


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_tiny_steady_flow_that_balances_is_shown_on_any_rank_count(tmp_path, nprocs):
    """Two sides held at 20 C and 20.00000001 C pass 1e-8 W through the unit square: a fixed cut of
    1e-9 of the conduction of 20 C printed "heat flows in (W): none". Flows that balance each other
    are shown, to the solve's accuracy."""
    (tmp_path / "case.toml").write_text('[mesh]\nnx = 8\nny = 8\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n'
                                        '[initial]\ntemperature = 0.0\n[boundary.left]\ntype = "dirichlet"\n'
                                        'value = 20.0\n[boundary.right]\ntype = "dirichlet"\nvalue = 20.00000001\n'
                                        '[time]\nscheme = "steady"\n')
    out = run_solver(nprocs, ["case.toml"], cwd=tmp_path).stdout
    assert "heat flows in (W): none" not in out, out
    with h5py.File(tmp_path / "outputs" / "case" / "case.h5", "r") as f:
        assert f.attrs["balance_heat_in_left"] == pytest.approx(-1e-8, rel=1e-4)
        assert f.attrs["balance_heat_in_right"] == pytest.approx(1e-8, rel=1e-4)


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_steady_body_cooled_to_its_ambient_shows_no_flows_on_any_rank_count(tmp_path, nprocs):
    """Convection to 0 C on every side, from 100 C: the body ends at 0 C, its exchanges round-off of
    the 100 C the solve started from. One rank printed four flows of -5e-11 W and a relative
    imbalance of 1.00, three ranks none and 0.00: the exchanges' magnitude counts the initial
    temperature, as the conduction's does."""
    sides = "".join(f'[boundary.{s}]\ntype = "robin"\nh = 100.0\nT_inf = 0.0\n' for s in
                    ("left", "right", "bottom", "top"))
    (tmp_path / "case.toml").write_text('[mesh]\nnx = 4\nny = 4\nlengths = [0.01, 0.01]\n[material]\nk = 1000.0\n'
                                        'rho = 1.0\nc = 1.0\n[initial]\ntemperature = 100.0\n' + sides +
                                        '[time]\nscheme = "steady"\n')
    out = run_solver(nprocs, ["case.toml"], cwd=tmp_path).stdout
    assert "heat balance: heat flows in (W): none; relative imbalance 0.00e+00" in out, out
    with h5py.File(tmp_path / "outputs" / "case" / "case.h5", "r") as f:
        assert f.attrs["balance_heat_in_left"] == 0.0 and f.attrs["balance_relative_imbalance"] == 0.0

def test_a_balance_lost_in_round_off_under_a_source_that_cancels_still_fails(tmp_path):
    """k = 1e15 with a source 1.5e7 sin(2 pi x) + 1: judged on the source's magnitude alone, the
    5.4 kW imbalance (left -243284 W, right +237908 W for 238732 W each) passed with exit 0."""
    (tmp_path / "case.toml").write_text('[mesh]\nnx = 40\nny = 4\nlengths = [1.0, 0.1]\n[material]\nk = 1e15\n'
                                        'rho = 1.0\nc = 1.0\n[source]\nf = "1.5e7*sin(2*pi*x) + 1"\n'
                                        '[boundary.left]\ntype = "dirichlet"\nvalue = 1000.0\n[boundary.right]\n'
                                        'type = "dirichlet"\nvalue = 1000.0\n[time]\nscheme = "steady"\n')
    proc = run_solver(1, ["case.toml", "--quiet"], cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 3 and len(errors) == 1 and "the heat balance does not close" in errors[0], proc.stderr


@pytest.mark.parametrize("nprocs, edits, unit", [
    (1, ["material.k=1e30"], "J"),
    (3, ["material.k=1e30"], "J"),
    (1, ["time.scheme=\"steady\"", "material.k=1e15"], "W"),
    (2, ["time.scheme=\"steady\"", "boundary.right.h=1e17"], "W"),  # and a source, no dirichlet side
])
def test_a_balance_lost_in_round_off_fails(tmp_path, nprocs, edits, unit):
    """A conductivity 1e25 times steel's: the Dirichlet reactions K u are round-off, and the run
    reported 2e18 J through the left side against 1e4 J of convection, with exit 0. Exit 3, one
    line; a balance of round-off alone (no heat flows at all) still completes."""
    exchange = "boundary.right.h=1e17" in edits  # no dirichlet side: the exchange's heat is named, not its
    (tmp_path / "case.toml").write_text(CASE.replace('[boundary.left]\ntype = "dirichlet"\nvalue = 100.0',
                                                     "[source]\nf = 1e4") if exchange else CASE)
    args = ["case.toml", "--quiet", *[a for e in edits for a in ("--set", e)]]
    proc = run_solver(nprocs, args, cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 3 and len(errors) == 1 and "the heat balance does not close" in errors[0], proc.stderr
    assert f" {unit} against " in errors[0]
    assert ("the heat exchanged through the boundaries" in errors[0]) == exchange, errors
    if nprocs == 1 and unit == "J":
        still = ["--set", "boundary.left.value=20.0", "--overwrite"]  # nothing flows: 0 +- round-off
        assert run_solver(1, ["case.toml", "--quiet", *still], cwd=tmp_path, check=False).returncode == 0


@pytest.mark.parametrize("nprocs, edits, words", [
    (3, [], "time.dt = 5 moves no temperature"),
    (1, ["source.f=1000.0"], "but the steps changed no temperature (the run's energy change of +1.84e+21 J"),
    (3, ['material.rho="1e20*(1+1e-3*T)"'], "time.dt = 5 moves no temperature"),  # of T: completed with exit 0
    (1, ["material.rho=1.0", "material.k=1e-30", "boundary.right.h=1e-30"],
     "material.k and boundary.right.h far too small or material.rho"),  # (it blamed rho and c alone)
])
def test_a_capacity_so_large_that_no_temperature_moves_is_refused(tmp_path, nprocs, edits, words):
    """rho = 1e20: the heat through the left side (7.7e7 J) moved no temperature within the solver's
    tolerance, and the run completed with exit 0, an energy change of 0 J and a relative imbalance
    of 1 (or "heat in: none" with a Dirichlet boundary alone). Refused before the first step when
    conduction and convection cannot move a temperature in a step, and after the run when heat
    flowed (a source) but no temperature moved: exit 2, one line."""
    (tmp_path / "case.toml").write_text(CASE)
    args = ["case.toml", "--quiet", "--set", "material.rho=1e20", *[a for e in edits for a in ("--set", e)]]
    proc = run_solver(nprocs, args, cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and words in errors[0], proc.stderr


@pytest.mark.parametrize("rho, frozen", [(1e20, True), (1000.0, False)])
def test_a_field_frozen_under_flows_that_cancel_is_refused_and_a_moving_one_is_not(tmp_path, rho, frozen):
    """A flux sin(2 pi t / 80 s) over two periods: with rho = 1e20 no temperature moves in any step
    while 3e4 J go in and out (refused, exit 2); with steel's rho the field moves and comes back,
    its net heat round-off (it was taken for frozen when its energy came back to the bit)."""
    (tmp_path / "case.toml").write_text(
        f'[mesh]\ntype = "rectangle"\nnx = 8\nny = 3\nlengths = [0.1, 0.02]\n[material]\nk = 10.0\nrho = {rho}\n'
        'c = 500.0\n[initial]\ntemperature = 500.0\n[boundary.left]\ntype = "neumann"\n'
        'flux = "4e4 * sin(2 * pi * t / 80)"\n[time]\nscheme = "crank-nicolson"\ndt = 0.5\nt_end = 160.0\n')
    proc = run_solver(1, ["case.toml", "--quiet"], cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    if frozen:
        assert proc.returncode == 2 and len(errors) == 1 and "flowed in and out over the run but the steps " \
            "changed no temperature: the heat capacity" in errors[0], proc.stderr
    else:
        assert proc.returncode == 0 and not errors, proc.stderr



# P2 bodies held at their ambient temperature: exchanging with air at 20 C (robin), radiating to 300 K
AMBIENT_EXCHANGES = {
    "robin": '[mesh]\nnx = 4\nny = 2\ncell = "{cell}"\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n[initial]\n'
             'temperature = 20.0\n[boundary.left]\ntype = "dirichlet"\nvalue = 20.0\n[boundary.right]\ntype = "robin"\n'
             'h = 1.0\nT_inf = 20.0\n[time]\ndt = 0.1\nt_end = 1.0\n',
    "radiation": 'temperature_unit = "K"\n[mesh]\nnx = 4\nny = 3\ncell = "{cell}"\nlengths = [0.2, 0.1]\n[material]\n'
                 'k = 45.0\nrho = 7850.0\nc = 460.0\n[initial]\ntemperature = 300.0\n[boundary.left]\n'
                 'type = "dirichlet"\nvalue = 300.0\n[boundary.right]\ntype = "radiation"\nepsilon = 0.5\n'
                 'T_inf = 300.0\n[time]\ndt = 5.0\nt_end = 20.0\n',
}


@pytest.mark.parametrize("nprocs, cell, exchange", [(1, "quadrilateral", "robin"), (1, "triangle", "robin"),
                                                    (3, "quadrilateral", "robin"), (1, "triangle", "radiation"),
                                                    (3, "triangle", "radiation")])
def test_a_quadratic_body_at_its_ambient_temperature_completes(tmp_path, nprocs, cell, exchange):
    """P2 cells held at their ambient temperature: the exchange's round-off (1.9e-14 J), or with
    radiation the Dirichlet reactions' (2e-10 J: a nonlinear problem has no conductivity matrix to
    scale it), was taken for heat that flowed while no temperature moved (exit 2, "the heat capacity
    is so large"). An exchange is judged against round-off of its own magnitude, a nonlinear
    problem's reactions against the flows of its Jacobian."""
    (tmp_path / "case.toml").write_text(AMBIENT_EXCHANGES[exchange].format(cell=cell) + "[element]\ndegree = 2\n")
    proc = run_solver(nprocs, ["case.toml", "--quiet"], cwd=tmp_path, check=False, timeout=60)
    assert proc.returncode == 0 and "error:" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("nprocs", [1, 3])
def test_steps_frozen_by_loose_tolerances_name_them(tmp_path, nprocs):
    """solver.rtol = 0.5 with no preconditioner: every solve met its tolerance before any iteration,
    and the message blamed the heat capacity and said that no temperature changed beside an energy
    change of +72220 J (the Dirichlet value's, at the start). Each step's heat is 0.47 of the energy
    held: the tolerances are named, and the start's energy change is told apart."""
    (tmp_path / "case.toml").write_text(CASE.split("[boundary.right]")[0] + "[time]\ndt = 10.0\nt_end = 100.0\n")
    sets = ["mesh.nx=40", "mesh.ny=20", "solver.rtol=0.5", "solver.preconditioner=none", "solver.atol=1e9"]
    proc = run_solver(nprocs, ["case.toml", "--quiet", *[a for e in sets for a in ("--set", e)]], cwd=tmp_path,
                      check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "but the steps changed no temperature (the run's energy change of +72220 J came at the start" in errors[0]
    assert ("the solves met their tolerances before any iteration (solver.rtol = 0.5, solver.atol = 1e+09); tighten "
            "them") in errors[0]
    assert "heat capacity" not in errors[0]
    # a loose relative tolerance alone: the steps move a little, and the balance that cannot close names it
    proc = run_solver(nprocs, ["case.toml", "--quiet", "--overwrite", *[a for e in sets[:-1] for a in ("--set", e)]],
                      cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "the linear solves stop at solver.rtol = 0.5, too loose for the temperatures and flows" in errors[0]


def test_a_nonlinear_balance_that_does_not_close_names_nonlinear_atol(tmp_path):
    """k = 45 + 0.5 T on a body 0.2 by 0.1 mm: nonlinear.atol = 1 (J per node) is above the residual
    at the start of every step, which ended unsolved; the message named nonlinear.rtol alone."""
    (tmp_path / "case.toml").write_text(CASE.split("[boundary.right]")[0] + "[time]\ndt = 10.0\nt_end = 100.0\n")
    sets = ["material.k=\"45 + 0.5*T\"", "mesh.lengths=[0.0002, 0.0001]", "mesh.nx=8", "mesh.ny=4",
            "nonlinear.atol=1"]
    proc = run_solver(1, ["case.toml", "--quiet", *[a for e in sets for a in ("--set", e)]], cwd=tmp_path,
                      check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 3 and len(errors) == 1 and "or nonlinear.atol = 1: it ends" in errors[0], proc.stderr

@pytest.mark.parametrize("nprocs, preconditioner", [(1, "bjacobi"), (2, "ilu")])
def test_a_conductivity_that_underflows_is_a_singular_system_not_an_internal_error(tmp_path, nprocs, preconditioner):
    """k(T) = 1e-310, below the smallest normal double (a number is refused at load): SuperLU's
    "Factor is exactly singular" was an internal error (exit 1) on some ranks only. Every rank now
    learns of it: exit 3, one line."""
    (tmp_path / "case.toml").write_text(CASE)
    args = ["case.toml", "--quiet", "--set", "time.scheme=\"steady\"", "--set", "material.k=\"1e-300 * 1e-10 + 0 * T\"",
            "--set", f"solver.preconditioner={preconditioner}"]
    proc = run_solver(nprocs, args, cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 3 and len(errors) == 1, proc.stderr
    assert "factorisation met a zero pivot: the linear system is singular in double precision" in errors[0]


def test_an_explicit_step_limit_of_zero_names_the_scales_not_a_step_to_take(tmp_path):
    """rho c = 1e-400 underflows: the limit was "0 s" and the advice "use time.dt <= 0"."""
    (tmp_path / "case.toml").write_text(CASE)
    args = ["case.toml", "--quiet", "--set", "material.rho=1e-200", "--set", "material.c=1e-200", "--set",
            "time.scheme=\"explicit-euler\"", "--set", "time.dt=1e-300", "--set", "time.t_end=2e-300"]
    proc = run_solver(1, args, cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "explicit-euler has no stable step here" in errors[0], errors
    assert "time.dt <=" not in errors[0]


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_steady_nonlinear_residual_whose_squares_underflow_is_refused_not_converged(tmp_path, nprocs):
    """k(T) = 1e-170 (1 + T/100): every residual entry about 1e-168, their squares 0, so the norm was
    0 and Newton "converged" before its first iteration, leaving the interior at its initial
    temperature (exit 0, relative imbalance 1). A k of 1e-100 still solves."""
    (tmp_path / "case.toml").write_text(CASE)
    base = ["case.toml", "--quiet", "--set", "time.scheme=\"steady\"", "--set",
            "boundary.right={type=\"dirichlet\", value=0.0}"]
    proc = run_solver(nprocs, base + ["--set", "material.k=\"1e-170 * (1 + T / 100)\""], cwd=tmp_path, check=False,
                      timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 3 and len(errors) == 1 and "so small that their squares underflow" in errors[0], \
        proc.stderr
    run_solver(nprocs, base + ["--set", "material.k=\"1e-100 * (1 + T / 100)\"", "--overwrite"], cwd=tmp_path,
               timeout=60)


def test_a_transient_field_that_decays_to_zero_is_not_taken_for_a_scale_problem(tmp_path):
    """A body of k(T) cooled to 0 C on every side: its temperatures, and so its residuals, fall below
    1e-150 of their own accord after about 120 steps, where the steady solve's underflow check
    (which a transient step does not take) stopped a sound run (exit 3)."""
    (tmp_path / "case.toml").write_text(CASE)
    cold = "={type=\"dirichlet\", value=0.0}"
    args = ["case.toml", "--quiet", "--set", "material.k=\"1 + T / 100\"", "--set", "material.rho=1.0", "--set",
            "material.c=1.0", "--set", "mesh.nx=8", "--set", "mesh.ny=4", "--set", "time.dt=0.01", "--set",
            "time.t_end=1.5", "--set", "output.every=150"]
    args += [item for side in ("left", "right", "top", "bottom") for item in ("--set", f"boundary.{side}{cold}")]
    run_solver(1, args, cwd=tmp_path, timeout=120)
    with h5py.File(tmp_path / "outputs" / "case" / "case.h5", "r") as f:
        assert f.attrs["status"] == "complete" and np.abs(f["fields/temperature/000001"][()]).max() < 1e-150


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_restart_of_a_field_decayed_to_round_off_balances_on_what_was_booked(tmp_path, nprocs):
    """A body cooled to 0 C on every side and restarted once its field is 1e-29 C: the restart's
    steps move 1e-29 J, which the 150 J booked through each side before it cannot hold; judged
    against the 1e-40 J left, the balance "did not close" (exit 3). The round-off of the booked
    totals counts; a sound restart completes."""
    (tmp_path / "case.toml").write_text(CASE)
    cold = "={type=\"dirichlet\", value=0.0}"
    args = ["case.toml", "--quiet", "--set", "material.rho=1.0", "--set", "material.c=1.0", "--set", "material.k=1.0",
            "--set", "mesh.nx=8", "--set", "mesh.ny=4", "--set", "time.dt=1.0", "--set", "time.t_end=30"]
    args += [item for side in ("left", "right") for item in ("--set", f"boundary.{side}{cold}")]
    run_solver(nprocs, args, cwd=tmp_path, timeout=60)
    run_solver(nprocs, args + ["--set", "time.t_end=40", "--restart", "latest"], cwd=tmp_path, timeout=60)
    with h5py.File(tmp_path / "outputs" / "case" / "case.h5", "r") as f:
        fields = f["fields/temperature"]
        assert f.attrs["status"] == "complete" and 0 < np.abs(fields[sorted(fields)[-1]][()]).max() < 1e-30


RADIATING = """temperature_unit = "K"
[mesh]
nx = 4
ny = 2
[material]
k = 1.0
rho = 1.0
c = 1.0
[initial]
temperature = 300.0
[boundary.right]
type = "radiation"
epsilon = 0.5
T_inf = 300.0
[run]
temperature_range = [0.0, 1e300]
[time]
dt = 0.1
t_end = 0.2
"""


@pytest.mark.parametrize("nprocs, T_inf, status, start", [
    (1, "1e70", 2, "error: case.toml: boundary.right.T_inf = 1e+70 at "),
    (3, "1e70", 2, "error: case.toml: boundary.right.T_inf = 1e+70 at "),
    (1, '"300 + 1e90 * t"', 3, "error: case.toml: step 1 (t = 0.1): boundary.right.T_inf = 1e+89 at "),
], ids=["np1", "np3", "of-t"])
def test_an_ambient_whose_radiation_overflows_is_named(tmp_path, nprocs, T_inf, status, start):
    """eps sigma T_inf^4 beyond double precision: the nonlinear solve failed with residuals of inf,
    after its step was retried in 64 parts, and named no key; its share of the system is checked as
    a load's: exit 2 before anything is written, exit 3 at the step for a T_inf of t."""
    (tmp_path / "case.toml").write_text(RADIATING.replace("T_inf = 300.0", f"T_inf = {T_inf}"))
    proc = run_solver(nprocs, ["case.toml", "--quiet"], cwd=tmp_path, check=False, timeout=60)
    error = one_error(proc, status)
    assert error.startswith(start) and "so large that the system of the step overflows" in error, error
    if status == 2:
        assert not list(tmp_path.glob("outputs/case/*.h5"))


THIN = """[mesh]
type = "box"
cell = "tetrahedron"
nx = 3
ny = 3
nz = 1
lengths = [1.0, 1.0, 1e-5]
[material]
k = 2.0
rho = 1.0
c = 1.0
[boundary.left]
type = "dirichlet"
value = 10.0
[boundary.right]
type = "dirichlet"
value = 30.0
[time]
scheme = "steady"
"""


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_thin_plate_held_at_two_temperatures_is_solved(tmp_path, nprocs):
    """A plate 1e-5 m thick: the Dirichlet rows' diag * g, of the stiffness across the thickness,
    made ||b|| 1e9 times the free rows' right-hand side, and the solve stopped before its first
    iteration with the plate's inside at 0 C, exit 0. ||b|| is that of the free rows."""
    (tmp_path / "case.toml").write_text(THIN)
    run_solver(nprocs, ["case.toml", "--quiet"], cwd=tmp_path, timeout=60)
    with h5py.File(tmp_path / "outputs" / "case" / "case.h5", "r") as f:
        x = f["mesh/geometry"][:, 0]
        u = f["fields/temperature/000000"][...].ravel()
    assert np.abs(u - (10.0 + 20.0 * x)).max() < 1e-5  # (round-off of a 1e9 condition number: 2.6e-6)


STRIP = """[mesh]
type = "rectangle"
cell = "quadrilateral"
lengths = [1.0, 1e-7]
nx = 50
ny = 2
[element]
degree = 2
[material]
k = 1.0
rho = 1.0
c = 1.0
[boundary.left]
type = "dirichlet"
value = 0.0
[boundary.right]
type = "dirichlet"
value = 1.0
[time]
scheme = "steady"
"""


@pytest.mark.parametrize("nprocs, edits", [(1, []), (1, ["mesh.lengths=[1.0, 1e-6]"]), (3, ["element.degree=1"])])
def test_a_steady_strip_too_thin_for_double_precision_is_refused(tmp_path, nprocs, edits):
    """A strip 1 m by 1e-7 m (cells of aspect ratio 4e5): the entries of the conduction across it, 1e11
    times those along it, hold the latter to round-off, and the steady solve "converged" 0.5% off the
    linear profile (1e-6 m: 4e-5 off), exit 0. The round-off's effect is estimated: exit 3, one line."""
    (tmp_path / "case.toml").write_text(STRIP)
    args = ["case.toml", "--quiet", *[a for e in edits for a in ("--set", e)]]
    error = one_error(run_solver(nprocs, args, cwd=tmp_path, check=False, timeout=60), 3)
    assert "the steady solve: the temperatures are lost in round-off" in error, error


def test_a_thin_strip_within_double_precision_matches_its_linear_profile(tmp_path):
    """A strip 1 m by 1e-5 m (cells of aspect ratio 4e3) still solves: within 1e-6 of the profile."""
    (tmp_path / "case.toml").write_text(STRIP)
    run_solver(1, ["case.toml", "--quiet", "--set", "mesh.lengths=[1.0, 1e-5]"], cwd=tmp_path, timeout=60)
    with h5py.File(tmp_path / "outputs" / "case" / "case.h5", "r") as f:
        x = f["mesh/geometry"][:, 0]
        u = f["fields/temperature/000000"][...].ravel()
    assert np.abs(u - x).max() < 1e-6
