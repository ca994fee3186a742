"""The discretised case on this rank, stepped in time without any I/O (the run, :mod:`solver.app.run`,
adds output, checkpoints and control through the observers of :mod:`solver.heat.march`).

* :class:`Discretisation`: the mesh, the problem (matrices and loads) and the initial temperature,
  checked (the cells, the names the case gives the mesh's groups, every input value finite on the
  mesh). A dry run stops here and asks it for its sizes and the stable explicit step.
* :class:`Simulation`: a discretisation with its preconditioner, stepper (or steady solver) and
  the current solution; :meth:`Simulation.advance` takes one accepted step.
"""

from __future__ import annotations

import bisect
import logging
import math
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
from mpi4py import MPI

from solver.case.records import Case, SolverSpec
from solver.case.schema import ZERO_ROUNDOFF, absolute_zero
from solver.errors import CaseError, NonFiniteError, NumericalError
from solver.heat.adaptive import AdaptiveStepping, StepRecord
from solver.heat.checks import (check_case_against_mesh, check_inputs, check_mesh, check_step_inputs,
                                 check_step_moves, check_temperature_range, inputs_of_time, refuse_shared_facets,
                                 report_empty_regions, report_unused_melting, solve_tolerance, step_inputs,
                                 temperature_scale, warn_abrupt_changes, warn_hidden_switches,
                                 warn_lumped_quadratic_simplices, warn_switches_between_steps, warn_time_in_steady)
from solver.heat.nonlinear import NonlinearHeatProblem
from solver.heat.nonlinear_stepping import make_nonlinear_stepper
from solver.heat.parts import check_floating_parts
from solver.heat.problem import HeatProblem
from solver.heat.pulses import Change, find_changes
from solver.heat.ranges import check_initial as check_initial_ranges
from solver.heat.schedule import (SnapshotSchedule, auto_steps, check_auto_snapshots, fixed_steps, planned_steps,
                                  solves_per_matrix)
from solver.heat.state import BalanceState, RunState
from solver.heat.stepping import make_stepper, stable_explicit_dt
from solver.la.choice import choose_preconditioner
from solver.la.krylov import SolveInfo
from solver.la.preconditioner import PreconditionerReport
from solver.mesh.build import create_mesh

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


class Discretisation:
    """The mesh, the problem and the initial temperature ``u`` (local vector) of a case, checked."""

    def __init__(self, case: Case, comm=MPI.COMM_WORLD, timers: Timers | None = None):
        self.case, self.comm = case, comm
        self.timers = timers or Timers()
        with self.timers("mesh"):
            self.mesh = create_mesh(comm, case.mesh, case.element.degree)
        check_case_against_mesh(case, self.mesh)
        refuse_shared_facets(case, self.mesh)
        check_mesh(case, self.mesh)
        with self.timers("assembly"), np.errstate(all="ignore"):  # non-finite values: refused by key below
            self.nonlinear = case.physics.nonlinear
            self.u = np.array(case.physics.initial(self.mesh.coords, 0.0), dtype=float)
            self.problem = NonlinearHeatProblem(self.mesh, case.physics, enthalpy_zero(self.mesh, self.u)) \
                if self.nonlinear else HeatProblem(self.mesh, case.physics)
            report_empty_regions(self.mesh, case.physics, case.source)
            report_unused_melting(case, self.mesh.comm)
            check_inputs(case.source, self.problem, self.u, unit=case.physics.temperature_unit,
                         physics=case.physics)
            check_temperature_range(case.source, self.problem, self.u, 0.0, case.run.temperature_range,
                                    case.physics.temperature_unit)
            check_initial_ranges(case.source, self.problem, self.u,
                                 self.problem.linearise if self.nonlinear else None)

    def stable_explicit_dt(self) -> float:
        """The stable step of explicit Euler with the lumped mass (NaN for a nonlinear problem,
        which takes no explicit step; collective)."""
        return math.nan if self.nonlinear else stable_explicit_dt(self.problem)

    def planned_steps(self) -> int | None:
        """The steps a run of this case takes, known before any stepper exists (collective); a
        CaseError for too many steps or snapshots of time.dt = "auto"."""
        steps = planned_steps(self.case.time, self.stable_explicit_dt())
        if self.case.time.dt == "auto" and steps is not None:
            check_auto_snapshots(self.case.output, steps)
        return steps

    @property
    def extra_fields(self) -> tuple[str, ...]:
        """Nodal fields written beside the temperature: the liquid fraction with phase change."""
        return ("liquid_fraction",) if self.nonlinear and self.problem.melting else ()

    def fields(self) -> dict:
        """Owned values of :attr:`extra_fields` for the current solution."""
        return {"liquid_fraction": self.problem.liquid_fraction(self.u)} if self.extra_fields else {}

    def resolve_solver(self) -> SolverSpec:
        """The case's solver settings with ``preconditioner = "auto"`` replaced by its choice (logged)."""
        case = self.case
        if case.solver.preconditioner != "auto":
            return case.solver
        new_each_step = case.physics.nonlinear or self.problem.time_dependent_matrix
        solves = solves_per_matrix(case.time, new_each_step)
        choice = choose_preconditioner(self.mesh.dim, self.mesh.n_global_nodes, self.mesh.comm.size, solves)
        log.info(f"preconditioner: auto -> {choice.name} ({choice.reason})")
        return replace(case.solver, preconditioner=choice.name)


def adaptive_stops(case: Case, changes: tuple[Change, ...] = ()) -> tuple[float, ...]:
    """Where adaptive steps land: the output times (or t_end), the times at which an input of t
    switches (:meth:`~solver.case.expressions.Expression.switch_times`: a heater switched on at
    t = 300 for a second was stepped over by steps of 600 s, its heat lost with exit 0), and the
    starts of the guards of its abrupt ``changes`` (:meth:`~solver.heat.pulses.Change.guard`)."""
    t_end = case.time.t_end
    stops = set(case.output.times or (t_end,))
    for _, value in inputs_of_time(case.physics):
        switches = getattr(value, "switch_times", None)
        if switches is not None:
            stops.update(s for s in switches() if 0.0 < s < t_end * (1 - 1e-12))
    stops.update(c.guard()[0] for c in changes if 0.0 < c.guard()[0] < t_end * (1 - 1e-12))
    return tuple(sorted(stops))


class Simulation(Discretisation):
    """A discretisation with its stepper and the temperature ``u`` at step ``step_index``."""

    def __init__(self, case: Case, comm=MPI.COMM_WORLD, timers: Timers | None = None):
        super().__init__(case, comm, timers)
        if case.steady:
            check_floating_parts(case, self.problem)
            if self.mesh.comm.rank == 0:
                warn_time_in_steady(case)
        with self.timers("assembly"), np.errstate(all="ignore"):
            self.solver = self.resolve_solver()
            try:
                if self.nonlinear:
                    self.stepper = make_nonlinear_stepper(self.problem, case.time, self.solver, case.nonlinear)
                else:
                    self.stepper = make_stepper(self.problem, case.time, self.solver)
            except CaseError as exc:  # a bad time step, a missing boundary: the case file's mistake
                raise type(exc)(f"{case.source}: {exc}") from None
        if not case.steady and self.mesh.comm.rank == 0:  # (once the scheme is accepted: a refusal is one line)
            warn_lumped_quadratic_simplices(case, self.mesh.cell_type)
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
            changes = find_changes(case, self.mesh)
            if case.time.adaptive is not None:
                self.n_steps = None
                self.adaptive = AdaptiveStepping(self.stepper, case.time.adaptive, adaptive_stops(case, changes),
                                                 tuple(c.guard() for c in changes))
                if self.mesh.comm.rank == 0:
                    warn_abrupt_changes(case, changes)
                    warn_hidden_switches(case, {c.key for c in changes})
            else:
                self.n_steps = fixed_steps(self.t_end, self.dt)
                if case.time.dt == "auto":
                    try:
                        check_auto_snapshots(case.output, self.n_steps)
                    except CaseError as exc:
                        raise CaseError(f"{case.source}: {exc}") from None
                if self.mesh.comm.rank == 0:
                    warn_switches_between_steps(case, self.dt)
                    warn_abrupt_changes(case, changes, self.dt)
                check_step_moves(case, self.problem, self.dt, self.u if self.nonlinear else None)
            with np.errstate(all="ignore"):  # (an overflowing capacity's energies: refused by key just below)
                self.stepper.start(self.u, 0.0)
        self.check_scales()
        self.floor_slack = max(solve_tolerance(case) * temperature_scale(self.problem, self.u), ZERO_ROUNDOFF)

    def check_scales(self) -> None:
        """Refuse (exit 2, before anything is written) a constant input whose share of the system
        overflows double precision in the solve (an h, flux or source of 1e300; a capacity of
        1e308): the solve found a system of inf at step 1 and named no key (collective). Adaptive
        steps are judged at their longest, time.dt_max, which weighs the loads and conduction most
        (checked at the first step only, h = 1e158 overflowed the fifth with no key named)."""
        adaptive = self.case.time.adaptive
        dt = adaptive.dt_max if adaptive is not None else self.dt
        if self.case.steady:
            a0, c = 0.0, 1.0
        else:
            scheme = getattr(self.stepper, "scheme", None)
            a0, c = (1.0, dt) if scheme is None else (max(scheme.a[0], 1.0), dt * max(scheme.b[0], 1.0))
        n = self.mesh.n_owned
        with np.errstate(all="ignore"):
            scale = max(1.0, float(np.max(np.abs(self.u[:n]), initial=0.0)))
            inputs = step_inputs(self.problem, 0.0, c, a0, scale, u=self.u)
        check_step_inputs(self.problem, inputs, "", lambda message: CaseError(f"{self.case.source}: {message}"),
                          None if self.case.steady else dt, "time.dt" if adaptive is None else "time.dt_max")

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

    def snapshot_schedule(self, grid: tuple[tuple[int, float] | None, float] | None = None) -> SnapshotSchedule:
        """When this run writes its snapshots: refuses output times off its fixed steps (after the
        checkpoint they count from, if not t = 0). ``grid``: (origin, dt) of the steps, if not this
        run's (a restart's, checked before its checkpoint is read)."""
        origin, dt = grid if grid is not None else (self.origin, self.dt)
        return SnapshotSchedule(self.case.output, self.case.source, dt, self.adaptive is not None,
                                0.0 if origin is None else origin[1])

    def take_records(self) -> list[StepRecord]:
        """The accepted steps recorded since the last call (for the results file)."""
        records, self.records = self.records, []
        return records

    @property
    def balance(self):
        return self.stepper.balance

    def unhealthy(self, temperature_range=None) -> tuple[float, tuple] | None:
        """None, or (value, coordinates) of a NaN/Inf/out-of-range owned temperature (the range:
        ``run.temperature_range`` unless given; a lower end at absolute zero takes the round-off of
        the solves and of the inputs' expressions below it, ``floor_slack``: a field cooled to 0 K ends
        at -7e-14 K)."""
        u = self.u[: self.mesh.n_owned]
        lo, hi = temperature_range or self.case.run.temperature_range
        if lo <= absolute_zero(self.case.physics.temperature_unit):  # a field that reaches it: round-off below
            lo -= self.floor_slack
        bad = ~np.isfinite(u) | (u < lo) | (u > hi)
        if not bad.any():
            return None
        i = int(np.argmax(bad))
        return float(u[i]), tuple(float(c) for c in self.mesh.coords[i])

    def stalled(self, solve: SolveInfo) -> bool:
        """This rank's rows of a solve are left with corrections of more than max(1e-3, sqrt(rtol))
        times the temperature scale (not reduced): ||r|| <= rtol ||b|| (a nonlinear solve: its
        residual within nonlinear.rtol of the first) was met on a badly scaled system
        (:func:`solver.heat.march.raise_stalled`)."""
        if not solve.correction:
            return False
        u = self.u[: self.mesh.n_owned]
        scale = max(1.0, float(np.max(np.abs(u)))) if len(u) else 1.0
        rtol = max(self.solver.rtol, self.case.nonlinear.rtol) if self.nonlinear else self.solver.rtol
        return not solve.correction <= max(1e-3, math.sqrt(rtol)) * scale

    def fixed_step_time(self, step: int) -> float:
        """The time of fixed step ``step``, counted from the origin (t0 + (step - first) dt), or the
        time it lands on: t_end or an output time (0.7 after 7 steps of 0.1, where the product is
        0.7000000000000001)."""
        first, t0 = self.origin or (0, 0.0)
        t = t0 + (step - first) * self.dt
        times = self.case.output.times
        i = bisect.bisect_left(times, t)
        for target in (self.t_end, *times[max(i - 1, 0):i + 1]):  # (round-off only: a restart finds t on the steps)
            if abs(t - target) <= min(1e-9 * self.dt, 1e-12 * max(abs(target), 1.0)):
                return float(target)
        return t

    def advance(self) -> SolveInfo:
        """One (accepted) time step; returns the linear solver's SolveInfo."""
        with self.timers("solve"), np.errstate(all="ignore"):  # (inputs that overflow: named before the solve)
            try:
                if self.adaptive is not None:
                    info, record = self.adaptive.advance(self.u, self.t, self.step_index + 1)
                    self.t, self.dt = record.time, record.dt
                else:
                    info = self.stepper.step(self.u, self.t, self.step_index + 1)
            except NonFiniteError as exc:  # the inputs passed their checks: the temperatures overflow the system
                raise NumericalError(str(exc)) from None  # (exit 3, as every failure during the run)
        self.step_index += 1
        if self.adaptive is None:
            self.t = self.fixed_step_time(self.step_index)
            record = StepRecord(self.t, self.dt, float("nan"), info.iterations)
        self.records.append(record)
        self.step_sizes.append(record.dt)
        self.iterations += info.iterations
        return info

    def solve_steady(self) -> SolveInfo:
        with self.timers("solve"), np.errstate(all="ignore"):  # (inputs that overflow: named at the start)
            try:
                info = self.stepper.solve(self.u)
            except NonFiniteError as exc:  # the inputs passed their checks: the solve overflows
                raise NumericalError(str(exc)) from None
        self.iterations += info.iterations
        return info

    @property
    def nonlinear_iterations(self) -> int:
        """Newton (or Picard) iterations so far (0 for a linear problem)."""
        return self.stepper.nonlinear_iterations

    @property
    def steps_in_parts(self) -> int:
        """Fixed steps taken again in parts after their nonlinear solve failed (since this process began)."""
        return self.stepper.steps_in_parts

    def preconditioner_report(self) -> PreconditionerReport | None:
        """What the current system's preconditioner reports of itself (multigrid: levels,
        complexities, set-up time, communication per level) with the stepper's set-ups and
        updates, or None (collective)."""
        precond = self.stepper.preconditioner
        stats = precond.stats() if precond is not None else None
        if stats is None:
            return None
        return PreconditionerReport(stats, self.stepper.rebuilds, self.stepper.updates)

    def restart_state(self) -> RunState:
        """What a checkpoint keeps of this run (:mod:`solver.heat.state`)."""
        b = self.balance
        return RunState(self.u, self.step_index, self.t, self.iterations,
                        BalanceState(tuple(b.terms), b.energy_start, np.asarray(b.inflow), b.gross),
                        self.stepper.restart_state(), self.adaptive.restart_state() if self.adaptive else None,
                        None if self.adaptive else self.origin)

    def continuing_grid(self, step: int, t: float, origin: tuple[int, float] | None
                        ) -> tuple[tuple[int, float] | None, float, int]:
        """The fixed steps a restart from step ``step`` at time ``t`` goes on with, as (origin, dt,
        n_steps): origin None counts them from t = 0. They continue the checkpoint's own steps
        (from ``origin``, None: 0) where it lies on them: bit for bit as the run would have gone
        on. Else (written by an adaptive run, or with another dt, forced) they count from the
        checkpoint. Explicit Euler's dt = "auto" divides the span from where they count to t_end
        into the fewest equal steps of at most 90% of its stable limit, so that they end at t_end
        (the dt chosen from t = 0 may not divide the rest of a run extended to a later t_end)."""
        auto, t_end = self.case.time.dt == "auto", self.t_end

        def steps_from(start: float) -> tuple[float, int]:
            if not auto:
                return self.stepper.dt, fixed_steps(t_end - start, self.stepper.dt)
            if t_end - start <= 1e-12 * max(abs(t_end), 1.0):
                return self.stepper.dt, 0
            try:
                n = auto_steps(t_end - start, self.stepper.dt_limit)
            except CaseError as exc:
                raise CaseError(f"{self.case.source}: {exc} (from the checkpoint's t = {start:.6g})") from None
            return (t_end - start) / n, n

        def lies_on(first: tuple[int, float], dt: float) -> bool:
            return first[0] <= step and abs(first[1] + (step - first[0]) * dt - t) <= 1e-12 * max(abs(t), 1.0)

        if origin is None and lies_on((0, 0.0), self.stepper.dt):
            return None, self.stepper.dt, fixed_steps(t_end, self.stepper.dt)
        if origin is not None:
            dt, n = steps_from(origin[1])
            if lies_on(origin, dt):
                return origin, dt, origin[0] + n
        dt, n = steps_from(t)
        return (step, t), dt, step + n

    def resume(self, state: RunState) -> None:
        """Continue from a checkpoint's state: solution, step, time, scheme history, controller and
        heat balance (collective)."""
        self.u[:] = state.temperature
        check_temperature_range(self.case.source, self.problem, self.u, state.t, self.case.run.temperature_range,
                                self.case.physics.temperature_unit, "the checkpoint's temperature")
        self.stepper.resume(state.stepper)
        self.step_index = int(state.step)
        t = state.t
        if self.adaptive is not None:
            if state.adaptive is not None:  # else the checkpoint had a fixed dt: the controller starts afresh
                self.adaptive.resume(state.adaptive)
            self.t, self.dt = float(t), self.adaptive.controller.dt
        else:
            self.origin, dt, self.n_steps = self.continuing_grid(self.step_index, float(t), state.origin)
            if dt != self.dt:  # dt = "auto" from the checkpoint on
                if self.mesh.comm.rank == 0:
                    log.info(f"explicit-euler: the checkpoint's t = {t:.6g} is not on the steps of dt = "
                             f"{self.dt:.6g} s to time.t_end = {self.t_end:.6g}; dt = \"auto\" divides the rest: "
                             f"{self.n_steps - self.step_index} steps of {dt:.6g} s from t = {t:.6g}")
                self.dt = self.stepper.dt = dt
            self.t = self.fixed_step_time(self.step_index)
        self.iterations = int(state.iterations)
        self.balance.energy = self.problem.energy(self.u)
        if list(state.balance.terms) == self.balance.terms:
            self.balance.energy_start = float(state.balance.energy_start)
            self.balance.inflow = np.array(state.balance.inflow, dtype=float)
            self.balance.gross = float(state.balance.gross)
        else:  # another case's terms (a forced restart): the balance counts from here
            ours = ", ".join(self.balance.terms)
            log.warning(f"the heat balance counts from the restart (t = {self.t:.6g}): the checkpoint's terms "
                        f"({', '.join(state.balance.terms)[:80]}) are not this case's ({ours})")
            self.balance.energy_start = self.balance.energy
            self.balance.inflow = np.zeros(len(self.balance.terms))
        self.balance.mark_opened()


def enthalpy_zero(mesh, u0: np.ndarray) -> float | None:
    """Where the enthalpies tabulated for rho(T) and c(T) expressions count from: the lowest initial
    temperature (every rank count finds the same; a restart recomputes it from the case). None
    where that is not finite (the inputs' checks refuse it next)."""
    with np.errstate(all="ignore"):
        lowest = float(np.min(u0[: mesh.n_owned])) if mesh.n_owned else np.inf
    lowest = mesh.comm.allreduce(lowest if np.isfinite(lowest) or lowest == np.inf else -np.inf, op=MPI.MIN)
    return lowest if np.isfinite(lowest) else None
