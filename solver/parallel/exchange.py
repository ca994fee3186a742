"""Fixed communication patterns between neighbouring ranks, with buffer-based mpi4py calls.

* :class:`NeighbourExchange`: a pattern of messages set up once (a distributed graph
  communicator) and carried out with ``Neighbor_alltoallv`` / ``Ineighbor_alltoallv``.
* :class:`HaloExchange`: owner -> ghost updates of a local vector laid out as
  ``[owned..., ghosts...]``, ghosts grouped by owner rank so that they are received in place.

Only set-up uses O(P) collectives (``Alltoall`` of counts); every repeated exchange talks
to neighbours only.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from solver.parallel.buffers import segments
from solver.parallel.routing import sparse_alltoallv


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
        self.n_send = int(self.send_counts.sum())  # items per exchange (communication statistics)
        self.n_recv = int(self.recv_counts.sum())
        self.graph = comm.Create_dist_graph_adjacent(
            sources=self.recv_ranks.tolist(), destinations=self.send_ranks.tolist(), reorder=False)

    def _specs(self, sendbuf, recvbuf):
        return segments(sendbuf, self.send_counts), segments(recvbuf, self.recv_counts)

    def exchange(self, sendbuf: np.ndarray, recvbuf: np.ndarray) -> None:
        self.graph.Neighbor_alltoallv(*self._specs(sendbuf, recvbuf))

    def start(self, sendbuf: np.ndarray, recvbuf: np.ndarray) -> MPI.Request:
        return self.graph.Ineighbor_alltoallv(*self._specs(sendbuf, recvbuf))

    def reversed(self) -> "NeighbourExchange":
        return NeighbourExchange(self.comm, self.recv_ranks, self.recv_counts,
                                 self.send_ranks, self.send_counts)

    def free(self):
        self.graph.Free()


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
