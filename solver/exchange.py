"""Fixed communication patterns between neighbouring ranks, with buffer-based mpi4py calls.

* :class:`NeighbourExchange`: a pattern of messages set up once (a distributed graph
  communicator) and carried out with ``Neighbor_alltoallv`` / ``Ineighbor_alltoallv``.
* :class:`HaloExchange`: owner -> ghost updates of a local vector laid out as
  ``[owned..., ghosts...]``, ghosts grouped by owner rank so that they are received in place.
* :class:`BlockRedistributor`: moves owned values to contiguous blocks of a canonical
  (rank-independent) numbering and back; used for output and checkpoints.

Only set-up uses O(P) collectives (``Alltoall`` of counts); every repeated exchange talks
to neighbours only.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

_MPI_TYPES = {np.dtype(np.float64): MPI.DOUBLE, np.dtype(np.int64): MPI.INT64_T,
              np.dtype(np.int32): MPI.INT32_T}


def _displacements(counts: np.ndarray) -> np.ndarray:
    displs = np.zeros_like(counts)
    np.cumsum(counts[:-1], out=displs[1:])
    return displs


class NeighbourExchange:
    """Send ``send_counts[i]`` items to ``send_ranks[i]``, receive ``recv_counts[j]`` from ``recv_ranks[j]``.

    Buffers are packed in rank-list order. Items may have several components
    (arrays of shape ``(n, k)``): counts are scaled by ``k``.
    """

    def __init__(self, comm, send_ranks, send_counts, recv_ranks, recv_counts):
        self.comm = comm
        self.send_ranks = np.asarray(send_ranks, dtype=np.int32)
        self.recv_ranks = np.asarray(recv_ranks, dtype=np.int32)
        self.send_counts = np.asarray(send_counts, dtype=np.int64)
        self.recv_counts = np.asarray(recv_counts, dtype=np.int64)
        self.n_send = int(self.send_counts.sum())
        self.n_recv = int(self.recv_counts.sum())
        self.graph = comm.Create_dist_graph_adjacent(
            sources=self.recv_ranks.tolist(), destinations=self.send_ranks.tolist(), reorder=False)

    def _specs(self, sendbuf, recvbuf):
        k = int(np.prod(sendbuf.shape[1:], dtype=int)) if sendbuf.ndim > 1 else 1
        mpitype = _MPI_TYPES[np.dtype(sendbuf.dtype)]
        sc, rc = self.send_counts * k, self.recv_counts * k
        return ([sendbuf, (sc, _displacements(sc)), mpitype],
                [recvbuf, (rc, _displacements(rc)), mpitype])

    def exchange(self, sendbuf: np.ndarray, recvbuf: np.ndarray) -> None:
        self.graph.Neighbor_alltoallv(*self._specs(sendbuf, recvbuf))

    def start(self, sendbuf: np.ndarray, recvbuf: np.ndarray) -> MPI.Request:
        return self.graph.Ineighbor_alltoallv(*self._specs(sendbuf, recvbuf))

    def reversed(self) -> "NeighbourExchange":
        return NeighbourExchange(self.comm, self.recv_ranks, self.recv_counts,
                                 self.send_ranks, self.send_counts)

    def free(self):
        self.graph.Free()


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
        k = int(np.prod(data.shape[1:], dtype=int)) if data.ndim > 1 else 1
        mpitype = _MPI_TYPES[np.dtype(data.dtype)]
        sc, rc = self.send_counts * k, self.recv_counts * k
        self.comm.Alltoallv([sendbuf, (sc, _displacements(sc)), mpitype],
                            [recvbuf, (rc, _displacements(rc)), mpitype])
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


class HaloExchange:
    """Updates ghost entries ``x[n_owned:]`` with their owners' values.

    ``ghost_owners`` must be sorted (ghosts grouped by owner); ``ghost_keys`` are the
    ghosts' canonical ids and ``owned_keys`` those of the owned entries.
    """

    def __init__(self, comm, n_owned: int, owned_keys: np.ndarray, ghost_owners: np.ndarray,
                 ghost_keys: np.ndarray):
        if ghost_owners.size and np.any(np.diff(ghost_owners) < 0):
            raise ValueError("ghosts must be grouped by owner rank")
        self.n_owned = n_owned
        requested, req_counts, _, my_counts = sparse_alltoallv(comm, ghost_owners.astype(np.int64),
                                                               ghost_keys.astype(np.int64))
        sorter = np.argsort(owned_keys, kind="stable")
        pos = np.searchsorted(owned_keys, requested, sorter=sorter)
        pos = np.minimum(pos, max(len(owned_keys) - 1, 0))
        if requested.size and not np.array_equal(owned_keys[sorter[pos]], requested):
            raise RuntimeError("halo set-up: a ghost was requested from a rank that does not own it")
        self.send_indices = sorter[pos].astype(np.int64)
        senders = np.flatnonzero(req_counts)
        owners = np.flatnonzero(my_counts)
        self.pattern = NeighbourExchange(comm, senders, req_counts[senders], owners, my_counts[owners])
        self.neighbours = np.union1d(senders, owners)
        self._sendbuf: np.ndarray | None = None

    def update(self, x: np.ndarray) -> None:
        """Blocking ghost update of ``x`` (shape ``(n_local,)`` or ``(n_local, k)``)."""
        self.pattern.exchange(np.ascontiguousarray(x[self.send_indices]), x[self.n_owned:])

    def begin(self, x: np.ndarray) -> MPI.Request:
        """Start a ghost update; complete it with ``request.Wait()`` before reading ghosts."""
        self._sendbuf = np.take(x, self.send_indices, axis=0, out=self._send_buffer(x))
        return self.pattern.start(self._sendbuf, x[self.n_owned:])

    def _send_buffer(self, x):
        shape = (len(self.send_indices),) + x.shape[1:]
        if self._sendbuf is None or self._sendbuf.shape != shape or self._sendbuf.dtype != x.dtype:
            self._sendbuf = np.empty(shape, dtype=x.dtype)
        return self._sendbuf


class BlockRedistributor:
    """Owned items (canonical ids ``keys``, 0 <= key < n_global) <-> contiguous canonical blocks.

    Rank r's block is ``[block_start(r), block_start(r+1))`` with ``block_start(r) = r*N//P``;
    ``to_blocks`` gives each rank its block in canonical order, ``from_blocks`` does the inverse.
    """

    def __init__(self, comm, keys: np.ndarray, n_global: int):
        self.comm = comm
        self.n_global = int(n_global)
        size, rank = comm.size, comm.rank
        self.starts = (np.arange(size + 1, dtype=np.int64) * self.n_global) // size
        self.start, self.stop = int(self.starts[rank]), int(self.starts[rank + 1])
        keys = np.asarray(keys, dtype=np.int64)
        dest = np.searchsorted(self.starts, keys, side="right") - 1
        received, recv_counts, self.order, send_counts = sparse_alltoallv(comm, dest, keys)
        self.positions = received - self.start
        if received.size != self.stop - self.start or (
                received.size and not np.array_equal(np.sort(self.positions), np.arange(received.size))):
            raise RuntimeError("block redistribution: canonical ids are not a partition of 0..N-1")
        to = np.flatnonzero(send_counts)
        frm = np.flatnonzero(recv_counts)
        self.forward = NeighbourExchange(comm, to, send_counts[to], frm, recv_counts[frm])
        self._backward = None

    @property
    def block_size(self) -> int:
        return self.stop - self.start

    def to_blocks(self, owned_values: np.ndarray) -> np.ndarray:
        values = np.asarray(owned_values)
        recv = np.empty((self.block_size,) + values.shape[1:], dtype=values.dtype)
        self.forward.exchange(np.ascontiguousarray(values[self.order]), recv)
        block = np.empty_like(recv)
        block[self.positions] = recv
        return block

    def from_blocks(self, block: np.ndarray) -> np.ndarray:
        if self._backward is None:
            self._backward = self.forward.reversed()
        block = np.asarray(block)
        recv = np.empty((len(self.order),) + block.shape[1:], dtype=block.dtype)
        self._backward.exchange(np.ascontiguousarray(block[self.positions]), recv)
        owned = np.empty_like(recv)
        owned[self.order] = recv
        return owned
