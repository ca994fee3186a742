"""Kernels of vectors and of fields at the quadrature points: the load ``int f N_i``, the flux
load ``int flux . grad N_i`` (the conduction part of a residual, flux = k grad u), the value and
gradient of a field at the points, and the physical points themselves.

The cell kernels are built per kind of cell (NN nodes, GD dimensions, NQ points; affine cells
compute their geometry at the first point only: NG = 1), the sizes compile-time constants; they
loop over blocks of cells (:mod:`solver.fem.kernels.blocks`) and add into the owned entries only.
"""

from __future__ import annotations

import numpy as np

from solver.compiled import inline, jit
from solver.fem.kernels.blocks import (BLOCK, clear, gather, geometry_workspace, measure, pull_back,
                                       reference_dot, scatter_vector)
from solver.fem.kernels.coefficients import flat

__all__ = ["flux_vector_kernel", "gradient_kernel", "quadrature_points", "vector_kernel"]


def vector_kernel(NN, GD, NQ, AFFINE):
    """``vector(mesh, reference, values, out)``: ``out[i] += int f N_i``, f canonical."""
    SIZES = (NN, GD, NQ)
    NG = 1 if AFFINE else NQ  # points where the geometry is computed

    @jit
    def vector(mesh, reference, values, out):
        N, dN, weights = reference
        vf, v_sc, v_sq, _ = flat(values)
        geometry = geometry_workspace(SIZES)
        det = geometry[3]
        F = np.empty((NN, BLOCK))
        for c0 in range(0, mesh[1].shape[0], BLOCK):
            nb = gather(mesh, c0, geometry[0], SIZES)
            clear(F, NN, nb)
            for q in range(weights.shape[0]):
                if q < NG:
                    measure(geometry, dN, q, nb, False, NN, GD)
                for a in range(NN):
                    g = weights[q] * N[q, a]
                    for k in range(nb):
                        F[a, k] += vf[(c0 + k) * v_sc + q * v_sq] * g * det[k]
            scatter_vector(mesh, (c0, nb), F, out, SIZES)
        return 0

    return vector


@inline
def add_flux_point(geometry, reference, flux, block, q, work, sizes):
    """F[a, k] += w_q |det J| flux . grad N_a at point q of cell c0 + k, ``work = (F, r)``."""
    dN, weights = reference[1], reference[2]
    Kinv, det = geometry[2], geometry[3]
    c0, nb = block
    F, r = work
    for k in range(nb):
        pull_back(Kinv, k, flux[c0 + k, q], weights[q] * det[k], r, sizes)  # the flux in reference directions
        for a in range(sizes[0]):
            F[a, k] += reference_dot(dN, q, a, r, sizes)


def flux_vector_kernel(NN, GD, NQ, AFFINE):
    """``flux_vector(mesh, reference, flux, out)``: ``out[i] += int flux . grad N_i``, flux
    (n_cells, n_qp, dim) at the points."""
    SIZES = (NN, GD, NQ)
    NG = 1 if AFFINE else NQ  # points where the geometry is computed

    @jit
    def flux_vector(mesh, reference, flux, out):
        dN, weights = reference[1], reference[2]
        geometry = geometry_workspace(SIZES)
        work = np.empty((NN, BLOCK)), np.empty(GD)
        for c0 in range(0, mesh[1].shape[0], BLOCK):
            nb = gather(mesh, c0, geometry[0], SIZES)
            clear(work[0], NN, nb)
            for q in range(weights.shape[0]):
                if q < NG:
                    measure(geometry, dN, q, nb, True, NN, GD)
                add_flux_point(geometry, reference, flux, (c0, nb), q, work, SIZES)
            scatter_vector(mesh, (c0, nb), work[0], out, SIZES)
        return 0

    return flux_vector


def gradient_kernel(NN, GD, NQ, AFFINE):
    """``gradient(mesh, reference, u, out, values)``: ``out[c, q, d]`` = du/dx_d at point q of cell
    c, and ``values[c, q]`` = u there (``values`` of size 0: not computed)."""
    SIZES = (NN, GD, NQ)
    NG = 1 if AFFINE else NQ  # points where the geometry is computed

    @jit
    def gradient(mesh, reference, u, out, values):
        cells = mesh[1]
        N, dN = reference[0], reference[1]
        with_values = values.shape[0] > 0
        geometry = geometry_workspace(SIZES)
        Kinv = geometry[2]
        ur = np.empty((NN, BLOCK))
        g = np.empty(GD)
        for c0 in range(0, cells.shape[0], BLOCK):
            nb = gather(mesh, c0, geometry[0], SIZES)
            for n in range(NN):
                for k in range(nb):
                    ur[n, k] = u[cells[c0 + k, n]]
            for q in range(dN.shape[0]):
                if q < NG:
                    measure(geometry, dN, q, nb, True, NN, GD)
                for k in range(nb):
                    if with_values:
                        t = 0.0
                        for n in range(NN):
                            t += ur[n, k] * N[q, n]
                        values[c0 + k, q] = t
                    for e in range(GD):
                        t = 0.0
                        for n in range(NN):
                            t += ur[n, k] * dN[q, n, e]
                        g[e] = t
                    for d in range(GD):
                        t = 0.0
                        for e in range(GD):
                            t += g[e] * Kinv[e, d, k]
                        out[c0 + k, q, d] = t
        return 0

    return gradient


@jit
def quadrature_points(coords, cells, N, out):
    """Physical coordinates of the quadrature points: out[c, q] = sum_n N[q, n] x[cells[c, n]]."""
    nc, nn = cells.shape
    gdim = coords.shape[1]
    nq = N.shape[0]
    for c in range(nc):
        for q in range(nq):
            for d in range(gdim):
                s = 0.0
                for n in range(nn):
                    s += N[q, n] * coords[cells[c, n], d]
                out[c, q, d] = s
