"""Distributed sparse matrices: each rank holds its owned rows, split into the block acting on
owned columns and the block acting on ghost columns, so that the ghost exchange overlaps with
the owned-block product. Vectors are local arrays ``[owned..., ghosts...]``."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI
from scipy.sparse import _sparsetools

from solver.parallel.exchange import HaloExchange


class DistributedMatrix:
    """Owned rows of a square distributed matrix (columns in local numbering)."""

    def __init__(self, owned_rows: sp.csr_matrix, halo: HaloExchange):
        n = halo.n_owned
        owned_rows = owned_rows.tocsr()
        self.halo = halo
        self.n_owned = n
        self.diag_block = owned_rows[:, :n].tocsr()
        self.offdiag_block = owned_rows[:, n:].tocsr()
        self.has_offdiag = self.offdiag_block.nnz > 0
        # only the rows next to the ghosts have ghost columns: multiply and add just those
        self.coupled_rows = np.flatnonzero(np.diff(self.offdiag_block.indptr))
        self.coupling = self.offdiag_block[self.coupled_rows]

    def diagonal(self) -> np.ndarray:
        return self.diag_block.diagonal()

    def matvec(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """y = A x for the owned rows (into ``y`` when given: no temporary of the owned
        size); updates the ghosts of ``x`` on the way."""
        request = self.halo.begin(x)
        D = self.diag_block
        if y is None or x.dtype != np.float64 or y.dtype != np.float64 or not y.flags.c_contiguous \
                or D.indices.dtype != D.indptr.dtype:
            y_new = self.diag_block @ x[: self.n_owned]
        else:
            y_new = y
            y_new.fill(0.0)
            _sparsetools.csr_matvec(D.shape[0], D.shape[1], D.indptr, D.indices, D.data,
                                    np.ascontiguousarray(x[: self.n_owned]), y_new)
        request.Wait()
        if self.has_offdiag:
            y_new[self.coupled_rows] += self.coupling @ x[self.n_owned:]
        if y is None:
            return y_new
        if y_new is not y:
            y[:] = y_new
        return y


def dot(comm, a: np.ndarray, b: np.ndarray, n_owned: int) -> float:
    buf = np.array([np.dot(a[:n_owned], b[:n_owned])])
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    return float(buf[0])
