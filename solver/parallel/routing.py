"""Set-up-time routing of items between arbitrary ranks: one ``Alltoall`` of counts, then
``Alltoallv`` of the items (:class:`Route`), lookups in tables distributed in contiguous blocks
(:func:`fetch`). O(P) collectives: for building patterns, never inside a solver loop.
"""

from __future__ import annotations

import numpy as np

from solver.parallel.buffers import segments


class Route:
    """Item ``i`` goes to rank ``dest[i]`` (set-up only): one ``Alltoall`` of counts, then any
    number of arrays of items follow the same route with ``Alltoallv``, grouped by source rank
    in rank order on arrival."""

    def __init__(self, comm, dest: np.ndarray, items: np.ndarray | None = None):
        self.comm = comm
        self.order = np.argsort(dest, kind="stable")
        if items is not None:  # item i of the arrays sent is items[i] of the caller's arrays
            self.order = items[self.order]
        self.send_counts = np.bincount(dest, minlength=comm.size).astype(np.int64)
        self.recv_counts = np.empty(comm.size, dtype=np.int64)
        comm.Alltoall(self.send_counts, self.recv_counts)

    def send(self, data: np.ndarray) -> np.ndarray:
        sendbuf = np.ascontiguousarray(data[self.order])
        recvbuf = np.empty((int(self.recv_counts.sum()),) + data.shape[1:], dtype=data.dtype)
        self.comm.Alltoallv(segments(sendbuf, self.send_counts), segments(recvbuf, self.recv_counts))
        return recvbuf


def sparse_alltoallv(comm, dest: np.ndarray, data: np.ndarray):
    """Send ``data[i]`` to rank ``dest[i]`` (set-up only: one Alltoall of counts + Alltoallv).

    Returns ``(received, recv_counts_per_rank, send_order, send_counts_per_rank)``,
    ``received`` grouped by source rank in rank order, and ``data[send_order]`` the send buffer.
    """
    route = Route(comm, dest)
    return route.send(data), route.recv_counts, route.order, route.send_counts


def block_starts(n_global: int, size: int) -> np.ndarray:
    """First index of each rank's contiguous block of ``0..n_global-1`` (``size + 1`` entries)."""
    return (np.arange(size + 1, dtype=np.int64) * int(n_global)) // size


def block_rank(starts: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The rank whose block holds each id."""
    return np.searchsorted(starts, ids, side="right") - 1


def fetch(comm, starts: np.ndarray, ids: np.ndarray, block: np.ndarray) -> np.ndarray:
    """``table[ids]`` of a table distributed in contiguous blocks (this rank holds ``block``,
    rows ``starts[rank]:starts[rank+1]``): ask each block's rank for its rows (set-up only)."""
    wanted, inverse = np.unique(np.asarray(ids, dtype=np.int64), return_inverse=True)
    asked, asked_counts, order, _ = sparse_alltoallv(comm, block_rank(starts, wanted), wanted)
    answers = np.ascontiguousarray(block[asked - starts[comm.rank]])
    sources = np.repeat(np.arange(comm.size), asked_counts)
    replies, _, _, _ = sparse_alltoallv(comm, sources, answers)
    rows = np.empty_like(replies)
    rows[order] = replies
    return rows[inverse.reshape(np.shape(ids))]
