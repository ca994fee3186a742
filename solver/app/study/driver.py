"""``python -m solver study study.toml --ranks-per-case R``: the study's driver.

The world is split into groups of R ranks (``comm.Split``). Each group takes samples from the
queue and runs them on its own communicator; its rank 0 keeps the samples' records and its ranks
accumulate the field statistics on their canonical blocks. When the queue is empty, or on a
stop signal or near the wall limit, the groups' statistics are combined in group order and the
study file is written by every rank together. A stopped study exits 75 and continues with
``--restart latest``, which skips the samples already done.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from mpi4py import MPI

from solver.app.control import SAFETY, slurm_time_left
from solver.case.arguments import ArgumentParser
from solver.app.preflight import claim_space, guard_output
from solver.errors import EXIT_STOPPED, CaseError
from solver.io.blockfile import choose_driver
from solver.mesh.build import create_mesh
from solver.parallel.blocks import BlockRedistributor
from solver.app.study.queue import SampleQueue
from solver.app.study.runner import OK, SampleResult, run_sample
from solver.app.study.sampling import sample_table
from solver.app.study.spec import StudySpec, load_study
from solver.app.study.statistics import Moments, combine, to_world_blocks
from solver.app.study.studyfile import PENDING, read_study, study_path, world_blocks, write_study

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m solver study", description="Run a parameter study or a Monte "
                                "Carlo ensemble of a case: groups of ranks run samples side by side.")
    p.add_argument("study", help="study file (TOML): base case, varied keys, outputs")
    p.add_argument("--ranks-per-case", type=int, default=1, metavar="R",
                   help="ranks per sample (must divide the number of ranks; default 1)")
    p.add_argument("--restart", metavar="latest", help="continue a stopped study (skips the samples done)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier study file (kept as .bak)")
    p.add_argument("--schedule", choices=("dynamic", "static"), default="dynamic",
                   help="hand samples out as groups finish (default), or in a fixed round-robin")
    p.add_argument("--wall-limit", type=float, metavar="SECONDS",
                   help="stop (and write the study file) before this much wall time (default: the SLURM job's)")
    p.add_argument("--quiet", action="store_true", help="no line per sample")
    return p


class _Stop:
    """A stop asked for by a signal (any rank), agreed on within a group before each sample."""

    def __init__(self):
        self.signal = None
        self.previous = {}

    def __enter__(self):
        for sig in STOP_SIGNALS:
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        self.signal = signal.Signals(signum).name


@contextmanager
def _samples_quiet():
    """The samples' own log lines (mesh, preconditioner, ...) stay out of the study's output."""
    logger = logging.getLogger("solver")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def study_command(argv, comm) -> int:
    args = parser().parse_args(argv)
    return run_study(load_study(args.study), comm, args.ranks_per_case, args.restart, args.overwrite,
                     args.schedule == "dynamic", args.wall_limit, args.quiet)


def run_study(spec: StudySpec, world, ranks_per_case: int = 1, restart: str | None = None, overwrite: bool = False,
              dynamic: bool = True, wall_limit: float | None = None, quiet: bool = False) -> int:
    """Run (or continue) a study on ``world``; returns 0, or 75 when it stopped early."""
    start = time.monotonic()
    r = ranks_per_case
    if r < 1 or world.size % r:
        raise CaseError(f"--ranks-per-case {r}: must be a positive divisor of the number of ranks ({world.size})")
    if restart not in (None, "latest"):
        raise CaseError(f"--restart {restart}: a study continues from its own file: use --restart latest")
    n_groups, g = world.size // r, world.rank // r
    group = world.Split(g, world.rank)
    directory = Path(spec.base.output.directory) / spec.name
    path = study_path(directory, spec.name)
    guard = guard_output(world, directory, f"{spec.name}.study", overwrite, restart is not None)
    try:
        claim_space(world, guard, 1 << 20)
        driver = choose_driver(spec.base.output.driver, world)
        table = sample_table(spec)
        mesh = create_mesh(group, spec.base.mesh)
        n_nodes = mesh.n_global_nodes
        earlier = _earlier(path, world, driver, spec, table, n_nodes if spec.fields else None) if restart else None
        status = earlier["table"]["status"] if earlier else np.full(len(table), PENDING, dtype=np.int64)
        pending = np.flatnonzero(status == PENDING)
        log.info(f"study {spec.name}: {len(table)} samples of {spec.base.source} ({spec.method}, seed {spec.seed}), "
                 f"{len(pending)} to run on {n_groups} groups of {r} ranks"
                 + (f" (restart from {path})" if restart else ""))
        deadline = wall_limit if wall_limit is not None else world.bcast(slurm_time_left() if world.rank == 0 else None)
        records, local, stopped = _run_samples(spec, table, pending, world, group, g, n_groups, mesh, directory,
                                               dynamic, deadline, start, quiet)
        _finish(spec, path, world, group, g, n_groups, mesh, driver, table, earlier, records, local, stopped,
                r, time.monotonic() - start)
    finally:
        if guard is not None:
            guard.release()
    return EXIT_STOPPED if stopped else 0


def _earlier(path, world, driver, spec, table, n_nodes):
    data = read_study(path, world, driver, n_nodes)
    if data["attrs"].get("case") != spec.case_text:
        raise CaseError(f"{path}: the base case {spec.case_path} changed since the study was stopped; "
                        f"use --overwrite to start the study again")
    old = data["table"].get("values")
    if old is None or old.shape != table.shape or not np.array_equal(old, table):
        raise CaseError(f"{path}: its sample table differs from {spec.source}'s (a changed study file or seed); "
                        f"use --overwrite to start the study again")
    return data


def _run_samples(spec, table, pending, world, group, g, n_groups, mesh, directory, dynamic, deadline, start, quiet):
    """This group's share of the samples: its records (group rank 0) and field statistics."""
    queue = SampleQueue(world, group, g, n_groups, pending, dynamic)
    nodes = BlockRedistributor(group, mesh.node_ids[: mesh.n_owned], mesh.n_global_nodes)
    records: list[SampleResult] = []
    local: Moments | None = None
    times = None
    longest = 0.0
    stopped = False
    with _Stop() as stop:
        while True:
            late = deadline is not None and deadline - (time.monotonic() - start) < 2 * longest + SAFETY
            if group.allreduce(int(stop.signal is not None or late), op=MPI.MAX):
                stopped = True
                break
            index = queue.next()
            if index is None:
                break
            save_to = directory / "samples" if spec.save_runs else None
            if save_to is not None and group.rank == 0:
                save_to.mkdir(parents=True, exist_ok=True)
            with _samples_quiet():
                result = run_sample(spec, index, table[index], group, save_to)
            longest = max(longest, result.seconds)
            if result.status == OK and spec.fields:
                if times is None:
                    times = result.times
                if len(result.times) != len(times) or not np.allclose(result.times, times, rtol=1e-12, atol=0):
                    result = SampleResult(index, 3, "its output times differ from the other samples'", result.seconds)
                else:
                    if local is None:
                        local = Moments.empty(len(times), nodes.block_size, spec.thresholds)
                    local.add(result.fields)
            result.fields = None
            if group.rank == 0:
                records.append(result)
                if not quiet:
                    what = "done" if result.status == OK else f"failed (status {result.status}): {result.message}"
                    sys.stdout.write(f"sample {index}: {what} ({result.seconds:.2f} s, group {g})\n")
                    sys.stdout.flush()
    queue.free()
    if stopped and world.rank == 0:
        log.warning(f"study stopping ({stop.signal or 'wall-time limit'}): the samples done so far are kept")
    return records, (local, times, nodes.start), world.allreduce(int(stopped), op=MPI.MAX) > 0


def _finish(spec, path, world, group, g, n_groups, mesh, driver, table, earlier, records, local, stopped, r,
            seconds):
    """Combine the groups' statistics and records, and write the study file (every rank)."""
    moments, times, start = local
    gathered = world.gather(records if group.rank == 0 else [], root=0)
    all_times = world.allgather(times if moments is not None else None)
    times = next((t for t in all_times if t is not None), None)
    if times is None and earlier is not None:
        times = earlier["time"]
    n_nodes = mesh.n_global_nodes
    stats = None
    if spec.fields and times is not None:
        if moments is None:
            moments = Moments.empty(len(times), world_blocks(group, n_nodes).stop - start, spec.thresholds)
        stats = combine(world, g, n_groups, start, moments, n_nodes, earlier["stats"] if earlier else None)
    tables = _tables(spec, table, earlier, gathered, times) if world.rank == 0 else None
    tables = world.bcast(tables, root=0)
    mesh_blocks = _mesh_blocks(world, group, g, n_groups, mesh) if stats is not None else None
    done = int(np.sum(tables["table"]["status"] != PENDING))
    failed = int(np.sum((tables["table"]["status"] != PENDING) & (tables["table"]["status"] != OK)))
    complete = done == len(table)
    attrs = {"study": spec.text, "study_source": spec.source, "case": spec.case_text,
             "case_source": str(spec.case_path),
             "name": spec.name, "method": spec.method, "seed": spec.seed, "samples": len(table),
             "keys": json.dumps(spec.keys), "thresholds": json.dumps(list(spec.thresholds)),
             "count": stats.count if stats is not None else 0, "done": done, "failed": failed,
             "status": "complete" if complete else "stopped", "exit_status": 0 if complete else EXIT_STOPPED,
             "ranks": world.size, "ranks_per_case": r, "wall_time": seconds}
    write_study(path, world, driver, attrs, tables["table"], tables["outputs"], times, mesh_blocks, stats, n_nodes)
    log.info(f"study {spec.name}: {done} of {len(table)} samples done ({failed} failed) in {seconds:.1f} s on "
             f"{world.size} ranks, {n_groups} groups of {r}; results: {path}")
    if not complete:
        log.warning(f"study stopped with {len(table) - done} samples to run; to continue: mpirun -n N python -m "
                    f"solver study {spec.source} --ranks-per-case R --restart latest")


def _tables(spec, table, earlier, gathered, times) -> dict:
    """The sample table and the scalar outputs, earlier samples and this run's (rank 0)."""
    n = len(table)
    old = earlier["table"] if earlier else {}
    status = np.array(old.get("status", np.full(n, PENDING)), dtype=np.int64)
    seconds = np.array(old.get("seconds", np.full(n, np.nan)), dtype=float)
    message = np.array(old.get("message", np.full(n, "", dtype=object)), dtype=object)
    outputs = {k: np.array(v, dtype=float) for k, v in (earlier["outputs"] if earlier else {}).items()}
    records = [rec for part in gathered for rec in part]
    n_probes = next((rec.probes.shape for rec in records if rec.probes is not None), None)
    for rec in records:
        status[rec.index], seconds[rec.index], message[rec.index] = rec.status, rec.seconds, rec.message
        for key, value in rec.scalars.items():
            outputs.setdefault(key, np.full(n, np.nan))[rec.index] = value
        if rec.probes is not None and rec.probes.shape == n_probes:
            outputs.setdefault("probes", np.full((n,) + n_probes, np.nan))[rec.index] = rec.probes
    if spec.base.output.probes and "probes" in outputs:
        outputs["probe_points"] = np.array(spec.base.output.probes, dtype=float)
    return {"table": {"values": table, "status": status, "seconds": seconds, "message": message}, "outputs": outputs}


def _mesh_blocks(world, group, g, n_groups, mesh) -> dict:
    """Group 0's mesh in the world's canonical blocks (every group holds the same mesh)."""
    nodes = BlockRedistributor(group, mesh.node_ids[: mesh.n_owned], mesh.n_global_nodes)
    cells = BlockRedistributor(group, mesh.cell_ids[: mesh.n_owned_cells], mesh.n_global_cells)
    geometry = nodes.to_blocks(mesh.coords[: mesh.n_owned])
    topology = cells.to_blocks(mesh.node_ids[mesh.owned_cells])
    if g:
        geometry, topology = geometry[:0], topology[:0]
    return {"geometry": to_world_blocks(world, g, n_groups, nodes.start, geometry, mesh.n_global_nodes)[0],
            "topology": to_world_blocks(world, g, n_groups, cells.start, topology, mesh.n_global_cells)[0],
            "n_cells": mesh.n_global_cells, "cell_type": mesh.cell_type, "dim": mesh.dim}

