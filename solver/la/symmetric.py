"""Symmetric sparse storage for the products of the multigrid's V-cycle: the strict upper
triangle in CSR plus the diagonal, as PETSc's SBAIJ keeps it.

A product ``r -= A x`` then reads each off-diagonal entry once for two updates,
``r_i -= a_ij x_j`` and ``r_j -= a_ij x_i``: about half the matrix bytes of a CSR product. The
products are bound by memory bandwidth, so this saves about a fifth of their time on the
2D P1 fine level (3 of 7 entries per row stored). A rank's product runs on one core, so the
scattered updates need no atomics.

The kernels are compiled with numba (cached on disk, :func:`solver.compiled.jit`); without
numba (or with ``SOLVER_NUMBA=0``, or in a run on the NumPy path: :func:`solver.compiled.use_kernels`)
:class:`SymmetricCSR` falls back to SciPy's CSR product of
the full matrix, with the same result to rounding.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from solver.compiled import AVAILABLE, index_dtype, jit, kernels_enabled

__all__ = ["AVAILABLE", "SymmetricCSR", "warm_tasks"]


@jit
def _symmetric_subtract(indptr, indices, data, diag, x, r):  # pragma: no cover - compiled
    """``r -= A x`` with A's strict upper triangle (indptr, indices, data) and diagonal."""
    for i in range(len(diag)):
        xi = x[i]
        acc = diag[i] * xi
        # unsigned indices: numba then skips the wraparound test of negative indices
        for k in range(np.uintp(indptr[i]), np.uintp(indptr[i + 1])):
            j = np.uintp(indices[k])
            a = data[k]
            acc += a * x[j]
            r[j] -= a * xi
        r[i] -= acc


@jit
def _upper_lengths(indptr, indices, lengths):  # pragma: no cover - compiled
    """Entries right of the diagonal in each row (the upper triangle's row lengths)."""
    for i in range(len(lengths)):
        count = 0
        for k in range(indptr[i], indptr[i + 1]):
            count += indices[k] > i
        lengths[i] = count


@jit
def _upper_fill(indptr, indices, data, up_indptr, up_indices, up_data, diag):  # pragma: no cover
    """The strict upper triangle, in the order of A's rows, and the diagonal (summed)."""
    for i in range(len(diag)):
        d = 0.0
        pos = up_indptr[i]
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if j == i:
                d += data[k]
            elif j > i:
                up_indices[pos] = j
                up_data[pos] = data[k]
                pos += 1
        diag[i] = d


class SymmetricCSR:
    """A square symmetric matrix held as its strict upper triangle (CSR, int32 indices when
    they fit) and its diagonal, in ``dtype``. Only the upper triangle of the given matrix is
    read, so the operator is exactly symmetric even when the given entries differ by rounding
    (Galerkin products summed in different orders)."""

    def __init__(self, A: sp.csr_matrix, dtype=np.float64):
        A = sp.csr_matrix(A)
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"a symmetric matrix must be square, not {A.shape}")
        self.dtype = np.dtype(dtype)
        self.compiled = AVAILABLE and kernels_enabled()
        if not self.compiled:  # the full matrix, from the upper triangle, for SciPy's product
            U = sp.triu(A, k=1, format="csr")
            full = sp.csr_matrix(U + U.T + sp.diags(A.diagonal()), dtype=self.dtype)
            full.sort_indices()
            self._full = full
            return
        # the upper triangle straight from the CSR arrays: no COO copy of the whole matrix
        lengths = np.empty(A.shape[0], dtype=np.int64)
        _upper_lengths(A.indptr, A.indices, lengths)
        index = index_dtype(int(lengths.sum()), A.shape[0])
        self.indptr = np.zeros(A.shape[0] + 1, dtype=index)
        np.cumsum(lengths, out=self.indptr[1:])
        self.indices = np.empty(int(self.indptr[-1]), dtype=index)
        self.data = np.empty(int(self.indptr[-1]), dtype=self.dtype)
        self.diag = np.empty(A.shape[0], dtype=self.dtype)
        _upper_fill(A.indptr, A.indices, A.data, self.indptr, self.indices, self.data, self.diag)

    def subtract_product(self, x: np.ndarray, r: np.ndarray) -> None:
        """``r -= A x`` in place (``x`` and ``r`` of the matrix's dtype, contiguous)."""
        if not self.compiled:
            r -= self._full @ x
            return
        _symmetric_subtract(self.indptr, self.indices, self.data, self.diag, x, r)


def warm_products() -> None:
    """Compile (or load) this module's kernels: a 2 x 2 matrix in double and in single precision
    (the multigrid's levels)."""
    A = sp.csr_matrix(np.array([[2.0, -1.0], [-1.0, 2.0]]))
    for dtype in (np.float64, np.float32):
        S = SymmetricCSR(A, dtype)
        S.subtract_product(np.ones(2, dtype), np.zeros(2, dtype))


def warm_tasks() -> list:
    """The compilations of this module's kernels (:func:`solver.compiled.compile_shared`)."""
    return [(0.6, warm_products)] if AVAILABLE else []
