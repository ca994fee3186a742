"""One run of a case: mesh, assembly, time loop and output, with timings and progress."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tomli_w
from mpi4py import MPI

from solver.collective import max_over_ranks
from solver.config import Case
from solver.expressions import Expression
from solver.output import ResultsFile
from solver.problem import HeatProblem
from solver.structured import mesh_from_case
from solver.timestepping import ThetaStepper


@dataclass
class RunResult:
    h5_path: Path
    xdmf_path: Path
    n_dofs: int
    ranks: int
    steps: int
    iterations: int
    timings: dict = field(default_factory=dict)


class Reporter:
    """Progress lines on rank 0 only."""

    def __init__(self, comm, quiet: bool = False, stream=None):
        self.root = comm.rank == 0
        self.quiet = quiet
        self.stream = stream or sys.stdout

    def __call__(self, message: str, file=None) -> None:
        """Print on rank 0; ``--quiet`` silences progress but not warnings (file=sys.stderr)."""
        if self.root and (not self.quiet or file is sys.stderr):
            print(message, file=file or self.stream, flush=True)


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


def run(case: Case, comm=MPI.COMM_WORLD, quiet: bool = False, report: Reporter | None = None) -> RunResult:
    report = report or Reporter(comm, quiet)
    timers = Timers()
    wall_start = MPI.Wtime()
    with timers("mesh"):
        mesh = mesh_from_case(comm, case.values["mesh"])
    info = mesh.summary()
    report(f"mesh: {info['nodes']} nodes, {info['cells']} {mesh.cell_type} cells on {comm.size} ranks "
           f"(owned nodes per rank {info['owned_nodes_min']}..{info['owned_nodes_max']})")
    with timers("assembly"):
        problem = HeatProblem(mesh, case.values["material"], case.values["source"]["f"], case.boundaries)
        time_cfg = case.values["time"]
        stepper = ThetaStepper(problem, time_cfg["dt"], case.theta, case.values["solver"])
    u = np.asarray(Expression(case.values["initial"]["temperature"])(mesh.coords, 0.0), dtype=float).copy()

    out = case.values["output"]
    directory = Path(out["directory"]) / case.name
    with timers("output"):
        results = ResultsFile(directory, case.name, mesh, {
            "case": tomli_w.dumps(_plain(case.values)), "case_file_text": case.text,
            "case_source": case.source, "overrides": "\n".join(case.overrides)}, out["driver"], report)
        results.write(u, 0.0, 0)

    n_steps, dt, every = case.n_steps, time_cfg["dt"], out["every"]
    total_iterations = 0
    report_every = max(1, n_steps // 20) if every == 1 else every
    t = 0.0
    for step in range(1, n_steps + 1):
        with timers("solve"):
            solve = stepper.step(u, t, step)
        t = step * dt
        total_iterations += solve.iterations
        if step % every == 0 or step == n_steps:
            with timers("output"):
                results.write(u, t, step)
        if step % report_every == 0 or step == n_steps:
            report(f"step {step:6d}/{n_steps}  t = {t:.6g}  iterations {solve.iterations:4d}  "
                   f"residual {solve.residual:.2e}")

    timings = max_over_ranks(comm, timers.seconds | {"total": MPI.Wtime() - wall_start})
    with timers("output"):
        results.close({f"wall_time_{k}": v for k, v in timings.items()} |
                      {"steps": n_steps, "linear_iterations": total_iterations})
    result = RunResult(results.h5_path, results.xdmf_path, mesh.n_global_nodes, comm.size, n_steps,
                       total_iterations, timings)
    report(summary(result, case))
    return result


def summary(r: RunResult, case: Case) -> str:
    t = r.timings
    per_step = r.iterations / max(r.steps, 1)
    return "\n".join([
        f"done: {r.n_dofs} DOFs on {r.ranks} ranks, {r.steps} steps of {case.time.scheme}, "
        f"{r.iterations} CG iterations ({per_step:.1f} per step, preconditioner {case.solver.preconditioner})",
        f"wall time: mesh {t.get('mesh', 0):.3f} s, assembly {t.get('assembly', 0):.3f} s, "
        f"solve {t.get('solve', 0):.3f} s, output {t.get('output', 0):.3f} s, total {t.get('total', 0):.3f} s",
        f"results: {r.h5_path}",
        f"         {r.xdmf_path}  (open in ParaView)",
    ])


def _plain(values: dict) -> dict:
    """The validated case without None entries (TOML has no null)."""
    if isinstance(values, dict):
        return {k: _plain(v) for k, v in values.items() if v is not None}
    return values

