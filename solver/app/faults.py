"""Faults injected by the tests, and only by them, through environment variables:

* ``SOLVER_TEST_FAIL``, ``SOLVER_TEST_NAN``, ``SOLVER_TEST_HANG`` = ``"rank:step"``: after that
  step, that rank raises an internal error, puts a NaN in its solution, or hangs;
* ``SOLVER_TEST_START_DELAY`` = seconds: the start-up (before the mesh) takes that much longer (to
  signal a run before its first step);
* ``SOLVER_TEST_STEP_DELAY`` = seconds: every step takes that much longer (to signal a run mid-way);
* ``SOLVER_TEST_CHECKPOINT_DELAY`` = seconds: a checkpoint stays unfinished that long before it
  is closed (to kill a run while it writes one);
* ``SOLVER_TEST_FILL_DISK`` = snapshot index: before that snapshot, rank 0 fills the disk that
  holds the results with a file ``.filler`` (the tests use a small tmpfs); ``index:late``: after
  the writer checked the space, as if another program filled the disk meanwhile; ``end``: after
  the last snapshot and checkpoint, before the end record; ``checkpoint:N``: while the run's N-th
  checkpoint is written, before it is closed; ``study``: before a study writes its study file at
  the end (after its samples);
* ``SOLVER_TEST_WRITE_ERROR`` = ``"rank:index"``: that rank's writer fails with ENOSPC after the
  fields of that snapshot are written, before they are listed (where no tmpfs can be mounted; a
  study's saved runs too);
* ``SOLVER_TEST_WRITE_HANG`` = ``"rank:index"``: that rank hangs there instead (as a rank left
  alone in a collective call of HDF5 would).

Unset, they cost nothing. :class:`FaultInjection` is the one object that carries them: an
observer of the march (faults after a step) and the results writer's hooks (faults while a
snapshot is written); a checkpoint calls :meth:`FaultInjection.before_checkpoint_close`.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import numpy as np

from solver.heat.march import Observer
from solver.heat.simulation import Simulation
from solver.io.results_writer import WriteHooks


def slow_start(environ=os.environ) -> None:
    """Lengthen the start-up as ``SOLVER_TEST_START_DELAY`` asks (signals are handled meanwhile)."""
    delay = float(environ.get("SOLVER_TEST_START_DELAY", "0"))
    if delay:
        time.sleep(delay)


def before_study_file(folder: Path, rank: int, environ=os.environ) -> None:
    """Fill the disk holding a study's ``folder`` before its study file is written at the end
    (rank 0), as ``SOLVER_TEST_FILL_DISK=study`` asks."""
    if rank == 0 and environ.get("SOLVER_TEST_FILL_DISK") == "study":
        fill_disk(folder)


def fill_disk(folder: Path) -> None:
    """Fill the disk holding ``folder`` with a file ``.filler`` there."""
    chunk = b"\0" * (1 << 16)
    try:  # (the close too: it flushes what the last write left in the buffer, and fails)
        with open(Path(folder) / ".filler", "wb") as f:
            while True:
                f.write(chunk)
                f.flush()
    except OSError:
        pass


class FaultInjection(Observer, WriteHooks):
    """The faults the environment asks for on this rank."""

    def __init__(self, rank: int, environ=os.environ, folder: Path | None = None):
        """``folder``: the results folder (on the disk that ``SOLVER_TEST_FILL_DISK=checkpoint:N`` fills)."""
        self.rank, self.folder = rank, folder
        self.by_step: dict[int, str] = {}
        for kind in ("fail", "nan", "hang"):
            spec = environ.get(f"SOLVER_TEST_{kind.upper()}")
            if spec:
                r, step = (int(v) for v in spec.split(":"))
                if r == rank:
                    self.by_step[step] = kind
        self.step_delay = float(environ.get("SOLVER_TEST_STEP_DELAY", "0"))
        fill = environ.get("SOLVER_TEST_FILL_DISK", "")
        self.fill_checkpoint = int(fill.partition(":")[2]) if fill.startswith("checkpoint:") and rank == 0 else None
        self.checkpoints_seen = 0
        fill = "" if fill.startswith("checkpoint:") or fill == "study" else fill
        self.fill_disk_at_end = fill == "end" and rank == 0
        index, _, when = ("", "", "") if fill == "end" else fill.partition(":")
        self.fill_disk_at = int(index) if index and rank == 0 else None
        self.fill_late = when == "late"  # after the writer's space check, while it writes
        spec = environ.get("SOLVER_TEST_WRITE_ERROR")
        r, index = (int(v) for v in spec.split(":")) if spec else (-1, -1)
        self.write_error_at = index if r == rank else None
        spec = environ.get("SOLVER_TEST_WRITE_HANG")
        r, index = (int(v) for v in spec.split(":")) if spec else (-1, -1)
        self.write_hang_at = index if r == rank else None
        self.checkpoint_delay = float(environ.get("SOLVER_TEST_CHECKPOINT_DELAY", "0"))

    def after_solve(self, sim: Simulation) -> None:
        """Slow the step down, or inject this step's fault."""
        step, u = sim.step_index, sim.u
        if self.step_delay:
            time.sleep(self.step_delay)
        fault = self.by_step.get(step)
        if fault == "fail":
            raise RuntimeError(f"injected failure on rank {self.rank} at step {step} (tests)")
        if fault == "nan":
            u[0] = np.nan
        if fault == "hang":
            time.sleep(3600)

    def before_checkpoint_close(self) -> None:
        if self.checkpoint_delay:  # widen the window in which a crash hits an unfinished checkpoint
            time.sleep(self.checkpoint_delay)
        self.checkpoints_seen += 1
        if self.checkpoints_seen == self.fill_checkpoint and self.folder is not None:
            fill_disk(self.folder)  # the disk fills while the checkpoint is written

    def before_snapshot(self, index: int, folder: Path, late: bool = False) -> None:
        """Fill the disk holding ``folder`` before snapshot ``index`` (rank 0): before the writer
        checks the space, or with ``:late`` after it (the disk fills while the snapshot is written)."""
        if index == self.fill_disk_at and late == self.fill_late:
            fill_disk(folder)

    def before_end(self, folder: Path) -> None:
        """Fill the disk after the last snapshot and checkpoint, before the end record (rank 0)."""
        if self.fill_disk_at_end:
            fill_disk(folder)

    def before_publish(self, index: int) -> None:
        if index == self.write_error_at:
            raise OSError(errno.ENOSPC, f"injected write error at snapshot {index} (tests)")
        if index == self.write_hang_at:  # as if stuck in a collective call that the others left
            time.sleep(3600)
