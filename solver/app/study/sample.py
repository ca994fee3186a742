"""One sample of a study on its group's communicator: the ordinary simulation and march
(:mod:`solver.heat.march`), its snapshots kept in memory (canonical blocks of the group) for the
statistics, its scalar outputs, and a results file only when the study asks for one."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from solver.app.faults import FaultInjection
from solver.app.preflight import check_memory, check_split
from solver.errors import EXIT_STOPPED, SolverExit
from solver.heat.checks import check_balance
from solver.heat.march import Observer, StepEvent, StepVote, Votes, march
from solver.heat.simulation import Simulation
from solver.io.end_record import COMPLETE, FAILED, STOPPED, EndRecord
from solver.io.probe_series import ProbeSeries
from solver.io.results_writer import ResultsLayout, ResultsWriter
from solver.io.stored_case import stored_case
from solver.parallel.blocks import BlockRedistributor
from solver.app.study.studyfile import PENDING

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


class SampleSnapshots(Observer):
    """The snapshots of a sample at the output times: the temperature in the group's canonical
    blocks (for the statistics), the probes, and the results file when the study keeps one."""

    def __init__(self, sim: Simulation):
        mesh = sim.mesh
        self.nodes = BlockRedistributor(sim.comm, mesh.node_ids[: mesh.n_owned], mesh.n_global_nodes)
        self.probes = ProbeSeries(mesh, sim.case.output.probes) if sim.case.output.probes else None
        self.results: ResultsWriter | None = None
        self.blocks: list[np.ndarray] = []
        self.times: list[float] = []
        self.lowest, self.highest = np.inf, -np.inf  # this rank's owned temperatures over every step

    def track(self, sim: Simulation) -> None:
        owned = sim.u[: sim.mesh.n_owned]
        if owned.size:
            self.lowest, self.highest = min(self.lowest, float(owned.min())), max(self.highest, float(owned.max()))

    def take(self, sim: Simulation, t: float, step: int) -> None:
        self.blocks.append(self.nodes.to_blocks(sim.u[: sim.mesh.n_owned]))
        self.times.append(t)
        if self.probes is not None:
            self.probes.record(sim.u, t)
        if self.results is not None:
            self.results.write(sim.u, t, step, sim.balance, sim.fields())

    def begin(self, sim: Simulation) -> None:
        if not sim.case.steady:
            self.track(sim)
            self.take(sim, 0.0, 0)

    def after_step(self, sim: Simulation, event: StepEvent) -> None:
        self.track(sim)
        if event.snapshot:
            self.take(sim, event.t, event.step)


class SampleVote(StepVote):
    """The step vote of a sample that the study may stop: the group's health and whether a stop
    was asked for (``requested()`` on any rank), in the vote's one ``Allreduce``, so that a study
    stops within a step of its samples, not after them."""

    def __init__(self, comm, requested):
        super().__init__(comm)
        self.requested = requested

    def vote(self, step: int, seconds: float, unhealthy: bool) -> Votes:
        flags = np.array([int(unhealthy), int(self.requested())], dtype=np.int64)
        self.comm.Allreduce(MPI.IN_PLACE, flags, op=MPI.MAX)
        return Votes(unhealthy=bool(flags[0]), stop=bool(flags[1]), reason="the study stops")


def _extremes(comm, blocks: list[np.ndarray]) -> tuple[float, float]:
    lo = min((float(b.min()) for b in blocks if b.size), default=np.inf)
    hi = max((float(b.max()) for b in blocks if b.size), default=-np.inf)
    return comm.allreduce(lo, op=MPI.MIN), comm.allreduce(hi, op=MPI.MAX)


def scalar_outputs(sim: Simulation, snapshots: "SampleSnapshots") -> dict:
    """The sample's scalar outputs by name (the study file's /outputs; collective): the extremes
    over every step (a peak between two snapshots counts), the last snapshot's maximum."""
    comm, blocks = sim.comm, snapshots.blocks
    lo, hi = comm.allreduce(snapshots.lowest, op=MPI.MIN), comm.allreduce(snapshots.highest, op=MPI.MAX)
    if not np.isfinite(hi):  # a steady sample: its one snapshot
        lo, hi = _extremes(comm, blocks)
    b = sim.balance
    scalars = {"max_temperature": hi, "min_temperature": lo, "final_max_temperature": _extremes(comm, blocks[-1:])[1],
               "steps": float(sim.step_index), "linear_iterations": float(sim.iterations),
               "heat_balance_imbalance": float(b.relative)}
    return scalars | {f"heat_in.{term}": float(v) for term, v in zip(b.terms, b.inflow)}


def run_sample(spec, index: int, values, comm, save_to: Path | None = None, stop_requested=None) -> SampleResult:
    """Run sample ``index`` (parameter ``values``) on ``comm``; a failure of the sample (bad
    value, no convergence, NaN) is its status and message, never the study's. ``stop_requested()``
    (any rank) interrupts it at the next step: its status stays :data:`PENDING` (to run again)."""
    start = MPI.Wtime()
    results = None
    try:
        case = spec.case_for(values)
        check_memory(comm, case.source, case.mesh)  # a sampled mesh size that cannot fit fails the sample
        check_split(comm, case.mesh, case.source)
        sim = Simulation(case, comm)
        faults = FaultInjection(comm.rank)
        snapshots = SampleSnapshots(sim)
        if save_to is not None:
            stored = stored_case(case.values)
            attrs = {"case": stored.text, "case_file_text": case.text,
                     "case_source": f"{spec.source} sample {index}", "overrides": "\n".join(case.overrides)}
            layout = ResultsLayout(attrs, sim.extra_fields, case.physics.temperature_unit, stored.tables)
            snapshots.results = results = ResultsWriter(save_to, f"{case.name}_{index:06d}", sim.mesh, layout,
                                                        case.output.driver, hooks=faults)
        vote = SampleVote(comm, stop_requested) if stop_requested is not None else None
        if march(sim, [faults, snapshots], vote).stopped:
            if results is not None:
                results.abandon(EndRecord(STOPPED, EXIT_STOPPED))
            return SampleResult(index, PENDING, "interrupted", MPI.Wtime() - start)
        if not case.steady:  # as a run's end (a steady state is checked in the march): a balance lost, a frozen field
            check_balance(sim)
        scalars = scalar_outputs(sim, snapshots)
        if results is not None:
            results.close(EndRecord(COMPLETE, 0))
        probes = snapshots.probes.take()[1] if snapshots.probes is not None else None
        return SampleResult(index, OK, "", MPI.Wtime() - start, scalars, np.array(snapshots.times), probes,
                            np.array(snapshots.blocks))
    except SolverExit as exc:  # raised on every rank of the group alike
        if results is not None:
            results.abandon(EndRecord(FAILED, exc.exit_status, error=str(exc)))
        return SampleResult(index, exc.exit_status, str(exc), MPI.Wtime() - start)
