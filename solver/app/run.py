"""One run of a case: pre-flight checks, the simulation, the time loop with its output,
checkpoints, probes, graceful stops and health checks, and the summary."""

from __future__ import annotations

import json
import math
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from solver import __version__
from solver.app import log as logs
from solver.app.control import RunControl
from solver.app.faults import TestFaults
from solver.app.preflight import (BYTES_PER_NODE, check_memory, check_split, claim_space, estimate_output_bytes,
                                  guard_output)
from solver.case.load import Case, check_against_mesh
from solver.case.records import whole_steps
from solver.errors import EXIT_STOPPED, CaseError, NumericalError, OutputError, SolverExit
from solver.heat.checks import check_step
from solver.heat.nonlinear import NonlinearHeatProblem
from solver.heat.problem import HeatProblem
from solver.heat.simulation import Simulation
from solver.heat.stepping import auto_steps, stable_explicit_dt
from solver.io import checkpoint
from solver.io.probes import Probes
from solver.io.results_file import ResultsFile
from solver.mesh.build import create_mesh
from solver.parallel.collective import max_over_ranks, on_root

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    h5_path: Path
    xdmf_path: Path
    n_dofs: int
    ranks: int
    steps: int
    iterations: int
    timings: dict = field(default_factory=dict)
    stopped: bool = False
    checkpoint: Path | None = None
    restarted_from: Path | None = None
    preconditioner: str = ""
    preconditioner_stats: dict = field(default_factory=dict)
    nonlinear_iterations: int = 0
    time_steps: dict = field(default_factory=dict)  # adaptive: accepted, rejected, dt min/median/max, set-ups


ADAPTIVE_STEPS_GUESS = 200  # for the disk-space check of an adaptive run written every N steps


def expected_snapshots(output, steps: int | None) -> int:
    """Snapshots a run writes (for the disk-space estimate): the first and the requested times;
    else step 0, every N steps and the last (``steps`` None: adaptive, a guess of their number)."""
    if output.times:
        return 1 + len(output.times)
    return 2 + (ADAPTIVE_STEPS_GUESS if steps is None else steps) // output.every


def _step_summary(sim: Simulation) -> dict:
    """What the adaptive steps of this run (since its start or restart) came to."""
    c = sim.adaptive.controller
    dts = np.array(sim.step_sizes) if sim.step_sizes else np.array([sim.dt])
    st = sim.stepper
    setup = max_over_ranks(sim.comm, {"s": getattr(st, "setup_seconds", 0.0)})["s"]
    return {"accepted": c.accepted, "rejected": c.rejected, "failed_solves": c.failed_solves,
            "dt_min": float(dts.min()), "dt_median": float(np.median(dts)), "dt_max": float(dts.max()),
            "setups": getattr(st, "rebuilds", 0), "updates": getattr(st, "updates", 0), "setup_seconds": setup}


def run(case: Case, comm=MPI.COMM_WORLD, quiet: bool = False, restart: str | None = None, force: bool = False,
        overwrite: bool = False) -> RunResult:
    """Run a case to t_end (or to a graceful stop), writing results and checkpoints."""
    wall_start = MPI.Wtime()
    check_memory(comm, case.source, case.mesh)
    check_split(comm, case.mesh)
    directory = Path(case.output.directory) / case.name
    guard = guard_output(comm, directory, case.name, overwrite, restart is not None)
    try:
        logs.attach_file(directory / f"{case.name}.log", comm.rank)
        log.info(f"solver {__version__}: {case.source} on {comm.size} ranks"
                 + (f" (restart from {restart})" if restart else ""))
        return _run(case, comm, quiet, restart, force, guard, directory, wall_start)
    finally:
        logs.detach_file()
        if guard is not None:
            guard.release()


def _run(case, comm, quiet, restart, force, guard, directory, wall_start) -> RunResult:
    sim = Simulation(case, comm)
    mesh, timers = sim.mesh, sim.timers
    info = mesh.summary()
    log.info(f"mesh: {info['nodes']} nodes, {info['cells']} {mesh.cell_type} cells on {comm.size} ranks "
             f"(owned nodes per rank {info['owned_nodes_min']}..{info['owned_nodes_max']})")
    if mesh.partition is not None:
        q = mesh.partition
        log.info(f"partition: {q.partitioner}, edge cut {q.edge_cut} facets, "
                 f"owned-node imbalance {q.owned_nodes_imbalance:.3f} (max/mean)")

    out = case.output
    snapshots = expected_snapshots(out, sim.n_steps)
    needed = estimate_output_bytes(mesh.n_global_nodes, mesh.n_global_cells, mesh.reference.n_nodes, mesh.dim,
                                   snapshots) + 2 * 8 * mesh.n_global_nodes * case.checkpoint.keep
    claim_space(comm, guard, needed)
    results, probes = None, None
    faults = TestFaults(comm.rank)
    try:
        resume = _find_restart(restart, directory, mesh, case, force) if restart else None
        with timers("output"):
            attrs = {"case": checkpoint.case_text(case.values), "case_file_text": case.text,
                     "case_source": case.source, "overrides": "\n".join(case.overrides)}
            results = ResultsFile(directory, case.name, mesh, attrs, out.driver,
                                  continue_after=None if resume is None else resume.snapshots,
                                  extra_fields=sim.extra_fields, temperature_unit=case.physics.temperature_unit,
                                  faults=faults)
            if resume is not None:
                state = checkpoint.read_state(resume.path, mesh, results.nodes, resume.attrs.datasets,
                                              lambda p: results.open_block_file(p, "r"))
                a = resume.attrs
                sim.restore(state, a.step, a.t, a.iterations, a.balance_terms, a.balance_energy_start,
                            a.balance_inflow, a.stepper)
            elif not case.steady:
                results.write(sim.u, 0.0, 0, sim.balance, sim.fields())
            if not case.steady:
                results.init_steps(None if resume is None else sim.t)
            if out.probes:
                try:
                    probes = Probes(mesh, out.probes)
                except CaseError as exc:
                    raise CaseError(f"{case.source}: {exc}") from None
                results.init_probes(probes.points, None if resume is None else sim.t)
                if resume is None and not case.steady:
                    probes.record(sim.u, 0.0)
        stopped, last_checkpoint = _time_loop(sim, case, results, probes, directory, quiet, faults)
    except SolverExit as exc:
        if isinstance(exc, OutputError):
            exc = OutputError(f"{exc}; {_after_output_error(results, directory)}", exc.broken)
        if results is not None:  # every rank raised it: close collectively, keeping what was written
            if not isinstance(exc, OutputError):
                _flush_probes(probes, results, sim)
            results.abandon({"complete": False, "status": "failed", "exit_status": exc.exit_status,
                             "error": str(exc), "steps": sim.step_index})
        raise exc from None

    _flush_probes(probes, results, sim)
    timings = max_over_ranks(comm, timers.seconds | {"total": MPI.Wtime() - wall_start})
    stats = sim.preconditioner_stats()
    results.close({f"wall_time_{k}": v for k, v in timings.items()} |
                  {"steps": sim.step_index, "dt": sim.dt, "linear_iterations": sim.iterations,
                   "steps_rejected": sim.adaptive.controller.rejected if sim.adaptive else 0,
                   "nonlinear_iterations": sim.nonlinear_iterations, "temperature_unit": case.physics.temperature_unit,
                   "complete": not stopped, "status": "stopped" if stopped else "complete", "exit_status":
                   EXIT_STOPPED if stopped else 0, "checkpoint": str(last_checkpoint or ""),
                   "preconditioner": sim.solver.preconditioner} |
                  ({"preconditioner_stats": json.dumps(stats)} if stats else {}) |
                  {f"balance_{k}": v for k, v in sim.balance.as_dict().items()})
    result = RunResult(results.h5_path, results.xdmf_path, mesh.n_global_nodes, comm.size, sim.step_index,
                       sim.iterations, timings, stopped, last_checkpoint,
                       None if resume is None else resume.path, sim.solver.preconditioner, stats,
                       sim.nonlinear_iterations, _step_summary(sim) if sim.adaptive else {})
    log.info(summary(result, case))
    if last_checkpoint is not None:
        how = "to continue" if stopped else "to extend the run (with a larger time.t_end)"
        source = "" if case.source.startswith("<") else f" {case.source}"
        (log.warning if stopped else log.info)(
            f"checkpoint: {last_checkpoint} (step {sim.step_index}); {how}: "
            f"mpirun -n N python -m solver{source} --restart latest")
    return result


def dry_run(case: Case, comm=MPI.COMM_WORLD) -> dict:
    """Resolve the case, build the mesh and matrices, and report sizes; no solve, no files."""
    check_memory(comm, case.source, case.mesh)
    check_split(comm, case.mesh)
    mesh = create_mesh(comm, case.mesh)
    check_against_mesh(case, mesh)
    nonlinear = case.physics.nonlinear
    if nonlinear:  # no explicit step for it; its fields: the temperature, and the liquid fraction with melting
        problem = NonlinearHeatProblem(mesh, case.physics)
        dt_limit, fields = math.nan, 2 if problem.melting else 1
    else:
        problem = HeatProblem(mesh, case.physics)
        dt_limit, fields = stable_explicit_dt(problem), 1
    t = case.time
    if case.steady:
        steps = 0
    elif t.adaptive is not None:
        steps = None
    elif t.dt == "auto":
        steps = auto_steps(t.t_end, dt_limit)
    else:
        steps = int(round(t.t_end / t.dt))
    snapshots = expected_snapshots(case.output, steps)
    out_bytes = estimate_output_bytes(mesh.n_global_nodes, mesh.n_global_cells, mesh.reference.n_nodes, mesh.dim,
                                      snapshots * fields)
    per_rank = BYTES_PER_NODE[mesh.dim] * mesh.n_global_nodes / comm.size
    info = {"dofs": mesh.n_global_nodes, "cells": mesh.n_global_cells, "ranks": comm.size,
            "memory_per_rank_bytes": per_rank, "stable_explicit_dt": dt_limit, "steps": steps,
            "output_bytes": out_bytes}
    directory = Path(case.output.directory) / case.name
    log.info(f"case: {case.source} ({case.name}), {t.scheme}")
    log.info(f"mesh: {mesh.n_global_nodes} DOFs, {mesh.n_global_cells} {mesh.cell_type} cells on {comm.size} ranks")
    log.info(f"memory: about {per_rank / 2**20:.1f} MiB per rank (estimate)")
    how = (f"adaptive dt from {t.adaptive.dt_initial:g} s in [{t.adaptive.dt_min:g}, {t.adaptive.dt_max:g}] s, "
           f"tolerance {t.adaptive.relative:g} relative, {t.adaptive.absolute:g} absolute"
           if t.adaptive is not None else f"dt = {t.dt}, {steps} steps")
    if nonlinear:
        log.info("nonlinear: " + ("steady solve by Newton" if case.steady else f"{how}, "
                                  f"each step solved by {case.nonlinear.method}"))
    else:
        log.info(f"explicit-euler stable time step: {dt_limit:.6g} s"
                 + ("" if case.steady else f"; this case: {how}"))
    log.info(f"output: about {out_bytes / 2**20:.1f} MiB in {directory} ({snapshots} snapshots)")
    log.info("dry run: nothing solved, nothing written")
    return info


def _flush_probes(probes: Probes | None, results: ResultsFile, sim: Simulation) -> None:
    """Write the probe values and the time-step records gathered since the last flush."""
    if probes is not None:
        results.write_probes(*probes.take())
    results.write_steps(sim.take_records())


def _after_output_error(results: ResultsFile | None, directory: Path) -> str:
    """What a failed write left, and how to go on (rank 0 looks; every rank gets the answer)."""
    if results is None:
        return "no snapshot was written: free space, then run again (with --overwrite if a results file is left)"
    kept = results.snapshots
    state = (f"the results keep {len(kept)} complete snapshots (to t = {kept[-1][0]:.6g})"
             if kept else "the results hold no snapshot")
    latest = on_root(results.comm, lambda: checkpoint.latest(directory))
    if latest is None:
        return f"{state}; no checkpoint was written yet: free space, then run again with --overwrite"
    return f"{state}; free space, then continue from {latest} with --restart latest"


def _time_loop(sim: Simulation, case: Case, results: ResultsFile, probes: Probes | None, directory: Path,
               quiet: bool, faults: TestFaults):
    """Steps to the end or to a stop; returns (stopped, last checkpoint)."""
    timers, cp, run_spec = sim.timers, case.checkpoint, case.run
    control = RunControl(sim.comm, run_spec.wall_limit, cp.every, cp.wall_interval, run_spec.hang_timeout)
    if case.steady:
        solve = sim.solve_steady()
        bad = bool(sim.comm.allreduce(sim.unhealthy(run_spec.temperature_range) is not None))
        check_health(sim, bad, case, solve)
        log.info(f"steady state: iterations {solve.iterations}, residual {solve.residual:.2e}")
        with timers("output"):
            results.write(sim.u, 0.0, 0, sim.balance, sim.fields())
            if probes is not None:
                probes.record(sim.u, 0.0)
        log.info(_balance_line(sim.balance, steady=True))
        return False, None
    if case.time.dt == "auto":
        log.info(f"explicit-euler: stable limit {sim.stepper.dt_limit:.6g} s, using dt = {sim.dt:.6g} s "
                 f"({sim.n_steps} steps)")
    output_due = output_schedule(sim, case)
    stopped, last_checkpoint = False, None
    report_every = max(1, (sim.n_steps - sim.step_index) // 20) if sim.n_steps is not None else None
    next_report = sim.progress + 0.05
    progress = logs.Progress(sim.comm, quiet)
    control.install()
    loop_start, first_step, first_progress = MPI.Wtime(), sim.step_index, sim.progress
    try:
        while not sim.finished:
            step_start = MPI.Wtime()
            solve = sim.advance()
            step = sim.step_index
            faults.after_step(step, sim.u)
            unhealthy = sim.unhealthy(run_spec.temperature_range) is not None
            stop, due, bad = control.after_step(step, MPI.Wtime() - step_start, unhealthy)
            check_step(case.source, sim.problem, sim.balance, sim.t)
            check_health(sim, bad, case, solve)
            if probes is not None:
                probes.record(sim.u, sim.t)
            if output_due(step, sim.t) or sim.finished:
                with timers("output"):
                    results.write(sim.u, sim.t, step, sim.balance, sim.fields())
                    _flush_probes(probes, results, sim)
            elapsed = MPI.Wtime() - loop_start
            if report_every is not None:
                periodic = (step - first_step) % report_every == 0
            else:
                periodic = sim.progress >= next_report
                next_report = sim.progress + 0.05 if periodic else next_report
            progress(step - first_step, sim.n_steps and sim.n_steps - first_step, sim.t, solve.iterations,
                     solve.residual, sim.balance.relative, elapsed, periodic or sim.finished,
                     (sim.progress - first_progress) / max(1.0 - first_progress, 1e-300))
            if due or sim.finished:
                last_checkpoint = _checkpoint(sim, results, directory, cp.keep, control, faults)
            if stop and not sim.finished:
                stopped = True
                log.warning(f"stopping at step {step} (t = {sim.t:.6g}): {control.reason}")
                break
    finally:
        control.uninstall()
    if sim.step_index > first_step and not stopped:
        log.info(_balance_line(sim.balance))
    return stopped, last_checkpoint


def output_schedule(sim: Simulation, case: Case):
    """``due(step, t)``: whether the snapshot of this step is written (the last one always is).
    output.interval / output.times: adaptive steps land on the times exactly; fixed steps must
    fall on them (explicit-euler's "auto" dt is known only now)."""
    times = np.array(case.output.times)
    if not len(times):
        every = case.output.every
        return lambda step, t: step % every == 0
    if sim.adaptive is None and sim.origin is None:
        off = [t for t in times if not whole_steps(t, sim.dt)]
        if off:
            key = "times" if case.output.interval is None else "interval"
            raise CaseError(f"{case.source}: output.{key}: t = {off[0]:g} s is not a whole number of steps of "
                            f"dt = {sim.dt:.6g} s; give times on the steps or a fixed time.dt that divides them")
    tolerance = 1e-9 * sim.dt if sim.adaptive is None else 0.0

    def due(step: int, t: float) -> bool:
        i = int(np.searchsorted(times, t))
        near = [times[j] for j in (i - 1, i) if 0 <= j < len(times)]
        return any(abs(t - time) <= tolerance for time in near)
    return due


def check_health(sim: Simulation, bad_anywhere: bool, case: Case, solve) -> None:
    """Raise NumericalError (on every rank) when some rank's solution went bad at this step."""
    if not bad_anywhere:
        return
    lo, hi = case.run.temperature_range
    local = sim.unhealthy((lo, hi))
    found = sim.comm.allgather(None if local is None else (sim.comm.rank, *local))
    rank, value, where = next(f for f in found if f is not None)
    at = ", ".join(f"{c:.6g}" for c in where)
    what = "NaN" if np.isnan(value) else ("Inf" if np.isinf(value) else f"{value:.6g}, outside [{lo:g}, {hi:g}]")
    if case.time.scheme == "explicit-euler":
        cause = "an explicit time step at or near the stability limit (try time.dt = \"auto\" or an implicit scheme)"
    elif not solve.converged or solve.residual > 1e-3:
        cause = "a diverging linear solver (try solver.preconditioner = \"bjacobi\")"
    else:
        cause = ("a sign error or a huge value in a heat flux, source or convection coefficient "
                 "(boundary.*.flux, source.f, boundary.*.h), or temperature_range too narrow for this case")
    when = "the steady solve" if case.steady else f"step {sim.step_index} (t = {sim.t:.6g})"
    raise NumericalError(f"{when}: temperature {what} at ({at}) on rank {rank}; likely cause: {cause}; "
                         f"the results file keeps the output up to the last good step")


@dataclass
class Resume:
    """A checkpoint to restart from, checked, with its attributes (the same on every rank)."""

    path: Path
    attrs: checkpoint.CheckpointAttrs

    @property
    def snapshots(self) -> int:
        return self.attrs.snapshots


def _find_restart(restart: str, directory: Path, mesh, case: Case, force: bool) -> Resume:
    """Locate and check a checkpoint on rank 0; every rank gets its attributes."""
    def look():
        path = checkpoint.resolve(restart, directory)
        return str(path), checkpoint.inspect(path, mesh.n_global_nodes)
    path, attrs = on_root(mesh.comm, look, CaseError)
    path = Path(path)
    changed = checkpoint.check_compatible(path, attrs, case.values, force)
    log.info(f"restarting from {path} (step {attrs.step}, t = {attrs.t:.6g}, written on {attrs.ranks} ranks)")
    if changed:
        log.info(f"changed since the checkpoint: {', '.join(changed)}")
    return Resume(path, attrs)


def _checkpoint(sim: Simulation, results: ResultsFile, directory: Path, keep: int, control: RunControl,
                faults: TestFaults) -> Path:
    start = MPI.Wtime()
    with sim.timers("checkpoint"):
        b = sim.balance
        attrs = checkpoint.CheckpointAttrs(
            step=sim.step_index, t=sim.t, dt=sim.dt, scheme=sim.case.time.scheme,
            case=checkpoint.case_text(sim.case.values), case_hash=checkpoint.case_hash(sim.case.values),
            snapshots=len(results.snapshots), iterations=sim.iterations, balance_terms=list(b.terms),
            balance_energy_start=b.energy_start, balance_inflow=np.asarray(b.inflow), stepper=sim.scalars())
        path = checkpoint.write_checkpoint(directory, sim.mesh, results.nodes, sim.state(), attrs, keep,
                                           lambda p: results.open_block_file(p, "w"), faults.before_checkpoint_close)
    control.checkpoint_written(MPI.Wtime() - start)
    return path


def _balance_line(b, steady: bool = False) -> str:
    terms = ", ".join(f"{name} {v:+.6g}" for name, v in zip(b.terms, b.inflow) if v)
    if steady:
        return f"heat balance: heat flows in (W): {terms or 'none'}; relative imbalance {b.relative:.2e}"
    lag = f"; storage lag of the multistep formula {b.lag:+.6g} J" if b.lag else ""
    return (f"heat balance: energy change {b.change:+.6g} J; heat in (J): {terms or 'none'}{lag}; "
            f"relative imbalance {b.relative:.2e}")


def summary(r: RunResult, case: Case) -> str:
    t = r.timings
    per_step = r.iterations / max(r.steps, 1)
    what = "steady solve" if case.steady else f"{r.steps} steps of {case.time.scheme}"
    if r.stopped:
        what = f"stopped after {r.steps} steps of {case.time.scheme} (exit status 75)"
    if r.restarted_from is not None:
        what += f", restarted from {r.restarted_from}"
    lines = [
        f"done: {r.n_dofs} DOFs on {r.ranks} ranks, {what}, "
        f"{r.iterations} {'linear' if r.nonlinear_iterations else 'CG'} iterations ({per_step:.1f} per step, "
        f"preconditioner {r.preconditioner})"]
    if r.nonlinear_iterations:
        lines[0] += (f"; {r.nonlinear_iterations} {case.nonlinear.method} iterations "
                     f"({r.nonlinear_iterations / max(r.steps, 1):.1f} per step)")
    a = r.time_steps
    if a:
        lines.append(f"time steps: {a['accepted']} accepted, {a['rejected']} rejected by the error estimate"
                     + (f", {a['failed_solves']} cut after a failed solve" if a["failed_solves"] else "")
                     + f"; dt min {a['dt_min']:.3g} s, median {a['dt_median']:.3g} s, max {a['dt_max']:.3g} s; "
                     f"{a['setups']} preconditioner set-ups and {a['updates']} updates ({a['setup_seconds']:.3f} s, "
                     f"{100 * a['setup_seconds'] / max(t.get('solve', 0.0), 1e-300):.0f}% of the solve time)")
    p = r.preconditioner_stats
    if "levels" in p:
        lines.append(f"multigrid: {p['levels']} levels, operator complexity {p['operator_complexity']:.2f}, "
                     f"grid complexity {p['grid_complexity']:.2f}, set-up {p['setup_time']:.3f} s"
                     + (f", {p['updates']} updates for new matrices" if p.get("updates") else ""))
    return "\n".join(lines + [
        f"wall time: mesh {t.get('mesh', 0):.3f} s, assembly {t.get('assembly', 0):.3f} s, "
        f"solve {t.get('solve', 0):.3f} s, output {t.get('output', 0):.3f} s, total {t.get('total', 0):.3f} s",
        f"results: {r.h5_path}",
        f"         {r.xdmf_path}  (open in ParaView)",
    ])
