"""Kernels of the Newton Jacobian of ``div(k(u) grad u)``: the part that comes from a conductivity
depending on u (:func:`convection_kernel`, not symmetric), and the one-pass residual and Jacobian
of a k interpolated from its nodal values on affine cells (:func:`nodal_conduction_kernel`).

With k_h = sum_j k(u_j) N_j on a P1 cell, grad N constant and the cell's volume V:

* residual ``int k_h grad u . grad N_i`` = V kbar grad u . grad N_i, kbar the mean of the nodal k;
* symmetric part ``c int k_h grad N_j . grad N_i`` = c V kbar grad N_j . grad N_i;
* Newton part ``c dk/du(u_j) int N_j grad u . grad N_i`` = c V / NN dk/du(u_j) grad u . grad N_i;

per component d for a diagonal anisotropic k. The nodal values come per material set:
``nodal = (u, knode, dknode, cell_set)``, k and dk/du (n_sets, n_local, components) and the set of
each cell (empty: one set).
"""

from __future__ import annotations

import numpy as np

from solver.compiled import inline, jit
from solver.fem.kernels.blocks import (BLOCK, element_workspace, gather, geometry_workspace, measure, pull_back,
                                       reference_dot, scatter_block)

__all__ = ["convection_kernel", "nodal_conduction_kernel"]


def convection_kernel(NN, GD, NQ, AFFINE):
    """``convection(mesh, reference, b, scale, target)``: adds ``s_cj int (b . grad N_i) N_j`` into
    the CSR target (b: (n_cells, n_qp, dim) at the points; ``scale`` s: (n_cells, NN), or size 0
    for 1); returns the entries not found."""
    SIZES = (NN, GD, NQ)
    NG = 1 if AFFINE else NQ  # points where the geometry is computed

    @jit
    def convection(mesh, reference, b, scale, target):
        N, dN, weights = reference
        scaled = scale.shape[0] > 0
        geometry = geometry_workspace(SIZES)
        Kinv, det = geometry[2], geometry[3]
        Ab, work = np.empty((NN, NN, BLOCK)), element_workspace(SIZES)
        r, bg = np.empty(GD), np.empty(NN)
        missing = 0
        for c0 in range(0, mesh[1].shape[0], BLOCK):
            nb = gather(mesh, c0, geometry[0], SIZES)
            for i in range(NN):
                for j in range(NN):
                    for k in range(nb):
                        Ab[i, j, k] = 0.0
            for q in range(weights.shape[0]):
                if q < NG:
                    measure(geometry, dN, q, nb, True, NN, GD)
                for k in range(nb):
                    pull_back(Kinv, k, b[c0 + k, q], weights[q] * det[k], r, SIZES)  # b in reference directions
                    for i in range(NN):
                        bg[i] = reference_dot(dN, q, i, r, SIZES)
                    for i in range(NN):
                        for j in range(NN):
                            Ab[i, j, k] += bg[i] * N[q, j]
            if scaled:
                for i in range(NN):
                    for j in range(NN):
                        for k in range(nb):
                            Ab[i, j, k] *= scale[c0 + k, j]
            missing += scatter_block(mesh, (c0, nb), Ab, work, target, SIZES)
        return missing

    return convection


@inline
def physical_gradients(dN, Kinv, nb, G, sizes):
    """G[a, d, k] = dN_a/dx_d of cell k of the block (affine cells: J^-T times the reference
    gradient)."""
    NN, GD = sizes[0], sizes[1]
    for a in range(NN):
        for d in range(GD):
            for k in range(nb):
                t = 0.0
                for e in range(GD):
                    t += dN[0, a, e] * Kinv[e, d, k]
                G[a, d, k] = t


@inline
def nodal_means(mesh, block, nodal, fields, with_newton, sizes):
    """Into ``fields = (G, grad, kbar, dkn)``: grad[d, k] = du/dx_d, kbar[d, k] = the mean of the
    nodal k (component d) of cell c0 + k and, ``with_newton``, dkn[a, d, k] = dk/du at its node a."""
    cells = mesh[1]
    c0, nb = block
    u, knode, dknode, cell_set = nodal
    G, grad, kbar, dkn = fields
    NN, GD = sizes[0], sizes[1]
    ncomp = knode.shape[2]
    with_sets = cell_set.shape[0] > 0
    for k in range(nb):
        s = cell_set[c0 + k] if with_sets else 0
        for d in range(GD):
            t = 0.0
            m = 0.0
            for a in range(NN):
                node = cells[c0 + k, a]
                t += u[node] * G[a, d, k]
                m += knode[s, node, d if ncomp > 1 else 0]
                if with_newton:
                    dkn[a, d, k] = dknode[s, node, d if ncomp > 1 else 0]
            grad[d, k] = t
            kbar[d, k] = m / NN


@inline
def add_residual(mesh, block, fields, det, out, sizes):
    """out[row] += det[k] kbar grad u . grad N_a for node a of cell c0 + k, its row owned (det:
    |det J| times the reference volume)."""
    cells, n_owned = mesh[1], mesh[2]
    c0, nb = block
    G, grad, kbar, _ = fields
    for k in range(nb):
        for a in range(sizes[0]):
            row = cells[c0 + k, a]
            if row < n_owned:
                t = 0.0
                for d in range(sizes[1]):
                    t += kbar[d, k] * grad[d, k] * G[a, d, k]
                out[row] += t * det[k]


@inline
def product_block(factors, cdet, divisor, nb, E, sizes):
    """E[a, b, k] = cdet[k] sum_d w[d, k] left[a, d, k] right[b, d, k] / divisor, ``factors =
    (w, left, right)``."""
    NN, GD = sizes[0], sizes[1]
    w, left, right = factors
    for a in range(NN):
        for b in range(NN):
            for k in range(nb):
                t = 0.0
                for d in range(GD):
                    t += w[d, k] * left[a, d, k] * right[b, d, k]
                E[a, b, k] = cdet[k] * t / divisor


def nodal_conduction_kernel(NN, GD, NQ, AFFINE):
    """``nodal_conduction(mesh, reference, volume, nodal, out, jacobian)`` on affine cells (volume:
    the reference cell's): adds the residual into ``out`` (owned; size 0: skipped) and, with
    ``jacobian = (c, sym, nonsym, merge)``, c times the symmetric and the Newton parts into the CSR
    targets ``sym`` and ``nonsym`` (data of size 0: skipped; ``merge``: one target for both, the
    parts summed before one scatter). Returns the entries not found."""
    SIZES = (NN, GD, NQ)

    @jit
    def nodal_conduction(mesh, reference, volume, nodal, out, jacobian):
        dN = reference[1]
        c, sym, nonsym, merge = jacobian
        with_out, with_sym, with_nonsym = out.shape[0] > 0, sym[3].shape[0] > 0, nonsym[3].shape[0] > 0
        geometry = geometry_workspace(SIZES)
        det = geometry[3]
        fields = np.empty((NN, GD, BLOCK)), np.empty((GD, BLOCK)), np.empty((GD, BLOCK)), np.empty((NN, GD, BLOCK))
        G, grad, kbar, dkn = fields
        cdet, As, An = np.empty(BLOCK), np.empty((NN, NN, BLOCK)), np.empty((NN, NN, BLOCK))
        work = element_workspace(SIZES)
        missing = 0
        for c0 in range(0, mesh[1].shape[0], BLOCK):
            nb = gather(mesh, c0, geometry[0], SIZES)
            block = (c0, nb)
            measure(geometry, dN, 0, nb, True, NN, GD)
            for k in range(nb):
                det[k] *= volume  # the cell's volume
                cdet[k] = c * det[k]
            physical_gradients(dN, geometry[2], nb, G, SIZES)
            nodal_means(mesh, block, nodal, fields, with_nonsym, SIZES)
            if with_out:
                add_residual(mesh, block, fields, det, out, SIZES)
            if with_sym:  # kbar grad N_a . grad N_b
                product_block((kbar, G, G), cdet, 1.0, nb, As, SIZES)
            if with_nonsym:  # grad u . grad N_a dk/du(u_b) / NN
                product_block((grad, G, dkn), cdet, NN, nb, An, SIZES)
            if with_sym and with_nonsym and merge:  # one array: the two parts summed, one scatter
                for a in range(NN):
                    for b in range(NN):
                        for k in range(nb):
                            As[a, b, k] += An[a, b, k]
                missing += scatter_block(mesh, block, As, work, sym, SIZES)
                continue
            if with_sym:
                missing += scatter_block(mesh, block, As, work, sym, SIZES)
            if with_nonsym:
                missing += scatter_block(mesh, block, An, work, nonsym, SIZES)
        return missing

    return nodal_conduction
