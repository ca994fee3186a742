"""Arrays to and from rank 0: rows gathered in rank order, contiguous blocks scattered.
For reading and partitioning meshes (set-up only)."""

from __future__ import annotations

import numpy as np

from solver.parallel.buffers import segments, whole
from solver.parallel.routing import block_starts


def rank_starts(comm, n: int) -> np.ndarray:
    """First global number of each rank's ``n`` local items, numbered rank after rank (``P + 1``)."""
    return np.concatenate([[0], np.cumsum(comm.allgather(n))]).astype(np.int64)


def gather_rows(comm, rows: np.ndarray) -> np.ndarray | None:
    """Rows (n_r, width) of every rank, concatenated in rank order on rank 0 (None elsewhere)."""
    rows = np.ascontiguousarray(rows)
    counts = comm.gather(len(rows), root=0)
    if comm.rank == 0:
        out = np.empty((int(sum(counts)),) + rows.shape[1:], dtype=rows.dtype)
        comm.Gatherv(whole(rows), segments(out, np.array(counts, dtype=np.int64)), root=0)
        return out
    comm.Gatherv(whole(rows), None, root=0)
    return None


def scatter_rows(comm, rows: np.ndarray | None, counts, dtype, shape=()) -> np.ndarray:
    """Rank 0's ``rows`` split in consecutive pieces of ``counts[r]`` rows (items of ``shape``)."""
    counts = np.asarray(counts, dtype=np.int64)
    out = np.empty((int(counts[comm.rank]),) + tuple(shape), dtype=dtype)
    send = segments(np.ascontiguousarray(rows, dtype=dtype), counts) if comm.rank == 0 else None
    comm.Scatterv(send, whole(out), root=0)
    return out


def scatter_blocks(comm, rows: np.ndarray | None, n_rows: int, width: int, dtype) -> np.ndarray:
    """Rank 0's ``rows`` (n_rows, width), contiguous blocks of rows to every rank (Scatterv)."""
    counts = np.diff(block_starts(n_rows, comm.size))
    return scatter_rows(comm, rows, counts, dtype, (width,) if width > 1 else ())
