"""Error-controlled time steps (``time.dt = "adaptive"``) for the implicit schemes.

* **Error estimate**: a predictor-corrector difference (Milne's device). The predictor ``u^P``
  extrapolates the last p + 1 accepted solutions by a polynomial of degree p (the scheme's
  order). Both ``u^P`` and the scheme's solution u err by a multiple of the same derivative
  u^(p+1), so the local error of u is ``C_c / (C_c - C_p) (u - u^P)``, the constants computed
  for the actual step sizes from the scheme's coefficients (:func:`milne_factor`): 1/3 of
  ``u - u^P`` for backward Euler on constant steps, 2/11 for BDF2, 1/13 for Crank-Nicolson.
  While fewer solutions are known (the first steps) the predictor has a lower degree d and
  ``u - u^P`` itself, of order d + 1, bounds the error: a cautious start.
* **Norm**: the largest over the nodes of ``|error| / (absolute + relative max(|u0|, |u1|))``
  (a max norm, so a local heater is not averaged away, and exactly rank-independent).
* **Controller**: the PI controller of Gustafsson (1991), as in Hairer & Wanner, *Solving
  Ordinary Differential Equations II*, IV.8 (eq. 8.20): ``dt_new = dt 0.9 E^(-0.7/k) E_prev^(0.4/k)``
  with k the estimate's order, the factor kept in [0.2, 5] and at most 1 right after a
  rejection; a step with E > 1 is rejected and retried with ``dt 0.9 E^(-1/k)``; a step whose
  nonlinear or linear solve fails is retried with a quarter of dt. Below ``time.dt_min`` the
  run stops with the error.
* **Step sizes** are rounded down to a ladder ``dt_initial 2^(j/4)``, so that a factorisation
  (or a multigrid update) serves several steps, cut to land exactly on the output times (a
  remainder shorter than a step is spread over two), and kept short over an input's abrupt
  changes that the error estimate of long steps would not see (:mod:`solver.heat.pulses`). A
  step size met for the first time borrows the preconditioner of a set-up one within a factor 4
  (:mod:`solver.heat.stepping`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from mpi4py import MPI

from solver.case.records import AdaptiveSpec
from solver.errors import ConvergenceError, NumericalError
from solver.heat.state import AdaptiveState, Controller
from solver.heat.stepping import ADAPTIVE_ADVICE, Multistep, Stepper
from solver.la.krylov import SolveInfo

SAFETY, GROW, SHRINK, FAILED_SOLVE_CUT = 0.9, 5.0, 0.2, 0.25
SOLVES_MARGIN = 1e3  # a time.tolerance within this factor of solver.rtol: the estimate may measure the solves' error
RESOLVED = 64  # the shortest step: this many rounding steps of t
PI_INTEGRAL, PI_PROPORTIONAL = 0.7, 0.4
RUNGS_PER_OCTAVE = 4


def milne_factor(scheme: Multistep, dt: float, earlier_dt: list[float], degree: int) -> tuple[float, int]:
    """(factor, order): the local error of a step of ``scheme`` is ``factor (u - u^P)`` where u^P
    extrapolates the solutions at 0, -h0, -h0-h1, ... (``earlier_dt`` = h0, h1, ...) by a
    polynomial of ``degree``; ``order`` is that of the estimate (dt^order). With a predictor of
    lower degree than the scheme's order, ``u - u^P`` is the predictor's error: factor 1."""
    p = scheme.order
    if degree < p:
        return 1.0, degree + 1
    # in units of dt: both errors scale as dt^(p+1), and their ratio does not (tiny steps underflow)
    nodes = [n / dt for n in past_times(earlier_dt, max(degree, scheme.history - 1))]
    # the scheme on y = s^(p+1)/(p+1)!: sum_j a_j y(s_j) - dt sum_j b_j y'(s_j), s_0 = dt = 1, s_1 = 0, ...
    s = [1.0] + nodes
    fact = math.factorial(p + 1)
    tau = sum(a * s[j] ** (p + 1) / fact for j, a in enumerate(scheme.a)) \
        - sum(b * s[j] ** p / math.factorial(p) for j, b in enumerate(scheme.b))
    corrector = -tau / scheme.a[0]  # u - y(dt) per unit y^(p+1) dt^(p+1)
    predictor = -math.prod(1.0 - n for n in nodes[: degree + 1]) / fact  # u^P - y(dt)
    return corrector / (corrector - predictor), p + 1


def past_times(earlier_dt: list[float], count: int) -> list[float]:
    """0, -h0, -h0-h1, ...: the times of the current and ``count`` earlier solutions relative to
    the current one (``earlier_dt`` = h0, h1, ..., newest first)."""
    nodes = [0.0]
    for h in earlier_dt[:count]:
        nodes.append(nodes[-1] - h)
    return nodes


def extrapolate(levels: list[np.ndarray], nodes: list[float], at: float) -> np.ndarray:
    """The polynomial through (nodes[i], levels[i]) evaluated at ``at`` (Lagrange form)."""
    out = np.zeros_like(levels[0])
    for i, (xi, level) in enumerate(zip(nodes, levels)):
        weight = math.prod((at - xj) / (xi - xj) for j, xj in enumerate(nodes) if j != i)
        out += weight * level
    return out


@dataclass
class StepRecord:
    """One accepted step: where it ended, its size, its error estimate (1 = the tolerance) and
    its linear iterations (the columns of the results file's /steps table)."""

    time: float
    dt: float
    error: float
    iterations: int


class AdaptiveStepping:
    """Advances a stepper by accepted steps of controlled size that land on ``stops``
    (output times, t_end last)."""

    LEVELS = 3  # accepted solutions kept for the predictor: u0, u_-1, u_-2

    def __init__(self, stepper: Stepper, spec: AdaptiveSpec, stops: tuple[float, ...],
                 guards: tuple[tuple[float, float, float], ...] = ()):
        """``guards``: (from, to, longest step) of the spans where steps are kept short (an input's
        abrupt change, :meth:`solver.heat.pulses.Change.guard`; ``from`` is among the stops)."""
        self.stepper, self.spec = stepper, spec
        self.stops = tuple(stops)
        self.guards = tuple(sorted(guards))
        self.controller = Controller(spec.dt_initial)
        self.levels: list[np.ndarray] = []  # owned values of u_-1, u_-2 (u0 is the current u)
        mesh = stepper.problem.mesh
        self.comm, self.n = mesh.comm, mesh.n_owned
        self.free = ~stepper.problem.dirichlet.mask[: self.n]

    # ------------------------------------------------------------------ step sizes
    def ladder(self, dt: float, t: float) -> float:
        """dt rounded down to the ladder dt_initial 2^(j/4), within [shortest(t), dt_max]."""
        s = self.spec
        j = math.floor(RUNGS_PER_OCTAVE * math.log2(dt / s.dt_initial) + 1e-9)
        return min(max(s.dt_initial * 2.0 ** (j / RUNGS_PER_OCTAVE), self.shortest(t)), s.dt_max)

    def shortest(self, t: float) -> float:
        """The shortest step from t: time.dt_min, or one that t can resolve in double precision
        (:data:`RESOLVED` rounding steps of t; shorter ones would leave t where it is)."""
        return max(self.spec.dt_min, RESOLVED * float(np.spacing(abs(t))))

    def next_stop(self, t: float) -> float:
        for stop in self.stops:
            if stop > t * (1 + 1e-14) + 1e-300:
                return stop
        return self.stops[-1]

    def guarded(self, t: float) -> float:
        """The longest step from t that the guards allow (inf outside them)."""
        caps = [cap for start, end, cap in self.guards if start <= t < end]
        return self.ladder(min(caps), t) if caps else math.inf

    def _landing(self, t: float, dt: float) -> tuple[float, float | None]:
        """(dt to take, the exact end time when the step lands on a stop, else None)."""
        dt = min(dt, self.guarded(t))
        stop = self.next_stop(t)
        remaining = stop - t
        if dt >= remaining * (1 - 1e-10):
            return remaining, stop
        if dt > 0.5 * remaining:
            return 0.5 * remaining, None
        return dt, None

    # ------------------------------------------------------------------ one accepted step
    def advance(self, u: np.ndarray, t: float, step: int) -> tuple[SolveInfo, StepRecord]:
        """Advance u from t by one accepted step (retrying rejected ones); returns the solve's
        info (its iterations include those of the rejected tries) and the step's record."""
        c, st = self.controller, self.stepper
        discarded = 0
        while True:
            dt, landing = self._landing(t, c.dt)
            st.dt = dt
            saved, u_saved = st.save(), u.copy()
            try:
                info = st.step(u, t, step)
            except (ConvergenceError, NumericalError) as exc:
                discarded += exc.iterations
                st.rewind(saved)
                u[:] = u_saved
                c.failed_solves += 1
                c.rejected_last = True
                self._retry(dt * FAILED_SOLVE_CUT, exc, t, out_of_range=self._set_aside_violation())
                continue
            error, order = self.error(u, u_saved, dt)
            if error <= 1.0:
                t1 = landing if landing is not None else t + dt
                self._accept(error, order, dt, landing is not None, t1)
                self.levels = ([u_saved[: self.n].copy()] + self.levels)[: self.LEVELS - 1]
                info = SolveInfo(info.iterations + discarded, info.residual, info.converged)
                return info, StepRecord(t1, dt, error, info.iterations)
            discarded += info.iterations
            st.rewind(saved)
            u[:] = u_saved
            c.rejected += 1
            c.rejected_last = True
            self._retry(dt * max(SHRINK, SAFETY * error ** (-1.0 / order)), None, t, error,
                        self._set_aside_violation())

    def _set_aside_violation(self):
        """An input's value out of its range in a rejected try (at a time a shorter step may not
        reach): taken off the monitor, and returned to be put back should the run stop here."""
        ranges = self.stepper.problem.ranges
        violation, ranges.violation = ranges.violation, None
        return violation

    def _retry(self, dt: float, exc: Exception | None, t: float, error: float | None = None,
               out_of_range=None) -> None:
        """Set the controller to retry with dt (on the ladder), or stop below dt_min (an input out
        of its range in the last try is put back, for the march to report it)."""
        s = self.spec
        shortest = self.shortest(t)
        if dt < shortest * (1 - 1e-12):
            self.stepper.problem.ranges.violation = out_of_range
            why = (f"the local error is {error:.3g} times time.tolerance" if exc is None  # (not "use adaptive steps")
                   else f"the solve fails ({str(exc).replace(ADAPTIVE_ADVICE, '')})")
            if shortest > s.dt_min:
                raise NumericalError(f"t = {t:.6g}: {why} even at steps of {shortest:.3g} s, the shortest that t can "
                                     f"resolve there in double precision; loosen time.tolerance, or look for a "
                                     f"discontinuity in the sources or boundary values (a sudden change of a "
                                     f"Dirichlet value: time.mass = \"lumped\" or a ramp over a few seconds)")
            jump = (" (at t = 0: a Dirichlet value other than the initial temperature is a jump there; start from "
                    "it, or ramp it up over a few seconds)" if t == 0.0 else "")
            jump += self._below_the_solves() if exc is None else ""
            raise NumericalError(f"t = {t:.6g}: {why} even at time.dt_min = {s.dt_min:g} s; loosen time.tolerance, "
                                 f"lower time.dt_min, or look for a discontinuity in the sources or boundary "
                                 f"values{jump}")
        self.controller.dt = self.ladder(max(dt, shortest), t)

    def _below_the_solves(self) -> str:
        """A note where time.tolerance asks for errors that the linear solves' own (solver.rtol of
        the right-hand side) may exceed: the error estimate then measures them, not the step."""
        solver, s = getattr(self.stepper, "solver", None), self.spec
        rtol = getattr(solver, "rtol", None)
        tolerance = min(t for t in (s.relative, s.absolute) if t > 0) if (s.relative or s.absolute) else 0.0
        if rtol is None or tolerance >= SOLVES_MARGIN * rtol:
            return ""
        return (f"; time.tolerance = {tolerance:g} is within {SOLVES_MARGIN:g} times solver.rtol = {rtol:g}, the "
                f"solves' own error, which the estimate measures at any step size: tighten solver.rtol with it")

    def _accept(self, error: float, order: int, dt: float, landed: bool, t1: float) -> None:
        c = self.controller
        e = max(error, 1e-10)
        if c.error_previous is None or c.rejected_last:
            factor = SAFETY * e ** (-1.0 / order)
        else:
            factor = SAFETY * e ** (-PI_INTEGRAL / order) * max(c.error_previous, 1e-4) ** (PI_PROPORTIONAL / order)
        factor = min(max(factor, SHRINK), 1.0 if c.rejected_last else GROW)
        if landed and dt < c.dt:  # a step cut short to land: keep the size planned before the cut
            proposal = c.dt if factor >= 1.0 else dt * factor
        else:
            proposal = dt * factor
        c.dt = self.ladder(proposal, t1)
        c.error_previous, c.rejected_last = error, False
        c.accepted += 1
        c.history_dt = ([dt] + c.history_dt)[: self.LEVELS - 1]

    # ------------------------------------------------------------------ the estimate
    def error(self, u: np.ndarray, u0: np.ndarray, dt: float) -> tuple[float, int]:
        """(E, order): the weighted max norm of the local error estimate of the step u0 -> u
        (1 = the tolerance; collective) and the order of the estimate in dt."""
        st, n = self.stepper, self.n
        scheme = st.last_scheme
        known = [u0[:n]] + self.levels
        degree = min(scheme.order, len(known) - 1)
        predicted = extrapolate(known[: degree + 1], past_times(self.controller.history_dt, degree), dt)
        factor, order = milne_factor(scheme, dt, self.controller.history_dt, degree)
        weight = self.spec.absolute + self.spec.relative * np.maximum(np.abs(u[:n]), np.abs(u0[:n]))
        local = np.abs(factor * (u[:n] - predicted)[self.free]) / weight[self.free]
        e = np.array([local.max(initial=0.0)])
        self.comm.Allreduce(MPI.IN_PLACE, e, op=MPI.MAX)
        return float(e[0]), order

    # ------------------------------------------------------------------ restarts
    def restart_state(self) -> AdaptiveState:
        return AdaptiveState(Controller(**asdict(self.controller)), tuple(self.levels))

    def resume(self, state: AdaptiveState) -> None:
        self.levels = list(state.levels)
        self.controller = state.controller
