"""One run of a case: mesh, assembly, time loop and output, with timings and progress."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from solver import __version__, checkpoint
from solver.collective import max_over_ranks, on_root
from solver.config import Case, check_against_mesh
from solver.control import RunControl
from solver.errors import CaseError, NumericalError, SolverExit
from solver.safety import check_memory, check_space, check_split, estimate_output_bytes, guard_output
from solver.expressions import Expression
from solver.output import ResultsFile
from solver.probes import Probes
from solver.problem import HeatProblem
from solver.structured import mesh_from_case
from solver.timestepping import make_stepper


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


class Reporter:
    """Messages and progress on rank 0 only; everything also goes to a log file once attached.

    On a terminal, progress is one line redrawn in place (a bar with ETA); otherwise (batch
    jobs, pipes) it is a plain line every few percent."""

    def __init__(self, comm, quiet: bool = False, stream=None):
        self.root = comm.rank == 0
        self.quiet = quiet
        self.stream = stream or sys.stdout
        self.log = None
        self.tty = self.root and _is_terminal(self.stream)
        self._bar = False

    def attach_log(self, path: Path) -> None:
        if self.root:
            self.log = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None

    def __call__(self, message: str, file=None) -> None:
        """Print on rank 0; ``--quiet`` silences progress but not warnings (file=sys.stderr)."""
        if not self.root:
            return
        if self.log is not None:
            print(message, file=self.log, flush=True)
        if not self.quiet or file is sys.stderr:
            if self._bar:
                print(file=self.stream)
                self._bar = False
            print(message, file=file or self.stream, flush=True)

    def progress(self, step: int, n_steps: int, t: float, iterations: int, residual: float, imbalance: float,
                 elapsed: float, periodic: bool) -> None:
        """A progress bar (terminal) or, when ``periodic``, a plain line with elapsed time and ETA."""
        if not self.root:
            return
        eta = elapsed / max(step, 1) * (n_steps - step)
        line = (f"step {step:6d}/{n_steps}  t = {t:.6g}  iterations {iterations:4d}  residual {residual:.2e}  "
                f"heat imbalance {imbalance:.1e}  elapsed {_hms(elapsed)}  ETA {_hms(eta)}")
        if self.log is not None and periodic:
            print(line, file=self.log, flush=True)
        if self.quiet:
            return
        if self.tty:
            width = 30
            done = int(width * step / max(n_steps, 1))
            bar = "#" * done + "-" * (width - done)
            print(f"\r[{bar}] {100 * step / max(n_steps, 1):5.1f}%  t = {t:.4g}  it {iterations:3d}  "
                  f"elapsed {_hms(elapsed)}  ETA {_hms(eta)} ", end="", file=self.stream, flush=True)
            self._bar = step < n_steps
            if step == n_steps:
                print(file=self.stream)
        elif periodic:
            print(line, file=self.stream, flush=True)


def _is_terminal(stream) -> bool:
    """True when progress should be drawn in place. Under mpirun the ranks' stdout is a
    pseudo-terminal even when mpirun's own output goes to a file or pipe, so ask what the
    launcher's stdout is (Linux /proc); when unknown, assume not a terminal."""
    if not (hasattr(stream, "isatty") and stream.isatty()):
        return False
    if not any(v in os.environ for v in ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK")):
        return True
    try:
        target = os.readlink(f"/proc/{os.getppid()}/fd/1")
    except OSError:
        return False
    return target.startswith(("/dev/pts/", "/dev/tty"))


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Timers:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        start = MPI.Wtime()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + MPI.Wtime() - start


def _test_faults(rank: int) -> dict:
    """Faults injected by tests only: SOLVER_TEST_FAIL / _NAN / _HANG = "rank:step"."""
    faults = {}
    for kind in ("fail", "nan", "hang"):
        spec = os.environ.get(f"SOLVER_TEST_{kind.upper()}")
        if spec:
            r, step = (int(v) for v in spec.split(":"))
            if r == rank:
                faults[step] = kind
    return faults


def build_mesh(comm, mesh: dict):
    """The distributed mesh of a case: structured, or read from a file and partitioned."""
    if mesh["type"] == "file":
        from solver.meshfile import distributed_mesh
        return distributed_mesh(comm, mesh["file"], mesh["partitioner"])
    return mesh_from_case(comm, mesh)


class Simulation:
    """The discretised case on this rank: mesh, problem, stepper and the current solution."""

    def __init__(self, case: Case, comm=MPI.COMM_WORLD, timers: Timers | None = None):
        self.case, self.comm = case, comm
        self.timers = timers or Timers()
        with self.timers("mesh"):
            self.mesh = build_mesh(comm, case.values["mesh"])
        check_against_mesh(case, self.mesh)
        with self.timers("assembly"):
            self.problem = HeatProblem(self.mesh, case.values)
            self.stepper = make_stepper(self.problem, case)
        initial = Expression(case.values["initial"]["temperature"])
        self.u = np.array(initial(self.mesh.coords, 0.0), dtype=float)
        self.step_index, self.t = 0, 0.0
        self.iterations = 0
        self.probes = None  # solver.probes.Probes when output.probes is set
        self._test_delay = float(os.environ.get("SOLVER_TEST_STEP_DELAY", "0"))  # tests only: slow steps
        self._test_faults = _test_faults(comm.rank)  # tests only: injected failures
        self.temperature_range = case.values["run"]["temperature_range"]
        if case.steady:
            self.dt, self.n_steps = 0.0, 0
        else:
            self.dt = self.stepper.dt
            self.n_steps = int(round(case.values["time"]["t_end"] / self.dt))
            self.stepper.start(self.u, 0.0)

    def unhealthy(self):
        """None, or (value, coordinates) of a NaN/Inf/out-of-range owned temperature."""
        u = self.u[: self.mesh.n_owned]
        lo, hi = self.temperature_range
        bad = ~np.isfinite(u) | (u < lo) | (u > hi)
        if not bad.any():
            return None
        i = int(np.argmax(bad))
        return float(u[i]), tuple(float(c) for c in self.mesh.coords[i])

    @property
    def balance(self):
        return self.stepper.balance

    def advance(self):
        """One time step; returns the linear solver's SolveInfo."""
        with self.timers("solve"):
            info = self.stepper.step(self.u, self.t, self.step_index + 1)
        if self._test_delay:
            time.sleep(self._test_delay)
        self.step_index += 1
        fault = self._test_faults.get(self.step_index)
        if fault == "fail":
            raise RuntimeError(f"injected failure on rank {self.comm.rank} at step {self.step_index} (tests)")
        if fault == "nan":
            self.u[0] = np.nan
        if fault == "hang":
            time.sleep(3600)
        self.t = self.step_index * self.dt
        self.iterations += info.iterations
        return info

    def state(self) -> dict:
        """Local vectors a restart needs: the temperature, and BDF2's previous solution."""
        out = {"temperature": self.u}
        previous = getattr(self.stepper, "previous", None)
        if previous is not None:
            out["previous"] = previous
        return out

    def restore(self, state: dict, attrs: dict) -> None:
        """Continue from a checkpoint: solution, step, time, BDF2 history and heat balance."""
        self.u[:] = state["temperature"]
        if "previous" in state:
            self.stepper.previous = state["previous"]
        self.step_index = int(attrs["step"])
        self.t = self.step_index * self.dt
        self.iterations = int(attrs["iterations"])
        terms = str(attrs["balance_terms"]).split("\n")
        if terms == self.balance.terms:
            self.balance.energy_start = float(attrs["balance_energy_start"])
            self.balance.inflow = np.array(attrs["balance_inflow"], dtype=float)
        self.balance.energy = self.problem.energy(self.u)

    def solve_steady(self):
        with self.timers("solve"):
            info = self.stepper.solve(self.u)
        self.iterations += info.iterations
        return info


def run(case: Case, comm=MPI.COMM_WORLD, quiet: bool = False, report: Reporter | None = None,
        restart: str | None = None, force: bool = False, overwrite: bool = False) -> RunResult:
    """Run a case to t_end (or to a graceful stop), writing results and checkpoints."""
    report = report or Reporter(comm, quiet)
    wall_start = MPI.Wtime()
    check_memory(comm, case.source, case.values["mesh"])
    check_split(comm, case.values["mesh"])
    out = case.values["output"]
    directory = Path(out["directory"]) / case.name
    guard = guard_output(comm, directory, case.name, overwrite, restart is not None, report)
    try:
        report.attach_log(directory / f"{case.name}.log")
        report(f"solver {__version__}: {case.source} on {comm.size} ranks"
               + (f" (restart from {restart})" if restart else ""))
        return _run(case, comm, report, restart, force, guard, directory, wall_start)
    finally:
        report.close()
        if guard is not None:
            guard.release()


def _run(case, comm, report, restart, force, guard, directory, wall_start) -> RunResult:
    sim = Simulation(case, comm)
    mesh, timers = sim.mesh, sim.timers
    info = mesh.summary()
    report(f"mesh: {info['nodes']} nodes, {info['cells']} {mesh.cell_type} cells on {comm.size} ranks "
           f"(owned nodes per rank {info['owned_nodes_min']}..{info['owned_nodes_max']})")
    if mesh.info:
        q = mesh.info
        report(f"partition: {q['partitioner']}, edge cut {q['edge_cut']} facets, "
               f"owned-node imbalance {q['owned_nodes_imbalance']:.3f} (max/mean)")

    out = case.values["output"]
    snapshots = 2 + (sim.n_steps // out["every"] if sim.n_steps else 0)
    needed = estimate_output_bytes(mesh.n_global_nodes, mesh.n_global_cells, mesh.reference.n_nodes, mesh.dim,
                                   snapshots) + 2 * 8 * mesh.n_global_nodes * case.values["checkpoint"]["keep"]
    check_space(comm, guard, needed)
    results = None
    try:
        resume = _find_restart(restart, directory, mesh, case, force, report) if restart else None
        with timers("output"):
            attrs = {"case": checkpoint.case_text(case.values), "case_file_text": case.text,
                     "case_source": case.source, "overrides": "\n".join(case.overrides)}
            results = ResultsFile(directory, case.name, mesh, attrs, out["driver"], report,
                                  continue_after=None if resume is None else resume["snapshots"])
            if resume is not None:
                state = checkpoint.read_state(resume["path"], mesh, results.nodes, resume["datasets"],
                                              lambda p: results.open_block_file(p, "r"))
                sim.restore(state, resume)
            elif not case.steady:
                results.write(sim.u, 0.0, 0, sim.balance)
            if out["probes"]:
                sim.probes = Probes(mesh, out["probes"])
                results.init_probes(sim.probes.points, None if resume is None else sim.t)
                if resume is None and not case.steady:
                    sim.probes.record(sim.u, 0.0)
        stopped, last_checkpoint = _time_loop(sim, case, results, directory, report)
    except SolverExit:
        if results is not None:  # every rank raised it: close collectively, keeping what was written
            _flush_probes(sim, results)
            results.close({"complete": False})
        raise

    _flush_probes(sim, results)
    timings = max_over_ranks(comm, timers.seconds | {"total": MPI.Wtime() - wall_start})
    results.close({f"wall_time_{k}": v for k, v in timings.items()} |
                  {"steps": sim.step_index, "dt": sim.dt, "linear_iterations": sim.iterations,
                   "complete": not stopped} |
                  {f"balance_{k}": v for k, v in sim.balance.as_dict().items()})
    result = RunResult(results.h5_path, results.xdmf_path, mesh.n_global_nodes, comm.size, sim.step_index,
                       sim.iterations, timings, stopped, last_checkpoint,
                       None if resume is None else resume["path"])
    report(summary(result, case))
    if last_checkpoint is not None:
        how = "to continue" if stopped else "to extend the run (with a larger time.t_end)"
        source = "" if case.source.startswith("<") else f" {case.source}"
        report(f"checkpoint: {last_checkpoint} (step {sim.step_index}); {how}: "
               f"mpirun -n N python -m solver{source} --restart latest", file=sys.stderr if stopped else None)
    return result


def dry_run(case: Case, comm=MPI.COMM_WORLD, report: Reporter | None = None) -> dict:
    """Resolve the case, build the mesh and matrices, and report sizes; no solve, no files."""
    from solver.safety import BYTES_PER_NODE
    from solver.timestepping import stable_explicit_dt

    report = report or Reporter(comm)
    check_memory(comm, case.source, case.values["mesh"])
    check_split(comm, case.values["mesh"])
    mesh = build_mesh(comm, case.values["mesh"])
    check_against_mesh(case, mesh)
    problem = HeatProblem(mesh, case.values)
    dt_limit = stable_explicit_dt(problem)
    t = case.values["time"]
    steps = 0 if case.steady else int(round(t["t_end"] / (0.9 * dt_limit if t["dt"] == "auto" else t["dt"])))
    snapshots = 1 + (steps // case.values["output"]["every"] if steps else 0) + 1
    out_bytes = estimate_output_bytes(mesh.n_global_nodes, mesh.n_global_cells, mesh.reference.n_nodes, mesh.dim,
                                      snapshots)
    per_rank = BYTES_PER_NODE[mesh.dim] * mesh.n_global_nodes / comm.size
    info = {"dofs": mesh.n_global_nodes, "cells": mesh.n_global_cells, "ranks": comm.size,
            "memory_per_rank_bytes": per_rank, "stable_explicit_dt": dt_limit, "steps": steps,
            "output_bytes": out_bytes}
    directory = Path(case.values["output"]["directory"]) / case.name
    report(f"case: {case.source} ({case.name}), {t['scheme']}")
    report(f"mesh: {mesh.n_global_nodes} DOFs, {mesh.n_global_cells} {mesh.cell_type} cells on {comm.size} ranks")
    report(f"memory: about {per_rank / 2**20:.1f} MiB per rank (estimate)")
    report(f"explicit-euler stable time step: {dt_limit:.6g} s"
           + ("" if case.steady else f"; this case: dt = {t['dt']}, {steps} steps"))
    report(f"output: about {out_bytes / 2**20:.1f} MiB in {directory} ({snapshots} snapshots)")
    report("dry run: nothing solved, nothing written")
    return info


def _flush_probes(sim: "Simulation", results: ResultsFile) -> None:
    if sim.probes is not None:
        results.write_probes(*sim.probes.take())


def _time_loop(sim: "Simulation", case: Case, results: ResultsFile, directory: Path, report):
    """Steps to the end or to a stop; returns (stopped, last checkpoint)."""
    timers, out, cp, run_cfg = sim.timers, case.values["output"], case.values["checkpoint"], case.values["run"]
    control = RunControl(sim.comm, run_cfg["wall_limit"], cp["every"], cp["wall_interval"], run_cfg["hang_timeout"])
    if case.steady:
        solve = sim.solve_steady()
        _check_health(sim, bool(sim.comm.allreduce(sim.unhealthy() is not None)), run_cfg, solve)
        report(f"steady state: iterations {solve.iterations}, residual {solve.residual:.2e}")
        with timers("output"):
            results.write(sim.u, 0.0, 0, sim.balance)
            if sim.probes is not None:
                sim.probes.record(sim.u, 0.0)
        report(_balance_line(sim.balance, steady=True))
        return False, None
    if case.values["time"]["dt"] == "auto":
        report(f"explicit-euler: stable limit {sim.stepper.dt_limit:.6g} s, using dt = {sim.dt:.6g} s "
               f"({sim.n_steps} steps)")
    stopped, last_checkpoint = False, None
    n_steps, every = sim.n_steps, out["every"]
    report_every = max(1, (n_steps - sim.step_index) // 20)
    control.install()
    loop_start, first_step = MPI.Wtime(), sim.step_index
    try:
        while sim.step_index < n_steps:
            step_start = MPI.Wtime()
            solve = sim.advance()
            step = sim.step_index
            stop, due, bad = control.after_step(step, MPI.Wtime() - step_start, sim.unhealthy() is not None)
            _check_health(sim, bad, run_cfg, solve)
            if sim.probes is not None:
                sim.probes.record(sim.u, sim.t)
            if step % every == 0 or step == n_steps:
                with timers("output"):
                    results.write(sim.u, sim.t, step, sim.balance)
                    _flush_probes(sim, results)
            elapsed = MPI.Wtime() - loop_start
            report.progress(step - first_step, n_steps - first_step, sim.t, solve.iterations, solve.residual,
                            sim.balance.relative, elapsed, (step - first_step) % report_every == 0 or step == n_steps)
            if due or step == n_steps:
                last_checkpoint = _checkpoint(sim, results, directory, cp["keep"], control)
            if stop and step < n_steps:
                stopped = True
                report(f"stopping at step {step} (t = {sim.t:.6g}): {control.reason}", file=sys.stderr)
                break
    finally:
        control.uninstall()
    if n_steps and not stopped:
        report(_balance_line(sim.balance))
    return stopped, last_checkpoint


def _check_health(sim: "Simulation", bad_anywhere: bool, run_cfg: dict, solve) -> None:
    """Raise NumericalError (on every rank) when some rank's solution went bad at this step."""
    if not bad_anywhere:
        return
    local = sim.unhealthy()
    found = sim.comm.allgather(None if local is None else (sim.comm.rank, *local))
    rank, value, where = next(f for f in found if f is not None)
    lo, hi = run_cfg["temperature_range"]
    at = ", ".join(f"{c:.6g}" for c in where)
    what = "NaN" if np.isnan(value) else ("Inf" if np.isinf(value) else f"{value:.6g}, outside [{lo:g}, {hi:g}]")
    scheme = sim.case.values["time"]["scheme"]
    if scheme == "explicit-euler":
        cause = "an explicit time step at or near the stability limit (try time.dt = \"auto\" or an implicit scheme)"
    elif not solve.converged or solve.residual > 1e-3:
        cause = "a diverging linear solver (try solver.preconditioner = \"bjacobi\")"
    else:
        cause = ("a sign error or a huge value in a heat flux, source or convection coefficient "
                 "(boundary.*.flux, source.f, boundary.*.h), or temperature_range too narrow for this case")
    when = "the steady solve" if sim.case.steady else f"step {sim.step_index} (t = {sim.t:.6g})"
    raise NumericalError(f"{when}: temperature {what} at ({at}) on rank {rank}; likely cause: {cause}; "
                         f"the results file keeps the output up to the last good step")


def _find_restart(restart: str, directory: Path, mesh, case: Case, force: bool, report) -> dict:
    """Locate and check a checkpoint on rank 0; every rank gets its attributes."""
    def look():
        path = checkpoint.resolve(restart, directory)
        attrs = checkpoint.inspect(path, mesh.n_global_nodes)
        return {**attrs, "path": str(path)}
    attrs = on_root(mesh.comm, look, CaseError)
    attrs["path"] = Path(attrs["path"])
    changed = checkpoint.check_compatible(attrs["path"], attrs, case.values, force)
    report(f"restarting from {attrs['path']} (step {attrs['step']}, t = {attrs['t']:.6g}, "
           f"written on {attrs['ranks']} ranks)")
    if changed:
        report(f"changed since the checkpoint: {', '.join(changed)}")
    return attrs


def _checkpoint(sim: "Simulation", results: ResultsFile, directory: Path, keep: int, control: RunControl) -> Path:
    start = MPI.Wtime()
    with sim.timers("checkpoint"):
        b = sim.balance
        attrs = {"step": sim.step_index, "t": sim.t, "dt": sim.dt, "scheme": sim.case.values["time"]["scheme"],
                 "case": checkpoint.case_text(sim.case.values), "case_hash": checkpoint.case_hash(sim.case.values),
                 "snapshots": len(results.snapshots), "iterations": sim.iterations,
                 "balance_terms": "\n".join(b.terms), "balance_energy_start": b.energy_start,
                 "balance_inflow": np.asarray(b.inflow)}
        delay = float(os.environ.get("SOLVER_TEST_CHECKPOINT_DELAY", "0"))  # tests only
        path = checkpoint.write_checkpoint(directory, sim.mesh, results.nodes, sim.state(), attrs, keep,
                                           lambda p: results.open_block_file(p, "w"), delay)
    control.checkpoint_written(MPI.Wtime() - start)
    return path


def _balance_line(b, steady: bool = False) -> str:
    terms = ", ".join(f"{name} {v:+.6g}" for name, v in zip(b.terms, b.inflow) if v)
    if steady:
        return f"heat balance: heat flows in (W): {terms or 'none'}; relative imbalance {b.relative:.2e}"
    return (f"heat balance: energy change {b.change:+.6g} J; heat in (J): {terms or 'none'}; "
            f"relative imbalance {b.relative:.2e}")


def summary(r: RunResult, case: Case) -> str:
    t = r.timings
    per_step = r.iterations / max(r.steps, 1)
    what = "steady solve" if case.steady else f"{r.steps} steps of {case.time.scheme}"
    if r.stopped:
        what = f"stopped after {r.steps} steps of {case.time.scheme} (exit status 75)"
    if r.restarted_from is not None:
        what += f", restarted from {r.restarted_from}"
    return "\n".join([
        f"done: {r.n_dofs} DOFs on {r.ranks} ranks, {what}, "
        f"{r.iterations} CG iterations ({per_step:.1f} per step, preconditioner {case.solver.preconditioner})",
        f"wall time: mesh {t.get('mesh', 0):.3f} s, assembly {t.get('assembly', 0):.3f} s, "
        f"solve {t.get('solve', 0):.3f} s, output {t.get('output', 0):.3f} s, total {t.get('total', 0):.3f} s",
        f"results: {r.h5_path}",
        f"         {r.xdmf_path}  (open in ParaView)",
    ])



