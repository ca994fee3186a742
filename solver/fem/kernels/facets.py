"""Boundary facets: their quadrature weights, and facet matrices and vectors added into the owned
rows. Facets are few (O(N^(d-1))): one generic kernel serves every kind of facet, a facet at a
time, with no block layout.
"""

from __future__ import annotations

import numpy as np

from solver.compiled import inline, jit
from solver.fem.kernels.coefficients import flat

__all__ = ["facet_matrix", "facet_measures", "facet_vector"]


@inline
def facet_measure(coords, facets, f, dN, q):
    """sqrt(det J^T J) of facet f at point q (J = X^T dN, gdim x tdim, tdim = 1 or 2)."""
    nn = facets.shape[1]
    gdim = coords.shape[1]
    tdim = dN.shape[2]
    g00 = 0.0
    g01 = 0.0
    g11 = 0.0
    for a in range(gdim):
        j0 = 0.0
        j1 = 0.0
        for n in range(nn):
            x = coords[facets[f, n], a]
            j0 += x * dN[q, n, 0]
            if tdim > 1:
                j1 += x * dN[q, n, 1]
        g00 += j0 * j0
        g01 += j0 * j1
        g11 += j1 * j1
    if tdim == 1:
        return np.sqrt(g00)
    return np.sqrt(abs(g00 * g11 - g01 * g01))


@jit
def facet_measures(coords, facets, dN, weights, out):
    """out[f, q] = w_q sqrt(det J^T J) of facet f at point q: the quadrature weights of the facets,
    computed once per boundary."""
    for f in range(facets.shape[0]):
        for q in range(weights.shape[0]):
            out[f, q] = weights[q] * facet_measure(coords, facets, f, dN, q)


@jit
def facet_matrix(facets, N, wdet, values, slots, data):
    """data += int c N_i N_j over the facets, c canonical (n_facets or 1, n_qp or 1, 1), ``wdet``:
    :func:`facet_measures`; ``slots`` (n_facets, nn * nn): each entry's slot in ``data``, -1 for a
    row owned elsewhere (skipped)."""
    nf, nn = facets.shape
    nq = wdet.shape[1]
    vf, v_sc, v_sq, _ = flat(values)
    A = np.empty((nn, nn))
    for f in range(nf):
        for i in range(nn):
            for j in range(nn):
                A[i, j] = 0.0
        for q in range(nq):
            w = wdet[f, q] * vf[f * v_sc + q * v_sq]
            for i in range(nn):
                for j in range(nn):
                    A[i, j] += w * N[q, i] * N[q, j]
        for i in range(nn):
            for j in range(nn):
                e = slots[f, i * nn + j]
                if e >= 0:
                    data[e] += A[i, j]


@jit
def facet_vector(facets, n_owned, N, wdet, values, out):
    """out[i] += int g N_i over the facets (i owned), g canonical (n_facets or 1, n_qp or 1, 1),
    ``wdet``: :func:`facet_measures`."""
    nf, nn = facets.shape
    nq = wdet.shape[1]
    vf, v_sc, v_sq, _ = flat(values)
    for f in range(nf):
        for q in range(nq):
            w = wdet[f, q] * vf[f * v_sc + q * v_sq]
            for a in range(nn):
                r = facets[f, a]
                if r < n_owned:
                    out[r] += w * N[q, a]
