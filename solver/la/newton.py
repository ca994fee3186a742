"""Newton's method (and Picard iterations) for a distributed nonlinear system ``G(u) = 0``.

The system supplies the residual, a linear solve with its (Newton or Picard) Jacobian and the
update of u (:class:`NonlinearSystem`); this module decides when to stop:

* converged when ``||G|| <= max(atol, rtol ||G_0||)`` (G_0: the residual at the start) or when
  the update is small, ``||du|| <= stol ||u||`` (PETSc SNES's three tests);
* a backtracking line search halves the step while ``||G(u + l du)|| > (1 - 1e-4 l) ||G(u)||``
  (Armijo on the residual norm), at most ``MAX_HALVINGS`` times, then takes the step anyway;
* it fails after ``max_iterations``, or on a residual that is not finite, with the history of
  residual norms for the message.

Norms are l2 over the owned free rows of every rank (one ``Allreduce`` each).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

MAX_HALVINGS = 8
ARMIJO = 1e-4


class NonlinearSystem(Protocol):
    def residual(self, u: np.ndarray) -> np.ndarray: ...  # owned rows (constrained rows zero)

    def solve(self, u: np.ndarray, residual: np.ndarray, method: str) -> tuple[np.ndarray, int]: ...  # du, its

    def norm(self, v: np.ndarray) -> float: ...  # global l2 of an owned vector

    def update(self, u: np.ndarray, du: np.ndarray, step: float) -> None: ...  # u += step du, ghosts too


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

    @property
    def ratios(self) -> list[float]:
        """Successive residual reductions ``||G_k+1|| / ||G_k||``."""
        r = self.residuals
        return [b / a for a, b in zip(r[:-1], r[1:]) if a > 0]

    def history(self, count: int = 8) -> str:
        r = self.residuals
        shown = r if len(r) <= count else r[: count // 2] + ["..."] + r[-(count // 2):]
        return ", ".join(x if isinstance(x, str) else f"{x:.3e}" for x in shown)


def solve(system: NonlinearSystem, u: np.ndarray, method: str, rtol: float, atol: float, stol: float,
          max_iterations: int, line_search: bool) -> NonlinearReport:
    """Iterate ``u`` (local vector, in place) towards ``G(u) = 0``."""
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
    for _ in range(max_iterations):
        du, its = system.solve(u, G, method)
        report.linear_iterations += its
        report.iterations += 1
        start = u.copy() if line_search else None
        step = 1.0
        system.update(u, du, step)
        G_new = system.residual(u)
        r_new = system.norm(G_new)
        if line_search:
            halvings = 0
            while not (r_new <= (1.0 - ARMIJO * step) * r) and halvings < MAX_HALVINGS:
                step *= 0.5
                halvings += 1
                u[:] = start
                system.update(u, du, step)
                G_new = system.residual(u)
                r_new = system.norm(G_new)
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
