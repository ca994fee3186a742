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


class Simulation:
    """The discretised case on this rank: mesh, problem, stepper and the current solution."""

    def __init__(self, case: Case, comm=MPI.COMM_WORLD, timers: Timers | None = None):
        self.case, self.comm = case, comm
        self.timers = timers or Timers()
        with self.timers("mesh"):
            self.mesh = mesh_from_case(comm, case.values["mesh"])
        with self.timers("assembly"):
            self.problem = HeatProblem(self.mesh, case.values)
            self.stepper = make_stepper(self.problem, case)
        initial = Expression(case.values["initial"]["temperature"])
        self.u = np.array(initial(self.mesh.coords, 0.0), dtype=float)
        self.step_index, self.t = 0, 0.0
        self.iterations = 0
        if case.steady:
            self.dt, self.n_steps = 0.0, 0
        else:
            self.dt = self.stepper.dt
            self.n_steps = int(round(case.values["time"]["t_end"] / self.dt))
            self.stepper.start(self.u, 0.0)

    @property
    def balance(self):
        return self.stepper.balance

    def advance(self):
        """One time step; returns the linear solver's SolveInfo."""
        with self.timers("solve"):
            info = self.stepper.step(self.u, self.t, self.step_index + 1)
        self.step_index += 1
        self.t = self.step_index * self.dt
        self.iterations += info.iterations
        return info

    def solve_steady(self):
        with self.timers("solve"):
            info = self.stepper.solve(self.u)
        self.iterations += info.iterations
        return info


def run(case: Case, comm=MPI.COMM_WORLD, quiet: bool = False, report: Reporter | None = None) -> RunResult:
    """Run a case to t_end, writing the results file; returns paths, sizes and timings."""
    report = report or Reporter(comm, quiet)
    wall_start = MPI.Wtime()
    sim = Simulation(case, comm)
    mesh, timers = sim.mesh, sim.timers
    info = mesh.summary()
    report(f"mesh: {info['nodes']} nodes, {info['cells']} {mesh.cell_type} cells on {comm.size} ranks "
           f"(owned nodes per rank {info['owned_nodes_min']}..{info['owned_nodes_max']})")

    out = case.values["output"]
    directory = Path(out["directory"]) / case.name
    with timers("output"):
        results = ResultsFile(directory, case.name, mesh, {
            "case": tomli_w.dumps(_plain(case.values)), "case_file_text": case.text,
            "case_source": case.source, "overrides": "\n".join(case.overrides)}, out["driver"], report)
        if not case.steady:
            results.write(sim.u, 0.0, 0, sim.balance)

    if case.steady:
        solve = sim.solve_steady()
        report(f"steady state: iterations {solve.iterations}, residual {solve.residual:.2e}")
        with timers("output"):
            results.write(sim.u, 0.0, 0, sim.balance)
        report(_balance_line(sim.balance, steady=True))
    elif case.values["time"]["dt"] == "auto":
        report(f"explicit-euler: stable limit {sim.stepper.dt_limit:.6g} s, using dt = {sim.dt:.6g} s "
               f"({sim.n_steps} steps)")

    n_steps, every = sim.n_steps, out["every"]
    report_every = max(1, n_steps // 20) if every == 1 else every
    while sim.step_index < n_steps:
        solve = sim.advance()
        step = sim.step_index
        if step % every == 0 or step == n_steps:
            with timers("output"):
                results.write(sim.u, sim.t, step, sim.balance)
        if step % report_every == 0 or step == n_steps:
            report(f"step {step:6d}/{n_steps}  t = {sim.t:.6g}  iterations {solve.iterations:4d}  "
                   f"residual {solve.residual:.2e}  heat imbalance {sim.balance.relative:.1e}")
    if n_steps:
        report(_balance_line(sim.balance))

    timings = max_over_ranks(comm, timers.seconds | {"total": MPI.Wtime() - wall_start})
    results.close({f"wall_time_{k}": v for k, v in timings.items()} |
                  {"steps": n_steps, "dt": sim.dt, "linear_iterations": sim.iterations} |
                  {f"balance_{k}": v for k, v in sim.balance.as_dict().items()})
    result = RunResult(results.h5_path, results.xdmf_path, mesh.n_global_nodes, comm.size, n_steps,
                       sim.iterations, timings)
    report(summary(result, case))
    return result


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
    return "\n".join([
        f"done: {r.n_dofs} DOFs on {r.ranks} ranks, {what}, "
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

