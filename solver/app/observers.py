"""The observers of a run's march (:mod:`solver.heat.march`): the results file with its probes and
time-step table, the checkpoints, and the progress on the console and in the log."""

from __future__ import annotations

import logging
from pathlib import Path

from mpi4py import MPI

from solver.app import log as logs
from solver.errors import OutputError
from solver.heat.march import Observer, Outcome, StepEvent
from solver.heat.simulation import Simulation
from solver.io import checkpoint
from solver.io.probe_series import ProbeSeries
from solver.io.results_writer import ResultsWriter
from solver.io.stored_case import stored_case
from solver.parallel.collective import on_root

log = logging.getLogger(__name__)


class ResultsObserver(Observer):
    """Snapshots of the schedule, probes at every step and the time-step table, into the results
    file; the snapshot at t = 0 unless the run continues from a checkpoint. The tables are
    written at each snapshot and at each checkpoint (before it: the observer comes first), and the
    probe rows also whenever :data:`~solver.io.probe_series.MAX_PENDING` values wait, so that
    their memory stays bounded however many steps lie between snapshots."""

    def __init__(self, results: ResultsWriter, probes: ProbeSeries | None, resumed: bool):
        self.results, self.probes, self.resumed = results, probes, resumed
        self.last_step = 0  # the last step whose probes were recorded (its state passed every check)

    def begin(self, sim: Simulation) -> None:
        self.last_step = sim.step_index
        if self.resumed and sim.finished and self.results.snapshots and self.results.snapshots[-1][0] < sim.t:
            # a restart from a checkpoint at time.t_end itself: no step to take, and the last snapshot
            # (the state at t_end, which every run writes) is the checkpoint's own state
            with sim.timers("output"):
                self.results.write(sim.u, sim.t, sim.step_index, sim.balance, sim.fields())
                self.flush(sim)  # (the probes' row at t came with the checkpoint's tables)
            return
        if self.resumed or sim.case.steady:
            return
        with sim.timers("output"):
            self.results.write(sim.u, 0.0, 0, sim.balance, sim.fields())
        if self.probes is not None:
            self.probes.record(sim.u, 0.0)

    def after_step(self, sim: Simulation, event: StepEvent) -> None:
        self.last_step = event.step
        if self.probes is not None:
            self.probes.record(sim.u, event.t)
        if event.snapshot:
            with sim.timers("output"):
                self.results.write(sim.u, event.t, event.step, sim.balance, sim.fields())
                self.flush(sim)
        elif event.checkpoint:  # the tables reach the checkpoint: a restart from it leaves no gap
            with sim.timers("output"):
                self.flush(sim)
        elif self.probes is not None and self.probes.full:  # many probes, many steps between snapshots
            with sim.timers("output"):
                self.results.write_probes(*self.probes.take())

    def flush(self, sim: Simulation) -> None:
        """Write the probe values and the time-step records gathered since the last flush, up to the
        last step that passed its checks (a failed step's record is dropped, as its state is)."""
        if self.probes is not None:
            self.results.write_probes(*self.probes.take())
        records = sim.take_records()
        self.results.write_steps(records[:max(0, len(records) - (sim.step_index - self.last_step))])


class CheckpointObserver(Observer):
    """A checkpoint whenever one is due (cadence, wall interval, a stop, the last step)."""

    def __init__(self, results: ResultsWriter, directory: Path, control, before_close=None):
        """``control``: the run control, told how long each checkpoint took; ``before_close``:
        called just before a checkpoint file is closed (the tests' fault injection)."""
        self.results, self.control = results, control
        self.directory, self.before_close = directory, before_close
        self.last: Path | None = None
        self.stored: tuple | None = None  # the case as checkpoints store it, and its hash (made once)

    def begin(self, sim: Simulation) -> None:
        if sim.finished and not sim.case.steady:  # a restart at time.t_end itself: no step, so no checkpoint
            def drop():  # ... to remove the run's checkpoints of the steps after it, as a checkpoint would
                folder = checkpoint.checkpoint_dir(self.directory)
                mine = checkpoint.own_checkpoints(folder, self.results.run_id) if folder.is_dir() else []
                for old in mine:
                    if checkpoint.step_of(old) > sim.step_index:
                        old.unlink()
            on_root(sim.comm, drop, OutputError)

    def after_step(self, sim: Simulation, event: StepEvent) -> None:
        if event.checkpoint:
            start = MPI.Wtime()
            with sim.timers("checkpoint"):
                self.last = self.write(sim)
            self.control.checkpoint_written(MPI.Wtime() - start)

    def write(self, sim: Simulation) -> Path:
        case, state = sim.case, sim.restart_state()
        b = state.balance
        if self.stored is None:
            self.stored = stored_case(case.values), checkpoint.case_hash(case.values)
        stored, digest = self.stored
        attrs = checkpoint.CheckpointAttrs(
            step=state.step, t=state.t, dt=sim.dt, scheme=case.time.scheme, case=stored.text, tables=stored.tables,
            case_hash=digest, snapshots=len(self.results.snapshots),
            iterations=state.iterations, balance_terms=list(b.terms), balance_energy_start=b.energy_start,
            balance_inflow=b.inflow, stepper=state.numbers(), run_id=self.results.run_id,
            mesh_digest=sim.mesh.source_digest, enthalpy_zero=enthalpy_zero_text(sim.problem), balance_gross=b.gross)
        writer = checkpoint.CheckpointWriter(self.directory, case.checkpoint.keep,
                                             lambda p: self.results.open_block_file(p, "w"), self.before_close)
        return writer.write(sim.mesh, self.results.nodes, state.vectors(), attrs)


class ProgressObserver(Observer):
    """Progress lines (a bar on a terminal), and the heat balance at the end."""

    def __init__(self, comm, quiet: bool):
        self.progress = logs.Progress(comm, quiet)

    def begin(self, sim: Simulation) -> None:
        if sim.case.time.dt == "auto":
            rest = f"{sim.n_steps - sim.step_index} steps from t = {sim.t:.6g}" if sim.step_index else \
                f"{sim.n_steps} steps"
            log.info(f"explicit-euler: stable limit {sim.stepper.dt_limit:.6g} s, using dt = {sim.dt:.6g} s ({rest})")
        self.first_step, self.first_progress = sim.step_index, sim.progress
        self.report_every = max(1, (sim.n_steps - sim.step_index) // 20) if sim.n_steps is not None else None
        self.next_report = sim.progress + 0.05
        self.start = MPI.Wtime()

    def after_step(self, sim: Simulation, event: StepEvent) -> None:
        solve = event.solve
        if sim.case.steady:
            log.info(f"steady state: iterations {solve.iterations}, residual {solve.residual:.2e}")
            return
        if self.report_every is not None:
            periodic = (event.step - self.first_step) % self.report_every == 0
        else:
            periodic = sim.progress >= self.next_report
            self.next_report = sim.progress + 0.05 if periodic else self.next_report
        n = sim.n_steps and sim.n_steps - self.first_step
        fraction = (sim.progress - self.first_progress) / max(1.0 - self.first_progress, 1e-300)
        point = logs.ProgressPoint(event.step - self.first_step, n, event.t, solve.iterations, solve.residual,
                                   sim.balance.relative, MPI.Wtime() - self.start, fraction)
        self.progress(point, periodic or sim.finished)

    def end(self, sim: Simulation, outcome: Outcome) -> None:
        if sim.case.steady:
            log.info(balance_line(sim.balance, steady=True))
        elif sim.step_index > outcome.first_step and not outcome.stopped:
            log.info(balance_line(sim.balance))


def balance_line(b, steady: bool = False) -> str:
    terms = ", ".join(f"{name} {v:+.6g}" for name, v in zip(b.terms, b.inflow) if v)
    if steady:
        return f"heat balance: heat flows in (W): {terms or 'none'}; relative imbalance {b.relative:.2e}"
    lag = f"; storage lag of the multistep formula {b.lag:+.6g} J" if b.lag else ""
    return (f"heat balance: energy change {b.change:+.6g} J; heat in (J): {terms or 'none'}{lag}; "
            f"relative imbalance {b.relative:.2e}")


def enthalpy_zero_text(problem) -> str:
    """What a checkpoint records of where the problem's tabulated enthalpies count from ("": none)."""
    if not getattr(problem, "capacity_tabulated", False):
        return ""
    return repr(problem.enthalpy_zero)
