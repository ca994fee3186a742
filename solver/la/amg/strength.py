"""Strength of connection: which off-diagonal couplings of a row are strong enough for the
aggregation to join the two rows (pyamg's ``strength`` stage).

* "signed" (the default): ``-a_ij >= theta sqrt(m_i m_j)``, ``m_i`` the largest negative
  coupling of row i. Positive couplings (mass-like, or the opposite sign that anisotropic
  bilinear elements give across the weak direction) are weak, and the test does not depend on
  the stencil's scale or shape (Q1 in 3D couples faces by 0).
* "symmetric": ``|a_ij| >= theta sqrt(|a_ii a_jj|)``, pyamg's symmetric measure.

Both are vectorised over the CSR arrays and compare squares (no square root per entry); the
result is a CSR pattern with int32 indices, as pyamg's aggregation kernel takes it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["strong_connections"]


def strong_connections(D: sp.csr_matrix, theta: float, measure: str) -> tuple[np.ndarray, np.ndarray]:
    """Strong off-diagonal couplings of a square CSR block: row offsets and columns (int32),
    by the measure "signed" or "symmetric" (see the module)."""
    n = D.shape[0]
    lengths = np.diff(D.indptr)
    rows = np.repeat(np.arange(n, dtype=np.int32 if n < 2 ** 31 else np.int64), lengths)
    cols = D.indices
    if measure == "signed":
        neg = np.negative(D.data)
        neg[rows == cols] = 0.0
        m = np.zeros(n)
        nonempty = lengths > 0
        if len(neg):  # row maxima (segments of the nonempty rows)
            m[nonempty] = np.maximum.reduceat(neg, D.indptr[:-1][nonempty])
        idx = np.flatnonzero(neg > 0.0)  # candidates; then -a_ij >= theta sqrt(m_i m_j), squared
        v = neg[idx]
        idx = idx[v * v >= theta * theta * (m[rows[idx]] * m[cols[idx]])]
    elif measure == "symmetric":
        d = np.abs(D.diagonal())
        a = np.abs(D.data)
        idx = np.flatnonzero((rows != cols) & (a > 0.0))
        v = a[idx]
        idx = idx[v * v >= theta * theta * (d[rows[idx]] * d[cols[idx]])]
    else:
        raise ValueError(f"unknown strength measure {measure!r}")
    Sp = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows[idx], minlength=n), out=Sp[1:])
    return Sp, np.ascontiguousarray(cols[idx], dtype=np.int32)
