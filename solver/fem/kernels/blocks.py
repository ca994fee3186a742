"""The block geometry shared by the cell kernels: work space, node coordinates, Jacobians, and
the scatter of element vectors and matrices into the owned rows.

Cells are processed in blocks of :data:`BLOCK`: per-cell quantities are laid out ``[..., k]``
with k the cell in the block innermost, so that the geometry and the contractions are loops over
k that LLVM vectorises (a loop over one cell's few entries does not vectorise). Per block a kernel
gathers the node coordinates X (:func:`gather`), computes at a quadrature point J = X^T dN,
|det J| and J^-1 by cofactors (:func:`measure`), and adds its element vectors or matrices into
the owned rows (:func:`scatter_vector`; :func:`scatter_block`, through the slot map of
:func:`solver.fem.kernels.pattern.pattern_fill`, or by a merged scan of each sorted row against
the cell's sorted nodes where there is no map).

Every helper is inlined into the kernels (numba IR inlining): a call with array arguments costs
reference counting, as much as the work of a small cell. The helpers take the sizes of the kind
of cell from the kernels' compile-time constants, as ``sizes = (NN, GD, NQ)`` (nodes a cell,
dimension, quadrature points), so that LLVM knows them from the start and unrolls the small loops
(sizes read from the shapes of work arrays become known too late for that). The other arguments
travel as tuples too: the kernels' ``mesh = (coords, cells, n_owned)``, ``block = (c0, nb)`` (the
cells c0 to c0 + nb - 1), ``geometry = (X, J, Kinv, det)`` (:func:`geometry_workspace`),
``work = (A, order)`` (:func:`element_workspace`) and a CSR ``target = (indptr, indices, slots,
data)``.
"""

from __future__ import annotations

import numpy as np

from solver.compiled import inline

__all__ = ["BLOCK", "clear", "element_workspace", "gather", "geometry_workspace", "measure", "pull_back",
           "reference_dot", "scatter_block", "scatter_search", "scatter_vector"]

BLOCK = 32  # cells a block


@inline
def geometry_workspace(sizes):
    """(X, J, Kinv, det): node coordinates (NN, GD, BLOCK), Jacobians and their inverses
    (GD, GD, BLOCK) and |det J| (BLOCK,) of a block of cells."""
    NN, GD = sizes[0], sizes[1]
    return np.empty((NN, GD, BLOCK)), np.empty((GD, GD, BLOCK)), np.empty((GD, GD, BLOCK)), np.empty(BLOCK)


@inline
def element_workspace(sizes):
    """(A, order): one cell's element matrix and its nodes' order, for the search of rows."""
    NN = sizes[0]
    return np.empty((NN, NN)), np.empty(NN, np.int64)


@inline
def clear(F, rows, nb):
    """F[a, k] = 0 for a < rows and the nb cells of the block."""
    for a in range(rows):
        for k in range(nb):
            F[a, k] = 0.0


@inline
def gather(mesh, c0, X, sizes):
    """The block of (at most BLOCK) cells from c0: X[n, d, k] = coordinate d of node n of cell
    c0 + k. Returns the block's number of cells nb."""
    coords, cells = mesh[0], mesh[1]
    NN, GD = sizes[0], sizes[1]
    nb = min(BLOCK, cells.shape[0] - c0)
    for k in range(nb):
        for n in range(NN):
            node = cells[c0 + k, n]
            for d in range(GD):
                X[n, d, k] = coords[node, d]
    return nb


@inline
def measure(geometry, dN, q, nb, inverse, NN, GD):
    """Per cell k of the block: J = X^T dN at point q, det[k] = |det J| and, with ``inverse``,
    Kinv = J^-1 (square J: cells). NN and GD come as the kernels' constants themselves, so that
    numba drops the branches of the other dimensions before typing."""
    X, J, Kinv, det = geometry
    for a in range(GD):
        for b in range(GD):
            for k in range(nb):
                t = 0.0
                for n in range(NN):
                    t += X[n, a, k] * dN[q, n, b]
                J[a, b, k] = t
    if GD == 2:
        for k in range(nb):
            d = J[0, 0, k] * J[1, 1, k] - J[0, 1, k] * J[1, 0, k]
            det[k] = abs(d)
            if inverse:
                r = 1.0 / d
                Kinv[0, 0, k] = J[1, 1, k] * r
                Kinv[0, 1, k] = -J[0, 1, k] * r
                Kinv[1, 0, k] = -J[1, 0, k] * r
                Kinv[1, 1, k] = J[0, 0, k] * r
    elif GD == 3:
        for k in range(nb):
            c00 = J[1, 1, k] * J[2, 2, k] - J[1, 2, k] * J[2, 1, k]
            c01 = J[1, 2, k] * J[2, 0, k] - J[1, 0, k] * J[2, 2, k]
            c02 = J[1, 0, k] * J[2, 1, k] - J[1, 1, k] * J[2, 0, k]
            d = J[0, 0, k] * c00 + J[0, 1, k] * c01 + J[0, 2, k] * c02
            det[k] = abs(d)
            if inverse:  # transposed cofactors / det
                r = 1.0 / d
                Kinv[0, 0, k] = c00 * r
                Kinv[1, 0, k] = c01 * r
                Kinv[2, 0, k] = c02 * r
                Kinv[0, 1, k] = (J[0, 2, k] * J[2, 1, k] - J[0, 1, k] * J[2, 2, k]) * r
                Kinv[1, 1, k] = (J[0, 0, k] * J[2, 2, k] - J[0, 2, k] * J[2, 0, k]) * r
                Kinv[2, 1, k] = (J[0, 1, k] * J[2, 0, k] - J[0, 0, k] * J[2, 1, k]) * r
                Kinv[0, 2, k] = (J[0, 1, k] * J[1, 2, k] - J[0, 2, k] * J[1, 1, k]) * r
                Kinv[1, 2, k] = (J[0, 2, k] * J[1, 0, k] - J[0, 0, k] * J[1, 2, k]) * r
                Kinv[2, 2, k] = (J[0, 0, k] * J[1, 1, k] - J[0, 1, k] * J[1, 0, k]) * r
    else:
        for k in range(nb):
            det[k] = abs(J[0, 0, k])
            if inverse:
                Kinv[0, 0, k] = 1.0 / J[0, 0, k]


@inline
def pull_back(Kinv, k, v, w, r, sizes):
    """r = w J^-1 v for cell k of the block: the vector v (at a point) in reference directions."""
    GD = sizes[1]
    for e in range(GD):
        t = 0.0
        for d in range(GD):
            t += Kinv[e, d, k] * v[d]
        r[e] = t * w


@inline
def reference_dot(dN, q, a, r, sizes):
    """grad N_a . v at point q, with r = J^-1 v (:func:`pull_back`): sum_e dN[q, a, e] r[e]."""
    t = 0.0
    for e in range(sizes[1]):
        t += dN[q, a, e] * r[e]
    return t


@inline
def scatter_vector(mesh, block, F, out, sizes):
    """out[row] += F[a, k] for node a of cell c0 + k, its row owned."""
    cells, n_owned = mesh[1], mesh[2]
    c0, nb = block
    for k in range(nb):
        for a in range(sizes[0]):
            row = cells[c0 + k, a]
            if row < n_owned:
                out[row] += F[a, k]


@inline
def scatter_search(mesh, c, work, target):
    """Add the owned rows of the element matrix A of cell (or facet) c by a merged scan of each
    sorted row against the cell's nodes in increasing order. Returns the entries not found."""
    cells, n_owned = mesh[1], mesh[2]
    A, order = work
    indptr, indices, _, data = target
    nn = cells.shape[1]
    for a in range(nn):  # order = argsort(cells[c]) (insertion sort)
        order[a] = a
        p = a
        while p > 0 and cells[c, order[p - 1]] > cells[c, a]:
            order[p] = order[p - 1]
            p -= 1
        order[p] = a
    missing = 0
    for a in range(nn):
        r = cells[c, a]
        if r >= n_owned:
            continue
        p = indptr[r]
        end = indptr[r + 1]
        for t in range(nn):
            b = order[t]
            col = cells[c, b]
            while p < end and indices[p] != col:
                p += 1
            if p == end:
                missing += 1
                break
            data[p] += A[a, b]
    return missing


@inline
def scatter_block(mesh, block, Ab, work, target, sizes):
    """Add the owned rows of the element matrices Ab[:, :, k] of cells c0 + k (k < nb) into the
    CSR target: through its slot map, or by searching the rows when the map is empty. Returns
    the entries not found."""
    cells, n_owned = mesh[1], mesh[2]
    c0, nb = block
    indptr, _, slots, data = target
    A = work[0]
    nn = sizes[0]
    missing = 0
    for k in range(nb):
        c = c0 + k
        if slots.shape[0] > 0:
            for a in range(nn):
                row = cells[c, a]
                if row < n_owned:
                    base = indptr[row]
                    for b in range(nn):
                        data[base + slots[c, a * nn + b]] += Ab[a, b, k]
        else:
            for a in range(nn):
                for b in range(nn):
                    A[a, b] = Ab[a, b, k]
            missing += scatter_search(mesh, c, work, target)
    return missing
