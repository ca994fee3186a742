"""Distributed sparse matrices: each rank holds its owned rows, split into the block acting on
owned columns and the block acting on ghost columns, so that the ghost exchange overlaps with
the owned-block product. Vectors are local arrays ``[owned..., ghosts...]``."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from solver.la.csr import axpy_matvec
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
        self.symmetric = None

    @classmethod
    def from_blocks(cls, halo: HaloExchange, diag_block: sp.csr_matrix, offdiag_block: sp.csr_matrix,
                    coupled_rows: np.ndarray, coupling: sp.csr_matrix) -> "DistributedMatrix":
        """A matrix from its blocks, already split (see :class:`FixedPattern`)."""
        A = cls.__new__(cls)
        A.halo, A.n_owned = halo, halo.n_owned
        A.diag_block, A.offdiag_block = diag_block, offdiag_block
        A.has_offdiag = offdiag_block.nnz > 0
        A.coupled_rows, A.coupling = coupled_rows, coupling
        A.symmetric = None
        return A

    def multiply_symmetric(self) -> None:
        """From now on, multiply the owned block from its upper triangle
        (:class:`~solver.la.symmetric.SymmetricCSR`, in double precision), for a symmetric matrix:
        each off-diagonal entry is read once for two rows, about half the matrix bytes of a
        product. The full block stays (preconditioners are set up from it), so call this once they
        are, after the peak of memory. Without numba, nothing changes."""
        from solver.compiled import kernels_enabled
        from solver.la.symmetric import AVAILABLE, SymmetricCSR

        if AVAILABLE and kernels_enabled() and self.symmetric is None:
            upper = SymmetricCSR(self.diag_block, np.float64)
            np.negative(upper.data, out=upper.data)  # its "r -= A x" then adds A x
            np.negative(upper.diag, out=upper.diag)
            self.symmetric = upper

    def diagonal(self) -> np.ndarray:
        return self.diag_block.diagonal()

    def matvec(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """y = A x for the owned rows (into ``y`` when given: no temporary of the owned
        size); updates the ghosts of ``x`` on the way."""
        request = self.halo.begin(x)
        D = self.diag_block
        if self.symmetric is not None and x.dtype == np.float64 and (y is None or (
                y.dtype == np.float64 and y.flags.c_contiguous)):
            y_new = np.zeros(self.n_owned) if y is None else y
            if y is not None:
                y_new.fill(0.0)
            self.symmetric.subtract_product(np.ascontiguousarray(x[: self.n_owned]), y_new)
        elif y is None or x.dtype != np.float64 or y.dtype != np.float64 or not y.flags.c_contiguous \
                or D.indices.dtype != D.indptr.dtype:
            y_new = self.diag_block @ x[: self.n_owned]
        else:
            y_new = y
            y_new.fill(0.0)
            axpy_matvec(D, np.ascontiguousarray(x[: self.n_owned]), y_new)
        request.Wait()
        if self.has_offdiag:
            y_new[self.coupled_rows] += self.coupling @ x[self.n_owned:]
        if y is None:
            return y_new
        if y_new is not y:
            y[:] = y_new
        return y


class RowsOperator:
    """``y = A x`` for the owned rows of a square distributed matrix held whole (columns
    ``[owned | ghosts]``, as the assembler gives them), without a copy: for a matrix that is
    kept whole anyway and multiplied once per step (the mass matrix beside the systems built
    from it). The ghost update completes before the product (no overlap)."""

    def __init__(self, owned_rows: sp.csr_matrix, halo: HaloExchange):
        self.A = owned_rows
        self.halo = halo
        self.n_owned = halo.n_owned

    def matvec(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """y = A x for the owned rows (into ``y`` when given); updates the ghosts of ``x``."""
        self.halo.update(x)
        if y is None:
            return self.A @ x
        y[:] = self.A @ x
        return y


class FixedPattern:
    """An owned-rows CSR pattern whose values change from matrix to matrix (Newton's Jacobians):
    its split into the blocks of :class:`DistributedMatrix`, and the entries a symmetric Dirichlet
    elimination zeroes, found once. A matrix of new values then costs a few gathers: no column
    slicing and no rebuilt pattern (the eliminated entries stay as explicit zeros)."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, halo: HaloExchange, mask: np.ndarray):
        n = halo.n_owned
        self.halo, self.n = halo, n
        rows = np.repeat(np.arange(n), np.diff(indptr))
        owned = indices < n
        self.diag_pos, self.off_pos = np.flatnonzero(owned), np.flatnonzero(~owned)
        dtype = indices.dtype

        def starts(of_rows):
            return np.concatenate([[0], np.cumsum(np.bincount(of_rows, minlength=n))]).astype(dtype)
        self.diag_indices = indices[self.diag_pos]
        self.diag_indptr = starts(rows[self.diag_pos])
        self.off_indices = (indices[self.off_pos] - n).astype(dtype)
        self.off_indptr = starts(rows[self.off_pos])
        self.coupled_rows = np.flatnonzero(np.diff(self.off_indptr))
        self.coupling_indptr = self.off_indptr[np.concatenate([self.coupled_rows, [n]])]
        self.n_ghosts = len(mask) - n
        dr, dc = mask[rows], mask[indices]
        self.eliminated = np.flatnonzero((dr | dc) & ~(dr & (indices == rows)))

    def matrix(self, data: np.ndarray) -> DistributedMatrix:
        """The distributed matrix of these values (consumed: eliminated entries set to zero)."""
        data[self.eliminated] = 0.0
        n = self.n
        diag = sp.csr_matrix((data[self.diag_pos], self.diag_indices, self.diag_indptr), shape=(n, n))
        off_data = data[self.off_pos]
        off = sp.csr_matrix((off_data, self.off_indices, self.off_indptr), shape=(n, self.n_ghosts))
        coupling = sp.csr_matrix((off_data, self.off_indices, self.coupling_indptr),
                                 shape=(len(self.coupled_rows), self.n_ghosts))
        for block in (diag, off, coupling):
            block.has_sorted_indices = True
        return DistributedMatrix.from_blocks(self.halo, diag, off, self.coupled_rows, coupling)


def dot(comm, a: np.ndarray, b: np.ndarray, n_owned: int) -> float:
    buf = np.array([np.dot(a[:n_owned], b[:n_owned])])
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    return float(buf[0])
