"""Adaptive time steps: the error constants, accuracy against a fine fixed-dt reference, tolerance
proportionality, outputs on the requested times, the heat balance, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from solver.case.load import load_case
from solver.errors import CaseError
from solver.heat.adaptive import milne_factor
from solver.heat.simulation import Simulation
from solver.heat.stepping import BACKWARD_EULER, bdf2, theta_method

# a heat pulse for ~2 s into one end of a strip, then a slow decay through its other end
PULSE = """
[mesh]
type = "rectangle"
cell = "quadrilateral"
nx = 20
ny = 1
lengths = [0.1, 0.005]

[material]
k = 50.0
rho = 7800.0
c = 500.0

[initial]
temperature = 20.0

[source]
f = "5e8 * exp(-((t - 1.0) / 0.4)**2) * where(x < 0.02, 1.0, 0.0)"

[boundary.right]
type = "robin"
h = 500.0
T_inf = 20.0

[time]
scheme = "bdf2"
dt = 1.0
t_end = 100.0

[solver]
preconditioner = "bjacobi"
rtol = 1e-13
"""


def run(sets, text=PULSE):
    sim = Simulation(load_case(text, "pulse.toml", sets))
    times = []
    while not sim.finished:
        sim.advance()
        times.append(sim.t)
    return sim, np.array(times)


def adaptive(tol, scheme="bdf2", extra=()):
    return run([f'time.scheme="{scheme}"', 'time.dt="adaptive"', f"time.tolerance={tol}", *extra])


@pytest.fixture(scope="module")
def reference():
    """BDF2 with fixed steps of 20 and 10 ms, extrapolated (Richardson, second order): within
    1e-7 of a 2 ms run, far below the errors tested (4e-5 and up), in 15,000 steps, not 50,000."""
    coarse, fine = (run([f"time.dt={dt}"])[0] for dt in (0.02, 0.01))
    u2h, uh = coarse.u[: coarse.mesh.n_owned], fine.u[: fine.mesh.n_owned]
    return uh + (uh - u2h) / 3.0


def weighted_error(u, ref):
    """The controller's norm with tolerance 1: max |e| / (1 + |T|)."""
    return float(np.max(np.abs(u - ref) / (1.0 + np.abs(ref))))


@pytest.mark.parametrize("scheme, ratio", [(BACKWARD_EULER, 1 / 3), (bdf2(1.0), 2 / 11), (theta_method(0.5), 1 / 13)])
def test_milne_factors_on_constant_steps(scheme, ratio):
    factor, order = milne_factor(scheme, 0.1, [0.1, 0.1], scheme.order)
    assert factor == pytest.approx(ratio, rel=1e-12)
    assert order == scheme.order + 1
    # the same on steps of 1e-200 s (dt^(p+1) underflowed: a ZeroDivisionError, exit 1)
    assert milne_factor(scheme, 1e-200, [1e-200, 1e-200], scheme.order)[0] == pytest.approx(ratio, rel=1e-12)


def test_milne_factor_of_variable_backward_euler():
    dt, h = 0.3, 0.1  # LTE = dt/(2 dt + h) (u - u^P) for the linear predictor
    assert milne_factor(BACKWARD_EULER, dt, [h], 1)[0] == pytest.approx(dt / (2 * dt + h), rel=1e-12)
    assert milne_factor(BACKWARD_EULER, dt, [], 0) == (1.0, 1)  # no history: the bound u - u0


def test_variable_bdf2_is_exact_for_quadratics():
    w = 2.5
    s = bdf2(w)  # steps 1 (previous) and w (this one): t = -1, 0, w
    y, dy = (lambda t: t * t), (lambda t: 2 * t)
    assert s.a[0] * y(w) + s.a[1] * y(0.0) + s.a[2] * y(-1.0) == pytest.approx(w * dy(w), rel=1e-13)
    assert bdf2(1.0).a == (1.5, -2.0, 0.5)


def test_adaptive_needs_five_times_fewer_steps_than_a_fixed_dt_for_the_same_error(reference):
    sim, _ = adaptive(1e-3)
    n = sim.step_index
    error = weighted_error(sim.u[: sim.mesh.n_owned], reference)
    fixed, _ = run([f"time.dt={100.0 / (5 * n)}"])
    fixed_error = weighted_error(fixed.u[: fixed.mesh.n_owned], reference)
    assert fixed_error > error, (n, error, fixed_error)


def test_global_error_follows_the_tolerance(reference):
    errors = []
    for tol in (1e-3, 1e-4, 1e-5):
        sim, _ = adaptive(tol)
        errors.append(weighted_error(sim.u[: sim.mesh.n_owned], reference))
        assert 0.1 * tol <= errors[-1] <= 10 * tol, (tol, errors)
    assert errors[0] > errors[1] > errors[2]


@pytest.mark.parametrize("scheme", ["backward-euler", "crank-nicolson", "bdf2"])
def test_outputs_land_on_the_requested_times_and_the_balance_closes(scheme):
    times = [0.37, 2.0, 13.3, 60.0]
    sim, stepped = adaptive(1e-3, scheme, [f"output.times={times}"])
    for t in times + [100.0]:
        assert np.min(np.abs(stepped - t)) <= 1e-12 * t, (t, scheme)
    assert stepped[-1] == 100.0
    assert sim.balance.relative < 1e-10
    c = sim.adaptive.controller
    assert c.accepted == sim.step_index


def test_the_fixed_dt_balance_of_bdf2_books_its_storage_lag():
    sim, _ = run(["time.dt=1.0"])  # the pulse within the first steps: a large lag, still closed
    assert abs(sim.balance.lag) > 1e-3 * abs(sim.balance.change)
    assert sim.balance.relative < 1e-10


def fail_once(monkeypatch, stepper_class, call: int, message: str) -> None:
    """Make the ``call``-th step of ``stepper_class`` raise a ConvergenceError (a failed solve)."""
    from solver.errors import ConvergenceError

    original, calls = stepper_class.step, {"n": 0}

    def failing(self, u, t0, step):
        calls["n"] += 1
        if calls["n"] == call:
            raise ConvergenceError(message)
        return original(self, u, t0, step)

    monkeypatch.setattr(stepper_class, "step", failing)


def test_a_failed_solve_cuts_the_step(monkeypatch):
    from solver.heat.stepping import ImplicitStepper

    fail_once(monkeypatch, ImplicitStepper, 3, "made to fail")
    sim, stepped = adaptive(1e-3)
    assert sim.adaptive.controller.failed_solves == 1 and stepped[-1] == 100.0


def test_dt_min_stops_with_the_error():
    with pytest.raises(Exception, match="time.dt_min") as stop:
        adaptive(1e-6, extra=["time.dt_min=1.0", "time.dt_initial=1.0"])
    assert "solver.rtol" not in str(stop.value)


def test_a_tolerance_near_the_solves_error_says_so_where_it_stops():
    """time.tolerance = 1e-13 against solves to solver.rtol = 1e-13: the estimate measures the
    solves' error at any step, and the stop at time.dt_min named only the step and a discontinuity."""
    with pytest.raises(Exception, match="time.dt_min") as stop:
        adaptive(1e-13, extra=["time.dt_min=1e-4"])
    assert "within 1000 times solver.rtol = 1e-13" in str(stop.value) and "tighten solver.rtol" in str(stop.value)


@pytest.mark.parametrize("sets, key", [
    (['time.dt="adaptive"', "time.dt_min=2.0", "time.dt_max=1.0"], "time.dt_min"),
    (['time.dt="adaptive"', "time.dt_max=1e-300"], "time.t_end / time.dt_max = 1e"),
    (['time.dt="adaptive"', "time.dt_max=9e-8"], "time.t_end / time.dt_max = 1.11e"),
    (['time.dt="adaptive"', "time.dt_min=1e-300"], "time.dt_min = 1e-300 s cannot advance t near time.t_end"),
    (['time.dt="adaptive"', "time.tolerance=0"], "time.tolerance"),
    (['time.dt="adaptive"', "time.tolerance=-1e-3"], "time.tolerance"),
    (['time.dt="adaptive"', "time.tolerance={relative=1e-3}"], "time.tolerance"),
    (['time.dt="adaptive"', "output.times=[1.0, 200.0]"], "output.times"),
    (['time.dt="adaptive"', "output.times=[2.0, 1.0]"], "output.times"),
    (['time.dt="adaptive"', "output.times=[0.0, 1.0]"], "output.times"),
    (['time.dt="adaptive"', "output.times=[1.0]", "output.every=2"], "output.every"),
    (["time.dt=1.0", "output.times=[2.5]"], "output.times"),
    (["time.dt=1.0", "time.tolerance=1e-3"], "time.tolerance"),
    (['time.dt="adaptive"', 'time.scheme="explicit-euler"'], "time.dt"),
])
def test_bad_adaptive_input_names_the_key(sets, key):
    with pytest.raises(CaseError, match=key.replace(".", r"\.")):
        load_case(PULSE, "pulse.toml", sets)


def test_interval_outputs_and_defaults():
    case = load_case(PULSE, "pulse.toml", ['time.dt="adaptive"', "output.interval=30.0"])
    assert case.output.times == (30.0, 60.0, 90.0, 100.0)
    a = case.time.adaptive
    assert (a.relative, a.absolute, a.dt_max) == (1e-3, 1e-3, 100.0)
    assert math.isclose(a.dt_initial, 1e-2) and math.isclose(a.dt_min, 1e-8)


# a slab melting under a hot boundary and radiating from the other: Newton in every step
MELTING = """
temperature_unit = "C"
[mesh]
type = "rectangle"
cell = "quadrilateral"
nx = 24
ny = 1
lengths = [0.05, 0.002]
[material]
k = "20.0 + 0.01 * T"
rho = 2700.0
c = 900.0
latent_heat = 4e5
solidus = 640.0
liquidus = 660.0
[initial]
temperature = 600.0
[boundary.left]
type = "dirichlet"
value = 700.0
[boundary.right]
type = "radiation"
epsilon = 0.8
T_inf = 20.0
[time]
scheme = "bdf2"
dt = "adaptive"
t_end = 60.0
tolerance = 1e-3
[solver]
preconditioner = "bjacobi"
rtol = 1e-12
"""


def test_nonlinear_adaptive_steps_agree_with_a_fine_fixed_dt_and_close_the_balance():
    sim, stepped = run([], MELTING)
    assert stepped[-1] == 60.0 and sim.balance.relative < 1e-9
    assert sim.problem.melting and sim.nonlinear_iterations > sim.step_index
    fixed = MELTING.replace('dt = "adaptive"', "dt = 0.02").replace("tolerance = 1e-3\n", "")
    fine, _ = run([], fixed)
    u, ref = sim.u[: sim.mesh.n_owned], fine.u[: fine.mesh.n_owned]
    assert weighted_error(u, ref) <= 10 * 1e-3, weighted_error(u, ref)
    assert sim.step_index * 20 < fine.step_index


def test_a_newton_failure_cuts_the_step(monkeypatch):
    from solver.heat.nonlinear_stepping import NonlinearStepper

    fail_once(monkeypatch, NonlinearStepper, 4, "step 4: the nonlinear solve did not converge (made to fail)")
    sim, stepped = run([], MELTING)
    assert sim.adaptive.controller.failed_solves == 1 and stepped[-1] == 60.0
    assert sim.balance.relative < 1e-9  # the failed try left nothing in the balance



@pytest.mark.parametrize("scheme", ["bdf2", "backward-euler", "crank-nicolson"])
@pytest.mark.parametrize("pulse", ["t >= 300 and t <= 301", "t > 300 and t < 301"])
def test_adaptive_steps_land_on_the_switches_of_an_input_of_t(scheme, pulse):
    """A heater switched on at t = 300 s for one second, in the insulated bar: steps grown to 600 s
    stepped over it (0 J, the bar at 20 C, exit 0). The numbers t is compared with are stops: the
    pulse's 1e8 W/m^3 over 5e-4 m^2 and 1 s heat the bar to 20 + 1e8 / (rho c) = 45.64 C. A step's
    ends see the switches from inside the step: the open interval's pulse (both ends of the step
    from 300 to 301 off) was lost too, and the closed one's heated the step before 300 as well."""
    sim, _ = run([f'source.f="where({pulse}, 1e8, 0)"', "boundary.right.h=0.0",
                  f"time.scheme={scheme}", 'time.dt="adaptive"', "time.t_end=1000.0"])
    assert 300.0 in sim.adaptive.stops and 301.0 in sim.adaptive.stops
    assert sim.balance.inflow[0] == pytest.approx(5e4, rel=1e-9)
    lag = 0.01 if scheme == "bdf2" else 1e-9  # the storage lag of BDF2's variable steps (booked in the balance)
    assert np.mean(sim.u[: sim.mesh.n_owned]) == pytest.approx(20 + 1e8 / (7800 * 500), rel=lag)


def test_steps_too_short_for_t_to_move_stop_with_the_error():
    """At t = 5e9 s a step of 1e-7 s leaves t where it is (its rounding step is 9.5e-7 s): with
    time.dt_min = 1e-9 the run stepped in place for ever. The shortest step is 64 rounding steps."""
    from solver.errors import NumericalError

    sim, _ = adaptive(1e-3, extra=["time.dt_min=1e-9"])
    assert sim.adaptive.shortest(5e9) == 64 * np.spacing(5e9) and sim.adaptive.shortest(1.0) == 1e-9
    with pytest.raises(NumericalError, match="the shortest that t can resolve there"):
        sim.adaptive._retry(1e-7, None, 5e9, 3.0)


def test_the_switches_of_a_property_of_t_are_stops_too():
    """k = where(t > 77.3 and t < 77.4, ...): adaptive steps stepped from 75 to 80 s over it, no
    warning (0.38 J of 1 J); its switch times are stops as the source's are, and t % 60 warns."""
    from solver.heat.checks import inputs_of_time
    from solver.heat.simulation import adaptive_stops

    case = load_case(PULSE, "pulse.toml", ['material.k="where(t > 77.3 and t < 77.4, 1000.0, 50.0)"',
                                           'time.dt="adaptive"'])
    assert {77.3, 77.4} <= set(adaptive_stops(case))
    case = load_case(PULSE, "pulse.toml", ['material.k="50 + (t % 60)"', 'time.dt="adaptive"'])
    assert [key for key, value in inputs_of_time(case.physics) if value.hidden_switches()] == ["material.k"]


def test_a_switch_between_fixed_steps_is_warned_about(caplog):
    """A heater on from 3000 to 3001 s and steps of 8 s: the step that holds 3001 s takes its end's
    value for the whole step, without a word; a warning names the input and the time."""
    import logging

    with caplog.at_level(logging.WARNING):
        run(['source.f="where(t >= 3000 and t <= 3001, 1e8, 0)"', "time.dt=8.0", "time.t_end=16.0"])
    assert "source.f switches at t = 3001 s, between two steps of 8 s" not in caplog.text  # beyond t_end
    with caplog.at_level(logging.WARNING):
        run(['source.f="where(t >= 4 and t <= 5, 1e8, 0)"', "time.dt=2.0", "time.t_end=8.0"])
    assert "source.f switches at t = 5 s, between two steps of 2 s" in caplog.text


# a 2D block heated by a pulse of t that no comparison announces, cooled through its left side
SMOOTH_PULSE = """
[mesh]
type = "rectangle"
cell = "quadrilateral"
lengths = [1.0, 1.0]
nx = 4
ny = 4

[material]
k = 1.0
rho = 1.0
c = 1.0

[source]
f = "1000*exp(-((t-300)/2)**2)"

[boundary.left]
type = "robin"
h = 0.1
T_inf = 0

[time]
scheme = "bdf2"
dt = "adaptive"
t_end = 1000.0
"""

PULSES = {"1000*exp(-((t-300)/2)**2)": 2000 * math.sqrt(math.pi),  # J per m of depth, over the unit square
          "1000*max(0, 1 - abs(t - 300))": 1000.0,
          "1000*(1+tanh((t-300)*5))*(1-tanh((t-302)*5))/4": 2000.0}


@pytest.mark.parametrize("pulse", PULSES)
def test_adaptive_steps_do_not_step_over_a_pulse_without_a_comparison(pulse, caplog):
    """A 2 s pulse of exp, abs and max, or tanh at t = 300 s: steps grown to 244 s stepped from 64.8 to
    308 s over it, no warning, 0.0065 J of 3545 J booked and the balance closed. The pulse is found
    by sampling the source before the march: a warning names it, and the steps land before it and
    stay short until it is over (the heat booked within 2%: BDF2's storage lag keeps a little)."""
    import logging

    with caplog.at_level(logging.WARNING):
        sim, _ = run([f'source.f="{pulse}"'], SMOOTH_PULSE)
    assert "source.f changes abruptly at t = 29" in caplog.text and "adaptive steps grown there" in caplog.text
    assert caplog.text.count("warning:") == 1
    assert dict(zip(sim.balance.terms, sim.balance.inflow))["source"] == pytest.approx(PULSES[pulse], rel=0.02)
    assert sim.balance.relative < 1e-9


@pytest.mark.parametrize("sets", [['source.f="sin(2*pi*t/60)"', "time.t_end=3600.0"],
                                  ['source.f="100*t/1000"'], ['source.f="1000*min(t/100, 1)"'],
                                  ['source.f="1000*exp(-t/10)"'],
                                  ['source.f="0"', 'boundary.left.T_inf="20 + 5*sin(2*pi*t/600)"']])
def test_smooth_inputs_of_t_are_not_abrupt_changes(sets, caplog):
    """A sine that the error estimate sees at every step, ramps over many steps and a decay from
    the first step on are left to the estimate: no stop, no short steps, no warning."""
    import logging

    with caplog.at_level(logging.WARNING):
        sim = Simulation(load_case(SMOOTH_PULSE, "pulse.toml", sets))
    assert sim.adaptive.guards == () and "warning" not in caplog.text


def test_abrupt_changes_are_measured():
    """Start, rise and end of a pulse, a steep ramp and a jump; a train of narrow pulses (quiet
    between them) has one change per pulse; a change at a number that t is compared with is left
    to the stop there."""
    from solver.case.expressions import Expression
    from solver.heat.pulses import SAMPLES, abrupt_changes

    times = np.linspace(0.0, 1000.0, SAMPLES)
    points = np.array([[0.0, 0.0], [1.0, 0.5]])

    def changes(text, end=1000.0):
        span = np.linspace(0.0, end, SAMPLES)
        return abrupt_changes(Expression(text).over_time(points, span), span)

    (start, rise, end), = changes("1000*exp(-((t-300)/2)**2)")
    assert 296 < start < 297 and 1.5 < rise < 2.5 and 303 < end < 305
    (start, rise, end), = changes("20 + 80*min(max((t - 300)/5, 0), 1)")
    assert 300 <= start < 300.5 and 2 < rise < 3 and 304 < end <= 305.2
    (start, rise, end), = changes("where(x > 0.5 and 0.01*t > 4, 1, 0)")
    assert start < 400 < start + rise and rise == times[1]
    assert len(changes("sin(pi*t/60)**20", 3600.0)) == 60
    # a smooth pulse 20 s wide on a background, after 1700 s at its level: its tail before the
    # start lies within 5% of the level, and is part of the quiet spell (it was taken as leaving it)
    (start, rise, end), = changes("1e4 + 1e6*exp(-((t-1800)/20)**2)", 3600.0)
    assert 1760 < start < 1770 and 15 < rise < 20 and 1815 < end < 1840
    case = load_case(SMOOTH_PULSE, "pulse.toml", ['source.f="1000*exp(-((t-300)/2)**2)*where(t > 297, 1, 0)"'])
    assert Simulation(case).adaptive.guards == ()  # the steps land on 297 s


def test_a_pulse_between_fixed_steps_is_warned_about(caplog):
    """Fixed steps of 10 s sample the 2 s pulse at t = 300 s alone and book 10 kJ for 3.5 kJ: a
    warning names it; steps shorter than its rise do not warn, nor do jumps on the steps' ends."""
    import logging

    with caplog.at_level(logging.WARNING):
        sim, _ = run(["time.dt=10.0"], SMOOTH_PULSE)
    assert "source.f changes abruptly at t = 296.423 s (by half its range within 1.95 s): steps of 10 s" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        Simulation(load_case(SMOOTH_PULSE, "pulse.toml", ["time.dt=1.0"]))
        Simulation(load_case(SMOOTH_PULSE, "pulse.toml", ['source.f="where(sin(2*pi*t/20) > 0, 1, 0) * (t > 96)"',
                                                            "time.dt=1.0"]))
    assert "warning" not in caplog.text
    with caplog.at_level(logging.WARNING):
        Simulation(load_case(SMOOTH_PULSE, "pulse.toml", ['source.f="where(sin(2*pi*t/20) > 0, 1, 0) * (t > 96)"',
                                                            "time.dt=8.0"]))
    assert "source.f jumps between t = 99.9" in caplog.text and "between two steps of 8 s" in caplog.text
