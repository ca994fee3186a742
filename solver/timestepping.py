"""Time integration of ``M du/dt + K u = F(t)``, and the steady state ``K u = F``.

* theta method: ``(M + theta dt K) u1 = (M - (1-theta) dt K) u0 + dt (theta F1 + (1-theta) F0)``
  (backward Euler theta = 1, Crank-Nicolson theta = 1/2);
* BDF2: ``(3/2 M + dt K) u1 = M (2 u0 - u_-1 / 2) + dt F1``, started with one backward-Euler step;
* explicit Euler with the lumped (row-sum) mass: ``u1 = u0 + dt M_L^-1 (F0 - K u0)``, no solve;
  its stable step ``dt <= 2 / max_i sum_j |K_ij| / M_L,ii`` (Gershgorin, a safe bound) is
  checked, or picked with ``time.dt = "auto"``;
* steady: ``K u = F`` once.

Implicit matrices are assembled, constrained and factorised once, unless a Robin boundary's
heat transfer coefficient depends on t: then ``K(t)`` and the system are rebuilt every step.
Each step also books the heat balance: energy change against the heat brought in by the
source, the Neumann and Robin boundaries and the Dirichlet boundaries (their reactions, from
the unconstrained rows).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from solver.errors import CaseError, ConvergenceError, NumericalError
from solver.linalg import DistributedMatrix, SolveInfo, make_preconditioner, pcg
from solver.problem import HeatProblem, constrain

@dataclass
class HeatBalance:
    """Cumulative heat balance since the start (J), identical on every rank.

    ``inflow[i]`` is the heat brought in by ``terms[i]``: the source, then each Neumann,
    Robin and Dirichlet boundary by name."""

    terms: list
    energy_start: float
    energy: float
    inflow: np.ndarray = None

    def __post_init__(self):
        if self.inflow is None:
            self.inflow = np.zeros(len(self.terms))

    @property
    def change(self) -> float:
        return self.energy - self.energy_start

    @property
    def imbalance(self) -> float:
        return self.change - float(self.inflow.sum())

    @property
    def relative(self) -> float:
        scale = max(abs(self.change), float(np.abs(self.inflow).sum()), 1e-300)
        return abs(self.imbalance) / scale

    def as_dict(self) -> dict:
        return {"energy_change": self.change, "imbalance": self.imbalance, "relative_imbalance": self.relative,
                **{f"heat_in_{k}": float(v) for k, v in zip(self.terms, self.inflow)}}


_SERIAL = itertools.count()


class _System:
    """A constrained SPD system matrix with its preconditioner and Dirichlet rows."""

    def __init__(self, A: sp.csr_matrix, problem: HeatProblem, preconditioner: str):
        self.serial = next(_SERIAL)  # identifies the system in the lifted-Dirichlet cache
        mask = problem.dirichlet_mask
        n_owned = problem.mesh.n_owned
        A_c, self.lift, diag = constrain(A, mask)
        self.A = DistributedMatrix(A_c, problem.mesh.halo)
        self.dir_owned = np.flatnonzero(mask[:n_owned])
        self.dir_diag = diag[self.dir_owned]
        self.rows_dirichlet = A[self.dir_owned]  # unconstrained rows, for the reactions
        try:
            self.precond = make_preconditioner(preconditioner, self.A)
        except ImportError as exc:
            raise CaseError(str(exc)) from None


class Stepper:
    """Shared machinery: Dirichlet data, solves, and heat-balance bookkeeping."""

    def __init__(self, problem: HeatProblem, solver: dict):
        self.problem, self.solver = problem, solver
        self.comm = problem.mesh.comm
        self.n_owned = problem.mesh.n_owned
        self.dir_local = np.flatnonzero(problem.dirichlet_mask)
        self._lifted: dict = {}
        self.balance: HeatBalance | None = None

    def start(self, u: np.ndarray, t: float = 0.0) -> None:
        """Impose Dirichlet values at the start time and open the heat balance."""
        g = self.problem.dirichlet_values(t)
        u[self.dir_local] = g[self.dir_local]
        e = self.problem.energy(u)
        self.balance = HeatBalance(self.problem.balance_terms, e, e)

    def _dirichlet(self, system: _System, t: float):
        key = (system.serial, t if self.problem.time_dependent_dirichlet else None)
        if key not in self._lifted:
            g = self.problem.dirichlet_values(t)
            self._lifted = {key: (g, system.lift @ g)}
        return self._lifted[key]

    def _solve(self, system: _System, rhs: np.ndarray, u: np.ndarray, t1: float, step: int) -> SolveInfo:
        """Solve the constrained system for u (in place); rhs is the unconstrained right-hand side."""
        g, lifted = self._dirichlet(system, t1)
        rhs = rhs - lifted
        rhs[system.dir_owned] = system.dir_diag * g[system.dir_owned]
        u[self.dir_local] = g[self.dir_local]
        s = self.solver
        info = pcg(system.A, rhs, u, system.precond, s["rtol"], s["atol"], s["max_iterations"])
        if not info.converged:
            where = "the steady solve" if step == 0 else f"step {step} (t = {t1:.6g})"
            raise ConvergenceError(
                f"{where}: the linear solver did not converge in {info.iterations} iterations "
                f"(relative residual {info.residual:.3e} > solver.rtol = {s['rtol']:g}); try "
                f"solver.preconditioner = \"bjacobi\" or \"amg\", a larger solver.max_iterations"
                + ("" if step == 0 else " or a smaller time.dt"))
        return info

    def _book(self, u_new: np.ndarray, heat_in_local: np.ndarray, rows: np.ndarray, reactions: np.ndarray) -> None:
        """Add one step's heat (J, this rank's parts; Dirichlet reactions of owned ``rows``) to
        the balance; one Allreduce."""
        buf = np.empty(1 + len(heat_in_local))
        buf[0] = np.dot(self.problem.mass_weights, u_new[: self.n_owned])
        buf[1:] = heat_in_local + self.problem.local_reactions(rows, reactions)
        self.comm.Allreduce(MPI.IN_PLACE, buf)
        self.balance.energy = float(buf[0])
        self.balance.inflow += buf[1:]


class ThetaStepper(Stepper):
    def __init__(self, problem: HeatProblem, dt: float, theta: float, solver: dict):
        super().__init__(problem, solver)
        self.dt, self.theta = float(dt), float(theta)
        self.built_for = None  # (t0, t1) of B and the system
        self._matrices(0.0, self.dt)

    def _matrices(self, t0: float, t1: float) -> None:
        """``B = M - (1-theta) dt K(t0)`` and the system ``M + theta dt K(t1)``."""
        if self.built_for == (t0, t1):
            return
        self.built_for = (t0, t1)
        p, dt, theta = self.problem, self.dt, self.theta
        M, K0, K1 = p.M, p.stiffness(t0), p.stiffness(t1)
        # M and K share one sparsity pattern: combine their data arrays.
        self.B = DistributedMatrix(
            sp.csr_matrix((M.data - (1.0 - theta) * dt * K0.data, M.indices, M.indptr), shape=M.shape),
            p.mesh.halo)
        A = sp.csr_matrix((M.data + theta * dt * K1.data, M.indices, M.indptr), shape=M.shape)
        self.system = _System(A, p, self.solver["preconditioner"])

    def step(self, u: np.ndarray, t0: float, step: int) -> SolveInfo:
        """Advance ``u`` (local vector, ghosts current) from t0 to t0 + dt in place."""
        dt, theta, p = self.dt, self.theta, self.problem
        t1 = t0 + dt
        if p.time_dependent_matrix:
            self._matrices(t0, t1)
        parts1 = p.load_parts(t1)
        rhs = self.B.matvec(u)
        heat = 0.0
        if theta < 1.0:
            parts0 = p.load_parts(t0)
            rhs += dt * (1.0 - theta) * sum(parts0.values(), 0.0)
            heat = dt * (1.0 - theta) * p.local_flows(parts0, u, t0)
        rhs += dt * theta * sum(parts1.values(), 0.0)
        rhs_dirichlet = rhs[self.system.dir_owned]
        info = self._solve(self.system, rhs, u, t1, step)
        heat = heat + dt * theta * p.local_flows(parts1, u, t1)
        self._book(u, heat, self.system.dir_owned, self.system.rows_dirichlet @ u - rhs_dirichlet)
        return info


class BDF2Stepper(Stepper):
    def __init__(self, problem: HeatProblem, dt: float, solver: dict):
        super().__init__(problem, solver)
        self.dt = float(dt)
        self.M = DistributedMatrix(problem.M, problem.mesh.halo)
        self.built_for = None  # t1 of the system
        self._matrices(2.0 * self.dt)
        self.previous: np.ndarray | None = None  # u one step back (restored on restart)

    def _matrices(self, t1: float) -> None:
        if self.built_for == t1:
            return
        self.built_for = t1
        M, K = self.problem.M, self.problem.stiffness(t1)
        A = sp.csr_matrix((1.5 * M.data + self.dt * K.data, M.indices, M.indptr), shape=M.shape)
        self.system = _System(A, self.problem, self.solver["preconditioner"])

    def step(self, u: np.ndarray, t0: float, step: int) -> SolveInfo:
        if self.previous is None:  # start-up: one backward-Euler step (its matrix is dropped after)
            first = ThetaStepper(self.problem, self.dt, 1.0, self.solver)
            first.balance = self.balance
            self.previous = u.copy()
            return first.step(u, t0, step)
        dt, p = self.dt, self.problem
        t1 = t0 + dt
        if p.time_dependent_matrix:
            self._matrices(t1)
        history = 2.0 * u - 0.5 * self.previous
        self.previous = u.copy()
        parts1 = p.load_parts(t1)
        rhs = self.M.matvec(history) + dt * sum(parts1.values(), 0.0)
        rhs_dirichlet = rhs[self.system.dir_owned]
        info = self._solve(self.system, rhs, u, t1, step)
        self._book(u, dt * p.local_flows(parts1, u, t1), self.system.dir_owned,
                   self.system.rows_dirichlet @ u - rhs_dirichlet)
        return info

    def state(self) -> dict:
        """What a restart needs besides u: the previous solution."""
        return {"previous": self.previous}


class ExplicitEulerStepper(Stepper):
    def __init__(self, problem: HeatProblem, dt, t_end: float, solver: dict):
        super().__init__(problem, solver)
        self.K = DistributedMatrix(problem.K, problem.mesh.halo)
        self.ml = problem.mass_weights.copy()  # lumped mass: row sums of M
        self.dt_limit = self.stable_limit()
        if dt == "auto":
            n = math.ceil(t_end / (0.9 * self.dt_limit) - 1e-9)
            dt = t_end / n
        elif dt > self.dt_limit:
            raise CaseError(self._unstable(dt, "time.dt"))
        self.dt = float(dt)
        free = ~problem.dirichlet_mask[: self.n_owned]
        self.dir_owned = np.flatnonzero(~free)
        self.rate = np.where(free, 1.0 / self.ml, 0.0)

    def stable_limit(self, t: float = 0.0) -> float:
        return stable_explicit_dt(self.problem, t)

    def _unstable(self, dt: float, what: str) -> str:
        return (f"{what} = {dt:g} s exceeds the stability limit {self.dt_limit:.6g} s of explicit-euler "
                f"(lumped mass, Gershgorin bound); use time.dt <= {self.dt_limit:.6g}, time.dt = \"auto\", "
                f"or an implicit scheme (backward-euler, crank-nicolson, bdf2)")

    def step(self, u: np.ndarray, t0: float, step: int) -> SolveInfo:
        dt, p, n = self.dt, self.problem, self.n_owned
        t1 = t0 + dt
        if p.time_dependent_matrix and t0 > 0.0:  # h(t) moves K and the stability limit
            self.K = DistributedMatrix(p.stiffness(t0), p.mesh.halo)
            self.dt_limit = self.stable_limit(t0)
            if dt > self.dt_limit:
                raise NumericalError(self._unstable(dt, f"at t = {t0:.6g} s (h of a robin boundary grew), time.dt"))
        parts0 = p.load_parts(t0)
        heat = dt * p.local_flows(parts0, u, t0)
        residual = sum(parts0.values(), 0.0) - self.K.matvec(u)  # F0 - K u0 (updates the ghosts of u)
        u_old_dirichlet = u[self.dir_owned].copy()
        u[:n] += dt * self.rate * residual
        g = p.dirichlet_values(t1)
        u[self.dir_local] = g[self.dir_local]
        p.mesh.halo.update(u)
        reactions = self.ml[self.dir_owned] * (u[self.dir_owned] - u_old_dirichlet) - dt * residual[self.dir_owned]
        self._book(u, heat, self.dir_owned, reactions)
        return SolveInfo(0, 0.0, True)


def stable_explicit_dt(problem: HeatProblem, t: float = 0.0) -> float:
    """Largest stable explicit-Euler step with the lumped mass at time t (Gershgorin bound; collective)."""
    n = problem.mesh.n_owned
    absrow = np.asarray(abs(problem.stiffness(t)).sum(axis=1)).ravel()
    free = ~problem.dirichlet_mask[:n]
    g = np.array([np.max(absrow[free] / problem.mass_weights[free]) if free.any() else 0.0])
    problem.mesh.comm.Allreduce(MPI.IN_PLACE, g, op=MPI.MAX)
    return 2.0 / g[0] if g[0] > 0 else math.inf


class SteadySolver(Stepper):
    def __init__(self, problem: HeatProblem, solver: dict):
        super().__init__(problem, solver)
        if not problem.has_dirichlet and not problem.robin:
            raise CaseError("time.scheme = \"steady\" needs at least one dirichlet or robin boundary "
                            "(with only insulated and neumann boundaries the steady temperature is not unique)")
        self.system = _System(problem.K, problem, solver["preconditioner"])

    def solve(self, u: np.ndarray) -> SolveInfo:
        p = self.problem
        parts = p.load_parts(0.0)
        rhs = sum(parts.values(), np.zeros(self.n_owned))
        rhs_dirichlet = rhs[self.system.dir_owned]
        info = self._solve(self.system, rhs, u, 0.0, 0)
        e = p.energy(u)
        self.balance = HeatBalance(p.balance_terms, e, e)  # steady: no storage, heat flows (W) cancel
        self._book(u, p.local_flows(parts, u, 0.0), self.system.dir_owned,
                   self.system.rows_dirichlet @ u - rhs_dirichlet)
        return info


def make_stepper(problem: HeatProblem, case) -> Stepper:
    t = case.values["time"]
    scheme, solver = t["scheme"], case.values["solver"]
    if scheme == "steady":
        return SteadySolver(problem, solver)
    if scheme == "bdf2":
        return BDF2Stepper(problem, t["dt"], solver)
    if scheme == "explicit-euler":
        return ExplicitEulerStepper(problem, t["dt"], t["t_end"], solver)
    return ThetaStepper(problem, t["dt"], case.theta, solver)
