"""Owned items <-> contiguous blocks of a canonical (rank-independent) numbering: the layout of
every file the solver writes, whatever the number of ranks."""

from __future__ import annotations

import numpy as np

from solver.parallel.exchange import NeighbourExchange
from solver.parallel.routing import block_rank, block_starts, sparse_alltoallv


class BlockRedistributor:
    """Owned items (canonical ids ``keys``, 0 <= key < n_global) <-> contiguous canonical blocks.

    Rank r's block is ``[block_start(r), block_start(r+1))`` with ``block_start(r) = r*N//P``;
    ``to_blocks`` gives each rank its block in canonical order, ``from_blocks`` does the inverse.
    """

    def __init__(self, comm, keys: np.ndarray, n_global: int):
        self.comm = comm
        self.n_global = int(n_global)
        self.starts = block_starts(self.n_global, comm.size)
        self.start, self.stop = int(self.starts[comm.rank]), int(self.starts[comm.rank + 1])
        keys = np.asarray(keys, dtype=np.int64)
        dest = block_rank(self.starts, keys)
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
