"""Compiled assembly kernels (numba): the CSR pattern of the owned rows, and loops over cells (or
facets) that compute each element's geometry, matrix or vector from the node coordinates and add
it straight into the CSR ``data`` or the load vector; only owned rows are written.

Everything is computed per cell from ``coords`` and ``cells`` (as DOLFINx's generated code does):
no array of Jacobians, gradients or element matrices over all cells is ever held.

Arguments shared by the kernels
-------------------------------
``coords`` (n_local, dim) float64; ``cells`` (n_cells, nn) integer local node indices (facets:
their nodes); ``n_owned``: rows ``< n_owned`` are written, others skipped. The reference element
enters as tables at the quadrature points: ``N`` (n_qp, nn) shape values, ``dN`` (n_qp, nn, tdim)
reference gradients (only ``dN[0]`` is used for affine cells), ``weights`` (n_qp,).
``indptr``/``indices``: the CSR pattern of the owned rows, columns sorted in each row; ``slots``:
the slot of each element entry in its row (:func:`pattern_fill`). Cell kernels are compiled per
kind of cell with its sizes as constants (:func:`cell_kernels`); facets, few, share generic ones
(:func:`facet_matrix`, :func:`facet_vector`).

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
10 s of one core per cell type (40 s for the four), and cached on disk (``cache=True``): in
``NUMBA_CACHE_DIR`` when set, else in ``__pycache__`` beside this file, else in the user's cache
directory (``~/.cache/numba``); where none is writable (numba refuses ``cache=True`` then) they
are compiled in memory at every run. Later runs load them (with numba's own start, about 1-1.5 s
per process). ``python -m solver.fem.kernels`` fills the cache for the four cell types;
:func:`compile_on_root` lets rank 0 compile while the other ranks wait.
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
    C-contiguous, writeable float64."""
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
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()  # one compiled signature (numba types read-only apart)


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
def _strides(a):
    """Element strides (cell, point, component) of a canonical coefficient, 0 where it broadcasts."""
    n_c, n_q, n_d = a.shape
    return (n_q * n_d if n_c > 1 else 0), (n_d if n_q > 1 else 0), (1 if n_d > 1 else 0)


@_inline
def _gather(coords, cells, c0, nb, X, NN, GD):
    """X[n, d, k] = coordinate d of node n of cell c0 + k."""
    for k in range(nb):
        for n in range(NN):
            node = cells[c0 + k, n]
            for d in range(GD):
                X[n, d, k] = coords[node, d]


@_inline
def _measure(X, dN, q, nb, J, Kinv, det, inverse, NN, GD):
    """Per cell k of the block: J = X^T dN at point q, det[k] = |det J| and, with ``inverse``,
    Kinv = J^-1 (square J: cells)."""
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


@_inline
def _scatter_search(cells, c, n_owned, order, A, indptr, indices, data):
    """Add the owned rows of the element matrix A of cell (or facet) c by a merged scan of each
    sorted row against the cell's nodes in increasing order. Returns the entries not found."""
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


@_inline
def _scatter_block(cells, c0, nb, n_owned, Ab, indptr, indices, slots, A, order, data):
    """Add the owned rows of the element matrices Ab[:, :, k] of cells c0 + k (k < nb) into
    ``data``: through the slot map, or by searching the rows when it is empty (A, order: work
    space of one cell). Returns the entries not found."""
    nn = Ab.shape[0]
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
            missing += _scatter_search(cells, c, n_owned, order, A, indptr, indices, data)
    return missing


class CellKernels:
    """The kernels of one kind of cell, compiled with its sizes as constants."""

    def __init__(self, matrix, vector, gradient=None, flux_vector=None, convection=None, nodal_conduction=None):
        self.matrix, self.vector = matrix, vector
        self.gradient, self.flux_vector, self.convection = gradient, flux_vector, convection
        self.nodal_conduction = nodal_conduction


@functools.lru_cache(maxsize=None)
def cell_kernels(nn: int, dim: int, nq: int, affine: bool) -> CellKernels:
    """Kernels for cells of ``nn`` nodes in ``dim`` dimensions with ``nq`` quadrature points
    (``affine``: constant Jacobian). The sizes are compile-time constants of the closures, so
    that LLVM unrolls the small loops (numba caches each specialisation apart).

    * ``matrix(coords, cells, n_owned, N, dN, weights, mass, cond, indptr, indices, slots, data)``
      adds ``int m N_i N_j + int sum_d k_d dN_i/dx_d dN_j/dx_d`` of each cell into ``data`` (owned
      rows); ``mass``, ``cond``: canonical coefficients, size 0 when absent; ``slots``: the
      relative slots of :func:`pattern_fill`, or empty to search the rows.
    * ``vector(coords, cells, n_owned, N, dN, weights, values, out)``: ``out[i] += int f N_i``.
    * ``gradient(coords, cells, N, dN, u, out, values)``: ``out[c, q, d]`` = du/dx_d at point q of
      cell c, and ``values[c, q]`` = u there (``values`` of size 0: not computed).
    * ``flux_vector(coords, cells, n_owned, dN, weights, flux, out)``: ``out[i] += int flux . grad N_i``
      with ``flux`` (n_cells, n_qp, dim) at the points (the residual of conduction, k grad u).
    * ``convection(coords, cells, n_owned, N, dN, weights, b, scale, indptr, indices, slots, data)``
      adds ``s_cj int (b . grad N_i) N_j`` (b: (n_cells, n_qp, dim); ``scale`` s: (n_cells, nn), or
      size 0 for 1), the part of a Newton Jacobian that comes from a conductivity depending on u
      (b = dk/du grad u at the points; or b = grad u and s = dk/du at the nodes when k is
      interpolated from its nodal values); not symmetric.
    """
    NN, GD, NQ, AFFINE = int(nn), int(dim), int(nq), bool(affine)
    NS = GD * (GD + 1) // 2  # symmetric pairs of reference directions
    NE = NN * (NN + 1) // 2  # upper entries of the element matrix
    NG = 1 if AFFINE else NQ  # points where the geometry is computed
    B = BLOCK

    @_jit
    def matrix(coords, cells, n_owned, N, dN, weights, mass, cond, indptr, indices, slots, data):
        # The element matrix is a contraction with reference tensors, computed once per call:
        #   stiffness: A_ij = sum_q sum_(b<=c) C_q,bc RK_q,bc,ij with C_q = w_q |det J| J^-1 diag(k) J^-T
        #              and RK_q,bc,ij = dN_ib dN_jc (+ dN_ic dN_jb for b != c);
        #   mass:      A_ij = sum_q w_q |det J| m_q N_i N_j  (affine cells: sum_q w_q m_q N_i N_j |det J|).
        # Only the upper entries (i <= j) are computed: e = ei[i, j]. Affine cells sum the point
        # values of k (and m) against the weights.
        nc = cells.shape[0]
        has_mass = mass.shape[0] > 0
        has_cond = cond.shape[0] > 0
        mf = mass.reshape(mass.size)
        kf = cond.reshape(cond.size)
        m_sc, m_sq, _ = _strides(mass)
        k_sc, k_sq, k_sd = _strides(cond)
        m_points = m_sq > 0
        use_slots = slots.shape[0] > 0
        sb = np.empty(NS, np.int64)
        sc = np.empty(NS, np.int64)
        s = 0
        for b in range(GD):
            for c2 in range(b, GD):
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
        for q in range(NQ):
            for i in range(NN):
                for j in range(i, NN):
                    RM[q, ei[i, j]] = N[q, i] * N[q, j]
                    WRM[ei[i, j]] += weights[q] * N[q, i] * N[q, j]
        X = np.empty((NN, GD, B))
        J = np.empty((GD, GD, B))
        Kinv = np.empty((GD, GD, B))
        det = np.empty(B)
        kw = np.empty((GD, B))
        fm = np.empty(B)
        Cs = np.empty((NS, B))
        Ae = np.empty((NE, B))
        A = np.empty((NN, NN))
        order = np.empty(NN, np.int64)
        missing = 0
        # runtime trip counts for the loops over points and entries: unrolling their large bodies
        # would only multiply the code (and the compile time)
        ng = RK.shape[0]
        ne = RK.shape[2]
        for c0 in range(0, nc, B):
            nb = min(B, nc - c0)
            _gather(coords, cells, c0, nb, X, NN, GD)
            for e in range(ne):
                for k in range(nb):
                    Ae[e, k] = 0.0
            for q in range(ng):
                _measure(X, dN, q, nb, J, Kinv, det, has_cond, NN, GD)
                if has_cond:
                    for d in range(GD):
                        for k in range(nb):
                            at = (c0 + k) * k_sc + d * k_sd
                            if AFFINE:
                                t = 0.0
                                for p in range(NQ):
                                    t += weights[p] * kf[at + p * k_sq]
                            else:
                                t = weights[q] * kf[at + q * k_sq]
                            kw[d, k] = t * det[k]
                    for s in range(NS):
                        b = sb[s]
                        c2 = sc[s]
                        for k in range(nb):
                            t = 0.0
                            for d in range(GD):
                                t += Kinv[b, d, k] * Kinv[c2, d, k] * kw[d, k]
                            Cs[s, k] = t
                fused = has_mass and not (AFFINE and m_points)
                if fused:
                    for k in range(nb):
                        if AFFINE:
                            fm[k] = det[k] * mf[(c0 + k) * m_sc]
                        else:
                            fm[k] = weights[q] * det[k] * mf[(c0 + k) * m_sc + q * m_sq]
                for e in range(ne):  # the sums innermost but one: Ae[e, k] stays in a register
                    rm = WRM[e] if AFFINE else RM[q, e]
                    for k in range(nb):
                        t = Ae[e, k]
                        if has_cond:
                            for s in range(NS):
                                t += Cs[s, k] * RK[q, s, e]
                        if fused:
                            t += fm[k] * rm
                        Ae[e, k] = t
                if has_mass and AFFINE and m_points:  # sum over the points of m_q N_i N_j
                    for p in range(NQ):
                        for k in range(nb):
                            fm[k] = weights[p] * det[k] * mf[(c0 + k) * m_sc + p * m_sq]
                        for e in range(ne):
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
                    for i in range(NN):
                        for j in range(NN):
                            A[i, j] = Ae[ei[i, j], k]
                    missing += _scatter_search(cells, c, n_owned, order, A, indptr, indices, data)
        return missing

    @_jit
    def vector(coords, cells, n_owned, N, dN, weights, values, out):
        nc = cells.shape[0]
        vf = values.reshape(values.size)
        v_sc, v_sq, _ = _strides(values)
        X = np.empty((NN, GD, B))
        J = np.empty((GD, GD, B))
        Kinv = np.empty((GD, GD, B))
        det = np.empty(B)
        F = np.empty((NN, B))
        for c0 in range(0, nc, B):
            nb = min(B, nc - c0)
            _gather(coords, cells, c0, nb, X, NN, GD)
            for a in range(NN):
                for k in range(nb):
                    F[a, k] = 0.0
            for q in range(weights.shape[0]):
                if q < NG:
                    _measure(X, dN, q, nb, J, Kinv, det, False, NN, GD)
                for a in range(NN):
                    g = weights[q] * N[q, a]
                    for k in range(nb):
                        F[a, k] += vf[(c0 + k) * v_sc + q * v_sq] * g * det[k]
            for k in range(nb):
                for a in range(NN):
                    row = cells[c0 + k, a]
                    if row < n_owned:
                        out[row] += F[a, k]
        return 0

    @_jit
    def gradient(coords, cells, N, dN, u, out, values):
        nc = cells.shape[0]
        nq = dN.shape[0]
        with_values = values.shape[0] > 0
        X = np.empty((NN, GD, B))
        J = np.empty((GD, GD, B))
        Kinv = np.empty((GD, GD, B))
        det = np.empty(B)
        ur = np.empty((NN, B))
        g = np.empty(GD)
        for c0 in range(0, nc, B):
            nb = min(B, nc - c0)
            _gather(coords, cells, c0, nb, X, NN, GD)
            for n in range(NN):
                for k in range(nb):
                    ur[n, k] = u[cells[c0 + k, n]]
            for q in range(nq):
                if q < NG:
                    _measure(X, dN, q, nb, J, Kinv, det, True, NN, GD)
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

    @_jit
    def flux_vector(coords, cells, n_owned, dN, weights, flux, out):
        nc = cells.shape[0]
        nq = weights.shape[0]
        X = np.empty((NN, GD, B))
        J = np.empty((GD, GD, B))
        Kinv = np.empty((GD, GD, B))
        det = np.empty(B)
        F = np.empty((NN, B))
        r = np.empty(GD)
        for c0 in range(0, nc, B):
            nb = min(B, nc - c0)
            _gather(coords, cells, c0, nb, X, NN, GD)
            for a in range(NN):
                for k in range(nb):
                    F[a, k] = 0.0
            for q in range(nq):
                if q < NG:
                    _measure(X, dN, q, nb, J, Kinv, det, True, NN, GD)
                for k in range(nb):
                    w = weights[q] * det[k]
                    for e in range(GD):  # r = J^-1 flux: the flux in reference directions
                        t = 0.0
                        for d in range(GD):
                            t += Kinv[e, d, k] * flux[c0 + k, q, d]
                        r[e] = t * w
                    for a in range(NN):
                        t = 0.0
                        for e in range(GD):
                            t += dN[q, a, e] * r[e]
                        F[a, k] += t
            for k in range(nb):
                for a in range(NN):
                    row = cells[c0 + k, a]
                    if row < n_owned:
                        out[row] += F[a, k]
        return 0

    @_jit
    def convection(coords, cells, n_owned, N, dN, weights, b, scale, indptr, indices, slots, data):
        nc = cells.shape[0]
        nq = weights.shape[0]
        scaled = scale.shape[0] > 0
        X = np.empty((NN, GD, B))
        J = np.empty((GD, GD, B))
        Kinv = np.empty((GD, GD, B))
        det = np.empty(B)
        Ab = np.empty((NN, NN, B))
        A = np.empty((NN, NN))
        r = np.empty(GD)
        bg = np.empty(NN)
        order = np.empty(NN, np.int64)
        missing = 0
        for c0 in range(0, nc, B):
            nb = min(B, nc - c0)
            _gather(coords, cells, c0, nb, X, NN, GD)
            for i in range(NN):
                for j in range(NN):
                    for k in range(nb):
                        Ab[i, j, k] = 0.0
            for q in range(nq):
                if q < NG:
                    _measure(X, dN, q, nb, J, Kinv, det, True, NN, GD)
                for k in range(nb):
                    w = weights[q] * det[k]
                    for e in range(GD):  # r = J^-1 b: b in reference directions
                        t = 0.0
                        for d in range(GD):
                            t += Kinv[e, d, k] * b[c0 + k, q, d]
                        r[e] = t * w
                    for i in range(NN):
                        t = 0.0
                        for e in range(GD):
                            t += dN[q, i, e] * r[e]
                        bg[i] = t
                    for i in range(NN):
                        for j in range(NN):
                            Ab[i, j, k] += bg[i] * N[q, j]
            if scaled:
                for i in range(NN):
                    for j in range(NN):
                        for k in range(nb):
                            Ab[i, j, k] *= scale[c0 + k, j]
            missing += _scatter_block(cells, c0, nb, n_owned, Ab, indptr, indices, slots, A, order, data)
        return missing

    @_jit
    def nodal_conduction(coords, cells, n_owned, dN, volume, u, knode, cell_set, dknode, c, out, indptr, indices,
                         slots, sym, nonsym, merge):
        nc = cells.shape[0]
        ncomp = knode.shape[2]
        with_out, with_sym, with_nonsym = out.shape[0] > 0, sym.shape[0] > 0, nonsym.shape[0] > 0
        with_sets = cell_set.shape[0] > 0
        X = np.empty((NN, GD, B))
        J = np.empty((GD, GD, B))
        Kinv = np.empty((GD, GD, B))
        det = np.empty(B)
        G = np.empty((NN, GD, B))
        grad = np.empty((GD, B))
        kbar = np.empty((GD, B))
        dkn = np.empty((NN, GD, B))
        As = np.empty((NN, NN, B))
        An = np.empty((NN, NN, B))
        A = np.empty((NN, NN))
        order = np.empty(NN, np.int64)
        missing = 0
        for c0 in range(0, nc, B):
            nb = min(B, nc - c0)
            _gather(coords, cells, c0, nb, X, NN, GD)
            _measure(X, dN, 0, nb, J, Kinv, det, True, NN, GD)
            for k in range(nb):
                det[k] *= volume  # the cell's volume
            for a in range(NN):
                for d in range(GD):
                    for k in range(nb):
                        t = 0.0
                        for e in range(GD):
                            t += dN[0, a, e] * Kinv[e, d, k]
                        G[a, d, k] = t
            for k in range(nb):
                s = cell_set[c0 + k] if with_sets else 0
                for d in range(GD):
                    t = 0.0
                    m = 0.0
                    for a in range(NN):
                        node = cells[c0 + k, a]
                        t += u[node] * G[a, d, k]
                        m += knode[s, node, d if ncomp > 1 else 0]
                        if with_nonsym:
                            dkn[a, d, k] = dknode[s, node, d if ncomp > 1 else 0]
                    grad[d, k] = t
                    kbar[d, k] = m / NN
            if with_out:
                for k in range(nb):
                    for a in range(NN):
                        row = cells[c0 + k, a]
                        if row < n_owned:
                            t = 0.0
                            for d in range(GD):
                                t += kbar[d, k] * grad[d, k] * G[a, d, k]
                            out[row] += t * det[k]
            if with_sym:
                for a in range(NN):
                    for b in range(NN):
                        for k in range(nb):
                            t = 0.0
                            for d in range(GD):
                                t += kbar[d, k] * G[a, d, k] * G[b, d, k]
                            As[a, b, k] = c * det[k] * t
            if with_nonsym:
                for a in range(NN):
                    for b in range(NN):
                        for k in range(nb):
                            t = 0.0
                            for d in range(GD):
                                t += grad[d, k] * G[a, d, k] * dkn[b, d, k]
                            An[a, b, k] = c * det[k] * t / NN
            if with_sym and with_nonsym and merge:  # one array: the two parts summed, one scatter
                for a in range(NN):
                    for b in range(NN):
                        for k in range(nb):
                            As[a, b, k] += An[a, b, k]
                missing += _scatter_block(cells, c0, nb, n_owned, As, indptr, indices, slots, A, order, sym)
                continue
            if with_sym:
                missing += _scatter_block(cells, c0, nb, n_owned, As, indptr, indices, slots, A, order, sym)
            if with_nonsym:
                missing += _scatter_block(cells, c0, nb, n_owned, An, indptr, indices, slots, A, order, nonsym)
        return missing

    return CellKernels(matrix, vector, gradient, flux_vector, convection, nodal_conduction)


@_jit
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


# ---------------------------------------------------------------------------------- facets
# Boundary facets are few (O(N^(d-1))): one generic kernel for every kind of facet, per facet.
@_inline
def _facet_measure(coords, facets, f, dN, q):
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


@_jit
def facet_measures(coords, facets, dN, weights, out):
    """out[f, q] = w_q sqrt(det J^T J) of facet f at point q: the quadrature weights of the facets,
    computed once per boundary."""
    for f in range(facets.shape[0]):
        for q in range(weights.shape[0]):
            out[f, q] = weights[q] * _facet_measure(coords, facets, f, dN, q)


@_jit
def facet_matrix(facets, N, wdet, values, slots, data):
    """data += int c N_i N_j over the facets, c canonical (n_facets or 1, n_qp or 1, 1), ``wdet``:
    :func:`facet_measures`; ``slots`` (n_facets, nn * nn): each entry's slot in ``data``, -1 for a
    row owned elsewhere (skipped)."""
    nf, nn = facets.shape
    nq = wdet.shape[1]
    vf = values.reshape(values.size)
    v_sc, v_sq, _ = _strides(values)
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


@_jit
def facet_vector(facets, n_owned, N, wdet, values, out):
    """out[i] += int g N_i over the facets (i owned), g canonical (n_facets or 1, n_qp or 1, 1),
    ``wdet``: :func:`facet_measures`."""
    nf, nn = facets.shape
    nq = wdet.shape[1]
    vf = values.reshape(values.size)
    v_sc, v_sq, _ = _strides(values)
    for f in range(nf):
        for q in range(nq):
            w = wdet[f, q] * vf[f * v_sc + q * v_sq]
            for a in range(nn):
                r = facets[f, a]
                if r < n_owned:
                    out[r] += w * N[q, a]


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


# ---------------------------------------------------------------------------------- compilation
def warm_up(cell_type: str, cell_dtype=np.int32, index_dtype=np.int32, degree: int = 2) -> None:
    """Compile (or load from the cache) every kernel the assembly of ``cell_type`` meshes uses, for
    these index types, by running each once on a single cell."""
    from solver.fem.quadrature import quadrature
    from solver.mesh.cells import CELLS

    ref = CELLS[cell_type]
    facet = CELLS[ref.facet_name]
    points, weights = quadrature(cell_type, degree)
    N, dN = np.ascontiguousarray(ref.shape(points)), np.ascontiguousarray(ref.grad(points))
    nn = ref.n_nodes
    coords = np.ascontiguousarray(ref.vertices, dtype=np.float64)
    cells = np.arange(nn, dtype=cell_dtype).reshape(1, nn)
    offsets = node_cell_offsets(cells, nn)
    adjacent = np.empty(int(offsets[-1]), dtype=np.int32)
    node_cells(cells, nn, offsets, adjacent)
    indptr = pattern_row_lengths(cells, nn, nn, offsets, adjacent)
    indices = np.empty(int(indptr[-1]), dtype=index_dtype)
    slots = np.empty((1, nn * nn), dtype=np.uint8)
    pattern_fill(cells, nn, nn, offsets, adjacent, indptr, indices, slots)
    indptr = indptr.astype(index_dtype)
    data = np.zeros(len(indices))
    k = cell_kernels(nn, ref.dim, len(weights), ref.affine)
    one = np.ones((1, 1, 1))
    k.matrix(coords, cells, nn, N, dN, weights, one, one, indptr, indices, slots, data)
    k.matrix(coords, cells, nn, N, dN, weights, one, one, indptr, indices, slots[:0], data)
    k.vector(coords, cells, nn, N, dN, weights, one, np.zeros(nn))
    grads = np.zeros((1, len(weights), ref.dim))
    k.gradient(coords, cells, N, dN, np.zeros(nn), grads, np.zeros((1, len(weights))))
    k.gradient(coords, cells, N, dN, np.zeros(nn), grads, np.zeros((0, 0)))
    k.flux_vector(coords, cells, nn, dN, weights, grads, np.zeros(nn))
    for scale in (np.ones((1, nn)), np.zeros((0, nn))):
        k.convection(coords, cells, nn, N, dN, weights, grads, scale, indptr, indices, slots, data)
        k.convection(coords, cells, nn, N, dN, weights, grads, scale, indptr, indices, slots[:0], data)
    if ref.affine:
        knode = np.ones((1, nn, 1))
        for sets in (np.zeros(1, np.int64), np.zeros(0, np.int64)):
            for use in (slots, slots[:0]):
                k.nodal_conduction(coords, cells, nn, dN, 1.0, np.zeros(nn), knode, sets, knode, 1.0,
                                   np.zeros(nn), indptr, indices, use, data, data, True)
    quadrature_points(coords, cells, N, np.empty((1, len(weights), ref.dim)))
    entry_slots(indptr, indices, np.zeros(1, np.int64), np.zeros(1, np.int64), nn)
    constrain_kernel(indptr, indices, data, np.zeros(nn, dtype=np.bool_), nn)
    fpoints, fweights = quadrature(ref.facet_name, degree)
    fN, fdN = np.ascontiguousarray(facet.shape(fpoints)), np.ascontiguousarray(facet.grad(fpoints))
    facets = np.ascontiguousarray(cells[:, : facet.n_nodes])
    wdet = np.empty((1, len(fweights)))
    facet_measures(coords, facets, fdN, fweights, wdet)
    facet_matrix(facets, fN, wdet, one, np.zeros((1, facet.n_nodes ** 2), np.int64), data)
    facet_vector(facets, nn, fN, wdet, one, np.zeros(nn))


_warm: set = set()


def compile_on_root(comm, cell_type: str, cell_dtype, index_dtype) -> None:
    """Collective: rank 0 compiles the kernels of ``cell_type`` (or loads them; once per process
    and kind) while the other ranks wait, and then load them from the cache: N ranks do not
    compile the same code at once on a fresh install. (Every rank takes part whatever it has
    already loaded: a rank may have assembled alone on COMM_SELF before.)"""
    if not AVAILABLE or comm.size == 1:
        return
    key = (cell_type, np.dtype(cell_dtype).str, np.dtype(index_dtype).str)
    if comm.rank == 0 and key not in _warm:
        _warm.add(key)
        warm_up(cell_type, cell_dtype, index_dtype)
    comm.Barrier()


if __name__ == "__main__":  # python -m solver.fem.kernels: compile every kernel into the cache
    import time

    if not AVAILABLE:
        raise SystemExit("numba is not available: nothing to compile")
    for name in ("triangle", "quadrilateral", "tetrahedron", "hexahedron"):
        start = time.perf_counter()
        warm_up(name)
        print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
