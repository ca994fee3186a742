"""Global numbering of a level's distributed rows: each rank's owned rows are numbered
contiguously in rank order, so a row's owner is found from the first global row of every rank
(``starts``) by a binary search; and the summed reductions over all ranks of the set-up."""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from solver.la.matrix import DistributedMatrix

__all__ = ["allsum", "global_ids", "owner"]


def global_ids(A: DistributedMatrix, comm) -> tuple[np.ndarray, np.ndarray]:
    """Global ids of the local columns ``[owned..., ghosts...]`` (owned rows numbered
    contiguously per rank in rank order) and the first global row of every rank."""
    counts = np.empty(comm.size, dtype=np.int64)
    comm.Allgather(np.array([A.n_owned], dtype=np.int64), counts)
    starts = np.zeros(comm.size + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    gids = np.empty(A.n_owned + A.offdiag_block.shape[1], dtype=np.int64)
    gids[: A.n_owned] = starts[comm.rank] + np.arange(A.n_owned)
    A.halo.update(gids)
    return gids, starts


def owner(starts: np.ndarray, gids: np.ndarray) -> np.ndarray:
    """The rank that owns each global id, given the first global row of every rank."""
    return np.searchsorted(starts, gids, side="right") - 1


def allsum(comm, values) -> np.ndarray:
    """The sums over all ranks of a few numbers (float64)."""
    buf = np.array(values, dtype=np.float64)
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    return buf
