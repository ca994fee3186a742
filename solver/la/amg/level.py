"""One level of the hierarchy: its distributed matrix, the V-cycle's copy of it, the smoother
(:class:`~solver.la.amg.smoothers.ChebyshevSmoother`, a base) and the work arrays; the
transfer to the next level and the Galerkin data are attached by the hierarchy.

The hot path avoids temporaries. The owned block is held in symmetric storage (its upper
triangle, :class:`~solver.la.symmetric.SymmetricCSR`: half the matrix bytes of the
smoother's products, which are bound by memory bandwidth), so ``r -= A x`` is one compiled
call, overlapped with the halo update of x. The ghost columns touch only the rows next to
other ranks: they are multiplied for just those rows (``-coupling``, through SciPy's
``csr_matvec``) and added. The matrix used in the V-cycle is of the working precision
(float32 by default); the distributed matrix itself stays in double for the set-up.
"""

from __future__ import annotations

import numpy as np

from solver.la.amg.galerkin import GalerkinProduct
from solver.la.amg.smoothers import ChebyshevSmoother
from solver.la.csr import axpy_matvec, negated
from solver.la.amg.transfer import Transfer
from solver.la.matrix import DistributedMatrix
from solver.la.symmetric import SymmetricCSR

__all__ = ["Level"]


class Level(ChebyshevSmoother):
    """One level: its distributed matrix (float64, set-up), the V-cycle's copy of it in the
    working precision, the Chebyshev smoother and the work arrays. ``gids``: global ids of
    the local columns; ``starts``: first global row of every rank; ``active``: ranks that own
    rows of this level."""

    def __init__(self, A: DistributedMatrix, gids: np.ndarray, starts: np.ndarray, active: int, dtype):
        self.gids, self.starts, self.active = gids, starts, active
        self.dtype = np.dtype(dtype)
        self.n = A.n_owned
        self.n_local = len(gids)
        self.set_matrix(A)
        self.transfer: Transfer | None = None  # to the next level (None on the coarsest)
        self.galerkin: GalerkinProduct | None = None  # what the next level's matrix needs
        self.degree = 0
        self.lam = float("nan")
        self.x = np.zeros(self.n_local, dtype=self.dtype)  # this level's correction
        self.b = np.zeros(self.n, dtype=self.dtype)  # and its right-hand side
        self.r = np.zeros(self.n, dtype=self.dtype)  # residual after pre-smoothing
        self.s = np.zeros(self.n, dtype=self.dtype)  # residual inside post-smoothing

    def set_matrix(self, A: DistributedMatrix) -> None:
        """New values (or a new matrix with the same owned rows): the V-cycle's copies."""
        self.A = A
        self.halo = A.halo
        self.diag_product = SymmetricCSR(A.diag_block, self.dtype)
        # the ghost columns touch only the rows next to other ranks: multiply just those rows
        # (a product over all owned rows would stream the whole row-pointer array for them)
        self.coupled_rows = A.coupled_rows
        self.neg_coupling = negated(A.coupling, self.dtype)
        self.coupled_r = np.zeros(len(self.coupled_rows), dtype=self.dtype)
        self.has_off = A.offdiag_block.nnz > 0

    def set_columns(self, gids: np.ndarray) -> None:
        """New ghost columns (global ids of ``[owned..., ghosts...]``): the correction resized;
        the matrix and the smoother follow with :meth:`set_matrix` and ``set_smoother``."""
        self.gids = gids
        self.n_local = len(gids)
        self.x = np.zeros(self.n_local, dtype=self.dtype)

    def sub_matvec(self, x: np.ndarray, r: np.ndarray) -> None:
        """``r -= A x`` (owned rows); updates the ghosts of ``x`` (local length)."""
        n = self.n
        request = self.halo.begin(x)
        self.diag_product.subtract_product(x[:n], r)
        request.Wait()
        if self.has_off:
            t = self.coupled_r
            t.fill(0.0)
            axpy_matvec(self.neg_coupling, x[n:], t)
            r[self.coupled_rows] += t

    def messages(self, matvecs: int) -> tuple[int, int]:
        """(messages, bytes) this rank sends in ``matvecs`` products."""
        p = self.halo.pattern
        return matvecs * len(p.send_ranks), matvecs * self.dtype.itemsize * p.n_send
