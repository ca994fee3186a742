"""Newton's steps that leave a property's range: halved, and named only when no shorter one will do.

A scalar system G(u) = u^3 - 8 whose residual is refused (as a property out of its range) at u >= a
limit stands for the heat equations."""

import numpy as np
import pytest

from solver.case.records import NonlinearSpec
from solver.errors import RangeError
from solver.la import newton


class Cubic:
    def __init__(self, limit: float):
        self.limit, self.refused_at = limit, []

    def residual(self, u):
        if u[0] >= self.limit:
            self.refused_at.append(float(u[0]))
            raise RangeError(f"k out of range at u = {u[0]:.6g}")
        return np.array([u[0] ** 3 - 8.0])

    def solve(self, u, residual, method, rtol=None):
        return -residual / (3.0 * u[:1] ** 2), 1

    def norm(self, v):
        return float(np.sqrt(np.dot(v, v)))

    def update(self, u, du, step):
        u[:1] += step * du


def spec(iterations=30, line_search=False):
    return NonlinearSpec("newton", 1e-12, 0.0, 0.0, iterations, line_search, "none")


def test_a_step_beyond_the_range_is_halved_and_the_solve_converges():
    """From u = 0.5 the full step lands at 11.2, beyond the limit 3: halved until admissible."""
    system = Cubic(3.0)
    u = np.array([0.5])
    report = newton.solve(system, u, spec())
    assert report.converged and abs(u[0] - 2.0) < 1e-12 and report.refused is None
    assert system.refused_at and report.steps[0] < 1.0


def test_a_solve_that_fails_for_another_reason_is_not_blamed_on_a_refused_trial():
    """Two iterations are not enough; the accepted iterates were in range: no refusal reported."""
    system = Cubic(3.0)
    report = newton.solve(system, np.array([0.5]), spec(iterations=2))
    assert not report.converged and report.refused is None and system.refused_at


def test_no_admissible_step_names_the_whole_step():
    """Starting beyond the reach of any halving (the limit just above the start): the solve ends
    there, back at its start, with the whole step's error."""
    system = Cubic(0.5000001)
    u = np.array([0.5])
    report = newton.solve(system, u, spec())
    assert not report.converged and u[0] == 0.5
    assert isinstance(report.refused, RangeError) and str(report.refused) == "k out of range at u = 11"
    assert "takes a property out of its range" in report.reason


@pytest.mark.parametrize("line_search", [False, True])
def test_the_start_out_of_range_is_raised(line_search):
    with pytest.raises(RangeError):
        newton.solve(Cubic(0.1), np.array([0.5]), spec(line_search=line_search))
