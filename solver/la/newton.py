"""Newton's method (and Picard iterations) for a distributed nonlinear system ``G(u) = 0``.

The system supplies the residual, a linear solve with its (Newton or Picard) Jacobian and the
update of u (:class:`NonlinearSystem`); this module decides when to stop:

* converged when ``||G|| <= max(atol, rtol ||G_0||)`` (G_0: the residual at the start) or when
  the update is small, ``||du|| <= stol ||u||`` (PETSc SNES's three tests);
* a backtracking line search halves the step while ``||G(u + l du)|| > (1 - 1e-4 l) ||G(u)||``
  (Armijo on the residual norm), at most ``MAX_HALVINGS`` times, then takes the step anyway;
* a step to where a property leaves its range (the system's residual raises
  :data:`INADMISSIBLE`: a k(T) not > 0 at a temperature the full step overshoots to) is halved
  the same way, line search or not; a solve that ends with no admissible step keeps the whole
  step's error (:attr:`NonlinearReport.refused`) for its caller to raise;
* it fails after ``max_iterations``, or on a residual that is not finite, with the history of
  residual norms for the message;
* the linear solves are asked for a relative tolerance (:class:`Forcing`): the solver's own every
  time (``fixed``: exact Newton, quadratic convergence), or Eisenstat and Walker's adaptive forcing
  terms (``adaptive``).

Norms are l2 over the owned free rows of every rank (one ``Allreduce`` each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from solver.case.records import NonlinearSpec
from solver.errors import NumericalError, RangeError

MAX_HALVINGS = 8
ARMIJO = 1e-4
INADMISSIBLE = (RangeError, NumericalError)  # a property out of its range, or not > 0, at an iterate


class NonlinearSystem(Protocol):
    def residual(self, u: np.ndarray) -> np.ndarray: ...  # owned rows (constrained rows zero)

    def solve(self, u: np.ndarray, residual: np.ndarray, method: str, rtol: float | None = None
              ) -> tuple[np.ndarray, int]: ...  # du, its (rtol: of the linear solve; None: the solver's own)

    def norm(self, v: np.ndarray) -> float: ...  # global l2 of an owned vector

    def update(self, u: np.ndarray, du: np.ndarray, step: float) -> None: ...  # u += step du, ghosts too


class Forcing:
    """Relative tolerances of the linear solves of one nonlinear solve (inexact Newton).

    ``adaptive``: Eisenstat and Walker's choice 2 (SIAM J. Sci. Comput. 17, 1996, as PETSc's
    ``-snes_ksp_ew``): eta_k = gamma (||G_k|| / ||G_k-1||)^alpha, kept from falling faster than
    gamma eta_k-1^alpha while that is above 0.1, at most 0.9. Then two floors: no tighter than
    what the nonlinear tolerance needs (0.5 target / ||G_k||: Kelley's safeguard against
    over-solving the last iteration) and no tighter than the solver's own rtol. The first solve
    goes to eta_0 = 1e-4 rather than the classical 0.3: a time step starts near its solution, where
    Newton converges fast, and each Newton iteration (residual, Jacobian, a new solve) costs as
    much as several linear iterations (on the radiating heat sink: 2 Newton iterations per step
    with 1e-4, 3.4 with 0.1). ``fixed``: None (the solver's rtol) every time."""

    ETA_0, ETA_MAX, GAMMA, ALPHA, THRESHOLD = 1e-4, 0.9, 1.0, 0.5 * (1.0 + math.sqrt(5.0)), 0.1

    def __init__(self, kind: str, floor: float, target: float):
        self.adaptive, self.floor, self.target = kind == "adaptive", floor, target
        self.eta: float | None = None
        self.previous: float | None = None  # ||G|| at the last solve

    def __call__(self, r: float) -> float | None:
        """The tolerance of the next linear solve, at residual norm r."""
        if not self.adaptive:
            return None
        if self.eta is None:
            eta = self.ETA_0
        else:
            eta = self.GAMMA * (r / self.previous) ** self.ALPHA
            earlier = self.GAMMA * self.eta ** self.ALPHA
            if earlier > self.THRESHOLD:
                eta = max(eta, earlier)
        eta = min(eta, self.ETA_MAX)
        self.eta, self.previous = eta, r
        return max(eta, 0.5 * self.target / r, self.floor)


@dataclass
class NonlinearReport:
    """How a nonlinear solve went."""

    method: str
    converged: bool = False
    iterations: int = 0
    linear_iterations: int = 0
    residuals: list = field(default_factory=list)  # ||G|| before each iteration and after the last
    steps: list = field(default_factory=list)  # line-search step lengths taken
    reason: str = ""
    refused: Exception | None = None  # why the solve ended with no admissible step (INADMISSIBLE), if it did

    @property
    def ratios(self) -> list[float]:
        """Successive residual reductions ``||G_k+1|| / ||G_k||``."""
        r = self.residuals
        return [b / a for a, b in zip(r[:-1], r[1:]) if a > 0]

    def history(self, count: int = 8) -> str:
        r = self.residuals
        shown = r if len(r) <= count else r[: count // 2] + ["..."] + r[-(count // 2):]
        return ", ".join(x if isinstance(x, str) else f"{x:.3e}" for x in shown)


def solve(system: NonlinearSystem, u: np.ndarray, spec: NonlinearSpec, linear_rtol: float = 0.0) -> NonlinearReport:
    """Iterate ``u`` (local vector, in place) towards ``G(u) = 0`` as ``spec`` says (method,
    tolerances, iterations, line search; its ``linear_tolerance``: the forcing of the linear
    tolerances, :class:`Forcing`, with ``linear_rtol``, the solver's own, their floor)."""
    method, rtol, atol, stol = spec.method, spec.rtol, spec.atol, spec.stol
    max_iterations, line_search = spec.max_iterations, spec.line_search
    report = NonlinearReport(method)
    G = system.residual(u)
    r = system.norm(G)
    report.residuals.append(r)
    if not math.isfinite(r):
        report.reason = "the residual at the start is not finite"
        return report
    target = max(atol, rtol * r)
    if r <= atol or r == 0.0:
        report.converged, report.reason = True, "residual below atol at the start"
        return report
    tolerance = Forcing(spec.linear_tolerance, linear_rtol, target)
    for _ in range(max_iterations):
        du, its = system.solve(u, G, method, tolerance(r))
        report.linear_iterations += its
        report.iterations += 1
        start = u.copy()
        step = 1.0
        system.update(u, du, step)
        G_new, r_new, refused = _trial(system, u)
        full_step = refused  # what the whole step would take out of range: named if no shorter one will do
        halvings = 0
        while (refused is not None or (line_search and not r_new <= (1.0 - ARMIJO * step) * r)) \
                and halvings < MAX_HALVINGS:
            step *= 0.5
            halvings += 1
            u[:] = start
            system.update(u, du, step)
            G_new, r_new, refused = _trial(system, u)
        if refused is not None:  # no admissible step along du: back where it was, and say why
            u[:] = start
            report.refused = full_step or refused
            report.reason = f"every step along the {method} direction, down to 1/{2 ** MAX_HALVINGS} of it, " \
                            f"takes a property out of its range"
            return report
        report.steps.append(step)
        G, r = G_new, r_new
        report.residuals.append(r)
        if not math.isfinite(r):
            report.reason = "the residual is not finite"
            return report
        if r <= target:
            report.converged, report.reason = True, "residual"
            return report
        if step * system.norm(du) <= stol * system.norm(u[: len(du)]):
            report.converged, report.reason = True, "update"
            return report
    report.reason = f"no convergence in {max_iterations} iterations"
    return report


def _trial(system: NonlinearSystem, u: np.ndarray):
    """(G(u), ||G(u)||, None), or (None, inf, the error) where u is not admissible (collective:
    the system's norm reduces the flags of every rank)."""
    try:
        G = system.residual(u)
        return G, system.norm(G), None
    except INADMISSIBLE as exc:
        return None, math.inf, exc
