"""The bilinear-form kernel: ``int m N_i N_j + int sum_d k_d dN_i/dx_d dN_j/dx_d`` of each cell
(the mass matrix, the conduction matrix, or ``a M + b K`` in one pass) added into the owned rows.

The element matrix is a contraction with reference tensors, computed once per call:

* stiffness: A_ij = sum_q sum_(b<=c) C_q,bc RK_q,bc,ij with C_q = w_q |det J| J^-1 diag(k) J^-T
  (:func:`inverse_products`) and RK_q,bc,ij = dN_ib dN_jc (+ dN_ic dN_jb for b != c)
  (:func:`stiffness_tensors`);
* mass: A_ij = sum_q w_q |det J| m_q N_i N_j (:func:`mass_tensors`; affine cells:
  sum_q w_q m_q N_i N_j |det J|).

Only the upper entries (i <= j) are computed, entry e = ei[i, j] of :func:`upper_entries`, and
expanded to the full matrices of the block before the scatter (:func:`expand`). Cells with an
affine map compute their geometry once; P1 simplices, whose gradients are constant too, also sum
the point values of k (and m) against the weights. Quadratic cells with an affine map (straight
P2 simplices, parallelogram Q2 cells) keep the loop over the points with the geometry of the first.
"""

from __future__ import annotations

import numpy as np

from solver.compiled import inline, jit
from solver.fem.kernels.blocks import (BLOCK, clear, element_workspace, gather, geometry_workspace, measure,
                                       scatter_block)
from solver.fem.kernels.coefficients import flat

__all__ = ["matrix_kernel"]


@inline
def upper_entries(sizes):
    """ei[i, j] = ei[j, i]: the index of entry (i, j), i <= j, among the NN (NN + 1) / 2 upper
    entries of an element matrix, row by row."""
    NN = sizes[0]
    ei = np.empty((NN, NN), np.int64)
    e = 0
    for i in range(NN):
        for j in range(i, NN):
            ei[i, j] = e
            ei[j, i] = e
            e += 1
    return ei


@inline
def direction_pairs(sizes):
    """(sb, sc): the GD (GD + 1) / 2 pairs b <= c of reference directions."""
    GD = sizes[1]
    sb = np.empty(GD * (GD + 1) // 2, np.int64)
    sc = np.empty(GD * (GD + 1) // 2, np.int64)
    s = 0
    for b in range(GD):
        for c2 in range(b, GD):
            sb[s] = b
            sc[s] = c2
            s += 1
    return sb, sc


@inline
def stiffness_tensors(dN, ei, pairs, RK, sizes):
    """RK[q, s, e] = dN_ib dN_jc (+ dN_ic dN_jb for b != c), (b, c) = pairs[s], e = ei[i, j], at
    the points where the geometry is computed."""
    sb, sc = pairs
    for q in range(RK.shape[0]):
        for s in range(RK.shape[1]):
            b = sb[s]
            c2 = sc[s]
            for i in range(sizes[0]):
                for j in range(i, sizes[0]):
                    v = dN[q, i, b] * dN[q, j, c2]
                    if b != c2:
                        v += dN[q, i, c2] * dN[q, j, b]
                    RK[q, s, ei[i, j]] = v


@inline
def mass_tensors(N, weights, ei, RM, WRM, sizes):
    """RM[q, e] = N_qi N_qj and WRM[e] = sum_q w_q N_qi N_qj, e = ei[i, j]."""
    for q in range(sizes[2]):
        for i in range(sizes[0]):
            for j in range(i, sizes[0]):
                RM[q, ei[i, j]] = N[q, i] * N[q, j]
                WRM[ei[i, j]] += weights[q] * N[q, i] * N[q, j]


@inline
def point_conductivity(det, conductivity, weights, q, block, kw, sizes):
    """kw[d, k] = w_q k_d |det J| at point q of cell c0 + k."""
    kf, k_sc, k_sq, k_sd = conductivity
    c0, nb = block
    for d in range(sizes[1]):
        for k in range(nb):
            t = weights[q] * kf[(c0 + k) * k_sc + d * k_sd + q * k_sq]
            kw[d, k] = t * det[k]


@inline
def cell_conductivity(det, conductivity, weights, block, kw, sizes):
    """kw[d, k] = (sum_p w_p k_d(p)) |det J| over the points of cell c0 + k (affine cells)."""
    kf, k_sc, k_sq, k_sd = conductivity
    c0, nb = block
    for d in range(sizes[1]):
        for k in range(nb):
            at = (c0 + k) * k_sc + d * k_sd
            t = 0.0
            for p in range(sizes[2]):
                t += weights[p] * kf[at + p * k_sq]
            kw[d, k] = t * det[k]


@inline
def inverse_products(Kinv, kw, pairs, nb, Cs, sizes):
    """Cs[s, k] = sum_d Kinv[b, d] Kinv[c, d] kw[d]: entry (b, c) = pairs[s] of J^-1 diag(kw) J^-T."""
    sb, sc = pairs
    GD = sizes[1]
    for s in range(GD * (GD + 1) // 2):
        b = sb[s]
        c2 = sc[s]
        for k in range(nb):
            t = 0.0
            for d in range(GD):
                t += Kinv[b, d, k] * Kinv[c2, d, k] * kw[d, k]
            Cs[s, k] = t


@inline
def point_mass(det, mass, weights, q, block, fm):
    """fm[k] = w_q |det J| m at point q of cell c0 + k."""
    mf, m_sc, m_sq, _ = mass
    c0, nb = block
    for k in range(nb):
        fm[k] = weights[q] * det[k] * mf[(c0 + k) * m_sc + q * m_sq]


@inline
def expand(Ae, ei, nb, Ab, sizes):
    """Ab[i, j, k] = Ae[ei[i, j], k]: the element matrices of the block from their upper entries."""
    for i in range(sizes[0]):
        for j in range(sizes[0]):
            e = ei[i, j]
            for k in range(nb):
                Ab[i, j, k] = Ae[e, k]


def matrix_kernel(NN, GD, NQ, AFFINE, LINEAR=True):
    """``matrix(mesh, reference, mass, conductivity, target)`` for cells of NN nodes in GD
    dimensions with NQ quadrature points (AFFINE: constant Jacobian; LINEAR: constant gradients,
    P1), the sizes compile-time constants: adds the element matrices into the CSR target; returns
    the entries not found."""
    SIZES = (NN, GD, NQ)
    NS, NE = GD * (GD + 1) // 2, NN * (NN + 1) // 2  # pairs of reference directions, upper entries
    CONSTANT = AFFINE and LINEAR  # one point's gradients serve the cell
    NG = 1 if CONSTANT else NQ  # points where the gradient tensors are computed

    @jit
    def matrix(mesh, reference, mass, conductivity, target):
        N, dN, weights = reference
        has_mass, has_cond = mass.shape[0] > 0, conductivity.shape[0] > 0
        m, k_flat = flat(mass), flat(conductivity)
        mf, m_sc, m_sq, _ = m
        fused = has_mass and not (CONSTANT and m_sq > 0)  # the mass term in the loop over entries
        ei, pairs = upper_entries(SIZES), direction_pairs(SIZES)
        RK, RM, WRM = np.zeros((NG, NS, NE)), np.zeros((NQ, NE)), np.zeros(NE)
        stiffness_tensors(dN, ei, pairs, RK, SIZES)
        mass_tensors(N, weights, ei, RM, WRM, SIZES)
        geometry = geometry_workspace(SIZES)
        det = geometry[3]
        kw, fm, Cs = np.empty((GD, BLOCK)), np.empty(BLOCK), np.empty((NS, BLOCK))
        Ae, Ab, work = np.empty((NE, BLOCK)), np.empty((NN, NN, BLOCK)), element_workspace(SIZES)
        missing = 0
        # runtime trip counts for the loops over points and entries: unrolling their large bodies
        # would only multiply the code (and the compile time)
        ng, ne = RK.shape[0], RK.shape[2]
        for c0 in range(0, mesh[1].shape[0], BLOCK):
            nb = gather(mesh, c0, geometry[0], SIZES)
            block = (c0, nb)
            clear(Ae, ne, nb)
            for q in range(ng):
                if q == 0 or not AFFINE:
                    measure(geometry, dN, q, nb, has_cond, NN, GD)
                if has_cond:
                    if CONSTANT:
                        cell_conductivity(det, k_flat, weights, block, kw, SIZES)
                    else:
                        point_conductivity(det, k_flat, weights, q, block, kw, SIZES)
                    inverse_products(geometry[2], kw, pairs, nb, Cs, SIZES)
                if fused and CONSTANT:
                    for k in range(nb):
                        fm[k] = det[k] * mf[(c0 + k) * m_sc]
                elif fused:
                    point_mass(det, m, weights, q, block, fm)
                for e in range(ne):  # the sums innermost but one: Ae[e, k] stays in a register
                    rm = WRM[e] if CONSTANT else RM[q, e]
                    for k in range(nb):
                        t = Ae[e, k]
                        if has_cond:
                            for s in range(NS):
                                t += Cs[s, k] * RK[q, s, e]
                        if fused:
                            t += fm[k] * rm
                        Ae[e, k] = t
                if has_mass and CONSTANT and m_sq > 0:  # sum over the points of m_q N_i N_j
                    for p in range(NQ):
                        point_mass(det, m, weights, p, block, fm)
                        for e in range(ne):
                            r = RM[p, e]
                            for k in range(nb):
                                Ae[e, k] += fm[k] * r
            expand(Ae, ei, nb, Ab, SIZES)
            missing += scatter_block(mesh, block, Ab, work, target, SIZES)
        return missing

    return matrix
