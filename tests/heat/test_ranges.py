"""Values known only at run time are range-checked: an expression of T, t or x, y, z given for a key
with a range (k, rho, c, epsilon, h; regions too) is checked wherever it is evaluated, against the
range of the key's number. Out of range during the run: exit 3 on every rank together, one line
naming the case file, the step, the key, the value, the time and the point, and the results file
marked failed; out of range at the initial state (or a constant out of range): exit 2."""

import numpy as np
import pytest
from conftest import run_script
from mpi4py import MPI

from solver.case.load import load_case
from solver.case.schema import BOUNDARY_SCHEMA, SCHEMA
from solver.errors import CaseError, RangeError
from solver.heat.ranges import Bounds, RangeMonitor, Violation, ranged_expressions
from solver.heat.simulation import Simulation

CASE = """
temperature_unit = "K"
[mesh]
nx = 2
ny = 2
[material]
k = "1 + T"
rho = 1.0
c = "2 - T"
[boundary.left]
type = "robin"
h = "1 - t"
T_inf = 300.0
[boundary.right]
type = "radiation"
epsilon = "T / 1000"
T_inf = 300.0
[region.a]
x = [0.0, 0.5]
k = ["1.0", "3 - x"]
[time]
dt = 0.1
t_end = 0.2
"""


def test_bounds_find_the_first_value_outside_nan_included():
    unit = Bounds(low=0.0, high=1.0)
    assert unit.first_outside(np.array([0.0, 0.5, 1.0])) is None
    assert unit.first_outside(np.array([[0.5, 0.2], [1.5, -1.0]])) == 2
    assert unit.first_outside(np.array([0.5, np.nan])) == 1
    assert unit.first_outside(np.empty(0)) is None
    positive = Bounds(positive=True)
    assert positive.first_outside(np.array([1.0, 0.0])) == 1 and positive.first_outside(np.array([1e-300])) is None
    assert positive.first_outside(np.array([1.0, np.inf])) == 1 and unit.first_outside(np.array([-np.inf])) == 0
    assert (str(unit), str(positive), str(Bounds(low=0.0))) == ("in [0, 1]", "finite and > 0", "finite and >= 0")


def test_every_ranged_expression_takes_its_keys_range():
    case = load_case(CASE, "c.toml")
    found = {name: bounds for _, name, bounds in ranged_expressions(case.physics)}
    assert found == {"material.k": Bounds.of(SCHEMA["material"]["k"]), "material.c": Bounds(positive=True),
                     "region.a.k (ky)": Bounds(positive=True), "boundary.left.h": Bounds.of(BOUNDARY_SCHEMA["h"]),
                     "boundary.right.epsilon": Bounds(low=0.0, high=1.0)}


def test_the_monitor_keeps_the_first_violation_with_its_point_and_temperature():
    case = load_case(CASE, "c.toml")
    monitor = RangeMonitor.of(case.physics, MPI.COMM_SELF)
    eps = case.physics.boundaries[1].epsilon
    points = np.array([[[1.0, 0.2], [1.0, 0.4]], [[1.0, 0.6], [1.0, 0.8]]])
    T = np.array([[500.0, 900.0], [1100.0, 1200.0]])
    monitor.check(eps, eps(points, 0.1, T), 0.1, points, T)
    monitor.check(case.physics.material.k, np.array([-1.0]), 0.1, np.zeros((1, 2)))  # after the first: ignored
    monitor.check(1.0, np.array([-1.0]), 0.1, np.zeros((1, 2)))  # not a ranged expression
    v = monitor.violation
    assert (v.key, v.value, v.point, v.t, v.T) == ("boundary.right.epsilon", 1.1, (1.0, 0.6), 0.1, 1100.0)
    with pytest.raises(RangeError, match=r"^step 2: boundary.right.epsilon = 1.1 at \(1, 0.6\), t = 0.1, "
                                        r"T = 1100, but it must be in \[0, 1\]") as error:
        monitor.check_collectively("step 2")
    assert error.value.exit_status == 3 and monitor.violation is None



def test_a_long_expression_out_of_range_is_shown_as_an_excerpt():
    """A 1,900-character expression out of range was echoed nearly whole in the one error line."""
    text = "1 - t + " + " + ".join(["0*x"] * 315)
    line = Violation("material.k", -1.0, (0.5, 0.5), Bounds(positive=True), text, 2.0).describe()
    assert "'1 - t + 0*x" in line and "characters)" in line and len(line) < 400, line
    assert "keep its expression '1 - t' in range" in Violation("material.k", -1.0, (0.5,), Bounds(positive=True),
                                                               "1 - t", 2.0).describe()

@pytest.mark.parametrize("h, message", [
    ("-5.0", "boundary.left.h must be >= 0.0, got -5.0"),
    ("\"2 - 3\"", "boundary.left.h must be >= 0.0, got -1.0"),
])
def test_a_constant_out_of_range_is_refused_at_load(h, message):
    with pytest.raises(CaseError, match=message):
        load_case(CASE.replace('h = "1 - t"', f"h = {h}"), "c.toml")
    load_case(CASE.replace('h = "1 - t"', "h = \"-5 + 10 * x\""), "c.toml")  # checked where evaluated


RUN_TIME = "but it must be"
EXPECTED = {  # status, what the one error line holds, how the results file ends
    "epsilon_above_one": (3, "step 4 (t = 0.4): boundary.right.epsilon = 1.", "failed"),
    "epsilon_above_one_adaptive": (3, "boundary.right.epsilon = 1.", "failed"),  # not retried with a smaller dt
    "epsilon_clamped": (0, None, "complete"),
    "epsilon_above_one_at_start": (2, "case.toml: at the initial state: boundary.right.epsilon = 1.1 at (1, ", None),
    "k_negative_triangles": (3, "step 3 (t = 0.3): material.k = -0.2 at (", "failed"),
    "ky_negative": (3, "step 3 (t = 0.3): material.k (ky) = -0.2 at (", "failed"),
    "region_k_negative": (3, "step 3 (t = 0.3): region.a.k = -0.2 at (", "failed"),
    "c_negative_lumped": (3, "step 3 (t = 0.3): material.c = -0.2 at (", "failed"),
    "k_of_t_negative": (3, "step 3 (t = 0.3): material.k = -0.2 at (", "failed"),
    "k_negative_in_a_corner": (3, "step 3 (t = 0.3): material.k = -0.2 at (0.96", "failed"),
    "h_negative_later": (3, "step 2 (t = 0.2): boundary.right.h = -2 at (1, ", "failed"),
    "h_negative_later_adaptive": (3, "boundary.right.h = -", "failed"),
    "h_far_negative": (3, "step 1 (t = 0.1): boundary.right.h = -99990 at (", "failed"),  # was: "singular or ..."
}
ON_THREE_RANKS = ["epsilon_above_one", "epsilon_above_one_at_start", "k_negative_in_a_corner", "h_negative_later",
                  "h_far_negative"]


@pytest.mark.parametrize("nprocs", [1, 3])
def test_out_of_range_stops_every_rank_with_one_line(tmp_path, nprocs):
    names = list(EXPECTED) if nprocs == 1 else ON_THREE_RANKS
    result = run_script(nprocs, "range_checks.py", tmp_path, *names)
    for name in names:
        status, message, ending = EXPECTED[name]
        r = result[name]
        assert r["status"] == status and r["ending"] == ending, (name, r)
        if message is None:
            assert r["error"] == [], (name, r)
            continue
        assert len(r["error"]) == 1 and message in r["error"][0] and RUN_TIME in r["error"][0], (name, r)
        if status == 3:  # during the run: the case file, then the step, as every error of a step
            assert r["error"][0].startswith(f"error: {tmp_path / 'case.toml'}: step "), (name, r)


@pytest.mark.parametrize("k", ['"exp(T * 100)"', '"1 / (T - 20)"'])
def test_a_property_infinite_at_the_initial_state_is_refused_at_load(tmp_path, k):
    """k = inf at the initial 20 C: the Newton solve's residual was not finite (exit 3, "did not
    converge", Python's warnings printed); exit 2 naming the key and the value."""
    case = load_case(f'[mesh]\nnx = 4\nny = 2\n[material]\nk = {k}\nrho = 1.0\nc = 1.0\n[initial]\ntemperature = 20.0\n'
                     '[boundary.left]\ntype = "dirichlet"\nvalue = 20.0\n[time]\ndt = 1.0\nt_end = 1.0\n', "case.toml")
    with pytest.raises(CaseError, match=r"at the initial state: material.k = inf .* must be finite and > 0"):
        Simulation(case)


def test_a_steady_solve_whose_pseudo_steps_stop_where_a_parameter_leaves_its_range_names_it(monkeypatch):
    """A steady state beyond an expression's range (epsilon = 0.5 + (T - 25)/50 on a heat sink
    that settles near 80 C): the pseudo-transient steps stopped where epsilon reaches 1, every
    longer one refused, and the final Newton's linear solve failed there: exit 3 named the linear
    solver. The range the pseudo-steps could not pass is named instead."""
    from solver.errors import ConvergenceError
    from solver.heat import nonlinear_stepping
    from solver.la import newton

    text = CASE.replace("dt = 0.1\nt_end = 0.2", 'scheme = "steady"')
    sim = Simulation(load_case(text, "case.toml"))
    solver = sim.stepper
    assert isinstance(solver, nonlinear_stepping.NonlinearSteadySolver)
    refusal = RangeError("the steady solve (pseudo-transient): boundary.right.epsilon = 1.0000001 at (1, 0.5), t = 0, "
                         "T = 1000, but it must be in [0, 1]")
    monkeypatch.setattr(newton, "solve", lambda *a, **k: newton.NonlinearReport("newton", refused=refusal))

    def linear_failure(*args, **kwargs):
        raise ConvergenceError("the steady solve: the linear solver did not converge in 2000 iterations")
    monkeypatch.setattr(nonlinear_stepping, "iterate", linear_failure)
    u = sim.u.copy()
    equations = nonlinear_stepping.StepEquations(sim.problem, solver.linear, np.zeros(sim.mesh.n_owned), 0.0, 0.0,
                                                 1.0, "the steady solve")
    with pytest.raises(RangeError, match=r"^the steady solve \(pseudo-transient\): boundary.right.epsilon = 1.0000001 "
                                         r".* \(the pseudo-transient steps toward the steady state could not go past"):
        solver._continuation(u, equations, 1.0)
