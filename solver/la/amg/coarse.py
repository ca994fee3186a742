"""The coarsest level's solve: gathered on each of its ranks and solved redundantly with
SuperLU (float64), factorised once per set-up or update.

The coarsest level has at most ``max_coarse`` rows (agglomeration has usually moved it onto
one rank). Its ranks split off a communicator; the factorisation gathers the matrix's entries
there (``Allgatherv`` of global row, column and value arrays), and each solve gathers the
right-hand side with one ``Allgatherv`` (none on one rank) and keeps its own rows of the
solution. An exactly singular coarse matrix (pure Neumann) is shifted by ``1e-12 max |a_ii|``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from mpi4py import MPI

from solver.la.amg.level import Level
from solver.la.amg.sparse import local_matrix
from solver.la.matrix import DistributedMatrix

__all__ = ["CoarseSolve"]


class CoarseSolve:
    """The coarsest level gathered on each of its ranks and factorised (SuperLU, float64)."""

    def __init__(self, comm, level: Level):
        self.level = level
        self.n = level.n
        active = level.n > 0 or comm.size == 1
        sub = comm.Split(0 if active else MPI.UNDEFINED, comm.rank)
        self.sub = None if sub == MPI.COMM_NULL else sub
        self.lu = None
        self.nnz = 0
        if self.sub is None:
            return
        self.counts = np.empty(self.sub.size, dtype=np.int64)
        self.sub.Allgather(np.array([level.n], dtype=np.int64), self.counts)
        self.displs = np.zeros_like(self.counts)
        np.cumsum(self.counts[:-1], out=self.displs[1:])
        self.n_global = int(self.counts.sum())
        self.start = int(self.displs[self.sub.rank])
        self.full = np.zeros(self.n_global)
        self.mine = np.zeros(self.n)
        self.factor(level.A)

    def factor(self, A: DistributedMatrix) -> None:
        """Gather ``A`` (the coarsest level's matrix) and factorise it."""
        if self.sub is None:
            return
        lvl = self.level
        M = local_matrix(A).tocoo()
        rows, cols = lvl.gids[M.row], lvl.gids[M.col]  # the coarsest level's ids are 0..n-1
        counts = np.empty(self.sub.size, dtype=np.int64)
        self.sub.Allgather(np.array([len(rows)], dtype=np.int64), counts)
        displs = np.zeros_like(counts)
        np.cumsum(counts[:-1], out=displs[1:])
        total = int(counts.sum())
        R, C, V = np.empty(total, np.int64), np.empty(total, np.int64), np.empty(total)
        for src, dst, mpitype in ((rows, R, MPI.INT64_T), (cols, C, MPI.INT64_T), (M.data, V, MPI.DOUBLE)):
            self.sub.Allgatherv([np.ascontiguousarray(src, dtype=dst.dtype), mpitype],
                                [dst, (counts, displs), mpitype])
        G = sp.csc_matrix((V, (R, C)), shape=(self.n_global, self.n_global))
        self.nnz = G.nnz
        try:
            self.lu = spla.splu(G, permc_spec="MMD_AT_PLUS_A")
        except RuntimeError:  # exactly singular (pure Neumann): regularise the coarse problem
            shift = 1e-12 * float(np.abs(G.diagonal()).max() or 1.0)
            self.lu = spla.splu((G + shift * sp.identity(self.n_global, format="csc")).tocsc(),
                                permc_spec="MMD_AT_PLUS_A")

    def solve(self, b: np.ndarray, x: np.ndarray) -> None:
        """``x = A^-1 b`` on this rank's rows."""
        if self.sub is None:
            return
        if self.sub.size == 1:
            np.copyto(self.mine, b)
            np.copyto(x[: self.n], self.lu.solve(self.mine))
            return
        np.copyto(self.mine, b)
        self.sub.Allgatherv([self.mine, MPI.DOUBLE], [self.full, (self.counts, self.displs), MPI.DOUBLE])
        np.copyto(x[: self.n], self.lu.solve(self.full)[self.start: self.start + self.n])

    def messages(self) -> tuple[int, int]:
        """(messages, bytes) this rank sends per solve."""
        if self.sub is None or self.sub.size == 1:
            return 0, 0
        return self.sub.size - 1, 8 * self.n * (self.sub.size - 1)
