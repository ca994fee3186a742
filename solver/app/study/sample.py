"""One sample of a study on its group's communicator: the ordinary simulation, its snapshots kept
in memory (canonical blocks of the group) for the statistics, its scalar outputs, and a results
file only when the study asks for one."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from solver.app.faults import TestFaults
from solver.app.preflight import check_memory, check_split
from solver.app.run import check_health, output_schedule
from solver.errors import SolverExit
from solver.heat.checks import check_step
from solver.heat.simulation import Simulation
from solver.io.checkpoint import case_text
from solver.io.probes import Probes
from solver.io.results_file import ResultsFile
from solver.parallel.blocks import BlockRedistributor

log = logging.getLogger(__name__)
OK = 0


@dataclass
class SampleResult:
    """What a sample gives the study (the same on every rank of its group)."""

    index: int
    status: int  # 0, or the exit status its run would have had (2 bad input, 3 numerical)
    message: str
    seconds: float
    scalars: dict = field(default_factory=dict)  # max/min temperature, heat in per boundary, ...
    times: np.ndarray | None = None  # output times
    probes: np.ndarray | None = None  # (times, probes)
    fields: np.ndarray | None = None  # (times, this rank's canonical block): the temperature


def _extremes(comm, blocks: list[np.ndarray]) -> tuple[float, float]:
    lo = min((float(b.min()) for b in blocks if b.size), default=np.inf)
    hi = max((float(b.max()) for b in blocks if b.size), default=-np.inf)
    return comm.allreduce(lo, op=MPI.MIN), comm.allreduce(hi, op=MPI.MAX)


def run_sample(spec, index: int, values, comm, save_to: Path | None = None) -> SampleResult:
    """Run sample ``index`` (parameter ``values``) on ``comm``; a failure of the sample (bad
    value, no convergence, NaN) is its status and message, never the study's."""
    start = MPI.Wtime()
    results = None
    faults = TestFaults(comm.rank)
    try:
        case = spec.case_for(values)
        check_memory(comm, case.source, case.mesh)  # a sampled mesh size that cannot fit fails the sample
        check_split(comm, case.mesh)
        sim = Simulation(case, comm)
        mesh = sim.mesh
        nodes = BlockRedistributor(comm, mesh.node_ids[: mesh.n_owned], mesh.n_global_nodes)
        probes = Probes(mesh, case.output.probes) if case.output.probes else None
        if save_to is not None:
            attrs = {"case": case_text(case.values), "case_file_text": case.text,
                     "case_source": f"{spec.source} sample {index}", "overrides": "\n".join(case.overrides)}
            results = ResultsFile(save_to, f"{case.name}_{index:06d}", mesh, attrs, case.output.driver,
                                  extra_fields=sim.extra_fields, temperature_unit=case.physics.temperature_unit)
        snapshots, times = [], []

        def snapshot(t: float, step: int):
            snapshots.append(nodes.to_blocks(sim.u[: mesh.n_owned]))
            times.append(t)
            if probes is not None:
                probes.record(sim.u, t)
            if results is not None:
                results.write(sim.u, t, step, sim.balance, sim.fields())

        limits = case.run.temperature_range
        if case.steady:
            solve = sim.solve_steady()
            check_health(sim, bool(comm.allreduce(sim.unhealthy(limits) is not None)), case, solve)
            snapshot(0.0, 0)
        else:
            due = output_schedule(sim, case)
            snapshot(0.0, 0)
            while not sim.finished:
                solve = sim.advance()
                faults.after_step(sim.step_index, sim.u)
                check_step(case.source, sim.problem, sim.balance, sim.t)
                check_health(sim, bool(comm.allreduce(sim.unhealthy(limits) is not None)), case, solve)
                if due(sim.step_index, sim.t) or sim.finished:
                    snapshot(sim.t, sim.step_index)
        lo, hi = _extremes(comm, snapshots)
        b = sim.balance
        scalars = {"max_temperature": hi, "min_temperature": lo,
                   "final_max_temperature": _extremes(comm, snapshots[-1:])[1],
                   "steps": float(sim.step_index), "linear_iterations": float(sim.iterations),
                   "heat_balance_imbalance": float(b.relative)}
        scalars |= {f"heat_in.{term}": float(v) for term, v in zip(b.terms, b.inflow)}
        if results is not None:
            results.close({"status": "complete", "complete": True, "exit_status": 0})
        return SampleResult(index, OK, "", MPI.Wtime() - start, scalars, np.array(times),
                            probes.take()[1] if probes is not None else None, np.array(snapshots))
    except SolverExit as exc:  # raised on every rank of the group alike
        if results is not None:
            results.abandon({"status": "failed", "complete": False, "exit_status": exc.exit_status,
                             "error": str(exc)})
        return SampleResult(index, exc.exit_status, str(exc), MPI.Wtime() - start)
