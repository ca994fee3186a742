"""Compiled assembly kernels (numba): the CSR pattern of the owned rows, and loops over cells (or
facets) that compute each element's geometry, matrix or vector from the node coordinates and add
it straight into the CSR ``data`` or the load vector; only owned rows are written.

Everything is computed per cell from ``coords`` and ``cells`` (as DOLFINx's generated code does):
no array of Jacobians, gradients or element matrices over all cells is ever held.

Arguments shared by the kernels
-------------------------------
``coords`` (n_local, gdim) float64; ``cells`` (n_cells, nn) integer local node indices (facets
too: their nodes); ``n_owned``: rows ``< n_owned`` are written, others skipped. The reference
element enters as tables at the quadrature points: ``N`` (n_qp, nn) shape values, ``dN``
(n_qp, nn, tdim) reference gradients (only ``dN[0]`` is used when ``affine``), ``weights`` (n_qp,).
``indptr``/``indices``: the CSR pattern of the owned rows, columns sorted in each row.

Coefficients
------------
A coefficient is a C-contiguous float64 array of shape ``(n_cells or 1, n_qp or 1, n_comp or 1)``;
an extent of 1 broadcasts (constant in the cells, at every point, or the same for every
component). Thus, for conductivity: a per-cell scalar is ``k[:, None, None]``, a diagonal
anisotropic tensor per cell ``k[:, None, :]``, a value per quadrature point (k(T)) ``(n_cells,
n_qp, 1)`` or ``(n_cells, n_qp, dim)``. :func:`coefficient` makes this form from the shapes
callers use. An absent coefficient is an array of size 0.

A kernel returns the number of entries it could not place in the pattern (0 unless the pattern
does not belong to these cells).

Compilation
-----------
Kernels are compiled on first use for the argument types met (int32 or int64 indices), about
10-20 s for the whole set on one core, and cached on disk (``cache=True``): in ``__pycache__``
beside this file, else ``NUMBA_CACHE_DIR``, else the user's cache directory
(``~/.cache/numba``); where none is writable they are compiled in memory at every run.
``AVAILABLE`` is False when numba cannot be imported or ``SOLVER_NUMBA=0`` is set; the
assembler then uses the NumPy path of :mod:`solver.fem.reference`.
"""

from __future__ import annotations

import functools
import os

import numpy as np

try:  # optional: the NumPy path of solver.fem.reference does the same work without it
    if os.environ.get("SOLVER_NUMBA", "1") == "0":
        raise ImportError("disabled by SOLVER_NUMBA=0")
    import numba
    AVAILABLE = True
except ImportError:
    numba = None
    AVAILABLE = False


def _jit(fn=None, **options):
    """numba.njit with an on-disk cache, or without one where no cache directory is writable
    (numba refuses ``cache=True`` at decoration then); the Python function without numba."""
    if fn is None:
        return lambda f: _jit(f, **options)
    if numba is None:
        return fn
    try:
        return numba.njit(cache=True, nogil=True, **options)(fn)
    except RuntimeError:
        return numba.njit(nogil=True, **options)(fn)


# helpers of the kernels are inlined into them (numba IR inlining): a call with array arguments
# costs reference counting, as much as the work of a small cell
_inline = _jit(inline="always")


NONE = np.zeros((0, 1, 1))  # an absent coefficient


def coefficient(values, n_cells: int, n_qp: int, n_comp: int = 1, per_point: bool | None = None) -> np.ndarray:
    """The canonical (n_cells or 1, n_qp or 1, n_comp or 1) form of a coefficient given as a
    number, ``(n_cells,)``, ``(n_cells, n_comp)``, ``(n_cells, n_qp)``, ``(n_cells, n_qp, n_comp)``
    or already canonical. A 2-D array whose second extent is both n_comp and n_qp is ambiguous:
    ``per_point`` says which (True: values at the quadrature points). No copy when the input is
    C-contiguous float64."""
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 0:
        a = a.reshape(1, 1, 1)
    elif a.ndim == 1:
        a = a.reshape(-1, 1, 1)
    elif a.ndim == 2:
        m = a.shape[1]
        as_points = m == n_qp and m > 1 if per_point is None else per_point
        if per_point is None and m == n_qp == n_comp and m > 1:
            raise ValueError(f"coefficient of shape {a.shape} is ambiguous (per point or per component): "
                             "say per_point, or pass (n_cells, n_qp, n_comp)")
        a = a.reshape(-1, m, 1) if as_points else a.reshape(-1, 1, m)
    elif a.ndim != 3:
        raise ValueError(f"coefficient of shape {a.shape}: at most 3 dimensions")
    for extent, full, what in zip(a.shape, (n_cells, n_qp, n_comp), ("cells", "quadrature points", "components")):
        if extent not in (1, full):
            raise ValueError(f"coefficient of shape {np.shape(values)}: {extent} {what}, expected 1 or {full}")
    return np.ascontiguousarray(a)


# ---------------------------------------------------------------------------------- pattern
@_jit
def node_cell_offsets(cells, n_owned):
    """First index of each owned node's cells in the node-to-cell adjacency (n_owned + 1,)."""
    nc, nn = cells.shape
    offsets = np.zeros(n_owned + 1, np.int64)
    for c in range(nc):
        for a in range(nn):
            r = cells[c, a]
            if r < n_owned:
                offsets[r + 1] += 1
    for r in range(n_owned):
        offsets[r + 1] += offsets[r]
    return offsets


@_jit
def node_cells(cells, n_owned, offsets, adjacent):
    """The cells of each owned node into ``adjacent`` as ``c * 8 + a`` (node a of cell c, at most 8
    nodes a cell): a counting sort, the cells of a node in increasing order."""
    nc, nn = cells.shape
    fill = offsets[:-1].copy()
    for c in range(nc):
        for a in range(nn):
            r = cells[c, a]
            if r < n_owned:
                adjacent[fill[r]] = (c << 3) + a
                fill[r] += 1


@_jit
def pattern_row_lengths(cells, n_owned, n_local, offsets, adjacent):
    """indptr of the owned rows: the distinct nodes of the cells around each owned node (a marker
    per node, no sort)."""
    nn = cells.shape[1]
    marker = np.full(n_local, -1, np.int64)
    indptr = np.zeros(n_owned + 1, np.int64)
    for r in range(n_owned):
        count = 0
        for t in range(offsets[r], offsets[r + 1]):
            c = adjacent[t] >> 3
            for b in range(nn):
                j = cells[c, b]
                if marker[j] != r:
                    marker[j] = r
                    count += 1
        indptr[r + 1] = indptr[r] + count
    return indptr


@_jit
def pattern_fill(cells, n_owned, n_local, offsets, adjacent, indptr, indices, slots):
    """Columns of each owned row into ``indices``, sorted (insertion sort of the short rows), and,
    unless ``slots`` is empty, the slot of every element entry of an owned row relative to its
    row's start: ``data[indptr[r] + slots[c, a * nn + b]]`` is entry (a, b) of cell c, r its
    node a (uint8: rows of at most 256 entries)."""
    nn = cells.shape[1]
    marker = np.full(n_local, -1, np.int64)
    position = np.empty(n_local, np.int32)
    want_slots = slots.shape[0] > 0
    for r in range(n_owned):
        start = indptr[r]
        end = start
        for t in range(offsets[r], offsets[r + 1]):
            c = adjacent[t] >> 3
            for b in range(nn):
                j = cells[c, b]
                if marker[j] != r:
                    marker[j] = r
                    p = end  # insert j in the sorted run indices[start:end]
                    while p > start and indices[p - 1] > j:
                        indices[p] = indices[p - 1]
                        p -= 1
                    indices[p] = j
                    end += 1
        if want_slots:
            for p in range(start, end):
                position[indices[p]] = p - start
            for t in range(offsets[r], offsets[r + 1]):
                c = adjacent[t] >> 3
                a = adjacent[t] & 7
                for b in range(nn):
                    slots[c, a * nn + b] = position[cells[c, b]]


@_jit
def entry_slots(indptr, indices, rows, cols, n_owned):
    """CSR slot of each (row, col) pair, -1 for rows owned elsewhere, -2 outside the pattern
    (binary search in the row)."""
    out = np.empty(rows.shape[0], np.int64)
    for e in range(rows.shape[0]):
        r = rows[e]
        if r >= n_owned:
            out[e] = -1
            continue
        lo, hi = indptr[r], indptr[r + 1]
        col = cols[e]
        while lo < hi:
            mid = (lo + hi) // 2
            if indices[mid] < col:
                lo = mid + 1
            else:
                hi = mid
        out[e] = lo if lo < indptr[r + 1] and indices[lo] == col else -2
    return out


# ---------------------------------------------------------------------------------- cell kernels
# Cells are processed in blocks of BLOCK: per-cell quantities are laid out [..., k] with k the
# cell in the block innermost, so that the geometry and the contractions are loops over k that
# LLVM vectorises (a loop over one cell's few entries does not vectorise). The helpers are
# inlined into the kernels and get the sizes (NN nodes, GD geometric and TD topological
# dimensions) as the kernels' constants.
BLOCK = 32


@_inline
def _gather(coords, cells, c0, nb, X, NN, GD):
    """X[n, d, k] = coordinate d of node n of cell c0 + k."""
    for k in range(nb):
        for n in range(NN):
            node = cells[c0 + k, n]
            for d in range(GD):
                X[n, d, k] = coords[node, d]


@_inline
def _measure(X, dN, q, nb, J, Kinv, det, inverse, NN, GD, TD):
    """Per cell k of the block: J = X^T dN at point q, det[k] = |det J| (sqrt(det J^T J) on
    facets) and, with ``inverse`` (cells only), Kinv = J^-1."""
    for a in range(GD):
        for b in range(TD):
            for k in range(nb):
                t = 0.0
                for n in range(NN):
                    t += X[n, a, k] * dN[q, n, b]
                J[a, b, k] = t
    if TD == GD and GD == 2:
        for k in range(nb):
            d = J[0, 0, k] * J[1, 1, k] - J[0, 1, k] * J[1, 0, k]
            det[k] = abs(d)
            if inverse:
                r = 1.0 / d
                Kinv[0, 0, k] = J[1, 1, k] * r
                Kinv[0, 1, k] = -J[0, 1, k] * r
                Kinv[1, 0, k] = -J[1, 0, k] * r
                Kinv[1, 1, k] = J[0, 0, k] * r
    elif TD == GD and GD == 3:
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
    elif TD == GD:
        for k in range(nb):
            det[k] = abs(J[0, 0, k])
            if inverse:
                Kinv[0, 0, k] = 1.0 / J[0, 0, k]
    elif TD == 1:  # a facet: the square root of the Gram determinant
        for k in range(nb):
            s = 0.0
            for a in range(GD):
                s += J[a, 0, k] * J[a, 0, k]
            det[k] = np.sqrt(s)
    else:
        for k in range(nb):
            g00 = 0.0
            g01 = 0.0
            g11 = 0.0
            for a in range(GD):
                g00 += J[a, 0, k] * J[a, 0, k]
                g01 += J[a, 0, k] * J[a, 1, k]
                g11 += J[a, 1, k] * J[a, 1, k]
            det[k] = np.sqrt(abs(g00 * g11 - g01 * g01))


@_inline
def _scatter_search(cells, c, n_owned, order, Ae, k, ei, indptr, indices, data, NN):
    """Add the owned rows of the element matrix Ae[ei[a, b], k] of cell c by a merged scan of each
    sorted row against the cell's nodes in increasing order. Returns the entries not found."""
    for a in range(NN):  # order = argsort(cells[c]) (insertion sort)
        order[a] = a
        p = a
        while p > 0 and cells[c, order[p - 1]] > cells[c, a]:
            order[p] = order[p - 1]
            p -= 1
        order[p] = a
    missing = 0
    for a in range(NN):
        r = cells[c, a]
        if r >= n_owned:
            continue
        p = indptr[r]
        end = indptr[r + 1]
        for t in range(NN):
            b = order[t]
            col = cells[c, b]
            while p < end and indices[p] != col:
                p += 1
            if p == end:
                missing += 1
                break
            data[p] += Ae[ei[a, b], k]
    return missing


class CellKernels:
    """The kernels of one kind of cell (or facet), compiled with its sizes as constants."""

    def __init__(self, matrix, vector, points):
        self.matrix, self.vector, self.points = matrix, vector, points


@functools.lru_cache(maxsize=None)
def cell_kernels(nn: int, gdim: int, tdim: int, nq: int, affine: bool) -> CellKernels:
    """Kernels for cells of ``nn`` nodes and dimension ``tdim`` in ``gdim``-space with ``nq``
    quadrature points (``affine``: constant Jacobian). The sizes are compile-time constants of the
    closures, so that numba unrolls the small loops (and caches each specialisation apart).

    * ``matrix(coords, cells, n_owned, N, dN, weights, mass, cond, indptr, indices, slots, data)``
      adds ``int m N_i N_j + int sum_d k_d dN_i/dx_d dN_j/dx_d`` of each cell into ``data`` (owned
      rows); ``mass``, ``cond``: canonical coefficients, size 0 when absent (facets: no ``cond``);
      ``slots``: the relative slots of :func:`pattern_fill`, or empty to search the rows.
    * ``vector(coords, cells, n_owned, N, dN, weights, values, out)``: ``out[i] += int f N_i``.
    * ``points(coords, cells, N, out)``: the physical quadrature points (n_cells, nq, gdim).
    """
    NN, GD, TD, NQ, AFFINE = int(nn), int(gdim), int(tdim), int(nq), bool(affine)
    NS = TD * (TD + 1) // 2  # symmetric pairs of reference directions
    NE = NN * (NN + 1) // 2  # upper entries of the element matrix
    NG = 1 if AFFINE else NQ  # points where the geometry is computed
    B = BLOCK

    @_jit
    def matrix(coords, cells, n_owned, N, dN, weights, mass, cond, indptr, indices, slots, data):
        # The element matrix is a contraction with reference tensors, computed once per call:
        #   stiffness: A_ij = sum_q sum_(b<=c) C_q,bc RK_q,bc,ij with C_q = w_q |det J| J^-1 diag(k) J^-T
        #              and RK_q,bc,ij = dN_ib dN_jc (+ dN_ic dN_jb for b != c);
        #   mass:      A_ij = sum_q w_q |det J| m_q N_i N_j  (affine cells: sum_q w_q m_q N_i N_j |det J|).
        # Only the upper entries (i <= j) are computed: e = ei[i, j].
        nc = cells.shape[0]
        has_mass = mass.shape[0] > 0
        has_cond = cond.shape[0] > 0
        m_c = mass.shape[0] > 1
        m_q = mass.shape[1] > 1
        k_c = cond.shape[0] > 1
        k_q = cond.shape[1] > 1
        k_d = cond.shape[2] > 1
        use_slots = slots.shape[0] > 0
        sb = np.empty(NS, np.int64)
        sc = np.empty(NS, np.int64)
        s = 0
        for b in range(TD):
            for c2 in range(b, TD):
                sb[s] = b
                sc[s] = c2
                s += 1
        ei = np.empty((NN, NN), np.int64)
        e = 0
        for i in range(NN):
            for j in range(i, NN):
                ei[i, j] = e
                ei[j, i] = e
                e += 1
        RK = np.zeros((NG, NS, NE))
        for q in range(NG):
            for s in range(NS):
                b = sb[s]
                c2 = sc[s]
                for i in range(NN):
                    for j in range(i, NN):
                        v = dN[q, i, b] * dN[q, j, c2]
                        if b != c2:
                            v += dN[q, i, c2] * dN[q, j, b]
                        RK[q, s, ei[i, j]] = v
        RM = np.zeros((NQ, NE))
        WRM = np.zeros(NE)
        wsum = 0.0
        for q in range(NQ):
            wsum += weights[q]
            for i in range(NN):
                for j in range(i, NN):
                    RM[q, ei[i, j]] = N[q, i] * N[q, j]
                    WRM[ei[i, j]] += weights[q] * N[q, i] * N[q, j]
        X = np.empty((NN, GD, B))
        J = np.empty((GD, TD, B))
        Kinv = np.empty((TD, GD, B))
        det = np.empty(B)
        kw = np.empty((GD, B))
        fm = np.empty(B)
        Cs = np.empty((NS, B))
        Ae = np.empty((NE, B))
        order = np.empty(NN, np.int64)
        missing = 0
        for c0 in range(0, nc, B):
            nb = min(B, nc - c0)
            _gather(coords, cells, c0, nb, X, NN, GD)
            for e in range(NE):
                for k in range(nb):
                    Ae[e, k] = 0.0
            for q in range(NG):
                _measure(X, dN, q, nb, J, Kinv, det, has_cond, NN, GD, TD)
                if has_cond:
                    for d in range(GD):
                        dk = d if k_d else 0
                        for k in range(nb):
                            ck = c0 + k if k_c else 0
                            if AFFINE:  # the point values summed against the weights
                                if k_q:
                                    t = 0.0
                                    for p in range(NQ):
                                        t += weights[p] * cond[ck, p, dk]
                                else:
                                    t = wsum * cond[ck, 0, dk]
                            else:
                                t = weights[q] * cond[ck, q if k_q else 0, dk]
                            kw[d, k] = t * det[k]
                    for s in range(NS):
                        b = sb[s]
                        c2 = sc[s]
                        for k in range(nb):
                            t = 0.0
                            for d in range(GD):
                                t += Kinv[b, d, k] * Kinv[c2, d, k] * kw[d, k]
                            Cs[s, k] = t
                fused = has_mass and not (AFFINE and m_q)
                if fused:
                    for k in range(nb):
                        if AFFINE:
                            fm[k] = det[k] * mass[c0 + k if m_c else 0, 0, 0]
                        else:
                            fm[k] = weights[q] * det[k] * mass[c0 + k if m_c else 0, q if m_q else 0, 0]
                for e in range(NE):  # the sums innermost but one: Ae[e, k] stays in a register
                    rm = WRM[e] if AFFINE else RM[q, e]
                    for k in range(nb):
                        t = Ae[e, k]
                        if has_cond:
                            for s in range(NS):
                                t += Cs[s, k] * RK[q, s, e]
                        if fused:
                            t += fm[k] * rm
                        Ae[e, k] = t
                if has_mass and AFFINE and m_q:  # sum over the points of m_q N_i N_j
                    for p in range(NQ):
                        for k in range(nb):
                            fm[k] = weights[p] * det[k] * mass[c0 + k if m_c else 0, p, 0]
                        for e in range(NE):
                            r = RM[p, e]
                            for k in range(nb):
                                Ae[e, k] += fm[k] * r
            for k in range(nb):
                c = c0 + k
                if use_slots:
                    for a in range(NN):
                        row = cells[c, a]
                        if row < n_owned:
                            base = indptr[row]
                            for b in range(NN):
                                data[base + slots[c, a * NN + b]] += Ae[ei[a, b], k]
                else:
                    missing += _scatter_search(cells, c, n_owned, order, Ae, k, ei, indptr, indices, data, NN)
        return missing

    @_jit
    def vector(coords, cells, n_owned, N, dN, weights, values, out):
        nc = cells.shape[0]
        v_c = values.shape[0] > 1
        v_q = values.shape[1] > 1
        X = np.empty((NN, GD, B))
        J = np.empty((GD, TD, B))
        Kinv = np.empty((TD, GD, B))
        det = np.empty(B)
        F = np.empty((NN, B))
        for c0 in range(0, nc, B):
            nb = min(B, nc - c0)
            _gather(coords, cells, c0, nb, X, NN, GD)
            for a in range(NN):
                for k in range(nb):
                    F[a, k] = 0.0
            for q in range(NQ):
                if q < NG:
                    _measure(X, dN, q, nb, J, Kinv, det, False, NN, GD, TD)
                for a in range(NN):
                    g = weights[q] * N[q, a]
                    for k in range(nb):
                        F[a, k] += values[c0 + k if v_c else 0, q if v_q else 0, 0] * g * det[k]
            for k in range(nb):
                for a in range(NN):
                    row = cells[c0 + k, a]
                    if row < n_owned:
                        out[row] += F[a, k]
        return 0

    @_jit
    def points(coords, cells, N, out):
        nc = cells.shape[0]
        for c in range(nc):
            for q in range(NQ):
                for d in range(GD):
                    s = 0.0
                    for n in range(NN):
                        s += N[q, n] * coords[cells[c, n], d]
                    out[c, q, d] = s

    return CellKernels(matrix, vector, points)


# ---------------------------------------------------------------------------------- constraint
@_jit
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
