"""One run of a case: pre-flight checks, the simulation, its results file (continued after a
restart), the march (:mod:`solver.heat.march`) with its observers (:mod:`solver.app.observers`),
the end record, and the summary. :func:`dry_run` stops after the discretisation and reports.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from mpi4py import MPI

from solver import __version__
from solver.app import log as logs
from solver.app import statusfile
from solver.app.control import RunControl
from solver.app.faults import FaultInjection, slow_start
from solver.app.observers import CheckpointObserver, ProgressObserver, ResultsObserver, enthalpy_zero_text
from solver.app.preflight import (BYTES_PER_NODE, check_memory, check_split, claim_space, estimate_output_bytes,
                                  guard_output)
from solver.app.summary import StepSummary, summary
from solver.case.load import parse_override
from solver.case.records import MAX_STEPS, Case, whole_steps
from solver.case.shown import counted, shell_word, shown, size
from solver.compiled import compile_seconds
from solver.errors import EXIT_OUTPUT, EXIT_STOPPED, CaseError, OutputError, SolverExit
from solver.heat.checks import check_balance
from solver.heat.march import march
from solver.heat.simulation import Discretisation, Simulation
from solver.heat.state import from_checkpoint
from solver.io import checkpoint, deadline
from solver.io.blockfile import choose_driver, open_block_file
from solver.io.end_record import COMPLETE, FAILED, STOPPED, EndRecord, RunFigures
from solver.io.probe_series import ProbeSeries
from solver.io.repair import extend_truncated
from solver.io.results_writer import STEP_TABLE, ResultsLayout, ResultsWriter
from solver.io.stored_case import stored_case
from solver.la.preconditioner import PreconditionerReport
from solver.parallel.blocks import BlockRedistributor
from solver.parallel.collective import max_over_ranks, on_root

log = logging.getLogger(__name__)

ADAPTIVE_STEPS_GUESS = 200  # for the disk-space check of an adaptive run written every N steps


@dataclass(frozen=True)
class RunOptions:
    """How a run was asked for on the command line."""

    quiet: bool = False  # warnings and errors only
    restart: str | None = None  # a checkpoint, or "latest"
    force: bool = False  # restart from a checkpoint of another case
    overwrite: bool = False  # replace earlier results (kept as .bak)


@dataclass
class RunResult:
    h5_path: Path
    xdmf_path: Path
    n_dofs: int
    ranks: int
    steps: int
    iterations: int
    timings: dict  # seconds by phase, the slowest rank's
    stopped: bool = False
    checkpoint: Path | None = None
    restarted_from: Path | None = None
    preconditioner: str = ""
    preconditioner_report: PreconditionerReport | None = None
    nonlinear_iterations: int = 0
    time_steps: StepSummary | None = None  # adaptive steps only
    first_step: int = 0  # the step of the checkpoint a restart continued from
    steps_in_parts: int = 0  # fixed steps taken again in parts after Newton failed (since the start or restart)


@dataclass(frozen=True)
class DryRunReport:
    """What a dry run found (the same on every rank)."""

    dofs: int
    cells: int
    ranks: int
    memory_per_rank_bytes: float
    stable_explicit_dt: float
    steps: int | None  # None: adaptive (not known in advance)
    output_bytes: int


UNREPEATED = ("run.wall_limit",)  # --set options the command to continue leaves out


def _key_of(item: str) -> str:
    """The dotted key of a --set option (its quotes and spaces as TOML reads them)."""
    try:
        return ".".join(parse_override(item, "--set")[0])
    except CaseError:
        return item.partition("=")[0].strip()


def expected_snapshots(output, steps: int | None) -> int:
    """Snapshots a run writes (for the disk-space estimate): the first and the requested times;
    else step 0, every N steps and the last (``steps`` None: adaptive, a guess of their number)."""
    if output.times:
        return 1 + len(output.times)
    steps = ADAPTIVE_STEPS_GUESS if steps is None else steps
    return 1 + steps // output.every + (1 if steps % output.every else 0)


def step_table_bytes(output, steps: int | None) -> int:
    """The tables a run appends a row to at every step (for the disk-space estimate): the time-step
    table's four columns and, with probes, their time and values (``steps`` None: adaptive, a guess)."""
    steps = ADAPTIVE_STEPS_GUESS if steps is None else steps
    return 8 * (steps + 1) * (len(STEP_TABLE) + (1 + len(output.probes) if output.probes else 0))


def run(case: Case, comm=MPI.COMM_WORLD, quiet: bool = False, restart: str | None = None, force: bool = False,
        overwrite: bool = False) -> RunResult:
    """Run a case to t_end (or to a graceful stop), writing results and checkpoints."""
    if restart is not None and not restart.strip():  # "$CHECKPOINT" of an unset variable: not a new run
        raise CaseError("--restart: an empty name; give a checkpoint file, or latest (the case's newest)")
    options = RunOptions(quiet, restart, force, overwrite)
    wall_start = MPI.Wtime()
    check_memory(comm, case.source, case.mesh)
    check_split(comm, case.mesh, case.source)
    directory = Path(case.output.directory) / case.name
    guard = guard_output(comm, directory, case.name, overwrite, restart is not None, source=case.source)
    deadline.configure(case.output.write_timeout, comm.rank)
    withdraw = deadline.at_expiry(lambda message: expired(guard, message))
    try:
        logs.attach_file(directory / f"{case.name}.log", comm.rank)
        log.info(f"solver {__version__}: {case.source} on {counted(comm.size, 'rank')}"
                 + (f" (restart from {restart})" if restart else ""))
        return CaseRun(case, comm, options, directory, wall_start).execute(guard)
    except SolverExit as exc:  # its line goes to the console from the command line, and to the log from here
        logs.to_file(logging.ERROR, f"error: {exc}")
        raise
    finally:
        withdraw()
        logs.detach_file()
        if guard is not None:
            if guard.created and not (directory / f"{case.name}.h5").exists():  # refused before its first write:
                (directory / f"{case.name}.log").unlink(missing_ok=True)  # the folder it made goes, as it came
            guard.release()


def expired(guard, message: str) -> None:
    """A write that did not finish in time ends the process (:mod:`solver.io.deadline`): the exit
    status is recorded and the results' lock released first (rank 0)."""
    statusfile.record(EXIT_OUTPUT, message)
    if guard is not None:
        guard.release()


class CaseRun:
    """The run of a case in its results directory, from its simulation to its end record."""

    def __init__(self, case: Case, comm, options: RunOptions, directory: Path, wall_start: float):
        self.case, self.comm, self.options, self.directory = case, comm, options, directory
        self.wall_start = wall_start
        self.results: ResultsWriter | None = None
        self.writer: ResultsObserver | None = None
        self.checkpoints: CheckpointObserver | None = None
        self.last_checkpoint: Path | None = None  # the checkpoint this run started from

    def execute(self, guard) -> RunResult:
        case, comm = self.case, self.comm
        slow_start()
        sim = Simulation(case, comm)
        log_mesh(sim.mesh)
        mesh = sim.mesh
        probes = self.locate_probes(mesh)  # an input error: found before --overwrite moves anything
        if not self.options.restart:
            sim.snapshot_schedule()  # output times off the steps (dt = "auto" known now): likewise
        needed = estimate_output_bytes(mesh.n_global_nodes, mesh.n_global_cells, mesh.reference.n_nodes, mesh.dim,
                                       expected_snapshots(case.output, sim.n_steps) * (1 + len(sim.extra_fields))) \
            + 2 * 8 * mesh.n_global_nodes * kept_checkpoints(case, sim.n_steps) \
            + step_table_bytes(case.output, sim.n_steps)
        claim_space(comm, guard, needed)
        faults = FaultInjection(comm.rank, folder=self.directory)
        resume = None
        try:
            resume = self.find_restart(mesh, sim.problem) if self.options.restart else None
            self.last_checkpoint = None if resume is None else resume.path
            if resume is not None:
                self.check_schedule(sim, resume)  # before the results are cut back to the checkpoint
            with sim.timers("output"):
                self.open_results(sim, resume, faults, probes)
            r, cp = case.run, case.checkpoint
            control = RunControl(comm, r.wall_limit, cp.every, cp.wall_interval, r.hang_timeout)
            checkpoints = CheckpointObserver(self.results, self.directory, control, faults.before_checkpoint_close)
            self.checkpoints = checkpoints
            outcome = march(sim, [faults, self.writer, ProgressObserver(comm, self.options.quiet), checkpoints],
                            control)
            self.writer.flush(sim)
            if not outcome.stopped and not case.steady:  # a steady state is checked before it is written
                check_balance(sim)
        except SolverExit as exc:
            raise self.failed(sim, exc) from None
        return self.finish(sim, outcome.stopped, checkpoints.last, resume)

    def check_schedule(self, sim: Simulation, resume) -> None:
        """Output times off the fixed steps the restart continues on (from t = 0, or after the
        checkpoint where they count from it) are refused (CaseError), before anything is changed."""
        if sim.adaptive is not None:
            return
        a = resume.attrs
        origin = (a.stepper or {}).get("fixed_origin")
        origin = None if origin is None else (int(origin[0]), float(origin[1]))  # (checked on reading)
        first, dt, _ = sim.continuing_grid(a.step, a.t, origin)
        sim.snapshot_schedule((first, dt))

    def locate_probes(self, mesh) -> ProbeSeries | None:
        """The case's probes, located in the mesh (None: none asked for)."""
        if not self.case.output.probes:
            return None
        try:
            return ProbeSeries(mesh, self.case.output.probes)
        except CaseError as exc:
            raise CaseError(f"{self.case.source}: {exc}") from None

    def open_results(self, sim: Simulation, resume, faults: FaultInjection, probes: ProbeSeries | None) -> None:
        """The results file (continued after a restart, with the run's state restored from the
        checkpoint), its time-step table and probes."""
        case, steady = self.case, self.case.steady
        stored = stored_case(case.values)
        attrs = {"case": stored.text, "case_file_text": case.text,
                 "case_source": case.source, "overrides": "\n".join(case.overrides)}
        layout = ResultsLayout(attrs, sim.extra_fields, case.physics.temperature_unit, stored.tables)
        # the checkpoint's state is read and checked before the results are cut back to it, and the
        # results file checked against the restart (its tables, probes, fields) before anything in it changes
        state = None if resume is None else self.checkpoint_state(sim, resume)
        self.results = results = ResultsWriter(self.directory, case.name, sim.mesh, layout, case.output.driver,
                                               None if resume is None else resume.attrs.snapshots, faults,
                                               None if resume is None else resume.attrs.t,
                                               None if probes is None else probes.points, not steady)
        if state is not None:
            sim.resume(state)
            if sim.mesh.comm.rank == 0:
                warn_output_times_passed(case, results.snapshots, sim.t)
        keep_until = None if resume is None else sim.t
        if not steady:
            results.init_steps(keep_until)
        if probes is not None:
            results.init_probes(probes.points, keep_until)
        self.writer = ResultsObserver(results, probes, resume is not None)

    def checkpoint_state(self, sim: Simulation, resume):
        """The run state a checkpoint holds, its vectors read by every rank and checked against the
        sums written with them (collective; CaseError when damaged)."""
        mesh = sim.mesh
        nodes = BlockRedistributor(mesh.comm, mesh.node_ids[: mesh.n_owned], mesh.n_global_nodes)
        driver = choose_driver(self.case.output.driver, mesh.comm)
        vectors = checkpoint.read_state(resume.path, mesh, nodes, resume.attrs.datasets,
                                        lambda p: open_block_file(p, mesh.comm, driver, "r"))
        try:
            return from_checkpoint(resume.attrs, vectors, mesh.n_owned)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError) as exc:
            raise CaseError(f"{resume.path}: checkpoint attribute stepper_state is malformed "
                            f"({type(exc).__name__}: {str(exc)[:80]})") from None

    def continue_from(self) -> Path | None:
        """The last checkpoint this run wrote, else the one it started from (None: none), known
        without opening a file (after a failed write, HDF5 may not open another one safely)."""
        last = self.checkpoints.last if self.checkpoints is not None else None
        return Path(last) if last else self.last_checkpoint

    def failed(self, sim: Simulation, exc: SolverExit) -> SolverExit:
        """Close the results after a failure on every rank, keeping what was written; the error to
        raise (after a failed write, with what is left and how to go on)."""
        results = self.results
        if isinstance(exc, OutputError):
            exc = OutputError(f"{exc}; {after_output_error(results, self.continue_from())}", exc.broken)
        if results is not None:
            if not isinstance(exc, OutputError) and self.writer is not None:
                self.writer.flush(sim)
            results.abandon(EndRecord(FAILED, exc.exit_status, error=str(exc), steps=sim.step_index))
        return exc

    def finish(self, sim: Simulation, stopped: bool, last_checkpoint: Path | None, resume) -> RunResult:
        """The end record, the result and the summary."""
        case, comm = self.case, self.comm
        timings = max_over_ranks(comm, sim.timers.seconds | {"compile": compile_seconds(),
                                                             "total": MPI.Wtime() - self.wall_start})
        report = sim.preconditioner_report()
        figures = RunFigures(sim.step_index, sim.dt, sim.iterations,
                             sim.adaptive.controller.rejected if sim.adaptive else 0, sim.nonlinear_iterations,
                             case.physics.temperature_unit, str(last_checkpoint or ""), sim.solver.preconditioner,
                             report.as_dict() if report else None, sim.balance.as_dict(), timings)
        try:
            self.results.close(EndRecord(STOPPED if stopped else COMPLETE, EXIT_STOPPED if stopped else 0,
                                         figures=figures))
        except OutputError as exc:
            raise OutputError(f"{exc}; {after_output_error(self.results, self.continue_from())}", exc.broken) from None
        result = RunResult(self.results.h5_path, self.results.xdmf_path, sim.mesh.n_global_nodes, comm.size,
                           sim.step_index, sim.iterations, timings, stopped, last_checkpoint,
                           None if resume is None else resume.path, sim.solver.preconditioner, report,
                           sim.nonlinear_iterations, StepSummary.of(sim) if sim.adaptive else None,
                           0 if resume is None else resume.attrs.step, sim.steps_in_parts)
        log.info(summary(result, case))
        if last_checkpoint is not None:
            how = "to continue" if stopped else "to extend the run (with a larger time.t_end)"
            source = "" if case.source.startswith("<") else f" {shell_word(case.source)}"
            # with the run's --set options: without them it would name (and continue) another run; but
            # for the wall limit, which would stop the continuation as it stopped this run
            source += "".join(f" --set {shell_word(item)}" for item in case.overrides
                              if _key_of(item) not in UNREPEATED)
            (log.warning if stopped else log.info)(
                f"checkpoint: {last_checkpoint} (step {sim.step_index}); {how}: "
                f"mpirun -n N python -m solver{source} --restart latest")
        return result

    def find_restart(self, mesh, problem) -> "Resume":
        """Locate and check a checkpoint on rank 0; every rank gets its attributes."""
        restart, directory = self.options.restart, self.directory
        if self.case.steady:  # a steady run writes no checkpoint, and has no time stepping to continue
            raise CaseError(f"{self.case.source}: time.scheme = \"steady\" does not continue from a checkpoint "
                            f"(--restart {restart}): a steady solve starts from initial.*; run it without --restart")

        h5 = directory / f"{self.case.name}.h5"

        def look():
            if h5.is_file():
                extend_truncated(h5)  # a snapshot write that the disk cut short: readable again
            path = checkpoint.resolve(restart, directory, h5)
            attrs = checkpoint.inspect(path, mesh.n_global_nodes, self.case.values)
            checkpoint.check_same_run(path, attrs, h5)
            checkpoint.check_snapshots(path, attrs, h5)
            checkpoint.check_step_time(path, attrs, h5)
            return str(path), attrs
        path, attrs = on_root(mesh.comm, look, CaseError)
        path = Path(path)
        t_end = self.case.time.t_end
        if not self.case.steady and t_end < attrs.t * (1 - 1e-12) - 1e-300:
            raise CaseError(f"{self.case.source}: time.t_end = {t_end:.6g} is before the checkpoint's t = "
                            f"{attrs.t:.6g} ({path}); a restart goes on from there: give a later time.t_end")
        dt = self.case.time.dt
        if not self.case.steady and self.case.time.adaptive is None and isinstance(dt, float):
            check_steps_after(self.case.source, path, attrs.t, t_end, dt)
        changed = checkpoint.check_compatible(path, attrs, self.case.values, self.options.force)
        if enthalpy_zero_text(problem):  # the checkpoint's energies go on, counted from where it counted them
            try:  # ("": an earlier version's, counted from 0 in the case's unit)
                zero = float(attrs.enthalpy_zero) if attrs.enthalpy_zero else 0.0
            except ValueError:
                zero = float("nan")
            if not math.isfinite(zero):
                raise CaseError(f"{path}: checkpoint attribute enthalpy_zero = {shown(attrs.enthalpy_zero)} is not a "
                                f"temperature; the file was changed after it was written")
            problem.count_enthalpy_from(zero)
        if attrs.mesh_digest and attrs.mesh_digest != mesh.source_digest:  # the same mesh.file, other contents
            if not self.options.force:
                raise CaseError(f"{path}: checkpoint of another mesh: the contents of {self.case.mesh_key} changed "
                                f"since it was written (its nodes, cells, or their groups); restore the file, or "
                                f"--force to restart anyway")
            changed.append(f"{self.case.mesh_key} (its contents)")
        written = f", written on {counted(attrs.ranks, 'rank')}" if attrs.ranks else ""  # (0: not recorded)
        log.info(f"restarting from {path} (step {attrs.step}, t = {attrs.t:.6g}{written})")
        if changed:
            log.info(f"changed since the checkpoint: {', '.join(changed)}")
        return Resume(path, attrs)


def check_steps_after(source: str, path: Path, t: float, t_end: float, dt: float) -> None:
    """Refuse (CaseError) a time.t_end that is not a whole number of fixed steps of ``dt`` after a
    checkpoint's time ``t``: the restart takes its steps from there (whatever dt its run had)."""
    steps = (t_end - t) / dt
    if not math.isfinite(steps) or steps > MAX_STEPS:
        raise CaseError(f"{source}: time.t_end = {t_end:.6g} is {steps:.3g} steps of time.dt = {dt:.6g} after the "
                        f"checkpoint's t = {t:.6g} ({path}): at most {MAX_STEPS:.0e} (a larger time.dt, or a shorter "
                        f"time.t_end)")
    if whole_steps(t_end - t, dt):
        return
    near = [t + n * dt for n in (math.floor(steps), math.ceil(steps)) if n >= 1]
    raise CaseError(f"{source}: time.t_end = {t_end:.6g} is not a whole number of steps of time.dt = {dt:.6g} after "
                    f"the checkpoint's t = {t:.6g} ({path}), where the restart goes on from: {steps:.6g} steps; give "
                    f"a t_end on its steps, such as {' or '.join(f'{v:.12g}' for v in near)}")


@dataclass(frozen=True)
class Resume:
    """A checkpoint to restart from, checked, with its attributes (the same on every rank)."""

    path: Path
    attrs: checkpoint.CheckpointAttrs


def log_mesh(mesh) -> None:
    info = mesh.summary()
    ranks = counted(mesh.comm.size, "rank")
    log.info(f"mesh: {info['nodes']} nodes, {info['cells']} {mesh.cell_type} cells on {ranks} "
             f"(owned nodes per rank {info['owned_nodes_min']}..{info['owned_nodes_max']})")
    if mesh.partition is not None:
        q = mesh.partition
        log.info(f"partition: {q.partitioner}, edge cut {q.edge_cut} facets, "
                 f"owned-node imbalance {q.owned_nodes_imbalance:.3f} (max/mean)")


def kept_checkpoints(case: Case, n_steps: int | None) -> int:
    """At most how many checkpoints the run keeps on its disk at once: checkpoint.keep, or fewer
    when the run writes fewer (one each checkpoint.every steps, one at the end, one more being
    written); as many as it keeps when the steps are not known in advance."""
    keep, every = case.checkpoint.keep, case.checkpoint.every
    if n_steps is None or case.checkpoint.wall_interval:
        return keep
    written = (n_steps // every if every else 0) + 2
    return min(keep, written)


def after_output_error(results: ResultsWriter | None, last_checkpoint: Path | None) -> str:
    """What a failed write left, and how to go on (the same on every rank; no file is opened)."""
    if results is None:
        return "no snapshot was written: free space, then run again (with --overwrite if a results file is left)"
    kept = results.snapshots
    state = (f"the results keep {len(kept)} complete snapshots (to t = {kept[-1][0]:.6g})"
             if kept else "the results hold no snapshot")
    if last_checkpoint is None:
        return f"{state}; no checkpoint was written yet: free space, then run again with --overwrite"
    return f"{state}; free space, then continue from {last_checkpoint} with --restart latest"


def warn_output_times_passed(case, written: list, t_restart: float) -> None:
    """Output times of a restart's case between the last snapshot the results keep and the
    checkpoint's time it continues from were never written, and the restart does not go back to
    them: say so (rank 0)."""
    last = written[-1][0] if written else -math.inf
    slack = 1e-12 * max(abs(t_restart), 1.0)
    passed = [t for t in case.output.times if last + slack < t <= t_restart + slack]
    if passed:
        one = len(passed) == 1
        what = f"output time t = {passed[0]:g} s" if one else f"{len(passed)} output times from t = {passed[0]:g} s"
        log.warning(f"warning: {case.source}: the {what}, after the results' last snapshot (t = {last:g} s) and not "
                    f"after the checkpoint's t = {t_restart:g} s this restart continues from, {'is' if one else 'are'} "
                    f"not written (restart from an earlier checkpoint to have {'it' if one else 'them'})")


def check_creatable(directory: Path) -> None:
    """Refuse (CaseError) an output folder that the run could not create or write into: the
    nearest part of its path that exists must be a writable folder (a dry run creates nothing)."""
    import os

    existing = directory
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir():
        if os.access(existing, os.W_OK | os.X_OK):
            return
        raise CaseError(f"{directory}: cannot create or write the output directory ({existing} is not writable)")
    what = f"a link to {os.readlink(existing)}, which does not exist" if existing.is_symlink() and \
        not existing.exists() else "not a folder"
    raise CaseError(f"{directory}: cannot create the output directory ({existing} is {what})")


def dry_run(case: Case, comm=MPI.COMM_WORLD, restart: str | None = None) -> DryRunReport:
    """Resolve the case, build the mesh and matrices, and report sizes; no solve, no files (with
    ``restart``: the checkpoint is not read, and the report says so)."""
    check_memory(comm, case.source, case.mesh)
    check_split(comm, case.mesh, case.source)
    d = Discretisation(case, comm)
    mesh, t = d.mesh, case.time
    dt_limit = d.stable_explicit_dt()
    try:
        steps = d.planned_steps()
    except CaseError as exc:  # too many steps of time.dt = "auto"
        raise CaseError(f"{case.source}: {exc}") from None
    snapshots = expected_snapshots(case.output, steps)
    out_bytes = estimate_output_bytes(mesh.n_global_nodes, mesh.n_global_cells, mesh.reference.n_nodes, mesh.dim,
                                      snapshots * (1 + len(d.extra_fields)))
    per_rank = BYTES_PER_NODE[mesh.dim] * mesh.n_global_nodes / comm.size
    directory = Path(case.output.directory) / case.name
    log.info(f"case: {case.source} ({case.name}), {t.scheme}")
    ranks = counted(comm.size, "rank")
    log.info(f"mesh: {mesh.n_global_nodes} DOFs, {mesh.n_global_cells} {mesh.cell_type} cells on {ranks}")
    log.info(f"memory: about {per_rank / 2**20:.1f} MiB per rank (estimate)")
    how = (f"adaptive dt from {t.adaptive.dt_initial:g} s in [{t.adaptive.dt_min:g}, {t.adaptive.dt_max:g}] s, "
           f"tolerance {t.adaptive.relative:g} relative, {t.adaptive.absolute:g} absolute"
           if t.adaptive is not None else f"dt = {t.dt}, {counted(steps, 'step')}")
    if d.nonlinear:
        log.info("nonlinear: " + ("steady solve by Newton" if case.steady else f"{how}, "
                                  f"each step solved by {case.nonlinear.method}"))
    else:
        log.info(f"explicit-euler stable time step: {dt_limit:.6g} s"
                 + ("" if case.steady else f"; this case: {how}"))
    on_root(comm, lambda: check_creatable(directory), CaseError)
    log.info(f"output: about {size(out_bytes)} in {directory} ({snapshots} snapshots)")
    if restart is not None:
        log.info(f"restart: --restart {restart} is not checked by a dry run (the run reads the checkpoint and "
                 f"compares its case); the steps and snapshots above count from t = 0")
    log.info("dry run: nothing solved, nothing written")
    return DryRunReport(mesh.n_global_nodes, mesh.n_global_cells, comm.size, per_rank, dt_limit, steps, out_bytes)

