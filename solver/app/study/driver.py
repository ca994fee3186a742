"""``python -m solver study study.toml --ranks-per-case R``: the study's driver.

The world is split into groups of R ranks (``comm.Split``). Each group takes samples from the
queue and runs them on its own communicator; its rank 0 keeps the samples' records and its ranks
accumulate the field statistics on their canonical blocks. When the queue is empty, or on a
stop signal or near the wall limit, the groups' statistics are combined in group order and the
study file is written by every rank together. A stopped study exits 75 and continues with
``--restart latest``, which skips the samples already done. While it runs, each group keeps the
samples it finished in a partial file (:mod:`.partial`), so that a study killed on any rank
loses only the samples in flight.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mpi4py import MPI

from solver.app.control import SAFETY, slurm_time_left
from solver.app.faults import before_study_file
from solver.app.log import say
from solver.app.preflight import (SAVED_RUNS, check_memory, claim_space, estimate_output_bytes, guard_output,
                                  memory_available, saved_runs_aside)
from solver.app.run import expected_snapshots
from solver.case.shown import counted, size
from solver.parallel.collective import on_root
from solver.errors import EXIT_NUMERICAL, EXIT_OUTPUT, EXIT_STOPPED, CaseError, NumericalError, OutputError
from solver.heat.schedule import fixed_steps
from solver.io import deadline
from solver.io.blockfile import HEADROOM, choose_driver, free_bytes
from solver.mesh.build import create_mesh
from solver.parallel.blocks import BlockRedistributor
from solver.app.study.queue import SampleQueue, shared_pending
from solver.app.study.sample import OK, SampleResult, run_sample
from solver.app.study.sampling import sample_table
from solver.app.study.spec import StudySpec, load_study
from solver.app.study.statistics import Moments, combine, to_world_blocks
from solver.app.study.groups import StudyGroups
from solver.app.study.partial import (GROUPS_FOLDER, expand, group_files, merge_partial, merge_rows, partial_files,
                                      partial_path, read_partial, record_partial, record_seconds)
from solver.app.study.rows import read_rows, rows_path
from solver.app.study.studyfile import (DATASET_BYTES, PENDING, StudyContents, StudyMesh, merged_tables, read_study,
                                          study_path, world_blocks, write_study)

log = logging.getLogger(__name__)
STATISTICS_MEMORY_SHARE = 0.5  # of the memory available: the samples' own runs need the rest


class _Stop:
    """A stop asked for by a signal (any rank), agreed on within a group before each sample; a
    second SIGINT stops at once (exit 130), as a run's does."""

    def __init__(self):
        self.signal = None
        self.previous = {}

    def __enter__(self):
        from solver.app import signals as early_signals

        for sig in early_signals.stop_signals():
            self.previous[sig] = signal.signal(sig, self._handle)
        if early_signals.pending:  # a stop asked for during start-up: before the first sample
            self.signal = early_signals.pending[-1]
            early_signals.pending.clear()
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if signum == signal.SIGINT and self.signal == "SIGINT":  # a second Ctrl-C: not after the step
            raise KeyboardInterrupt("second SIGINT: stopping at once")
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


def study_command(args, comm) -> int:
    """``python -m solver study`` (the arguments: :func:`solver.app.commands.study_arguments`)."""
    options = StudyOptions(args.ranks_per_case, args.restart, args.overwrite, args.schedule == "dynamic",
                           args.wall_limit, args.quiet)
    return run_study(load_study(args.study), comm, options)


@dataclass(frozen=True)
class StudyOptions:
    """How a study was asked for on the command line."""

    ranks_per_case: int = 1
    restart: str | None = None  # "latest": continue a stopped study
    overwrite: bool = False  # replace an earlier study file (kept as .bak)
    dynamic: bool = True  # hand samples out as groups finish (else a fixed round-robin)
    wall_limit: float | None = None  # seconds (default: the SLURM job's)
    quiet: bool = False  # no line per sample


def run_study(spec: StudySpec, world, options: StudyOptions = StudyOptions()) -> int:
    """Run (or continue) a study on ``world``; returns 0, or 75 when it stopped early."""
    start = time.monotonic()
    groups = StudyGroups.split(world, options.ranks_per_case)
    if options.restart not in (None, "latest"):
        raise CaseError(f"--restart {options.restart}: a study continues from its own file: use --restart latest")
    check_memory(world, spec.base.source, spec.base.mesh)  # as a run of the base case, before its mesh is built
    directory = Path(spec.base.output.directory) / spec.name
    guard = guard_output(world, directory, f"{spec.name}.study", options.overwrite, options.restart is not None,
                         checkpoints=False)
    deadline.configure(spec.base.output.write_timeout, world.rank)
    try:
        # the samples and the mesh (input errors) before --overwrite moves the earlier study aside
        table = sample_table(spec)
        mesh = create_mesh(groups.group, spec.base.mesh, spec.base.element.degree)
        claim_space(world, guard, 1 << 20)
        if options.restart is None:
            on_root(world, lambda: leftover_partials(directory, spec.name, options.overwrite), CaseError)
            if spec.save_runs:
                on_root(world, lambda: earlier_saved_runs(directory / SAVED_RUNS, options.overwrite), CaseError)
        return StudyRun(spec, groups, options, directory, start).execute(table, mesh)
    finally:
        if guard is not None:
            guard.release()


def leftover_partials(directory: Path, name: str, overwrite: bool) -> None:
    """Rank 0, before a study starts afresh: the partial files of a killed run of it are continued
    (--restart latest) or set aside as .bak (--overwrite), never silently replaced."""
    found = partial_files(directory, name)
    if found and not overwrite:
        raise CaseError(f"{found[0].parent}: holds the finished samples of a study {name} that was killed "
                        f"({len(found)} partial files): continue it with --restart latest, or start again with "
                        f"--overwrite (they are kept as .bak)")
    for path in group_files(directory, name):
        os.replace(path, path.with_name(path.name + ".bak"))


def earlier_saved_runs(folder: Path, overwrite: bool) -> None:
    """Rank 0, before a study that saves its samples' runs starts afresh: files already in their
    folder (an earlier study's runs, or files not a study's) are set aside as .bak (--overwrite),
    never written over."""
    try:
        found = sorted(folder.iterdir()) if folder.is_dir() and not folder.is_symlink() else []
    except OSError:
        found = []
    if found and not overwrite:
        raise CaseError(f"{folder}: holds {counted(len(found), 'file')} already ({found[0].name}, ...), which the "
                        f"saved runs of this study would write over: move them, or start again with --overwrite "
                        f"(the folder is kept as {folder.name}.bak)")
    if found:
        saved_runs_aside(folder)


def _holds_files(folder: Path) -> bool:
    """Whether ``folder`` is a folder with something in it."""
    try:
        return folder.is_dir() and not folder.is_symlink() and any(folder.iterdir())
    except OSError:
        return False


@dataclass
class GroupShare:
    """What a group's samples gave: the records of those not yet in its rows file (on the group's
    rank 0), how many are (``rows``), and this rank's block of the group's field statistics (from
    ``start`` of the canonical node numbering)."""

    records: list
    moments: Moments | None
    times: np.ndarray | None
    start: int
    stopped: bool  # on any rank of the world
    no_room: str = ""  # why a sample could not write its results (a full disk): the study stops, exit 74
    rows: int = 0  # the group's samples recorded in its rows file


class StudyRun:
    """A study in its directory: the samples left to run, shared out to the groups, and the
    study file written from what they gave (and what an earlier, stopped run of it gave)."""

    def __init__(self, spec: StudySpec, groups: StudyGroups, options: StudyOptions, directory: Path, start: float):
        self.spec, self.groups, self.options, self.directory, self.start = spec, groups, options, directory, start
        self.path = study_path(directory, spec.name)
        self.driver = choose_driver(spec.base.output.driver, groups.world)

    def execute(self, table, mesh) -> int:
        """Run the pending samples of ``table`` on the groups' ``mesh`` and write the study file."""
        spec, groups, world = self.spec, self.groups, self.groups.world
        check_statistics_memory(spec, world, groups.ranks_per_case, mesh.n_global_nodes)
        earlier = self.earlier(table, mesh) if self.options.restart else None
        # the earlier tables are rank 0's: the others receive the runs of the samples left to run
        pending = shared_pending(world, earlier.table.status if world.rank == 0 else None, len(table)) \
            if earlier else np.arange(len(table))
        log.info(f"study {spec.name}: {len(table)} samples of {spec.base.source} ({spec.method}, seed {spec.seed}), "
                 f"{len(pending)} to run on {counted(groups.count, 'group')} of "
                 f"{counted(groups.ranks_per_case, 'rank')}"
                 + (f" (restart from {self.path})" if self.options.restart else ""))
        on_root(world, lambda: self.check_space(mesh, len(table), len(pending)), CaseError, keep=(OutputError,))
        wall_limit = self.options.wall_limit
        deadline = wall_limit if wall_limit is not None else world.bcast(slurm_time_left() if world.rank == 0 else None)
        try:
            share = self.run_samples(table, pending, mesh, deadline)
            before_study_file(self.directory, world.rank)
            self.finish(table, mesh, earlier, share)
            if share.no_room:
                raise OutputError(share.no_room)
        except OutputError as exc:  # each rank looks for itself: the groups may not fail together
            if self.path.is_file() or partial_files(self.directory, spec.name):
                how = (f"the samples recorded before are kept (in {self.path.name} or {GROUPS_FOLDER}/): free "
                       f"space, then continue: mpirun -n N python -m solver study "
                       f"{shlex.quote(str(spec.source))} --restart latest")
            else:
                saved = spec.save_runs and _holds_files(self.directory / SAVED_RUNS)
                how = "no sample was recorded yet: free space, then run the study again" + \
                    (" with --overwrite (it sets the runs saved so far aside)" if saved else "")
            raise OutputError(f"{exc}; {how}", exc.broken) from None
        return EXIT_STOPPED if share.stopped else 0

    def check_space(self, mesh, n_samples: int, n_pending: int) -> None:
        """Rank 0: refuse a study whose files would not fit on the disk (an estimate, with the
        room every write leaves free): the study file (its field statistics at every output time,
        the mesh, the tables, HDF5's metadata per dataset), its temporary copy as it is replaced,
        each group's file, and the saved runs of the samples left to run (outputs.save_runs, the
        base case's mesh). A sample that still finds no room for its run stops the study, keeping
        the samples before it."""
        spec = self.spec
        snapshots = expected_snapshots(spec.base.output, base_steps(spec))
        n_nodes, n_cells = mesh.n_global_nodes, mesh.n_global_cells
        datasets = (5 + len(spec.thresholds)) * snapshots if spec.fields else 0
        one = 8 * n_nodes * datasets + 64 * n_samples * (len(spec.keys) + 4) + DATASET_BYTES * (datasets + 32)
        if spec.fields:
            one += 8 * (n_nodes * mesh.dim + n_cells * mesh.reference.n_nodes + snapshots)
        runs = n_pending * estimate_output_bytes(n_nodes, n_cells, mesh.reference.n_nodes, mesh.dim, snapshots) \
            if spec.save_runs else 0
        needed = one * (self.groups.count + 2) + runs
        free = free_bytes(self.directory)
        if free is not None and needed + HEADROOM > free:
            saved = f"; {counted(n_pending, 'saved run')} of {size(runs // n_pending)}" if runs else ""
            raise OutputError(f"{self.directory}: the study needs about {size(needed)} (its file, its temporary "
                              f"copy and {self.groups.count} groups' files, of {size(one)} each{saved}), and every "
                              f"write leaves {size(HEADROOM)} free: {size(needed + HEADROOM)} in all, only "
                              f"{size(free)} free on that disk; free space, use "
                              f"fewer groups (a larger --ranks-per-case), or set outputs.fields = false"
                              + (" or outputs.save_runs = false" if runs else ""))

    def earlier(self, table: np.ndarray, mesh) -> StudyContents:
        """What a stopped or killed run of this study finished: its study file and its groups'
        partial files, checked against this study. Partial files are merged into the study file,
        which is written at once, and removed."""
        spec, world = self.spec, self.groups.world
        n_nodes = mesh.n_global_nodes if spec.fields else None
        partials = world.bcast(partial_files(self.directory, spec.name) if world.rank == 0 else None, root=0)
        has_file = world.bcast(self.path.is_file() if world.rank == 0 else None, root=0)
        # the tables (a row per sample) are read, checked and merged on rank 0 only; every rank reads
        # the attributes, the output times and its block of the statistics
        data = None
        if has_file or not partials:
            data = read_study(self.path, world, self.driver, n_nodes)
            on_root(world, lambda: self.checked(self.path, data, table, mesh), CaseError, shared=False)
        for path in partials:
            part = read_partial(path, world, self.driver, n_nodes)

            def expanded(path=path, part=part) -> bool:
                counted = int(part.attrs.get("rows", len(part.table.index)))
                if len(part.table.index) < counted:  # (a rows file cut or damaged by hand: its group's samples
                    log.warning(f"warning: {rows_path(path)} holds {len(part.table.index)} of the {counted} "
                                f"finished samples that {path.name} counts (cut short or damaged): the group's "
                                f"samples run again")  # and statistics, which count them all, are left out)
                    return False
                try:
                    expand(part, table)
                except CaseError as exc:
                    raise CaseError(f"{path}: {exc}") from None
                self.checked(path, part, table, mesh)
                return True
            if on_root(world, expanded, CaseError):
                data = merge_partial(data, part, path, world)
        if partials:
            start = world_blocks(self.groups.group, mesh.n_global_nodes).start
            self.finish(table, mesh, data, GroupShare([], None, None, start, False), quiet=True)
        return data

    def checked(self, path: Path, data: StudyContents, table: np.ndarray, mesh) -> StudyContents:
        """Rank 0: refuse (CaseError) the contents of an earlier run's file that are not this study's."""
        spec = self.spec
        if data.attrs.get("case") != spec.case_text:
            raise CaseError(f"{path}: the base case {spec.case_path} changed since the study was stopped; "
                            f"use --overwrite to start the study again")
        stored = data.attrs.get("keys")
        if stored is not None and json.loads(stored) != spec.keys:
            raise CaseError(f"{path}: the study's parameters changed since it was stopped (were "
                            f"{', '.join(json.loads(stored))}): its samples would be filed under other keys; use "
                            f"--overwrite to start the study again, or restore them")
        identity = base_identity(spec, mesh)
        if data.attrs.get("case_hash", identity["case_hash"]) != identity["case_hash"]:
            raise CaseError(f"{path}: a file that the base case {spec.case_path} reads (a table) changed since the "
                            f"study was stopped: its samples would mix two problems; restore it, or use --overwrite "
                            f"to start the study again")
        if data.attrs.get("mesh_digest", identity["mesh_digest"]) != identity["mesh_digest"]:
            raise CaseError(f"{path}: the contents of the base case's {spec.base.mesh_key} changed since the study "
                            f"was stopped (its nodes, cells, or their groups): its samples would mix two meshes; "
                            f"restore it, or use --overwrite to start the study again")
        stored = data.attrs.get("thresholds")
        if stored is not None and json.loads(stored) != [float(t) for t in spec.thresholds]:
            raise CaseError(f"{path}: outputs.thresholds changed since the study was stopped (were "
                            f"{json.loads(stored)}): the statistics would mix two; use --overwrite to start the study "
                            f"again, or restore them")
        stored = data.attrs.get("fields")
        if stored is not None and bool(stored) != spec.fields:
            raise CaseError(f"{path}: outputs.fields changed since the study was stopped (was "
                            f"{str(bool(stored)).lower()}); use --overwrite to start the study again, or restore it")
        stored = data.attrs.get("save_runs")
        if stored is not None and bool(stored) != spec.save_runs:
            raise CaseError(f"{path}: outputs.save_runs changed since the study was stopped (was "
                            f"{str(bool(stored)).lower()}): the samples before would have no saved runs, or runs "
                            f"saved for nothing; use --overwrite to start the study again, or restore it")
        old = data.table.values
        if old.shape != table.shape or not np.array_equal(old, table):
            raise CaseError(f"{path}: its sample table differs from {spec.source}'s (a changed study file or seed); "
                            f"use --overwrite to start the study again")
        return data

    def run_samples(self, table: np.ndarray, pending: np.ndarray, mesh, deadline: float | None) -> GroupShare:
        """This group's share of the samples: its records (group rank 0) and field statistics."""
        spec, g = self.spec, self.groups
        group = g.group
        queue = SampleQueue(g.world, group, g.index, g.count, pending, self.options.dynamic)
        nodes = BlockRedistributor(group, mesh.node_ids[: mesh.n_owned], mesh.n_global_nodes)
        share = GroupShare([], None, None, nodes.start, False)
        longest = 0.0
        recorded = -math.inf  # the first finished sample is recorded at once, the others at most every few s
        unrecorded = False  # samples finished since the group's file was last written
        reason = None  # why this group stopped taking samples (a signal, the wall-time limit)
        with _Stop() as stop:
            while True:
                # late: once a sample of this segment is done (as a run takes at least one step: a study
                # left nothing to do is complete, and a segment that does nothing would be requeued for ever)
                late = deadline is not None and longest > 0 and \
                    deadline - (time.monotonic() - self.start) < 2 * longest + SAFETY
                if group.allreduce(int(stop.signal is not None or late), op=MPI.MAX):
                    share.stopped = True
                    reason = "wall-time limit" if late else reason
                    queue.stop()  # the other groups take no further sample
                    break
                index = queue.next()
                if index is None:
                    share.stopped = queue.stopped  # (another group stopped)
                    break
                save_to = self.directory / SAVED_RUNS if spec.save_runs else None
                if save_to is not None and group.rank == 0:
                    save_to.mkdir(parents=True, exist_ok=True)
                with _samples_quiet():
                    result = run_sample(spec, index, table[index], group, save_to, lambda: stop.signal is not None)
                if result.status == PENDING:  # interrupted by the stop: run again on --restart latest
                    continue
                if result.status == EXIT_OUTPUT:  # the disk's failure, not the sample's: it runs again on a
                    share.no_room = f"sample {result.index}: {result.message}"  # restart, and the group stops
                    queue.stop()
                    break
                longest = max(longest, result.seconds)
                self.keep(result, share, nodes.block_size)
                unrecorded = True
                if group.allreduce(int(time.monotonic() - recorded >= record_seconds()), op=MPI.MAX):
                    if not self.record(table, mesh, share):  # (no room: not tried again below)
                        unrecorded = False
                        queue.stop()
                        break
                    recorded, unrecorded = time.monotonic(), False
        if unrecorded:  # every finished sample in the group's file before the study file is written: a study
            self.record(table, mesh, share)  # file that finds no room loses none (the restart merges them)
        queue.free()
        # the reason of the group that stopped first, not "another group stopped" of those it stopped
        own = (stop.signal or reason) if share.stopped and group.rank == 0 else None
        reasons = [why for why in g.world.allgather(own) if why]
        if share.stopped and g.world.rank == 0:
            why = reasons[0] if reasons else ("another group stopped" if queue.stopped else "wall-time limit")
            log.warning(f"study stopping ({why}): the samples done so far are kept")
        share.stopped = g.world.allreduce(int(share.stopped or bool(share.no_room)), op=MPI.MAX) > 0
        no_room = g.world.allgather(share.no_room if group.rank == 0 else "")
        share.no_room = next((why for why in no_room if why), "")
        return share

    def record(self, table: np.ndarray, mesh, share: GroupShare) -> bool:
        """Record the group's finished samples in its group files (every rank of the group); False
        where the disk had no room for it (``share.no_room`` says why: the study stops, exit 74)."""
        spec, g = self.spec, self.groups
        try:
            record_partial(partial_path(self.directory, spec.name, g.index), g.group, self.driver, spec, table,
                           base_identity(spec, mesh), share, mesh.n_global_nodes)
        except OutputError as exc:  # raised on every rank of the group alike
            share.no_room = share.no_room or str(exc)
            return False
        return True

    def keep(self, result: SampleResult, share: GroupShare, block_size: int) -> None:
        """Add a sample's fields to the group's statistics and its record to the group's."""
        spec = self.spec
        if result.status == OK and spec.fields:
            if share.times is None:
                share.times = result.times
            times = share.times
            if len(result.times) != len(times) or not np.allclose(result.times, times, rtol=1e-12, atol=0):
                result = SampleResult(result.index, 3, "its output times differ from the other samples'",
                                      result.seconds)
            else:
                if share.moments is None:
                    share.moments = Moments.empty(len(times), block_size, spec.thresholds)
                share.moments.add(result.fields)
        result.fields = None
        if self.groups.group.rank == 0:
            share.records.append(result)
            if not self.options.quiet:
                what = "done" if result.status == OK else f"failed (status {result.status}): {result.message}"
                say(f"sample {result.index}: {what} ({result.seconds:.2f} s, group {self.groups.index})")

    def finish(self, table: np.ndarray, mesh, earlier: StudyContents | None, share: GroupShare,
               quiet: bool = False) -> None:
        """Combine the groups' statistics and records, write the study file and remove this run's
        partial files (every rank); ``quiet``: no report (a restart's merge of partial files)."""
        spec, g, world = self.spec, self.groups, self.groups.world
        moments = share.moments
        gathered = world.gather(share.records if g.group.rank == 0 else [], root=0)  # (those not in rows files)
        recorded = world.gather(share.rows if g.group.rank == 0 else 0, root=0)
        all_times = world.allgather(share.times if moments is not None else None)
        times = next((t for t in all_times if t is not None), None)
        if times is None and earlier is not None:
            times = earlier.times
        n_nodes = mesh.n_global_nodes
        stats = None
        if spec.fields and times is not None:
            if moments is None:
                moments = Moments.empty(len(times), world_blocks(g.group, n_nodes).stop - share.start, spec.thresholds)
            stats = combine(g, share.start, moments, n_nodes, earlier.stats if earlier else None)
        # the tables (N rows) stay on rank 0, which writes them: the others get their counts only
        contents = on_root(world, lambda: self.tables(table, earlier, gathered, recorded), OutputError, shared=False)
        status = contents.table.status if world.rank == 0 else None
        done, failed = world.bcast((int(np.count_nonzero(status != PENDING)),
                                    int(np.count_nonzero((status != PENDING) & (status != OK))))
                                   if world.rank == 0 else None, root=0)
        contents = contents if world.rank == 0 else StudyContents({}, None)
        contents.times, contents.n_nodes, contents.stats = times, n_nodes, stats
        if stats is not None:
            contents.mesh = study_mesh(g, mesh)
        complete = done == len(table)
        all_failed = complete and failed == len(table)
        seconds = time.monotonic() - self.start
        contents.attrs = {
            "study": spec.text, "study_source": spec.source, "case": spec.case_text, "case_source": str(spec.case_path),
            "name": spec.name, "method": spec.method, "seed": spec.seed, "samples": len(table),
            "keys": json.dumps(spec.keys), "thresholds": json.dumps(list(spec.thresholds)), "fields": int(spec.fields),
            "save_runs": int(spec.save_runs),
            "count": stats.count if stats is not None else 0, "done": done, "failed": failed,
            "status": "complete" if complete else ("no room" if share.no_room else "stopped"),
            "exit_status": (EXIT_NUMERICAL if all_failed else 0) if complete else
                           (EXIT_OUTPUT if share.no_room else EXIT_STOPPED),
            "ranks": world.size, "ranks_per_case": g.ranks_per_case, **base_identity(spec, mesh),
            # the segments' together: those before a restart, and this one
            "wall_time": seconds + (float(earlier.attrs.get("wall_time", 0.0)) if earlier is not None else 0.0)}
        write_study(self.path, world, self.driver, contents)
        if world.rank == 0:
            for path in group_files(self.directory, spec.name):
                path.unlink(missing_ok=True)
        world.Barrier()  # gone before any group records its samples again
        if quiet:
            return
        log.info(f"study {spec.name}: {done} of {len(table)} samples done ({failed} failed) in {seconds:.1f} s on "
                 f"{counted(world.size, 'rank')}, {counted(g.count, 'group')} of {g.ranks_per_case}; "
                 f"results: {self.path}")
        if not complete:
            log.warning(f"study stopped with {len(table) - done} samples to run; to continue: mpirun -n N python -m "
                        f"solver study {shlex.quote(str(spec.source))} --ranks-per-case R --restart latest")
        if all_failed:
            raise NumericalError(f"{self.path}: every one of the {len(table)} samples failed, so there are no "
                                 f"statistics (why each failed: python -m solver info {shlex.quote(str(self.path))})")


    def tables(self, table: np.ndarray, earlier: StudyContents | None, gathered: list, recorded: list) -> StudyContents:
        """Rank 0: the sample table and scalar outputs of the earlier samples, of the records
        ``gathered`` and of the rows the groups recorded (``recorded``, per world rank)."""
        contents = merged_tables(self.spec, table, earlier, gathered)
        for index, count in enumerate(recorded[::self.groups.ranks_per_case]):
            path = rows_path(partial_path(self.directory, self.spec.name, index))
            rows = read_rows(path, count) if count else None
            if rows is not None and len(rows.table.index) < count:
                raise OutputError(f"{path}: cannot read back the {count} samples the group recorded (it has "
                                  f"{len(rows.table.index)})")
            if rows is not None:
                merge_rows(contents, rows)
        return contents


def base_steps(spec: StudySpec) -> int | None:
    """The base case's number of time steps (0 steady; None where adaptive or ``dt = "auto"``)."""
    base = spec.base
    if base.time.adaptive is not None or base.time.dt == "auto":
        return None
    return 0 if base.steady else fixed_steps(base.time.t_end, base.time.dt)


def statistics_bytes(spec: StudySpec, n_times: int, block: int) -> int:
    """A rank's peak memory for the field statistics of ``n_times`` output times on a block of
    ``block`` nodes: the moments (mean, m2, min, max and a count per threshold), a sample's fields
    and their temporaries as it is added, and the packed, sent and received copies of the moments
    as the groups combine them, 8 bytes a value (the comparison with the thresholds: 1 byte)."""
    moments = 4 + len(spec.thresholds)
    per_value = 8 * 3 * moments + 8 * 4 + len(spec.thresholds)
    return per_value * n_times * block


def check_statistics_memory(spec: StudySpec, world, ranks_per_case: int, n_nodes: int) -> None:
    """Refuse (exit 2, every rank) field statistics whose arrays would not fit in a share of the
    memory available on this machine (MemAvailable) among the study's ranks on it; only where the
    base case's number of output times is known (a fixed dt, or output.times)."""
    if not spec.fields:
        return
    steps = base_steps(spec)
    if steps is None and not spec.base.output.times:
        return
    n_times = expected_snapshots(spec.base.output, steps)
    node = world.Split_type(MPI.COMM_TYPE_SHARED)
    here = node.size
    node.Free()
    need = statistics_bytes(spec, n_times, -(-n_nodes // ranks_per_case))

    def check():
        have = memory_available()
        if have is not None and need * here > STATISTICS_MEMORY_SHARE * have:
            raise CaseError(f"{spec.source}: the field statistics need about {size(need)} per rank ({n_times} output "
                            f"times x {-(-n_nodes // ranks_per_case)} nodes x {4 + len(spec.thresholds)} fields), "
                            f"{size(need * here)} for the {counted(here, 'rank')} on this machine, which has "
                            f"{size(have)} available; write fewer output times (output.every, output.times), use "
                            f"fewer outputs.thresholds, or set outputs.fields = false")
    on_root(world, check, CaseError)


def study_mesh(groups: StudyGroups, mesh) -> StudyMesh:
    """Group 0's mesh in the world's canonical blocks (every group holds the same mesh)."""
    nodes = BlockRedistributor(groups.group, mesh.node_ids[: mesh.n_owned], mesh.n_global_nodes)
    cells = BlockRedistributor(groups.group, mesh.cell_ids[: mesh.n_owned_cells], mesh.n_global_cells)
    geometry = nodes.to_blocks(mesh.coords[: mesh.n_owned])
    topology = cells.to_blocks(mesh.node_ids[mesh.owned_cells])
    if groups.index:
        geometry, topology = geometry[:0], topology[:0]
    return StudyMesh(to_world_blocks(groups, nodes.start, geometry, mesh.n_global_nodes)[0],
                     to_world_blocks(groups, cells.start, topology, mesh.n_global_cells)[0],
                     mesh.n_global_cells, mesh.cell_type, mesh.dim)


def base_identity(spec: StudySpec, mesh) -> dict:
    """What a restart checks besides the base case's text: the hash of its values (the contents of
    the tables it reads included) and the digest of its mesh file's data ("" for a generated mesh)."""
    return {"case_hash": spec.base_hash, "mesh_digest": mesh.source_digest or ""}
