"""The discretised case on this rank: mesh, problem, stepper and the current solution, stepped
in time without any I/O (the run, :mod:`solver.app.run`, adds output, checkpoints and control)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
from mpi4py import MPI

from solver.case.load import Case, check_against_mesh
from solver.case.records import SolverSpec
from solver.errors import NonFiniteError
from solver.heat.adaptive import AdaptiveStepping, StepRecord
from solver.heat.checks import check_inputs, check_mesh, report_empty_regions
from solver.heat.nonlinear import NonlinearHeatProblem
from solver.heat.nonlinear_stepping import make_nonlinear_stepper
from solver.heat.problem import HeatProblem
from solver.heat.stepping import make_stepper
from solver.la.choice import choose_preconditioner
from solver.la.krylov import SolveInfo
from solver.mesh.build import create_mesh
from solver.mesh.distributed import DistributedMesh

log = logging.getLogger(__name__)


class Timers:
    """Wall time spent in named phases, accumulated."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        start = MPI.Wtime()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + MPI.Wtime() - start


def resolve_preconditioner(case: Case, mesh: DistributedMesh, problem: HeatProblem) -> SolverSpec:
    """The case's solver settings with ``preconditioner = "auto"`` replaced by its choice (logged)."""
    if case.solver.preconditioner != "auto":
        return case.solver
    t = case.time
    if t.steady or case.physics.nonlinear:
        solves = 1  # a new matrix for every (Newton) solve
    elif problem.time_dependent_matrix:
        solves = 1  # a new matrix every step
    elif t.adaptive is not None:
        solves = 5  # a system serves a few steps on the ladder of step sizes
    else:
        solves = max(1, round(t.t_end / t.dt)) if t.dt != "auto" else 0
    choice = choose_preconditioner(mesh.dim, mesh.n_global_nodes, mesh.comm.size, solves)
    log.info(f"preconditioner: auto -> {choice.name} ({choice.reason})")
    return replace(case.solver, preconditioner=choice.name)


class Simulation:
    """Mesh, problem, stepper and the temperature ``u`` (local vector) at step ``step_index``."""

    def __init__(self, case: Case, comm=MPI.COMM_WORLD, timers: Timers | None = None):
        self.case, self.comm = case, comm
        self.timers = timers or Timers()
        with self.timers("mesh"):
            self.mesh = create_mesh(comm, case.mesh)
        check_against_mesh(case, self.mesh)
        check_mesh(case, self.mesh)
        with self.timers("assembly"), np.errstate(all="ignore"):  # non-finite values: refused by key below
            self.nonlinear = case.physics.nonlinear
            self.problem = (NonlinearHeatProblem if self.nonlinear else HeatProblem)(self.mesh, case.physics)
            self.u = np.array(case.physics.initial(self.mesh.coords, 0.0), dtype=float)
            report_empty_regions(self.mesh, case.physics)
            check_inputs(case.source, self.problem, self.u)
            self.solver = resolve_preconditioner(case, self.mesh, self.problem)
            try:
                if self.nonlinear:
                    self.stepper = make_nonlinear_stepper(self.problem, case.time, self.solver, case.nonlinear)
                else:
                    self.stepper = make_stepper(self.problem, case.time, self.solver)
            except NonFiniteError as exc:
                raise NonFiniteError(f"{case.source}: {exc}") from None
        self.step_index, self.t = 0, 0.0
        self.iterations = 0
        self.records: list[StepRecord] = []  # accepted steps since the last take_records()
        self.step_sizes: list[float] = []  # of every step this run (since its start or restart)
        self.adaptive: AdaptiveStepping | None = None
        self.origin: tuple[int, float] | None = None  # (step, t) that fixed steps count from, if not (0, 0)
        if case.steady:
            self.dt, self.n_steps = 0.0, 0
        else:
            self.dt = self.stepper.dt
            self.t_end = case.time.t_end
            if case.time.adaptive is not None:
                self.n_steps = None
                self.adaptive = AdaptiveStepping(self.stepper, case.time.adaptive, case.output.times or (self.t_end,))
            else:
                self.n_steps = int(round(self.t_end / self.dt))
            self.stepper.start(self.u, 0.0)

    @property
    def finished(self) -> bool:
        """True once the run has reached t_end."""
        if self.n_steps is None:
            return self.t >= self.t_end
        return self.step_index >= self.n_steps

    @property
    def progress(self) -> float:
        """How far the run is, in [0, 1]: simulated time (adaptive) or steps."""
        if self.n_steps is None:
            return self.t / self.t_end
        return self.step_index / max(self.n_steps, 1)

    def take_records(self) -> list[StepRecord]:
        """The accepted steps recorded since the last call (for the results file)."""
        records, self.records = self.records, []
        return records

    @property
    def balance(self):
        return self.stepper.balance

    def unhealthy(self, temperature_range) -> tuple[float, tuple] | None:
        """None, or (value, coordinates) of a NaN/Inf/out-of-range owned temperature."""
        u = self.u[: self.mesh.n_owned]
        lo, hi = temperature_range
        bad = ~np.isfinite(u) | (u < lo) | (u > hi)
        if not bad.any():
            return None
        i = int(np.argmax(bad))
        return float(u[i]), tuple(float(c) for c in self.mesh.coords[i])

    def advance(self) -> SolveInfo:
        """One (accepted) time step; returns the linear solver's SolveInfo."""
        with self.timers("solve"), np.errstate(all="ignore"):  # overflows: NonFiniteError names the key
            try:
                if self.adaptive is not None:
                    info, record = self.adaptive.advance(self.u, self.t, self.step_index + 1)
                    self.t, self.dt = record.time, record.dt
                else:
                    info = self.stepper.step(self.u, self.t, self.step_index + 1)
            except NonFiniteError as exc:
                t1 = self.t + self.stepper.dt
                check_inputs(self.case.source, self.problem, None, t1)  # names the key if an input gives it
                raise NonFiniteError(f"{self.case.source}: {exc}") from None
        self.step_index += 1
        if self.adaptive is None:
            self.t = self.origin[1] + (self.step_index - self.origin[0]) * self.dt if self.origin else \
                self.step_index * self.dt
            record = StepRecord(self.t, self.dt, float("nan"), info.iterations)
        self.records.append(record)
        self.step_sizes.append(record.dt)
        self.iterations += info.iterations
        return info

    def solve_steady(self) -> SolveInfo:
        with self.timers("solve"):
            info = self.stepper.solve(self.u)
        self.iterations += info.iterations
        return info

    @property
    def extra_fields(self) -> tuple[str, ...]:
        """Nodal fields written beside the temperature: the liquid fraction with phase change."""
        return ("liquid_fraction",) if self.nonlinear and self.problem.melting else ()

    def fields(self) -> dict:
        """Owned values of :attr:`extra_fields` for the current solution."""
        return {"liquid_fraction": self.problem.liquid_fraction(self.u)} if self.extra_fields else {}

    @property
    def nonlinear_iterations(self) -> int:
        """Newton (or Picard) iterations so far (0 for a linear problem)."""
        return getattr(self.stepper, "nonlinear_iterations", 0)

    def preconditioner_stats(self) -> dict:
        """What the current system's preconditioner reports of itself (multigrid: levels,
        complexities, set-up time, communication per level), or nothing."""
        system = getattr(self.stepper, "system", None)
        stats = getattr(getattr(system, "precond", None), "stats", None)
        if not callable(stats):
            return {}
        return {**stats(), "rebuilds": getattr(self.stepper, "rebuilds", 1), "updates": getattr(self.stepper, "updates", 0)}

    def state(self) -> dict:
        """Local vectors a restart needs: the temperature, what the scheme keeps (BDF2: the
        previous solution) and, with adaptive steps, the predictor's earlier solutions."""
        return {"temperature": self.u, **self.stepper.state(), **(self.adaptive.state() if self.adaptive else {})}

    def scalars(self) -> dict:
        """Numbers a restart needs besides the vectors: earlier step sizes, the controller."""
        return {"stepper": self.stepper.scalars(), **({"adaptive": self.adaptive.scalars()} if self.adaptive else {})}

    def restore(self, state: dict, step: int, t: float, iterations: int, balance_terms: list, energy_start: float,
                inflow: np.ndarray, scalars: dict | None = None) -> None:
        """Continue from a checkpoint: solution, step, time, scheme history, controller and heat
        balance."""
        scalars = scalars or {}
        self.u[:] = state["temperature"]
        self.stepper.restore(state)
        self.stepper.restore_scalars(scalars.get("stepper", {}))
        self.step_index = int(step)
        if self.adaptive is not None:
            if "adaptive" in scalars:  # else the checkpoint had a fixed dt: the controller starts afresh
                self.adaptive.restore(state, scalars["adaptive"])
            self.t, self.dt = float(t), self.adaptive.controller.dt
        elif abs(self.step_index * self.dt - t) <= 1e-12 * max(abs(t), 1.0):
            self.t = self.step_index * self.dt  # as the run computed it: the restart continues bit for bit
        else:  # written by an adaptive run: fixed steps from its time on
            self.origin = (self.step_index, float(t))
            self.t = float(t)
            self.n_steps = self.step_index + int(round((self.t_end - self.t) / self.dt))
        self.iterations = int(iterations)
        if balance_terms == self.balance.terms:
            self.balance.energy_start = float(energy_start)
            self.balance.inflow = np.array(inflow, dtype=float)
        self.balance.energy = self.problem.energy(self.u)
