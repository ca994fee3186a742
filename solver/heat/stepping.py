"""Time integration of ``M du/dt + K(t) u = F(t)``, and the steady state ``K u = F``.

Every implicit scheme is one linear multistep formula with its own coefficients
(:class:`Multistep`), advanced by one step skeleton (:class:`ImplicitStepper`)::

    (a0 M + dt b0 K1) u1 = - sum_{j>=1} (a_j M + dt b_j K_{1-j}) u_{1-j} + dt sum_{j>=0} b_j F_{1-j}

* theta method: ``a = (1, -1)``, ``b = (theta, 1 - theta)`` (backward Euler theta = 1,
  Crank-Nicolson theta = 1/2);
* BDF2: ``a = (3/2, -2, 1/2)``, ``b = (1, 0, 0)``, started with one backward-Euler step; on
  variable steps (``time.dt = "adaptive"``, :mod:`solver.heat.adaptive`) with w = dt_n / dt_n-1:
  ``a = ((1 + 2w)/(1 + w), -(1 + w), w^2/(1 + w))``;
* explicit Euler with the lumped (row-sum) mass: ``u1 = u0 + dt M_L^-1 (F0 - K u0)``, no solve;
  its stable step ``dt <= 2 / max_i sum_j |K_ij| / M_L,ii`` (Gershgorin, a safe bound) is
  checked, or picked with ``time.dt = "auto"``;
* steady: ``K u = F`` once (:class:`SteadySolver`).

Implicit matrices are assembled, constrained and factorised once, unless a Robin boundary's
heat transfer coefficient depends on t: then ``K(t)`` and the system are rebuilt every step.
With variable steps each new ``a0 M + dt b0 K`` is set up once and kept: multigrid updates its
one hierarchy (new Galerkin products on the first aggregates); other preconditioners keep the
systems of the last few step sizes (:data:`SYSTEM_CACHE`).
Each step also books the heat balance: energy change against the heat brought in by the
source, the Neumann and Robin boundaries and the Dirichlet boundaries (their reactions, from
the unconstrained rows).
"""

from __future__ import annotations

import math
import time as clock
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from solver.case.expressions import StepTime
from solver.case.records import SolverSpec, TimeSpec
from solver.errors import CaseError, NumericalError
from solver.heat.balance import HeatBalance, HeatFlows
from solver.heat.checks import check_step_loads, step_load_times
from solver.heat.parts import exchange_names, unheld_steady_case
from solver.heat.problem import HeatProblem
from solver.heat.schedule import auto_steps
from solver.heat.state import MultistepState, StepperState, SystemCacheState
from solver.heat.system import ConstrainedSystem
from solver.la.krylov import SolveInfo
from solver.la.matrix import DistributedMatrix, RowsOperator


SYSTEM_CACHE = 4  # systems of recent step sizes kept by a preconditioner that cannot be updated
BORROW_RATIO = 4.0  # a new step size borrows the preconditioner of a set-up system this close
BORROW_ITERATIONS = 30  # ... until its solves have taken this many iterations: then it is set up


# what a failed step is advised to try first (adaptive steps leave it out of their own messages)
ADAPTIVE_ADVICE = ("time.dt = \"adaptive\" (it cuts a step whose solve fails: a narrow melting range, or a steep "
                   "c(T), may need far shorter steps than the rest of the run), ")


@dataclass(frozen=True)
class Multistep:
    """Coefficients of ``sum_j a_j M u_{1-j} + dt sum_j b_j (K u - F)_{1-j} = 0``, j = 0 the new level,
    and the formula's order of accuracy."""

    a: tuple[float, ...]
    b: tuple[float, ...]
    order: int = field(default=1, compare=False)

    @property
    def history(self) -> int:
        """Earlier solutions the formula needs: u0, u_-1, ..."""
        return len(self.a) - 1

    @property
    def mass_only_history(self) -> bool:
        """True when earlier levels enter through M alone (one product with M per step)."""
        return not any(self.b[1:])


def theta_method(theta: float) -> Multistep:
    return Multistep((1.0, -1.0), (theta, 1.0 - theta), 2 if theta == 0.5 else 1)


def bdf2(ratio: float = 1.0) -> Multistep:
    """BDF2 on a step ``ratio`` times as long as the previous one (1: the constant-step formula)."""
    w = ratio
    return Multistep(((1.0 + 2.0 * w) / (1.0 + w), -(1.0 + w), w * w / (1.0 + w)), (1.0, 0.0, 0.0), 2)


BACKWARD_EULER = theta_method(1.0)
BDF2 = bdf2(1.0)


def _combine(a: float, M: sp.csr_matrix, b: float, K: sp.csr_matrix) -> sp.csr_matrix:
    """``a M + b K`` of two matrices with one sparsity pattern (their data arrays add, the sum
    into the first product)."""
    data = np.multiply(M.data, a)
    data += np.multiply(K.data, b)
    return sp.csr_matrix((data, M.indices, M.indptr), shape=M.shape)


class Solves:
    """What every stepper and steady solver reports of its solves: preconditioner set-ups, updates
    (multigrid: new Galerkin products for a new matrix) and their seconds, nonlinear iterations,
    and the preconditioner of its current system (None before the first)."""

    rebuilds = 0
    updates = 0
    setup_seconds = 0.0
    nonlinear_iterations = 0
    steps_in_parts = 0  # fixed steps whose nonlinear solve failed, taken again in parts (this process's)

    @property
    def preconditioner(self):
        return None


class Stepper(Solves):
    """What every time stepper keeps: the problem, the heat flows and the balance, and for the
    multistep schemes the earlier solutions and step sizes. ``dt`` is the size of the next step
    (an adaptive run sets it before each step)."""

    dt: float
    scheme: Multistep | None = None
    startup: Multistep | None = None

    def __init__(self, problem: HeatProblem):
        self.problem = problem
        self.flows = HeatFlows(problem)
        self.balance: HeatBalance | None = None
        self.earlier: list[np.ndarray] = []  # u_-1, u_-2, ...: what the scheme needs beyond u0
        self.earlier_dt: list[float] = []  # the sizes of the steps that ended at u0, u_-1, ...
        self.earlier_energy: list[float] = []  # the energies of u_-1, ... (the balance of BDF2)
        self.last_scheme: Multistep | None = None  # the formula of the last step

    def scheme_of_step(self) -> Multistep:
        """The formula of the next step: the start-up one while too few solutions are known; BDF2
        with the ratio of this step to the previous one."""
        if len(self.earlier) < self.scheme.history - 1:
            return self.startup
        if self.scheme.history == 2 and self.earlier_dt:
            scheme = bdf2(self.dt / self.earlier_dt[0])
            return self.scheme if scheme == self.scheme else scheme
        return self.scheme

    def remember(self, u0: np.ndarray) -> None:
        """Keep u0 (before it is overwritten by the step) and the step's size, as far as the scheme
        needs them."""
        keep = self.scheme.history - 1
        if keep:
            self.earlier = ([u0.copy()] + self.earlier)[:keep]
            self.earlier_dt = ([self.dt] + self.earlier_dt)[:keep]
            self.earlier_energy = ([self.balance.energy] + self.earlier_energy)[:keep]

    def storage(self, scheme: Multistep) -> tuple:
        """(a, energies of u0, u_-1, ...) of this step for the heat balance (before :meth:`remember`)."""
        return scheme.a, [self.balance.energy] + self.earlier_energy[: scheme.history - 1]

    def save(self) -> tuple:
        """What a step changes besides u: the history and the balance (:meth:`rewind` takes it back)."""
        b = self.balance
        return (list(self.earlier), list(self.earlier_dt), list(self.earlier_energy), b.energy, b.inflow.copy(), b.lag,
                b.gross, b.moved)

    def rewind(self, saved: tuple) -> None:
        """Undo a rejected step (u is restored by the caller)."""
        earlier, earlier_dt, earlier_energy, energy, inflow, lag, gross, moved = saved
        self.earlier, self.earlier_dt, self.earlier_energy = list(earlier), list(earlier_dt), list(earlier_energy)
        self.balance.energy, self.balance.inflow, self.balance.lag = energy, inflow.copy(), lag
        self.balance.gross, self.balance.moved = gross, moved

    def restart_state(self) -> StepperState:
        """What a restart needs of this stepper (:mod:`solver.heat.state`)."""
        lag = self.balance.lag if self.balance is not None else 0.0
        return StepperState(MultistepState(self.earlier[0] if self.earlier else None, tuple(self.earlier_dt),
                                           tuple(self.earlier_energy), lag),
                            nonlinear_iterations=self.nonlinear_iterations)

    def resume(self, state: StepperState) -> None:
        """Take back :meth:`restart_state` (collective: energies missing from an older checkpoint
        are computed again)."""
        m = state.multistep
        if m.previous is not None:
            self.earlier = [m.previous]
        self.earlier_dt = [float(v) for v in (m.earlier_dt if m.earlier_dt is not None else
                                              [self.dt] * len(self.earlier))]
        self.earlier_energy = list(m.earlier_energy) if m.earlier_energy is not None \
            else [self.problem.energy(v) for v in self.earlier]
        if self.balance is not None:
            self.balance.lag = m.balance_lag
        self.nonlinear_iterations = state.nonlinear_iterations

    def start(self, u: np.ndarray, t: float = 0.0) -> None:
        """Impose Dirichlet values at the start time and open the heat balance, the energy their
        jump from the initial values brings booked as heat in through their boundaries."""
        p, d = self.problem, self.problem.dirichlet
        before = p.nodal_energy(u)
        u[d.local] = d.values(t)[d.local]
        rows = np.flatnonzero(d.mask[: p.mesh.n_owned])
        self.balance = self.flows.start(u, p.nodal_energy(u) - before, rows)


class ImplicitStepper(Stepper):
    """One step skeleton for every linear multistep scheme; ``startup`` advances the first
    steps, while fewer earlier solutions are known than ``scheme`` needs. ``variable``: the step
    size may change between steps (each new system is set up once and kept, see the module)."""

    def __init__(self, problem: HeatProblem, dt: float, scheme: Multistep, solver: SolverSpec,
                 startup: Multistep | None = None, variable: bool = False):
        super().__init__(problem)
        self.dt, self.scheme, self.startup, self.solver = float(dt), scheme, startup, solver
        self.variable = variable
        self.M = RowsOperator(problem.M, problem.mesh.halo)  # no split copy of M (8-12 bytes per entry)
        self._system = self._system_key = None
        self._history = self._history_key = None
        self._systems: OrderedDict = OrderedDict()  # variable steps: (a0, c, t) -> system, most recent last
        self._seen: OrderedDict = OrderedDict()  # (a0, c, t) of the recent steps' matrices
        self._pending: list = []  # after a restart: the cached systems to set up again, oldest first
        self.setup_from: tuple | None = None  # (a0, c, t) of the matrix multigrid's aggregates came from
        self.rebuilds = self.updates = 0  # preconditioners built, and updated for a new matrix
        self.borrowed = 0  # steps that used the preconditioner of another step size
        self._borrowing = None  # the key of this step's matrix while it borrows
        self.setup_seconds = 0.0
        if not variable:
            first = 2 if startup is not None else 1  # the first step of the scheme itself
            self._prepare(scheme, (first - 1) * self.dt, first * self.dt)

    @property
    def system(self) -> ConstrainedSystem:
        """The constrained system of the scheme's current step (not of its start-up steps)."""
        return self._system

    @property
    def preconditioner(self):
        return None if self._system is None else self._system.precond

    def restart_state(self) -> StepperState:
        state = super().restart_state()
        if not self.variable:
            return state
        seen = tuple((*k, n) for k, n in self._seen.items())
        return replace(state, systems=SystemCacheState(self.setup_from, tuple(self._systems), seen))

    def resume(self, state: StepperState) -> None:
        super().resume(state)
        if self.variable and state.systems is not None:
            s = state.systems
            self.setup_from = s.setup_from
            self._pending = list(s.systems)
            self._seen = OrderedDict(((a0, c, t), n) for a0, c, t, n in s.seen)

    def _key(self, scheme: Multistep, t: float):
        return scheme, self.dt, t if self.problem.time_dependent_matrix else None

    def _matrix(self, a0: float, c: float, t: float) -> sp.csr_matrix:
        return _combine(a0, self.problem.M, c, self.problem.stiffness(t))

    def _prepare(self, scheme: Multistep, t0: float, t1: float) -> ConstrainedSystem:
        """The system ``a0 M + dt b0 K(t1)`` of ``scheme`` (kept while it stays the same) and,
        when earlier levels enter through K too, the operator that applies to u0."""
        p, dt = self.problem, self.dt
        start = clock.perf_counter()
        if self.variable:
            system = self._variable_system(scheme, t1)
        else:
            system, key = self._system, self._key(scheme, t1)
            if key != self._system_key:
                def assemble():
                    return self._matrix(scheme.a[0], dt * scheme.b[0], t1)
                if scheme is self.scheme:  # the start-up system is used once and dropped
                    system = ConstrainedSystem(assemble, p, self.solver, previous=self._system)
                    self._system, self._system_key = system, key
                    self._count(system)
                else:  # a start-up step: the scheme's preconditioner serves (3/2 M + dt K against M + dt K)
                    system = ConstrainedSystem(assemble, p, self.solver, borrow=self._system)
        if not scheme.mass_only_history and self._key(scheme, t0) != self._history_key:
            if scheme.history != 1:
                raise NotImplementedError("earlier levels through K need one operator per level")
            self._history_key = self._key(scheme, t0)
            self._history = DistributedMatrix(self._matrix(-scheme.a[1], -dt * scheme.b[1], t0), p.mesh.halo)
        self.setup_seconds += clock.perf_counter() - start
        return system

    def _count(self, system: ConstrainedSystem) -> None:
        self.rebuilds += not system.updated
        self.updates += system.updated

    def _variable_system(self, scheme: Multistep, t1: float) -> ConstrainedSystem:
        """The system ``a0 M + c K`` of this step: from the cache; or, while a cached one is
        spectrally within a factor :data:`BORROW_RATIO` and this matrix's solves have taken at
        most :data:`BORROW_ITERATIONS` iterations, with that one's preconditioner (CG takes a few
        more iterations, no set-up: the step cut to land on an output time, the first BDF2 step
        after a change of size, the sizes that a growing dt passes through); else set up (see
        :meth:`_set_up`). Decided on iteration counts only, so the same on every run."""
        self._borrowing = None
        if self._pending:
            pending, self._pending = self._pending, []
            for key in pending:
                self._set_up(*key)
        a0, c = scheme.a[0], self.dt * scheme.b[0]
        key = (a0, c, t1 if self.problem.time_dependent_matrix else 0.0)
        if key in self._systems:
            self._systems.move_to_end(key)
            self._system = self._systems[key]
            return self._system
        used = self._seen.pop(key, 0)
        self._seen[key] = used
        while len(self._seen) > 4 * SYSTEM_CACHE:
            self._seen.popitem(last=False)
        if used <= BORROW_ITERATIONS and not self.problem.time_dependent_matrix:
            near = [(max(a0 / a, a / a0, c / cc, cc / c), system) for (a, cc, _), system in self._systems.items()]
            ratio, nearest = min(near, key=lambda pair: pair[0], default=(math.inf, None))
            if ratio <= BORROW_RATIO:
                self.borrowed += 1
                self._borrowing = key
                return ConstrainedSystem(lambda: self._matrix(*key), self.problem, self.solver, borrow=nearest)
        return self._set_up(*key)

    def _set_up(self, a0: float, c: float, t: float) -> ConstrainedSystem:
        """Set up the system ``a0 M + c K(t)`` and cache it: multigrid updates its one hierarchy
        (built from the matrix of ``setup_from``, also after a restart, so that a restart
        continues bit for bit); others build one and keep the last :data:`SYSTEM_CACHE`."""
        key = (a0, c, t)
        previous = next(reversed(self._systems.values()), None)
        if previous is None and self.setup_from not in (None, key) and self.solver.preconditioner == "amg":
            previous = ConstrainedSystem(lambda: self._matrix(*self.setup_from), self.problem, self.solver)
        system = ConstrainedSystem(lambda: self._matrix(*key), self.problem, self.solver, previous=previous)
        if self.setup_from is None:
            self.setup_from = key
        self._count(system)
        if system.updated:  # one hierarchy, updated in place: the older systems no longer match it
            self._systems.clear()
        self._systems[key] = system
        while len(self._systems) > SYSTEM_CACHE:
            self._systems.popitem(last=False)
        self._system = system
        return system

    def step(self, u: np.ndarray, t0: float, step: int) -> SolveInfo:
        """Advance ``u`` (local vector, ghosts current) from t0 to t0 + dt in place."""
        scheme = self.last_scheme = self.scheme_of_step()
        p, dt = self.problem, self.dt
        t1 = StepTime(t0 + dt, t0)  # each end sees the switches of t from inside the step
        check_step_loads(p, u, t1, step_load_times(scheme, t1, dt), dt, f"step {step} (t = {t1:.6g})")
        system = self._prepare(scheme, StepTime(t0, t1), t1)
        levels = [u] + self.earlier[: scheme.history - 1]  # u0, u_-1, ...
        if scheme.mass_only_history:
            combined = -scheme.a[1] * levels[0]
            for a, level in zip(scheme.a[2:], levels[1:]):
                combined += -a * level
            rhs = self.M.matvec(combined)
        else:
            rhs = self._history.matvec(u)
        heat = 0.0
        for j, level in enumerate(levels, start=1):
            if scheme.b[j]:
                t = StepTime(t1 - j * dt, t1 - (j - 1) * dt)
                parts = p.load_parts(t)
                rhs += dt * scheme.b[j] * sum(parts.values(), 0.0)
                heat = heat + dt * scheme.b[j] * self.flows.flows(parts, level, t)
        parts1 = p.load_parts(t1)
        rhs += dt * scheme.b[0] * sum(parts1.values(), 0.0)
        storage = self.storage(scheme)
        self.remember(u)
        rhs_dirichlet = rhs[system.dir_owned]
        info = system.solve(rhs, u, t1, step)
        if self._borrowing is not None:
            self._seen[self._borrowing] += info.iterations
        heat = heat + dt * scheme.b[0] * self.flows.flows(parts1, u, t1)
        self.flows.book(self.balance, u, heat, system.dir_owned, system.reactions(u, rhs_dirichlet), storage)
        return info


class ExplicitEulerStepper(Stepper):
    def __init__(self, problem: HeatProblem, dt, t_end: float):
        super().__init__(problem)
        self.K = DistributedMatrix(problem.stiffness(0.0), problem.mesh.halo)
        self.ml = problem.mass_weights.copy()  # lumped mass: row sums of M
        self.dt_limit = self.stable_limit()
        if dt == "auto":
            dt = t_end / auto_steps(t_end, self.dt_limit)
        elif dt > self.dt_limit:
            raise CaseError(self._unstable(dt, "time.dt"))
        self.dt = float(dt)
        n = problem.mesh.n_owned
        free = ~problem.dirichlet.mask[:n]
        self.dir_owned = np.flatnonzero(~free)
        self.rate = np.where(free, 1.0 / self.ml, 0.0)

    def stable_limit(self, t: float = 0.0) -> float:
        return stable_explicit_dt(self.problem, t)

    def _unstable(self, dt: float, what: str) -> str:
        if not self.dt_limit > 0.0:  # (0, or NaN: no step is stable; the advice below could not be followed)
            return (f"{what} = {dt:g} s: explicit-euler has no stable step here (its limit, the lumped heat capacity "
                    f"over the conductance, is {self.dt_limit:g} s): rho c times the cells' volumes underflows to 0, "
                    f"or the conductance overflows; check material.rho, material.c, k and the mesh's size and units")
        return (f"{what} = {dt:g} s exceeds the stability limit {self.dt_limit:.6g} s of explicit-euler "
                f"(lumped mass, Gershgorin bound); use time.dt <= {self.dt_limit:.6g}, time.dt = \"auto\", "
                f"or an implicit scheme (backward-euler, crank-nicolson, bdf2)")

    def step(self, u: np.ndarray, t0: float, step: int) -> SolveInfo:
        dt, p, n = self.dt, self.problem, self.problem.mesh.n_owned
        t1 = StepTime(t0 + dt, t0)  # each end sees the switches of t from inside the step
        t0 = StepTime(t0, t1)
        check_step_loads(p, u, t1, [t0], dt, f"step {step} (t = {t1:.6g})")
        if p.time_dependent_matrix and t0 > 0.0:  # h(t) moves K and the stability limit
            self.K = DistributedMatrix(p.stiffness(t0), p.mesh.halo)
            self.dt_limit = self.stable_limit(t0)
            if dt > self.dt_limit:
                raise NumericalError(self._unstable(dt, f"at t = {t0:.6g} s (h of a robin boundary grew), time.dt"))
        parts0 = p.load_parts(t0)
        heat = dt * self.flows.flows(parts0, u, t0)
        residual = sum(parts0.values(), 0.0) - self.K.matvec(u)  # F0 - K u0 (updates the ghosts of u)
        u_old_dirichlet = u[self.dir_owned].copy()
        u[:n] += dt * self.rate * residual
        d = p.dirichlet
        u[d.local] = d.values(t1)[d.local]
        p.mesh.halo.update(u)
        reactions = self.ml[self.dir_owned] * (u[self.dir_owned] - u_old_dirichlet) - dt * residual[self.dir_owned]
        self.flows.book(self.balance, u, heat, self.dir_owned, reactions)
        return SolveInfo(0, 0.0, True)


def stable_explicit_dt(problem: HeatProblem, t: float = 0.0) -> float:
    """Largest stable explicit-Euler step with the lumped mass at time t (Gershgorin bound; collective)."""
    n = problem.mesh.n_owned
    absrow = np.asarray(abs(problem.stiffness(t)).sum(axis=1)).ravel()
    free = ~problem.dirichlet.mask[:n]
    weights = problem.explicit_mass_weights()
    g = np.array([np.max(absrow[free] / weights[free]) if free.any() else 0.0])
    problem.mesh.comm.Allreduce(MPI.IN_PLACE, g, op=MPI.MAX)
    return 2.0 / g[0] if g[0] > 0 else math.inf


class SteadySolver(Solves):
    """``K u = F`` once, with the heat balance of the flows (W), which cancel."""

    def __init__(self, problem: HeatProblem, solver: SolverSpec):
        if not problem.dirichlet.count() and not exchange_names(problem):
            raise CaseError(unheld_steady_case(problem))
        self.problem = problem
        self.flows = HeatFlows(problem)
        self.system = ConstrainedSystem(lambda: problem.stiffness(0.0), problem, solver)
        self.balance: HeatBalance | None = None

    @property
    def preconditioner(self):
        return self.system.precond

    def solve(self, u: np.ndarray) -> SolveInfo:
        p, system = self.problem, self.system
        parts = p.load_parts(0.0)
        rhs = sum(parts.values(), np.zeros(p.mesh.n_owned))
        rhs_dirichlet = rhs[system.dir_owned]
        info = system.solve(rhs, u, 0.0, 0)
        self.balance = self.flows.start(u, stored=False)  # steady: no storage, heat flows (W) cancel
        self.flows.book(self.balance, u, self.flows.flows(parts, u, 0.0), system.dir_owned,
                        system.reactions(u, rhs_dirichlet), stored=False)
        return info

    def check_roundoff(self, u: np.ndarray) -> None:
        """Stop (exit 3, collective) a steady solution that the round-off of the system's entries
        can move beyond the tolerances (:meth:`ConstrainedSystem.check_roundoff`)."""
        self.system.check_roundoff(u, "the steady solve")


def make_stepper(problem: HeatProblem, time: TimeSpec, solver: SolverSpec) -> Stepper | SteadySolver:
    if time.steady:
        return SteadySolver(problem, solver)
    if time.scheme == "explicit-euler":
        return ExplicitEulerStepper(problem, time.dt, time.t_end)
    variable = time.adaptive is not None
    dt = time.adaptive.dt_initial if variable else time.dt
    if time.scheme == "bdf2":
        return ImplicitStepper(problem, dt, BDF2, solver, startup=BACKWARD_EULER, variable=variable)
    return ImplicitStepper(problem, dt, theta_method(time.theta), solver, variable=variable)
