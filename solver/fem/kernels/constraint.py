"""The symmetric Dirichlet elimination of owned rows, compiled (see :func:`solver.fem.constrain`)."""

from __future__ import annotations

import numpy as np

from solver.compiled import jit

__all__ = ["constrain_kernel"]


@jit
def constrain_kernel(indptr, indices, data, mask, n_owned):
    """The symmetric Dirichlet elimination of owned rows (see :func:`solver.fem.constrain`), in two
    passes: (indptr, indices, data) of the constrained matrix and of the lift, and the diagonal.
    Exact zeros are dropped from both, as ``eliminate_zeros`` would."""
    ip_c = np.zeros(n_owned + 1, np.int64)
    ip_l = np.zeros(n_owned + 1, np.int64)
    diag = np.zeros(n_owned)
    for r in range(n_owned):
        nc_ = 0
        nl = 0
        dr = mask[r]
        for p in range(indptr[r], indptr[r + 1]):
            col = indices[p]
            v = data[p]
            if col == r:
                diag[r] += v
            if v == 0.0:
                continue
            dc = mask[col]
            if (not dr and not dc) or (dr and col == r):
                nc_ += 1
            elif not dr and dc:
                nl += 1
        ip_c[r + 1] = ip_c[r] + nc_
        ip_l[r + 1] = ip_l[r] + nl
    ind_c = np.empty(ip_c[n_owned], indices.dtype)
    dat_c = np.empty(ip_c[n_owned])
    ind_l = np.empty(ip_l[n_owned], indices.dtype)
    dat_l = np.empty(ip_l[n_owned])
    for r in range(n_owned):
        pc = ip_c[r]
        pl = ip_l[r]
        dr = mask[r]
        for p in range(indptr[r], indptr[r + 1]):
            col = indices[p]
            v = data[p]
            if v == 0.0:
                continue
            dc = mask[col]
            if (not dr and not dc) or (dr and col == r):
                ind_c[pc] = col
                dat_c[pc] = v
                pc += 1
            elif not dr and dc:
                ind_l[pl] = col
                dat_l[pl] = v
                pl += 1
    return ip_c, ind_c, dat_c, ip_l, ind_l, dat_l, diag
