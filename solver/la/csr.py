"""CSR helpers of the distributed products, and the package's one wrapper around SciPy's private
``_sparsetools``.

Products that run every step (CG's, the V-cycle's transfers and ghost columns) go through
SciPy's compiled ``csr_matvec`` (``y += A x``) into preallocated arrays: no temporary per product.
That kernel wants index arrays of one dtype, so the matrices it gets are canonical copies
(:func:`canonical_csr`), int32 where the indices fit (half the index bytes of a product).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse import _sparsetools

from solver.compiled import index_dtype

__all__ = ["axpy_matvec", "canonical_csr", "negated"]


def canonical_csr(A, dtype=np.float64) -> sp.csr_matrix:
    """A canonical CSR copy with index arrays of one dtype (what csr_matvec wants), int32 when
    they fit; a copy, so that sorting it never reorders arrays it shares with its source."""
    A = sp.csr_matrix(A, dtype=dtype, copy=True)
    A.sum_duplicates()
    A.sort_indices()
    t = index_dtype(A.nnz, *A.shape)
    A.indices, A.indptr = A.indices.astype(t, copy=False), A.indptr.astype(t, copy=False)
    A.data = np.ascontiguousarray(A.data, dtype=dtype)
    return A


def negated(A: sp.csr_matrix, dtype) -> sp.csr_matrix:
    """``-A`` in ``dtype`` sharing A's index arrays when A is canonical (no copy of them)."""
    if not A.has_canonical_format or A.indices.dtype != A.indptr.dtype:
        return canonical_csr(-A, dtype)
    return sp.csr_matrix((np.negative(A.data).astype(dtype, copy=False), A.indices, A.indptr),
                         shape=A.shape, copy=False)


def axpy_matvec(A: sp.csr_matrix, x: np.ndarray, y: np.ndarray) -> None:
    """``y += A @ x`` in place (no temporary); A's index arrays of one dtype."""
    _sparsetools.csr_matvec(A.shape[0], A.shape[1], A.indptr, A.indices, A.data, x, y)
