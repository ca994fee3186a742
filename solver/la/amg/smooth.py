"""Prolongator smoothing: ``P = (I - omega D^-1 A) T`` on this rank's owned fine rows
(pyamg's ``aggregation.smooth`` stage, its Jacobi smoother).

``T`` (:mod:`~solver.la.amg.tentative`) is known on every local fine row, ghosts included,
so ``A T`` is a local sparse product with the owned rows of A over all local columns. Its
columns are the sorted global coarse ids that T uses on the local rows (some may lose every
entry of P by cancellation). ``omega = 4 / (3 lam)``, lam the Lanczos estimate of
``rho(D^-1 A)`` that the level's smoother made. T's entries lie in A T's pattern (``a_ii !=
0``), so ``P = T - omega D^-1 (A T)`` is formed in place: a row scaling, then T added at the
positions found by one binary search over the (row, column) keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from solver.compiled import index_dtype
from solver.la.csr import canonical_csr

__all__ = ["LocalProlongator", "smoothed_prolongator"]


@dataclass
class LocalProlongator:
    """The smoothed prolongator on this rank's owned fine rows."""

    P: sp.csr_matrix  # its columns index ``columns``
    columns: np.ndarray  # the global coarse ids of T's columns on the local rows, sorted
    used: np.ndarray  # which of them keep an entry in P
    used_columns: np.ndarray  # their global ids (``columns[used]``, sorted)


def smoothed_prolongator(A_loc: sp.csr_matrix, dinv: np.ndarray, lam: float, t_col: np.ndarray,
                         t_val: np.ndarray) -> LocalProlongator:
    """P from the owned rows of A (all local columns), the level's ``D^-1`` and lam, and the
    tentative prolongator on the local rows (``t_col``: global coarse id or -1, ``t_val``)."""
    n, n_local = A_loc.shape[0], len(t_col)
    # T has at most one entry per row, columns numbered by the sorted global coarse ids it uses
    has = t_col >= 0
    ucols, inv = np.unique(t_col[has], return_inverse=True)
    it = index_dtype(n_local, len(ucols))
    t_indptr = np.zeros(n_local + 1, dtype=it)
    np.cumsum(has, out=t_indptr[1:])
    T_local = sp.csr_matrix((t_val[has], inv.astype(it), t_indptr), shape=(n_local, len(ucols)))
    omega = 4.0 / (3.0 * lam) if lam > 0 else 0.0
    P = canonical_csr(A_loc @ T_local)  # then P = T - omega D^-1 (A T), in place: T's entries lie
    P.data *= np.repeat(-omega * dinv, np.diff(P.indptr))  # in A T's pattern (a_ii != 0)
    t_rows = np.flatnonzero(has[:n])
    keys = np.repeat(np.arange(n, dtype=np.int64), np.diff(P.indptr)) * len(ucols) + P.indices
    wanted = t_rows * len(ucols) + inv[: len(t_rows)]
    at = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
    found = keys[at] == wanted if len(keys) else np.zeros(len(wanted), dtype=bool)
    P.data[at[found]] += t_val[t_rows[found]]
    if not found.all():  # (A T)_ij cancelled exactly (SciPy's product drops the zero): a row whose
        # couplings all lie in its own aggregate and sum to zero (a Laplacian's interior row), so
        # T's entry is P's entry there
        rows = t_rows[~found]
        extra = sp.csr_matrix((t_val[rows], (rows, inv[: len(t_rows)][~found])), shape=P.shape)
        P = canonical_csr(P + extra)
    del keys, at, T_local
    P.eliminate_zeros()
    used = np.zeros(len(ucols), dtype=bool)
    used[P.indices] = True
    return LocalProlongator(P=P, columns=ucols, used=used, used_columns=ucols[used])
