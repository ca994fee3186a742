"""Time steps and steady solves of the nonlinear heat equation (:mod:`solver.heat.nonlinear`).

A linear multistep scheme (:class:`~solver.heat.stepping.Multistep`) in enthalpy form::

    G(u1) = a0 S(u1) + sum_{j>=1} a_j S(u_{1-j}) + dt sum_j b_j Q(u_{1-j}, t_{1-j}) = 0,

solved for u1 by Newton's method (:mod:`solver.la.newton`) from u0, with the Dirichlet values
of t1 imposed first and kept (the updates are zero there). Each iteration solves with the
Jacobian: CG when it is symmetric (Picard, or k independent of T), else GMRES, preconditioned
by the case's preconditioner built from the symmetric part. Multigrid keeps its aggregates and
only recomputes its Galerkin products for each new Jacobian (``update``); other preconditioners
are built once per step and reused by its iterations. When Newton fails, Picard iterations
retry the step (``nonlinear.fallback``); when they fail too, the run stops with the residual
history and what to try.

Steady nonlinear solves (``time.scheme = "steady"``) take Newton with the line search from the
initial temperature; if that fails, pseudo-transient continuation: backward-Euler pseudo-steps
whose length grows as the steady residual falls (switched evolution relaxation, tau_k+1 = tau_k
||G_k-1|| / ||G_k||), then Newton again from where they reach.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import numpy as np
from mpi4py import MPI

from solver.case.expressions import StepTime
from solver.case.records import NonlinearSpec, SolverSpec, TimeSpec
from solver.errors import CaseError, ConvergenceError, NumericalError, RangeError
from solver.fem.boundary import constrain
from solver.heat.balance import HeatFlows
from solver.heat.checks import check_step_loads, step_load_times
from solver.heat.parts import exchange_names, unheld_steady_case
from solver.heat.nonlinear import Linearisation, NonlinearHeatProblem
from solver.heat.state import JacobianOrigin, MultigridState, StepperState
from solver.heat.stepping import ADAPTIVE_ADVICE, BACKWARD_EULER, BDF2, Multistep, Solves, Stepper, theta_method
from solver.la import newton
from solver.la.krylov import SolveInfo, gmres, pcg
from solver.la.matrix import DistributedMatrix, FixedPattern
from solver.la.preconditioners import make_preconditioner

log = logging.getLogger(__name__)


class LinearisedSolver:
    """The linear solves of the nonlinear iterations, with a preconditioner kept across them.

    A built preconditioner (block Jacobi, ...) is built from the symmetric part of the first
    Jacobian of each step and serves the step's later iterations. Multigrid is set up once and
    serves later steps too: it is updated (new Galerkin products on its aggregates) only when
    the iterations of a solve more than double those of the first solve after its last update.
    The Jacobians of nearby steps differ little, and an update costs about as much as a solve.

    Multigrid's aggregates and prolongators come from the Jacobian it was set up from, its
    Galerkin products from the one of its last update. Their origins (the temperature and the
    step's t, a0, c) are kept, and a checkpoint carries them, so that a restart sets the
    multigrid up and updates it from the same Jacobians and continues bit for bit."""

    def __init__(self, problem: NonlinearHeatProblem, solver: SolverSpec):
        self.problem, self.spec = problem, solver
        self.precond = None
        self.rebuilds = self.updates = 0
        self.setup_seconds = 0.0  # in preconditioner set-ups and updates
        self.fresh = False  # set up during this step
        self.base_iterations: int | None = None  # iterations of the first solve after a set-up
        self.origin: tuple | None = None  # (u, t, a0, c) of the Jacobian multigrid was set up from
        self.updated: tuple | None = None  # ... and of the one of its last update (None: none since)
        self.pending: tuple | None = None  # after a restart: (origin, updated, fresh, base_iterations)
        self.pattern: FixedPattern | None = None  # of the Jacobians, split once

    def new_step(self) -> None:
        """A built preconditioner is built again for the new step; multigrid serves on."""
        if self.precond is None or not self.precond.updatable:
            self.fresh = False

    def restart_state(self) -> MultigridState | None:
        """Where multigrid's hierarchy came from, for a checkpoint (None: no multigrid yet)."""
        if self.origin is None:
            return None
        update = None if self.updated is None else JacobianOrigin(*self.updated)
        return MultigridState(JacobianOrigin(*self.origin), update, self.fresh, self.base_iterations)

    def resume(self, state: MultigridState | None) -> None:
        """Take back :meth:`restart_state`; the multigrid is set up again at the next solve."""
        if state is None:
            return
        origin = (state.origin.temperature, state.origin.t, state.origin.a0, state.origin.c)
        u = state.update
        updated = None if u is None else (u.temperature, u.t, u.a0, u.c)
        self.pending = (origin, updated, state.fresh, state.base_iterations)

    def _matrix(self, symmetric: np.ndarray) -> DistributedMatrix:
        p = self.problem
        return DistributedMatrix(constrain(p.assembler.csr(symmetric), p.dirichlet.mask, p.compiled)[0], p.mesh.halo)

    def _set_up_again(self) -> None:
        """After a restart: multigrid set up from the Jacobian of its original set-up and updated
        from the one of its last update, as the run had it."""
        origin, updated, fresh, base = self.pending
        self.pending = None
        start = time.perf_counter()
        jacobian = lambda u, t, a0, c: self._matrix(self.problem.linearise(u, t, a0, c).symmetric)  # noqa: E731
        self.precond = make_preconditioner(self.spec.preconditioner, jacobian(*origin), self.problem.coarse_space)
        self.rebuilds += 1
        if updated is not None and self.precond.updatable:
            self.precond.update(jacobian(*updated))
            self.updates += 1
        elif updated is not None:  # one built once (another rank count chose it): from the last Jacobian
            self.precond = make_preconditioner(self.spec.preconditioner, jacobian(*updated), self.problem.coarse_space)
        self.origin, self.updated, self.fresh, self.base_iterations = origin, updated, fresh, base
        self.setup_seconds += time.perf_counter() - start

    def needs_symmetric_part(self) -> bool:
        """Whether the next solve sets up or updates its preconditioner (from the symmetric part)."""
        return self.precond is None or not self.fresh

    def solve(self, lin: Linearisation, rhs: np.ndarray, origin: tuple | None = None,
              rtol: float | None = None) -> tuple[SolveInfo, np.ndarray]:
        """Solve ``J du = rhs`` (the Jacobian of ``lin``; its symmetric part apart when
        :meth:`needs_symmetric_part`) with du = 0 on Dirichlet rows to ``rtol`` (None:
        solver.rtol); returns the solve's info and du (a local vector). ``origin``: (u, t, a0, c)
        of this Jacobian, kept when multigrid is set up from it."""
        p = self.problem
        a, halo, mask = p.assembler, p.mesh.halo, p.dirichlet.mask
        if self.precond is None and self.pending is not None:
            self._set_up_again()
        jacobian = lin.combined
        P = None
        if self.precond is None or not self.fresh or jacobian is None:
            P = self._matrix(lin.symmetric)
        start = time.perf_counter()
        if self.precond is not None and not self.fresh and self.precond.updatable:
            self.precond.update(P)
            self.updates += 1
            self.fresh, self.base_iterations = True, None
            self.updated = None if origin is None else (origin[0].copy(), *origin[1:])
        elif self.precond is None or not self.fresh:
            try:
                self.precond = make_preconditioner(self.spec.preconditioner, P, p.coarse_space)
            except ImportError as exc:
                raise CaseError(str(exc)) from None
            self.rebuilds += 1
            self.fresh, self.base_iterations = True, None
            if origin is not None and self.precond.updatable:
                self.origin, self.updated = (origin[0].copy(), *origin[1:]), None
        self.setup_seconds += time.perf_counter() - start
        du = np.zeros(p.mesh.n_local)
        s = self.spec
        rtol = s.rtol if rtol is None else rtol
        try:
            if jacobian is None:
                info = pcg(P, rhs, du, self.precond, rtol, s.atol, s.max_iterations)
            else:
                if self.pattern is None:
                    self.pattern = FixedPattern(a.indptr, a.indices, halo, mask)
                J = self.pattern.matrix(jacobian)
                info = gmres(J, rhs, du, self.precond, rtol, s.atol, s.max_iterations)
        except NumericalError:  # (a preconditioner of another Jacobian, singular there: set up again next time)
            self.fresh = False
            raise
        if not info.converged:
            self.fresh = False
        if self.base_iterations is None:
            self.base_iterations = info.iterations
        elif info.iterations > 2 * self.base_iterations + 2:
            self.fresh = False  # the Jacobian moved away from the preconditioner's: set up again next time
        return info, du


class StepEquations:
    """``G(u) = a0 S(u) + history + c Q(u, t)`` of one step (or of a steady solve: a0 = 0, c = 1)
    as a :class:`~solver.la.newton.NonlinearSystem`."""

    def __init__(self, problem: NonlinearHeatProblem, linear: LinearisedSolver, history, t: float, a0: float,
                 c: float, where: str):
        self.problem, self.linear = problem, linear
        self.history, self.t, self.a0, self.c, self.where = history, t, a0, c, where
        self.singular_advice = "try a smaller time.dt, or check the properties' values and units" if a0 else \
            ("check the properties' values and units, and that a steady state exists at all (heat drawn out by "
             "fluxes or sinks that the boundaries' exchanges cannot bring back in at any temperature above "
             "absolute zero: run the case transient to see where it goes)")
        self.n = problem.mesh.n_owned
        self.dir_owned = np.flatnonzero(problem.dirichlet.mask[: self.n])
        self.full = None  # G of the last residual, Dirichlet rows included (their reactions)
        self.diagonal = None  # |J_ii| of the last Jacobian solved with (owned rows)

    def residual(self, u: np.ndarray) -> np.ndarray:
        G = self.problem.linearise(u, self.t, self.a0, self.c, jacobian=False).residual
        G += self.history
        self.full = G.copy()
        G[self.dir_owned] = 0.0
        return G

    def solve(self, u: np.ndarray, G: np.ndarray, method: str, rtol: float | None = None) -> tuple[np.ndarray, int]:
        lin = self.problem.linearise(u, self.t, self.a0, self.c, jacobian=True, newton=method == "newton",
                                     symmetric=self.linear.needs_symmetric_part())
        info, du = self.linear.solve(lin, -G, (u, self.t, self.a0, self.c), rtol)
        jacobian = lin.symmetric if lin.combined is None else lin.combined
        self.diagonal = np.abs(jacobian[self.problem.diagonal_slots])
        if not info.converged and info.breakdown:
            raise (SingularJacobian if method == "newton" else ConvergenceError)(
                f"{self.where}: the linearised system of the {method} iteration is singular or indefinite in double "
                f"precision (conjugate gradients found no descent after {info.iterations} iterations): a property "
                f"or exchange many orders of magnitude off"
                f"{', or a step too large for its temperature dependence' if self.a0 else ''}; {self.singular_advice}")
        if not info.converged:
            asked = f"solver.rtol = {self.linear.spec.rtol:g}" if rtol is None else f"the adaptive tolerance {rtol:.3g}"
            raise ConvergenceError(
                f"{self.where}: the linear solver did not converge in {info.iterations} iterations inside the "
                f"{method} iteration (relative residual {info.residual:.3e} > {asked}); "
                f"try {'a smaller time.dt, ' if self.a0 else ''}a larger solver.max_iterations, another "
                f"solver.preconditioner, or a looser solver.rtol (a residual that stalls near it is round-off)")
        du = du[: self.n]
        du[self.dir_owned] = 0.0  # held exactly (a preconditioned solve leaves round-off there: 0 K became -4e-16 K)
        return du, info.iterations

    def correction(self) -> float:
        """This rank's largest |G_i / J_ii| of the last residual over its free rows (the last
        Jacobian's diagonal; not reduced): the correction still due at a node, in degrees, which a
        residual judged relative to one dominated by round-off of a few huge rows (a conductivity
        many orders below an exchange coefficient) leaves far from zero (0: no solve was needed)."""
        if self.diagonal is None or self.full is None or not self.n:
            return 0.0
        G = self.full.copy()
        G[self.dir_owned] = 0.0
        diagonal = np.where(self.diagonal > 0, self.diagonal, np.inf)  # (as the linear solves' estimate)
        with np.errstate(all="ignore"):
            return float(np.max(np.abs(G) / diagonal))

    def norm(self, v: np.ndarray) -> float:
        comm = self.problem.mesh.comm
        ranges = self.problem.ranges  # expressions out of range: flagged in the same reduction
        owned = v[: self.n]
        # steady (a transient field that decays to 0 has residuals as small as itself, rightly)
        largest = float(np.max(np.abs(owned))) if len(owned) and not self.a0 else 0.0
        buf = np.array([float(np.dot(owned, owned)), 1.0 if self.problem.bad else 0.0, ranges.flag,
                        1.0 if 0.0 < largest < TINY else 0.0])
        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        if buf[3] and buf[0] < TINY**2 * 1e4:  # every entry's square lost (below 1e-300): not a norm
            raise NumericalError(f"{self.where}: the nonlinear residuals (the heat of each node, in W) or updates "
                                 f"are below {TINY:g} everywhere, so small that their squares underflow double "
                                 f"precision: a conductivity, capacity or exchange coefficient many orders of "
                                 f"magnitude below any material's; check the values and their units")
        if buf[2]:
            ranges.raise_found(self.where)
        if buf[1]:
            raise NumericalError(f"{self.where}: {self.problem.bad or 'a property is not > 0 on another rank'}; check "
                                 f"the material tables and expressions over the temperatures the run reaches")
        return float(np.sqrt(buf[0]))

    def update(self, u: np.ndarray, du: np.ndarray, step: float) -> None:
        u[: self.n] += step * du
        self.problem.mesh.halo.update(u)


class SingularJacobian(ConvergenceError):
    """Newton's Jacobian at an iterate is singular or indefinite (a property whose derivative in T
    outweighs the rest, as epsilon(T) heated by a far hotter T_inf): Picard's, which leaves the
    derivatives out, may still solve (:func:`iterate`)."""


TINY = 1e-150  # a steady residual entry below it is no heat flow of any physical problem: its square underflows


class NonlinearFailure(ConvergenceError):
    """Newton's (and Picard's) iterations did not converge: a step in parts may (a linear solve
    that fails is not this)."""


STEP_ADVICE = "try " + ADAPTIVE_ADVICE + "a smaller time.dt, "  # (adaptive steps leave their own part out)
STEADY_ADVICE = ("a k, rho c or epsilon that jumps with T (where(), a step in a table) may leave no steady state to "
                 "converge to: smooth the jump over a few degrees, or run the case transient until it settles; else "
                 "try ")


def iterate(equations: StepEquations, u: np.ndarray, spec: NonlinearSpec,
            advice: str = STEP_ADVICE) -> newton.NonlinearReport:
    """Newton (or Picard) on ``equations`` from u, then Picard from the same start if allowed;
    a ConvergenceError with the history (and ``advice``) when nothing converges."""
    start = u.copy()
    linear_rtol = equations.linear.spec.rtol
    can_fall_back = spec.method == "newton" and spec.fallback == "picard"
    try:
        report = newton.solve(equations, u, spec, linear_rtol)
    except SingularJacobian:
        if not can_fall_back:
            raise
        report = newton.NonlinearReport(spec.method, reason="its Jacobian at an iterate is singular or indefinite")
    if report.converged:
        return report
    first = report
    if can_fall_back:
        u[:] = start
        picard = replace(spec, method="picard", max_iterations=max(3 * spec.max_iterations, 50))
        report = newton.solve(equations, u, picard, linear_rtol)
        if report.converged:
            report.iterations += first.iterations
            report.linear_iterations += first.linear_iterations
            return report
    refused = report.refused or first.refused
    if refused is not None:  # no step, however short, kept the properties in range: that is why
        raise refused
    tried = f"{first.method} ({first.reason}{'; residuals ' + first.history() if first.residuals else ''})"
    if report is not first:
        tried += f", then picard ({report.reason}; residuals {report.history()})"
    error = NonlinearFailure(f"{equations.where}: the nonlinear solve did not converge: {tried}; {advice}"
                             f"a larger nonlinear.max_iterations, a looser nonlinear.rtol (now {spec.rtol:g}), or "
                             f"check that k, rho c and epsilon stay physical over the temperatures reached")
    error.iterations = first.linear_iterations + (report.linear_iterations if report is not first else 0)
    raise error


class LinearSolves(Solves):
    """What a nonlinear stepper reports of its linear solves (``self.linear``): the preconditioner
    the run summary describes, and its set-ups and updates."""

    linear: LinearisedSolver

    @property
    def preconditioner(self):
        return self.linear.precond

    @property
    def rebuilds(self) -> int:
        return self.linear.rebuilds

    @property
    def updates(self) -> int:
        return self.linear.updates

    @property
    def setup_seconds(self) -> float:
        return self.linear.setup_seconds


class NonlinearStepper(LinearSolves, Stepper):
    """One step skeleton for every multistep scheme on the nonlinear problem.

    With ``cut_failed_steps`` (fixed steps: an adaptive run cuts its own), a step whose nonlinear
    solve fails is taken again from its start in :data:`CUTS` parts of backward Euler, each part
    booked in the heat balance, the step's end state then serving the scheme as if the step had
    been one (a melting range far narrower than the temperatures a step spans, where Newton from
    the step's start cannot converge)."""

    CUTS = (4, 16, 64)  # parts of a failed fixed step, tried in turn

    def __init__(self, problem: NonlinearHeatProblem, dt: float, scheme: Multistep, solver: SolverSpec,
                 spec: NonlinearSpec, startup: Multistep | None = None, cut_failed_steps: bool = False):
        super().__init__(problem)
        self.dt, self.scheme, self.startup, self.spec = float(dt), scheme, startup, spec
        self.cut_failed_steps = cut_failed_steps
        self.linear = LinearisedSolver(problem, solver)
        self.nonlinear_iterations = 0
        self.last: newton.NonlinearReport | None = None

    def restart_state(self) -> StepperState:
        """Besides the scheme's memory: the Jacobians of multigrid's set-up and last update."""
        return replace(super().restart_state(), multigrid=self.linear.restart_state())

    def resume(self, state: StepperState) -> None:
        super().resume(state)
        self.linear.resume(state.multigrid)

    def step(self, u: np.ndarray, t0: float, step: int) -> SolveInfo:
        scheme = self.last_scheme = self.scheme_of_step()
        p, dt = self.problem, self.dt
        t1 = StepTime(t0 + dt, t0)  # each end sees the switches of t from inside the step
        check_step_loads(p, u, t1, step_load_times(scheme, t1, dt), dt, f"step {step} (t = {t1:.6g})")
        levels = [u] + self.earlier[: scheme.history - 1]
        history = np.zeros(p.mesh.n_owned)
        heat = 0.0
        for j, level in enumerate(levels, start=1):
            t = StepTime(t1 - j * dt, t1 - (j - 1) * dt)
            if scheme.a[j]:
                history += scheme.a[j] * p.storage(level)
            if scheme.b[j]:
                history += dt * scheme.b[j] * p.linearise(level, t, 0.0, 1.0, jacobian=False).residual
                heat = heat + dt * scheme.b[j] * self.flows.flows(p.load_parts(t), level, t)
        storage = self.storage(scheme)
        self.remember(u)
        u0 = u.copy()
        start = u0 if p.capacity_tabulated else None
        d = p.dirichlet
        u[d.local] = d.values(t1)[d.local]
        self.linear.new_step()
        equations = StepEquations(p, self.linear, history, t1, scheme.a[0], dt * scheme.b[0],
                                  f"step {step} (t = {t1:.6g})")
        try:
            self.last = report = iterate(equations, u, self.spec)
        except NonlinearFailure as failed:
            if not self.cut_failed_steps:
                raise
            u[:] = u0
            return self._in_parts(u, t0, dt, step, failed)
        if start is not None:  # a band of temperatures where rho c is not > 0, crossed inside the step
            p.materials.check_crossing(start, u, float(t1))
            p.ranges.check_collectively(equations.where)
        self.nonlinear_iterations += report.iterations
        heat = heat + dt * scheme.b[0] * self.flows.flows(p.load_parts(t1), u, t1)
        self.flows.book(self.balance, u, heat, equations.dir_owned, equations.full[equations.dir_owned], storage)
        return SolveInfo(report.linear_iterations, report.residuals[-1] / max(report.residuals[0], 1e-300), True,
                         equations.correction())


    def _in_parts(self, u: np.ndarray, t0: float, dt: float, step: int, failed: ConvergenceError) -> SolveInfo:
        """The step from t0 again, in :data:`CUTS` parts of backward Euler, each booked in the
        balance; raises the step's own failure when the most parts fail too."""
        b = self.balance
        u0, energy, inflow, lag, gross, moved = u.copy(), b.energy, b.inflow.copy(), b.lag, b.gross, b.moved
        discarded = failed.iterations
        for parts in self.CUTS:
            h, linear_iterations, iterations = dt / parts, 0, 0
            try:
                for j in range(parts):
                    report = self._part(u, StepTime(t0 + (j + 1) * h, t0 + j * h), h,
                                        f"step {step} (t = {t0 + dt:.6g}), part {j + 1} of {parts}")
                    linear_iterations += report.linear_iterations
                    iterations += report.iterations
            except NonlinearFailure as exc:
                discarded += exc.iterations + linear_iterations
                u[:] = u0
                b.energy, b.inflow, b.lag, b.gross, b.moved = energy, inflow.copy(), lag, gross, moved
                continue
            self.last = report
            self.nonlinear_iterations += iterations
            self.steps_in_parts += 1
            log.info(f"step {step} (t = {t0 + dt:.6g}): the nonlinear solve did not converge; the step was taken in "
                     f"{parts} parts of backward Euler")
            return SolveInfo(linear_iterations + discarded,
                             report.residuals[-1] / max(report.residuals[0], 1e-300), True)
        error = NonlinearFailure(f"{failed} (nor when the step was taken in {self.CUTS[-1]} parts)")
        error.iterations = discarded
        raise error from None

    def _part(self, u: np.ndarray, t1: StepTime, h: float, where: str) -> newton.NonlinearReport:
        """One part of a step taken in parts: backward Euler over h to t1, booked in the balance."""
        p, d = self.problem, self.problem.dirichlet
        check_step_loads(p, u, t1, [t1], h, where)
        history = -p.storage(u)
        start = u.copy() if p.capacity_tabulated else None
        u[d.local] = d.values(t1)[d.local]
        self.linear.new_step()
        equations = StepEquations(p, self.linear, history, t1, 1.0, h, where)
        report = iterate(equations, u, self.spec)
        if start is not None:
            p.materials.check_crossing(start, u, float(t1))
            p.ranges.check_collectively(equations.where)
        heat = h * self.flows.flows(p.load_parts(t1), u, t1)
        self.flows.book(self.balance, u, heat, equations.dir_owned, equations.full[equations.dir_owned])
        return report


class NonlinearSteadySolver(LinearSolves):
    """``Q(u) = 0`` by Newton from the initial temperature, with pseudo-transient continuation
    when Newton alone fails."""

    PSEUDO_STEPS = 200
    STALLED = 20  # pseudo-steps without progress of the steady residual before they stop
    REJECTED = 8  # failed pseudo-steps in a row before they stop
    EASY = 2  # Newton iterations of a pseudo-step at most that let the next one be twice as long

    def __init__(self, problem: NonlinearHeatProblem, solver: SolverSpec, spec: NonlinearSpec):
        if not problem.dirichlet.count() and not exchange_names(problem):
            raise CaseError(unheld_steady_case(problem))
        self.problem, self.spec = problem, spec
        self.flows = HeatFlows(problem)
        self.linear = LinearisedSolver(problem, solver)
        self.balance = None
        self.nonlinear_iterations = 0
        self.pseudo_steps = 0  # taken by the last continuation
        self.last: newton.NonlinearReport | None = None

    def solve(self, u: np.ndarray) -> SolveInfo:
        p = self.problem
        d = p.dirichlet
        u[d.local] = d.values(0.0)[d.local]
        zero = np.zeros(p.mesh.n_owned)
        equations = StepEquations(p, self.linear, zero, 0.0, 0.0, 1.0, "the steady solve")
        start = u.copy()
        r0 = equations.norm(equations.residual(u))  # the residual the tolerances are relative to
        try:
            report = iterate(equations, u, self.spec, STEADY_ADVICE)
        except (ConvergenceError, RangeError):  # (the latter: no admissible Newton step from the start)
            u[:] = start
            log.info("steady solve: Newton from the initial temperature did not converge; pseudo-transient "
                     "continuation")
            try:
                report = self._continuation(u, equations, r0)
            except ConvergenceError as exc:
                raise ConvergenceError(f"{exc} (after {self.pseudo_steps} pseudo-transient steps, accepted or "
                                       f"retried shorter, from the initial temperature)") from None
        self.last = report
        self.nonlinear_iterations += report.iterations
        self.balance = self.flows.start(u, stored=False)  # steady: no storage, heat flows (W) cancel
        self.flows.book(self.balance, u, self.flows.flows(p.load_parts(0.0), u, 0.0), equations.dir_owned,
                        equations.full[equations.dir_owned], stored=False)
        return SolveInfo(report.linear_iterations, report.residuals[-1] / max(r0, 1e-300), True,
                         equations.correction())

    def _continuation(self, u: np.ndarray, steady: StepEquations, r0: float) -> newton.NonlinearReport:
        """Backward-Euler pseudo-steps ``(S(u) - S(u_prev)) / tau + Q(u) = 0`` with tau growing as
        the steady residual falls (at least doubling after a pseudo-step that Newton took in
        :attr:`EASY` iterations without the residual rising by 1%), until Newton on the steady equations
        converges. A pseudo-step
        whose Newton fails is taken again from where it started, 4 times shorter; the pseudo-steps
        stop when the steady residual has not fallen below 0.9 of its best in :attr:`STALLED` of
        them (a k that jumps with T has no smooth path to follow), or after :attr:`REJECTED`
        failed ones in a row. A pseudo-step fails when its Newton does not converge, a linear solve
        in it fails, or a property is not > 0 (or out of its range) wherever its Newton steps go;
        the steady Newton that follows names a property that stays out of range. When it fails too,
        a parameter whose range refused the pseudo-steps is named (they stopped where it leaves it)."""
        p = self.problem
        r = best = r0
        tau = self._first_tau(u)
        total = newton.NonlinearReport("pseudo-transient")
        since_best = rejected = self.pseudo_steps = 0
        refused = None  # the last parameter out of its range that stopped a pseudo-step
        self.linear.fresh = False  # a multigrid of the steady Jacobian (singular at 0 K under radiation): updated
        for _ in range(self.PSEUDO_STEPS):
            self.pseudo_steps += 1
            before = u.copy()
            history = -p.storage(u)
            pseudo = StepEquations(p, self.linear, history, 0.0, 1.0, tau, "the steady solve (pseudo-transient)")
            self.linear.new_step()
            try:  # (a linear solve that fails, a property not > 0 at the temperatures reached: too long a step)
                report = newton.solve(pseudo, u, replace(self.spec, rtol=1e-3, atol=0.0), self.linear.spec.rtol)
            except (ConvergenceError, NumericalError):
                report = newton.NonlinearReport("pseudo-transient")
            total.iterations += report.iterations
            total.linear_iterations += report.linear_iterations
            if not report.converged:
                refused = report.refused or refused
                u[:] = before
                tau *= 0.25
                rejected += 1
                if rejected >= self.REJECTED:
                    break
                continue
            rejected = 0
            r_prev, r = r, steady.norm(steady.residual(u))
            total.residuals.append(r)
            if r <= max(self.spec.atol, self.spec.rtol * r0 * 1e3):
                break
            best, since_best = (r, 0) if r < 0.9 * best else (best, since_best + 1)
            if since_best >= self.STALLED:
                break
            growth = min(max(r_prev / max(r, 1e-300), 0.5), 10.0)
            if report.iterations <= self.EASY and r <= 1.01 * r_prev:  # (a body heating up to where its losses
                growth = max(growth, 2.0)  # balance the source keeps its residual: the steps must grow anyway)
            tau *= growth
        # its tolerance relative to the initial residual, not to where the pseudo-steps brought it
        try:
            final = iterate(steady, u, replace(self.spec, atol=max(self.spec.atol, self.spec.rtol * r0)),
                            STEADY_ADVICE)
        except ConvergenceError:
            if isinstance(refused, RangeError):  # the pseudo-steps stopped where a parameter leaves its range
                raise RangeError(f"{refused} (the pseudo-transient steps toward the steady state could not go "
                                 f"past it)") from None
            raise
        final.iterations += total.iterations
        final.linear_iterations += total.linear_iterations
        final.method = "pseudo-transient continuation, then " + final.method
        return final

    def _first_tau(self, u: np.ndarray) -> float:
        """A pseudo-step of about a hundredth of the slowest diffusion time: (rho c / k) h^2 scale."""
        p = self.problem
        S = p.linearise(u, 0.0, 1.0, 0.0, jacobian=True)
        mass = S.symmetric[p.diagonal_slots].sum()
        lin = p.linearise(u, 0.0, 0.0, 1.0, jacobian=True)
        stiff = lin.symmetric[p.diagonal_slots].sum()
        buf = np.array([mass, stiff])
        p.mesh.comm.Allreduce(MPI.IN_PLACE, buf)
        return float(buf[0] / max(buf[1], 1e-300))


def make_nonlinear_stepper(problem: NonlinearHeatProblem, time: TimeSpec, solver: SolverSpec,
                           spec: NonlinearSpec) -> NonlinearStepper | NonlinearSteadySolver:
    """The steady solver or the implicit stepper of ``time``; never explicit Euler, which
    :func:`solver.case.load.load_case` refuses for every case that makes this problem."""
    if time.steady:
        return NonlinearSteadySolver(problem, solver, spec)
    dt = time.adaptive.dt_initial if time.adaptive is not None else time.dt
    cut = time.adaptive is None  # (an adaptive run cuts a failed step itself)
    if time.scheme == "bdf2":
        return NonlinearStepper(problem, dt, BDF2, solver, spec, startup=BACKWARD_EULER, cut_failed_steps=cut)
    return NonlinearStepper(problem, dt, theta_method(time.theta), solver, spec, cut_failed_steps=cut)
