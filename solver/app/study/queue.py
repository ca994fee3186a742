"""Handing samples out to groups. Dynamic (the default): a counter in an MPI window on world
rank 0, advanced by each group's leader with an atomic ``Fetch_and_op``, so a group that finishes
early takes the next sample and uneven costs balance; no rank is set aside to serve it. Beside it a
stop flag: a group that stops (a signal that reached only its ranks, a wall-time limit) raises it,
and the other groups take no further sample. Static: group g takes samples g, g + G, g + 2G, ...
(for comparison in ``bench``)."""

from __future__ import annotations

import logging

import numpy as np
from mpi4py import MPI

log = logging.getLogger(__name__)


class SampleQueue:
    """The pending samples (indices, in order) shared by ``n_groups`` groups of ``world``."""

    def __init__(self, world, group, group_index: int, n_groups: int, pending, dynamic: bool = True):
        self.world, self.group = world, group
        self.pending = np.asarray(pending, dtype=np.int64)
        self.dynamic, self.group_index, self.n_groups = dynamic, group_index, n_groups
        self.taken = 0
        self.stopped = False  # another group stopped the study (dynamic only)
        self.window = None
        if dynamic:
            try:  # memory MPI allocates: one-sided on shared memory (osc/sm) and across nodes (rdma, ucx)
                self.window = MPI.Win.Allocate(16 if world.rank == 0 else 0, disp_unit=8, comm=world)
            except MPI.Exception as exc:
                self.dynamic = False
                if world.rank == 0:
                    log.warning(f"warning: this MPI has no one-sided window ({exc.Get_error_string()}); "
                                f"handing samples out round-robin instead")
            if self.window is not None and world.rank == 0:
                self.window.Lock(0, MPI.LOCK_EXCLUSIVE)
                np.frombuffer(self.window.tomemory(), dtype=np.int64)[:] = 0
                self.window.Unlock(0)
            world.Barrier()

    def next(self) -> int | None:
        """The next sample for this group (every rank of the group calls it), or None."""
        if self.dynamic:
            k = np.zeros(2, dtype=np.int64)  # the position taken, the stop flag
            if self.group.rank == 0:
                one = np.ones(1, dtype=np.int64)
                self.window.Lock(0, MPI.LOCK_SHARED)
                self.window.Fetch_and_op(one, k[:1], 0, 0, MPI.SUM)
                self.window.Fetch_and_op(one, k[1:], 0, 1, MPI.NO_OP)
                self.window.Unlock(0)
            self.group.Bcast(k, root=0)
            if k[1]:
                self.stopped = True
                return None
            position = int(k[0])
        else:
            position = self.group_index + self.taken * self.n_groups
        self.taken += 1
        return int(self.pending[position]) if position < len(self.pending) else None

    def stop(self) -> None:
        """This group stops: the others take no further sample (every rank of the group calls it)."""
        if self.dynamic and self.group.rank == 0:
            one, old = np.ones(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
            self.window.Lock(0, MPI.LOCK_SHARED)
            self.window.Fetch_and_op(one, old, 0, 1, MPI.SUM)
            self.window.Unlock(0)

    def free(self) -> None:
        """Collective over the world: every group has stopped taking samples."""
        if self.window is not None:
            self.window.Free()
            self.window = None


def shared_pending(comm, status: np.ndarray | None, n: int) -> np.ndarray:
    """The samples of ``status`` (rank 0's; :data:`.studyfile.PENDING` -1: left to run) on every
    rank of ``comm``: rank 0 sends their runs of consecutive numbers, or a bit per sample where
    the runs are many (a few bytes after a stop, at most n / 8 bytes, never the table itself)."""
    message = None
    if comm.rank == 0:
        mask = np.asarray(status) == -1
        edges = np.flatnonzero(np.diff(mask, prepend=False, append=False))  # (starts, stops) alternately
        message = ("runs", edges) if 8 * len(edges) <= n // 8 else ("bits", np.packbits(mask))
    how, values = comm.bcast(message, root=0)
    if how == "bits":
        return np.flatnonzero(np.unpackbits(values, count=n)).astype(np.int64)
    starts, stops = values[0::2], values[1::2]
    lengths = stops - starts
    return (np.arange(lengths.sum(), dtype=np.int64) + np.repeat(starts - np.cumsum(lengths) + lengths, lengths))
