"""Distributed smoothed-aggregation algebraic multigrid (SA-AMG), a preconditioner for CG.

One symmetric V-cycle per application, on a hierarchy built from the distributed matrix alone:

* **Aggregation** of each rank's owned rows from its owned-owned block only: strength of
  connection (below), then pyamg's serial standard (MIS-2 like) aggregation kernel. Rows
  without strong neighbours (Dirichlet rows: identity-like, decoupled) stay out of every
  aggregate; their rows of P are zero and the smoother, exact on
  them, deals with them (as PETSc GAMG drops singletons).
* **Tentative prolongator** T from the near-null space (the constant, then the coarse
  candidates ``B_c`` of each level), normalised per aggregate as pyamg's ``fit_candidates``.
* **Prolongator smoothing** ``P = (I - omega D^-1 A) T`` with the distributed matrix: ghost
  rows of T (a ghost node's aggregate is a global coarse id owned by its owner's coarse rank)
  come through the halo; ``omega = 4 / (3 rho(D^-1 A))``, rho from a few Lanczos steps with
  ``Allreduce`` (a deterministic start vector, so runs repeat exactly).
* **Galerkin product** ``A_c = P^T A P``: the ghost rows of P are fetched from their owners
  (flat index/value buffers), ``A P`` is formed locally, and the local ``P^T (A P)`` entries
  are sent to the owners of their coarse rows and summed there. Each coarse level has its own
  :class:`HaloExchange` and :class:`DistributedMatrix`, local numbering
  ``[owned coarse..., ghost coarse...]``.
* **Agglomeration**: when a coarse level would average fewer than ``rows_per_rank`` rows per
  active rank, its rows move onto ``ceil(n / rows_per_rank)`` ranks (rank ``r`` hands its
  aggregates to rank ``r * p_next // p``; ranks left without rows idle on that level, calling
  the neighbour collectives with nothing to send). The coarsest level (at most ``max_coarse``
  rows) is gathered on each of its ranks and solved redundantly with SuperLU, factorised once
  per set-up or :meth:`AMG.update`.
* **Smoothing**: Chebyshev polynomials in ``D^-1 A`` of degree ``degree`` on
  ``[lower * lam, upper * lam]`` (lam from the same Lanczos estimate): no Gauss-Seidel, so the
  smoother gives the same iterates on any number of ranks; pre- and post-smoothing are the same
  symmetric operator and the coarsest solve is exact, so the V-cycle is symmetric (CG-safe).

Repeated communication (the V-cycle) is neighbour-only: halo updates on each level, the
transfer between levels (prolongation: an owner -> ghost update of the coarse vector;
restriction: the reverse, ghost contributions summed by their owners), and one ``Allgatherv``
among the coarsest level's ranks when there are several. Set-up uses O(P) collectives.

The hot path avoids temporaries: each level's owned block is held in symmetric storage (its
upper triangle, :class:`~solver.la.symmetric.SymmetricCSR`: half the matrix bytes of the
smoother's products, which are bound by memory bandwidth), so ``r -= A d`` is one compiled
call; the transfers and the ghost columns go through SciPy's ``csr_matvec`` kernel
(``y += A x``) into preallocated arrays, and BLAS ``axpy`` does the smoother's vector updates.
By default the V-cycle runs in single precision (float32 copies of the level matrices, the
input scaled by a power of two): the products move a third less memory, the preconditioner
stays symmetric (exactly: one triangle serves both), and CG itself, the set-up and the
coarsest solve stay in double.

Aggregation: strength of connection ``-a_ij >= theta sqrt(m_i m_j)``, ``m_i`` the largest
negative coupling of row i ("signed"; pyamg's ``|a_ij| >= theta sqrt(a_ii a_jj)`` on request).
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from mpi4py import MPI
from scipy.linalg.blas import get_blas_funcs
from scipy.sparse import _sparsetools

from solver.fem.assembly import index_dtype
from solver.la.matrix import DistributedMatrix
from solver.la.symmetric import SymmetricCSR
from solver.parallel.exchange import HaloExchange
from solver.parallel.routing import Route

__all__ = ["AMG"]


# ---------------------------------------------------------------------------------- kernels
def _csr(A, dtype=np.float64) -> sp.csr_matrix:
    """A canonical CSR copy with index arrays of one dtype (what csr_matvec wants), int32 when
    they fit; a copy, so that sorting it never reorders arrays it shares with its source."""
    A = sp.csr_matrix(A, dtype=dtype, copy=True)
    A.sum_duplicates()
    A.sort_indices()
    t = index_dtype(A.nnz, *A.shape)
    A.indices, A.indptr = A.indices.astype(t, copy=False), A.indptr.astype(t, copy=False)
    A.data = np.ascontiguousarray(A.data, dtype=dtype)
    return A


def _negated(A: sp.csr_matrix, dtype) -> sp.csr_matrix:
    """``-A`` in ``dtype`` sharing A's index arrays when A is canonical (no copy of them)."""
    if not A.has_canonical_format or A.indices.dtype != A.indptr.dtype:
        return _csr(-A, dtype)
    return sp.csr_matrix((np.negative(A.data).astype(dtype, copy=False), A.indices, A.indptr),
                         shape=A.shape, copy=False)


def _axpy_matvec(A: sp.csr_matrix, x: np.ndarray, y: np.ndarray) -> None:
    """``y += A @ x`` in place (no temporary)."""
    _sparsetools.csr_matvec(A.shape[0], A.shape[1], A.indptr, A.indices, A.data, x, y)


def _hash_vector(gids: np.ndarray) -> np.ndarray:
    """A deterministic pseudo-random vector in [-0.5, 0.5) from global ids (Lanczos start)."""
    h = (gids.astype(np.uint64) * np.uint64(2654435761) + np.uint64(12345)) % np.uint64(2 ** 32)
    return h.astype(np.float64) / 2.0 ** 32 - 0.5


def _global_ids(A: DistributedMatrix, comm) -> tuple[np.ndarray, np.ndarray]:
    """Global ids of the local columns ``[owned..., ghosts...]`` (owned rows numbered
    contiguously per rank in rank order) and the first global row of every rank."""
    counts = np.empty(comm.size, dtype=np.int64)
    comm.Allgather(np.array([A.n_owned], dtype=np.int64), counts)
    starts = np.zeros(comm.size + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    gids = np.empty(A.n_owned + A.offdiag_block.shape[1], dtype=np.int64)
    gids[: A.n_owned] = starts[comm.rank] + np.arange(A.n_owned)
    A.halo.update(gids)
    return gids, starts


def _fits_single(A: DistributedMatrix, comm) -> bool:
    """Whether the matrix's nonzero entries lie well inside float32's range (1e-30..1e30), so
    that a single-precision V-cycle neither overflows nor loses entries to underflow."""
    big, small = 0.0, np.inf
    for block in (A.diag_block, A.offdiag_block):
        v = np.abs(block.data[block.data != 0.0])
        if v.size:
            big, small = max(big, float(v.max())), min(small, float(v.min()))
    buf = np.array([big, -small])
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.MAX)
    return bool(buf[0] < 1e30 and -buf[1] > 1e-30)


def _owner(starts: np.ndarray, gids: np.ndarray) -> np.ndarray:
    return np.searchsorted(starts, gids, side="right") - 1


def _allsum(comm, values) -> np.ndarray:
    buf = np.array(values, dtype=np.float64)
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    return buf


def local_matrix(A: DistributedMatrix) -> sp.csr_matrix:
    """Owned rows with all local columns [owned | ghosts] (the owned block itself if no ghosts)."""
    if A.offdiag_block.shape[1] == 0:
        return A.diag_block
    return sp.hstack([A.diag_block, A.offdiag_block], format="csr")


def _lanczos_max(comm, A: DistributedMatrix, dinv: np.ndarray, gids: np.ndarray, steps: int) -> float:
    """Largest Ritz value of ``D^-1 A`` (as ``D^-1/2 A D^-1/2``) after ``steps`` Lanczos steps,
    deterministic; every rank calls it (idle ranks with empty vectors)."""
    n = A.n_owned
    s = np.sqrt(dinv)
    v = np.zeros(len(gids))
    v[:n] = _hash_vector(gids[:n]) + 1.0  # positive-ish: a smooth part too
    norm = math.sqrt(_allsum(comm, [np.dot(v[:n], v[:n])])[0])
    if norm == 0.0:
        return 0.0
    v[:n] /= norm
    v_old = np.zeros(n)
    alphas, betas = [], []
    beta = 0.0
    w_in = np.zeros(len(gids))
    for _ in range(steps):
        w_in[:n] = s * v[:n]
        w = s * A.matvec(w_in) - beta * v_old
        alpha = _allsum(comm, [np.dot(w, v[:n])])[0]
        w -= alpha * v[:n]
        beta = math.sqrt(max(_allsum(comm, [np.dot(w, w)])[0], 0.0))
        alphas.append(alpha)
        if beta <= 1e-12 * abs(alpha):
            break
        betas.append(beta)
        v_old = v[:n].copy()
        v[:n] = w / beta
    k = len(alphas)
    T = np.diag(alphas) + np.diag(betas[: k - 1], 1) + np.diag(betas[: k - 1], -1)
    return float(np.linalg.eigvalsh(T)[-1])


# ---------------------------------------------------------------------------------- set-up parts
def _strong(D: sp.csr_matrix, theta: float, measure: str) -> tuple[np.ndarray, np.ndarray]:
    """Strong off-diagonal couplings of a square CSR block: row offsets and columns (int32).

    * "signed": ``-a_ij >= theta sqrt(m_i m_j)`` with ``m_i = max_k -a_ik`` (the largest
      negative coupling of row i): positive couplings (mass-like, or the opposite sign that
      anisotropic bilinear elements give across the weak direction) are weak, and the test
      does not depend on the stencil's scale or shape (Q1 in 3D couples faces by 0);
    * "symmetric": ``|a_ij| >= theta sqrt(|a_ii a_jj|)`` (pyamg's symmetric measure).
    """
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


def _aggregate(A: DistributedMatrix, theta: float, measure: str) -> tuple[np.ndarray, int]:
    """Aggregate of each owned row (-1: none) from the strong couplings of the owned-owned
    block (pyamg's standard aggregation kernel), and their number."""
    from pyamg import amg_core

    n = A.n_owned
    if n == 0:
        return np.empty(0, dtype=np.int64), 0
    Sp, Sj = _strong(A.diag_block, theta, measure)
    agg = np.empty(n, dtype=np.int32)
    cpts = np.empty(n, dtype=np.int32)
    n_agg = amg_core.standard_aggregation(n, Sp, Sj, agg, cpts)
    return agg.astype(np.int64), int(n_agg)


def _exchange_rows(halo: HaloExchange, comm, indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray):
    """The ghost rows (halo order) of a row-distributed sparse matrix whose owned rows are
    ``(indptr, cols, vals)`` (cols: global ids): row lengths, then flat column and value buffers."""
    pattern = halo.pattern
    rows = halo.send_indices
    dest = np.repeat(pattern.send_ranks.astype(np.int64), pattern.send_counts)
    lengths = (indptr[rows + 1] - indptr[rows]).astype(np.int64)
    ghost_lengths = Route(comm, dest).send(lengths)
    offsets = np.zeros(len(rows), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    entries = np.repeat(indptr[rows].astype(np.int64) - offsets, lengths) + np.arange(int(lengths.sum()))
    route = Route(comm, np.repeat(dest, lengths), items=entries)
    g_indptr = np.zeros(len(ghost_lengths) + 1, dtype=np.int64)
    np.cumsum(ghost_lengths, out=g_indptr[1:])
    return g_indptr, route.send(cols), route.send(vals)


class _Transfer:
    """P between a level (owned fine rows) and the next (coarse rows owned as that level says).

    Coarse vectors seen by this rank's rows of P are laid out ``[coarse rows this rank owns...,
    other coarse columns of its P rows, grouped by owner]`` (``gids``); ``halo`` updates the
    latter from their owners (prolongation) and, reversed, returns their sums (restriction).
    The V-cycle arrays (P, R = P^T, buffers) are of the hierarchy's working precision."""

    def __init__(self, comm, P_loc: sp.csr_matrix, gids: np.ndarray, n_c_owned: int, coarse_starts, dtype):
        self.n_c = n_c_owned
        self.gids = gids
        ghosts = gids[n_c_owned:]
        self.halo = HaloExchange(comm, n_c_owned, gids[:n_c_owned], _owner(coarse_starts, ghosts), ghosts)
        self.P = _csr(P_loc, dtype)
        self.R = _csr(P_loc.T, dtype)
        self.reverse = self.halo.pattern.reversed()
        # restriction: sum what arrives into owned entries (several neighbours may send to one)
        m = len(self.halo.send_indices)
        self.gather = _csr(sp.csr_matrix((np.ones(m), (self.halo.send_indices, np.arange(m))),
                                         shape=(n_c_owned, m)), dtype)
        self.x = np.zeros(len(gids), dtype=dtype)  # prolongation buffer
        self.y = np.zeros(len(gids), dtype=dtype)  # restriction buffer
        self.recv = np.zeros(m, dtype=dtype)

    def restrict(self, r: np.ndarray, out: np.ndarray) -> None:
        """``out = P^T r`` (owned coarse rows)."""
        y = self.y
        y.fill(0.0)
        _axpy_matvec(self.R, r, y)
        self.reverse.exchange(y[self.n_c:], self.recv)
        np.copyto(out, y[: self.n_c])
        _axpy_matvec(self.gather, self.recv, out)

    def prolong_add(self, xc: np.ndarray, x: np.ndarray) -> None:
        """``x += P xc`` (xc: owned coarse values)."""
        np.copyto(self.x[: self.n_c], xc)
        self.halo.update(self.x)
        _axpy_matvec(self.P, self.x, x)

    def messages(self) -> tuple[int, int]:
        """(messages, bytes) this rank sends per V-cycle: one restriction + one prolongation."""
        p, q = self.halo.pattern, self.reverse
        size = self.x.itemsize
        return len(p.send_ranks) + len(q.send_ranks), size * (p.n_send + q.n_send)


class _Level:
    """One level: its distributed matrix (float64, set-up), the V-cycle's copy of it in the
    working precision, the Chebyshev smoother and the work arrays."""

    def __init__(self, A: DistributedMatrix, gids: np.ndarray, starts: np.ndarray, active: int, dtype):
        self.gids, self.starts, self.active = gids, starts, active
        self.dtype = np.dtype(dtype)
        blas_axpy = get_blas_funcs("axpy", dtype=self.dtype)
        # y += a x in place (BLAS refuses empty arrays: an idle rank has nothing to add)
        self.axpy = (lambda x, y, a: blas_axpy(x, y, a=a)) if A.n_owned else (lambda x, y, a: None)
        self.n = A.n_owned
        self.n_local = len(gids)
        self.set_matrix(A)
        self.transfer: _Transfer | None = None
        self.degree = 0
        self.lam = float("nan")
        self.x = np.zeros(self.n_local, dtype=self.dtype)  # this level's correction
        self.b = np.zeros(self.n, dtype=self.dtype)  # and its right-hand side
        self.r = np.zeros(self.n, dtype=self.dtype)  # residual after pre-smoothing
        self.s = np.zeros(self.n, dtype=self.dtype)  # residual inside post-smoothing

    def set_matrix(self, A: DistributedMatrix) -> None:
        self.A = A
        self.halo = A.halo
        self.diag_product = SymmetricCSR(A.diag_block, self.dtype)
        # the ghost columns touch only the rows next to other ranks: multiply just those rows
        # (a product over all owned rows would stream the whole row-pointer array for them)
        self.coupled_rows = A.coupled_rows
        self.neg_coupling = _negated(A.coupling, self.dtype)
        self.coupled_r = np.zeros(len(self.coupled_rows), dtype=self.dtype)
        self.has_off = A.offdiag_block.nnz > 0

    def sub_matvec(self, x: np.ndarray, r: np.ndarray) -> None:
        """``r -= A x`` (owned rows); updates the ghosts of ``x`` (local length)."""
        n = self.n
        request = self.halo.begin(x)
        self.diag_product.subtract_product(x[:n], r)
        request.Wait()
        if self.has_off:
            t = self.coupled_r
            t.fill(0.0)
            _axpy_matvec(self.neg_coupling, x[n:], t)
            r[self.coupled_rows] += t

    def set_smoother(self, comm, degree: int, lower: float, upper: float, steps: int) -> None:
        """Chebyshev polynomial of ``degree`` in D^-1 A on [lower, upper] * lam_max (Lanczos)."""
        d = self.A.diagonal()
        if np.any(d < 0):
            raise ValueError("AMG needs a matrix with a positive diagonal (SPD)")
        dinv = np.zeros_like(d)
        np.divide(1.0, d, out=dinv, where=d != 0.0)
        self.dinv = dinv
        self.lam = _lanczos_max(comm, self.A, dinv, self.gids, steps)
        lam = self.lam if self.lam > 0 else 1.0
        a, b = lower * lam, upper * lam
        theta, delta = 0.5 * (b + a), 0.5 * (b - a)
        sigma = theta / delta
        rho_old = 1.0 / sigma
        self.first = (dinv / theta).astype(self.dtype)  # d_0 = D^-1 r / theta
        self.coefficients = []  # d_k = c1 d_{k-1} + c2 D^-1 r_k
        for _ in range(degree - 1):
            rho = 1.0 / (2.0 * sigma - rho_old)
            self.coefficients.append((rho * rho_old, (dinv * (2.0 * rho / delta)).astype(self.dtype)))
            rho_old = rho
        self.degree = degree
        self.d = [np.zeros(self.n_local, dtype=self.dtype), np.zeros(self.n_local, dtype=self.dtype)]

    def smooth_from_zero(self, b: np.ndarray, x: np.ndarray, r: np.ndarray) -> None:
        """Pre-smoothing from x = 0: ``x = S b`` and the residual ``r = b - A x``."""
        n = self.n
        d, e = self.d
        np.multiply(b, self.first, out=d[:n])
        np.copyto(r, b)
        self.sub_matvec(d, r)
        if not self.coefficients:
            np.copyto(x[:n], d[:n])
        for k, (c1, c2) in enumerate(self.coefficients):
            np.multiply(r, c2, out=e[:n])
            self.axpy(d[:n], e[:n], c1)  # e = c1 d + c2 r, in place
            if k == 0:
                np.add(d[:n], e[:n], out=x[:n])
            else:
                x[:n] += e[:n]
            self.sub_matvec(e, r)
            d, e = e, d

    def smooth(self, b: np.ndarray, x: np.ndarray) -> None:
        """Post-smoothing: ``x += S (b - A x)`` (the same S)."""
        n = self.n
        d, e = self.d
        r = self.s
        np.copyto(r, b)
        self.sub_matvec(x, r)
        np.multiply(r, self.first, out=d[:n])
        x[:n] += d[:n]
        for c1, c2 in self.coefficients:
            self.sub_matvec(d, r)
            np.multiply(r, c2, out=e[:n])
            self.axpy(d[:n], e[:n], c1)
            x[:n] += e[:n]
            d, e = e, d

    def messages(self, matvecs: int) -> tuple[int, int]:
        p = self.halo.pattern
        return matvecs * len(p.send_ranks), matvecs * self.dtype.itemsize * p.n_send


class _CoarseSolve:
    """The coarsest level gathered on each of its ranks and factorised (SuperLU, float64)."""

    def __init__(self, comm, level: _Level):
        self.level = level
        self.n = level.n
        active = level.n > 0 or comm.size == 1
        sub = comm.Split(0 if active else MPI.UNDEFINED, comm.rank)
        self.sub = None if sub == MPI.COMM_NULL else sub
        self.lu = None
        self.nnz = 0
        if self.sub is None:
            return
        self.counts = np.empty(self.sub.size, dtype=np.int64)
        self.sub.Allgather(np.array([level.n], dtype=np.int64), self.counts)
        self.displs = np.zeros_like(self.counts)
        np.cumsum(self.counts[:-1], out=self.displs[1:])
        self.n_global = int(self.counts.sum())
        self.start = int(self.displs[self.sub.rank])
        self.full = np.zeros(self.n_global)
        self.mine = np.zeros(self.n)
        self.factor(level.A)

    def factor(self, A: DistributedMatrix) -> None:
        if self.sub is None:
            return
        lvl = self.level
        M = local_matrix(A).tocoo()
        rows, cols = lvl.gids[M.row], lvl.gids[M.col]  # the coarsest level's ids are 0..n-1
        counts = np.empty(self.sub.size, dtype=np.int64)
        self.sub.Allgather(np.array([len(rows)], dtype=np.int64), counts)
        displs = np.zeros_like(counts)
        np.cumsum(counts[:-1], out=displs[1:])
        total = int(counts.sum())
        R, C, V = np.empty(total, np.int64), np.empty(total, np.int64), np.empty(total)
        for src, dst, mpitype in ((rows, R, MPI.INT64_T), (cols, C, MPI.INT64_T), (M.data, V, MPI.DOUBLE)):
            self.sub.Allgatherv([np.ascontiguousarray(src, dtype=dst.dtype), mpitype],
                                [dst, (counts, displs), mpitype])
        G = sp.csc_matrix((V, (R, C)), shape=(self.n_global, self.n_global))
        self.nnz = G.nnz
        try:
            self.lu = spla.splu(G, permc_spec="MMD_AT_PLUS_A")
        except RuntimeError:  # exactly singular (pure Neumann): regularise the coarse problem
            shift = 1e-12 * float(np.abs(G.diagonal()).max() or 1.0)
            self.lu = spla.splu((G + shift * sp.identity(self.n_global, format="csc")).tocsc(),
                                permc_spec="MMD_AT_PLUS_A")

    def solve(self, b: np.ndarray, x: np.ndarray) -> None:
        if self.sub is None:
            return
        if self.sub.size == 1:
            np.copyto(self.mine, b)
            np.copyto(x[: self.n], self.lu.solve(self.mine))
            return
        np.copyto(self.mine, b)
        self.sub.Allgatherv([self.mine, MPI.DOUBLE], [self.full, (self.counts, self.displs), MPI.DOUBLE])
        np.copyto(x[: self.n], self.lu.solve(self.full)[self.start: self.start + self.n])

    def messages(self) -> tuple[int, int]:
        if self.sub is None or self.sub.size == 1:
            return 0, 0
        return self.sub.size - 1, 8 * self.n * (self.sub.size - 1)


# ---------------------------------------------------------------------------------- the AMG
class AMG:
    """Smoothed-aggregation AMG V-cycle for a :class:`DistributedMatrix` (SPD), ``z = amg(r)``.

    Parameters:

    * ``theta``, ``strength``: strength-of-connection threshold (a float, or one per level, the
      last repeated: 0.4 keeps aggregates along the strong direction of an anisotropic fine
      grid, 0.25 on the denser coarse operators) and measure ("signed": only negative
      couplings count, relative to the rows' largest; "symmetric": pyamg's measure);
    * ``degree``: of the Chebyshev smoother (an int, or one per level, the last repeated), on
      ``[lower, upper] * lam_max(D^-1 A)``, lam_max from ``lanczos_steps`` Lanczos steps;
    * ``max_coarse``: rows of the coarsest level (gathered and factorised);
    * ``rows_per_rank``: a level with fewer rows per active rank moves onto fewer ranks;
    * ``max_levels``;
    * ``precision``: of the V-cycle's arithmetic, "single" (float32 matrices and vectors: half
      the memory traffic; the hierarchy is built in double and the coarsest solve is in double;
      CG stays in double) or "double". Single falls back to double for a matrix whose entries
      come near float32's range.
    """

    name = "amg"

    def __init__(self, A: DistributedMatrix, theta=(0.4, 0.25), strength: str = "signed", degree=2,
                 lower: float = 0.3, upper: float = 1.1, lanczos_steps: int = 10, max_coarse: int = 3000,
                 rows_per_rank: int = 2000, max_levels: int = 10, precision: str = "single"):
        t0 = time.perf_counter()
        try:
            import pyamg.amg_core  # noqa: F401  (the serial aggregation kernel)
        except ImportError:
            raise ImportError("solver.preconditioner = \"amg\" needs pyamg: pip install pyamg "
                              "(a dependency of the solver)") from None
        self.comm = A.halo.pattern.comm
        self.theta, self.strength, self.degree, self.lower, self.upper = theta, strength, degree, lower, upper
        self.lanczos_steps, self.max_coarse, self.rows_per_rank = lanczos_steps, max_coarse, rows_per_rank
        self.max_levels = max_levels
        if precision not in ("double", "single"):
            raise ValueError(f"AMG precision must be 'double' or 'single', not {precision!r}")
        if precision == "single" and not _fits_single(A, self.comm):
            precision = "double"  # entries too large or too small for float32: stay in double
        self.precision = precision
        self.dtype = np.dtype(np.float64 if precision == "double" else np.float32)
        self._build(A)
        self.setup_time = time.perf_counter() - t0
        self.update_time = None

    # ------------------------------------------------------------------ set-up
    def _build(self, A: DistributedMatrix) -> None:
        comm = self.comm
        gids, starts = _global_ids(A, comm)
        level = _Level(A, gids, starts, comm.size, self.dtype)
        self.levels = [level]
        B = np.ones(A.n_owned)  # near-null space candidate on the owned rows
        self._galerkin = []  # per transfer: what update() needs to redo A_c = P^T A P
        while True:
            n_global = int(starts[-1])
            if n_global <= self.max_coarse or len(self.levels) == self.max_levels:
                break
            self._smoother(len(self.levels) - 1)
            thetas = np.atleast_1d(self.theta)
            theta = float(thetas[min(len(self.levels) - 1, len(thetas) - 1)])
            agg, n_agg = _aggregate(level.A, theta, self.strength)
            counts = np.empty(comm.size, dtype=np.int64)
            comm.Allgather(np.array([n_agg], dtype=np.int64), counts)
            n_c = int(counts.sum())
            if n_c == 0 or n_c > 0.9 * n_global:  # no coarsening possible: stop here
                break
            level, B = self._coarsen(level, agg, n_agg, counts, B)
            starts = level.starts
            self.levels.append(level)
        # the coarsest level is factorised, unless coarsening stopped early on a big level (no
        # strong couplings left, e.g. a mass-dominated matrix): then it is only smoothed
        self.coarse = _CoarseSolve(comm, self.levels[-1]) if int(self.levels[-1].starts[-1]) <= \
            4 * self.max_coarse else None
        if self.coarse is None:
            self._smoother(len(self.levels) - 1)

    def _smoother(self, k: int) -> None:
        degrees = np.atleast_1d(self.degree)
        degree = int(degrees[min(k, len(degrees) - 1)])
        self.levels[k].set_smoother(self.comm, degree, self.lower, self.upper, self.lanczos_steps)

    def _coarsen(self, level: _Level, agg, n_agg, counts, B):
        comm, rank = self.comm, self.comm.rank
        n = level.n
        n_c = int(counts.sum())
        # which ranks own the coarse rows: fewer when the rows per active rank get few
        p = level.active
        p_next = p if n_c >= self.rows_per_rank * p else max(1, min(p, math.ceil(n_c / self.rows_per_rank)))
        target = (np.arange(comm.size) * p_next) // p
        target[p:] = comm.size  # inactive ranks own nothing (and have no aggregates)
        c_counts = np.bincount(target[target < comm.size], weights=counts[target < comm.size],
                               minlength=comm.size).astype(np.int64)
        c_starts = np.zeros(comm.size + 1, dtype=np.int64)
        np.cumsum(c_counts, out=c_starts[1:])
        first = int(counts[:rank].sum())  # my aggregates' first global coarse id
        n_c_owned = int(c_counts[rank])

        # tentative prolongator: T_i = B_i / ||B on aggregate||, coarse candidate = that norm
        aggregated = agg >= 0
        norms = np.sqrt(np.bincount(agg[aggregated], weights=B[aggregated] ** 2, minlength=n_agg))
        t_col = np.full(level.n_local, -1, dtype=np.int64)
        t_val = np.zeros(level.n_local)
        t_col[:n][aggregated] = first + agg[aggregated]
        t_val[:n][aggregated] = B[aggregated] / norms[agg[aggregated]]
        level.halo.update(t_col)
        level.halo.update(t_val)
        # the coarse candidates go to the owner of the coarse rows (arrive in coarse id order)
        my_target = int(target[rank]) if rank < p else rank
        B_c = Route(comm, np.full(n_agg, my_target, dtype=np.int64)).send(norms)

        # smoothed prolongator P = T - omega D^-1 A T on the owned rows: T has at most one entry
        # per row, columns numbered by the sorted global coarse ids it uses (ucols)
        has = t_col >= 0
        ucols, inv = np.unique(t_col[has], return_inverse=True)
        it = index_dtype(level.n_local, len(ucols))
        t_indptr = np.zeros(level.n_local + 1, dtype=it)
        np.cumsum(has, out=t_indptr[1:])
        T_local = sp.csr_matrix((t_val[has], inv.astype(it), t_indptr), shape=(level.n_local, len(ucols)))
        A_loc = local_matrix(level.A)
        omega = 4.0 / (3.0 * level.lam) if level.lam > 0 else 0.0
        P = _csr(A_loc @ T_local)  # then P = T - omega D^-1 (A T), in place: T's entries lie
        P.data *= np.repeat(-omega * level.dinv, np.diff(P.indptr))  # in A T's pattern (a_ii != 0)
        t_rows = np.flatnonzero(has[:n])
        keys = np.repeat(np.arange(n, dtype=np.int64), np.diff(P.indptr)) * len(ucols) + P.indices
        at = np.searchsorted(keys, t_rows * len(ucols) + inv[: len(t_rows)])
        P.data[at] += t_val[t_rows]
        del keys, at
        P.eliminate_zeros()

        # transfer layout: owned coarse rows, then other columns of P grouped by owner (= gid order)
        own_lo, own_hi = int(c_starts[rank]), int(c_starts[rank + 1])
        used = np.zeros(len(ucols), dtype=bool)
        used[P.indices] = True
        p_cols = ucols[used]  # the sorted coarse ids in P's owned rows
        mine = (p_cols >= own_lo) & (p_cols < own_hi)
        other = p_cols[~mine]
        xfer_gids = np.concatenate([np.arange(own_lo, own_hi, dtype=np.int64), other])
        to_xfer = np.zeros(len(ucols), dtype=np.int64)
        to_xfer[used] = np.where(mine, p_cols - own_lo, n_c_owned + np.searchsorted(other, p_cols))
        P_loc = sp.csr_matrix((P.data, to_xfer[P.indices], P.indptr), shape=(n, len(xfer_gids)))
        level.transfer = _Transfer(comm, P_loc, xfer_gids, n_c_owned, c_starts, self.dtype)
        del P_loc

        # ghost rows of P through the halo: P on all local fine rows, columns ext_cols (sorted)
        P_gcols = ucols[P.indices]
        g_indptr, g_cols, g_vals = _exchange_rows(level.halo, comm, P.indptr, P_gcols, P.data)
        del P_gcols
        ext_cols = np.union1d(p_cols, g_cols)
        to_ext = np.zeros(len(ucols), dtype=np.int64)
        to_ext[used] = np.searchsorted(ext_cols, p_cols)
        ie = index_dtype(len(P.data) + len(g_vals), len(ext_cols), level.n_local)
        ext_indptr = np.concatenate([P.indptr, P.indptr[-1] + g_indptr[1:]]).astype(ie)
        ext_indices = np.concatenate([to_ext[P.indices], np.searchsorted(ext_cols, g_cols)]).astype(ie)
        P_ext = sp.csr_matrix((np.concatenate([P.data, g_vals]), ext_indices, ext_indptr),
                              shape=(level.n_local, len(ext_cols)))
        del P, T_local
        galerkin = {"P_ext": P_ext, "ext_cols": ext_cols, "c_starts": c_starts, "n_c_owned": n_c_owned}
        self._galerkin.append(galerkin)
        A_c, ghosts = self._galerkin_product(level, galerkin, A_loc=A_loc)
        del A_loc
        galerkin["ghosts"] = ghosts
        halo_c = HaloExchange(comm, n_c_owned, np.arange(own_lo, own_hi, dtype=np.int64),
                              _owner(c_starts, ghosts), ghosts)
        coarse_gids = np.concatenate([np.arange(own_lo, own_hi, dtype=np.int64), ghosts])
        return _Level(DistributedMatrix(A_c, halo_c), coarse_gids, c_starts, p_next, self.dtype), B_c

    def _galerkin_product(self, level: _Level, g: dict, ghosts: np.ndarray | None = None, A_loc=None):
        """Owned rows of ``P^T A P`` on the next level (columns [owned, ghosts]): local
        ``P^T (A P)`` with the ghost rows of P, entries sent to the owners of their rows.
        With ``ghosts`` given (update), the coarse ghost columns are those; returns None for
        the matrix if an entry falls outside them."""
        comm, rank = self.comm, self.comm.rank
        P_ext = g["P_ext"]
        AP = (local_matrix(level.A) if A_loc is None else A_loc) @ P_ext
        PtAP = (P_ext[: level.n].T @ AP).tocoo()  # rows and columns: the columns of P_ext
        del AP
        rows = g["ext_cols"][PtAP.row]
        cols = g["ext_cols"][PtAP.col]
        c_starts, n_c = g["c_starts"], g["n_c_owned"]
        route = Route(comm, _owner(c_starts, rows))
        rows, cols, vals = route.send(rows), route.send(cols), route.send(PtAP.data)
        lo = int(c_starts[rank])
        own = (cols >= lo) & (cols < lo + n_c)
        if ghosts is None:
            ghosts = np.unique(cols[~own])
        outside = cols[~own]
        pos = np.searchsorted(ghosts, outside)
        found = pos < len(ghosts)
        found[found] = ghosts[pos[found]] == outside[found]
        ok = np.array([int(found.all())])
        comm.Allreduce(MPI.IN_PLACE, ok, op=MPI.MIN)
        if not ok[0]:
            return None, ghosts
        local_cols = np.empty(len(cols), dtype=np.int64)
        local_cols[own] = cols[own] - lo
        local_cols[~own] = n_c + pos
        A_c = sp.csr_matrix((vals, (rows - lo, local_cols)), shape=(n_c, n_c + len(ghosts)))
        A_c.sum_duplicates()
        return A_c, ghosts

    # ------------------------------------------------------------------ update
    def update(self, A: DistributedMatrix) -> None:
        """New values of the fine matrix (same sparsity pattern and halo): keep the aggregates
        and prolongators, redo the Galerkin products, the smoothers' diagonals and eigenvalue
        estimates, and the coarsest factorisation."""
        t0 = time.perf_counter()
        comm = self.comm
        self.levels[0].set_matrix(A)
        for i, g in enumerate(self._galerkin):
            lvl, nxt = self.levels[i], self.levels[i + 1]
            self._smoother(i)
            A_c, ghosts = self._galerkin_product(lvl, g, g["ghosts"])
            if A_c is None:  # the coarse pattern grew (an exact cancellation before): new halo
                A_c, ghosts = self._galerkin_product(lvl, g)
                g["ghosts"] = ghosts
                lo = int(g["c_starts"][comm.rank])
                own = np.arange(lo, lo + g["n_c_owned"], dtype=np.int64)
                halo = HaloExchange(comm, g["n_c_owned"], own, _owner(g["c_starts"], ghosts), ghosts)
                nxt.gids = np.concatenate([own, ghosts])
                nxt.n_local = len(nxt.gids)
                nxt.x = np.zeros(nxt.n_local, dtype=self.dtype)
            else:
                halo = nxt.halo
            nxt.set_matrix(DistributedMatrix(A_c, halo))
        if self.coarse is not None:
            self.coarse.factor(self.levels[-1].A)
        else:
            self._smoother(len(self.levels) - 1)
        self.update_time = time.perf_counter() - t0

    # ------------------------------------------------------------------ the V-cycle
    def __call__(self, r: np.ndarray) -> np.ndarray:
        lvl = self.levels[0]
        if self.dtype == r.dtype:
            self._cycle(0, r, lvl.x)
            return lvl.x[: lvl.n].copy()
        # single precision: scale r by a power of two (exact, the same on every rank) so that
        # its largest entry is about 1, far from float32's underflow and overflow
        m = np.array([max(r.max(initial=0.0), -r.min(initial=0.0))])
        self.comm.Allreduce(MPI.IN_PLACE, m, op=MPI.MAX)
        z = np.empty(lvl.n, dtype=r.dtype)
        if m[0] == 0.0 or not np.isfinite(m[0]):
            z.fill(0.0 if m[0] == 0.0 else np.nan)
            return z
        scale = math.ldexp(1.0, -math.frexp(m[0])[1])
        np.multiply(r, scale, out=lvl.b)
        self._cycle(0, lvl.b, lvl.x)
        np.multiply(lvl.x[: lvl.n], 1.0 / scale, out=z)
        return z

    def _cycle(self, k: int, b: np.ndarray, x: np.ndarray) -> None:
        lvl = self.levels[k]
        if k == len(self.levels) - 1:
            if self.coarse is not None:
                self.coarse.solve(b, x)
            else:
                lvl.smooth_from_zero(b, x, lvl.r)
                lvl.smooth(b, x)
            return
        r = lvl.r
        lvl.smooth_from_zero(b, x, r)
        nxt = self.levels[k + 1]
        lvl.transfer.restrict(r, nxt.b)
        self._cycle(k + 1, nxt.b, nxt.x)
        lvl.transfer.prolong_add(nxt.x[: nxt.n], x[: lvl.n])
        lvl.smooth(b, x)

    # ------------------------------------------------------------------ statistics
    def stats(self) -> dict:
        """Levels, global rows and nonzeros per level, operator and grid complexities, set-up
        time, and per level the messages and bytes each rank sends per V-cycle (collective)."""
        comm = self.comm
        rows, nnz, per_level = [], [], []
        n_levels = len(self.levels)
        for i, lvl in enumerate(self.levels):
            g = _allsum(comm, [lvl.n, lvl.A.diag_block.nnz + lvl.A.offdiag_block.nnz])
            rows.append(int(g[0]))
            nnz.append(int(g[1]))
            if i < n_levels - 1:  # pre-smoothing (its last product gives the residual), post-smoothing
                m, by = lvl.messages(2 * lvl.degree)
                tm, tb = lvl.transfer.messages()
                m, by = m + tm, by + tb
            elif self.coarse is not None:
                m, by = self.coarse.messages()
            else:
                m, by = lvl.messages(4 * lvl.degree)
            mine = np.array([m, by, lvl.n > 0], dtype=np.int64)
            every = np.empty((comm.size, 3), dtype=np.int64)
            comm.Allgather(mine, every)
            per_level.append({"rows": rows[-1], "nnz": nnz[-1], "active_ranks": int(every[:, 2].sum()),
                              "chebyshev_degree": lvl.degree, "lam_max": lvl.lam,
                              "messages_per_rank": every[:, 0].tolist(), "bytes_per_rank": every[:, 1].tolist()})
        setup = _allsum(comm, [self.setup_time])[0] / comm.size
        times = np.array([self.setup_time, self.update_time or 0.0])
        comm.Allreduce(MPI.IN_PLACE, times, op=MPI.MAX)
        return {"levels": n_levels, "rows": rows, "nnz": nnz, "precision": self.precision,
                "operator_complexity": sum(nnz) / nnz[0], "grid_complexity": sum(rows) / rows[0],
                "setup_time": float(times[0]), "setup_time_mean": float(setup),
                "update_time": float(times[1]) if self.update_time is not None else None,
                "per_level": per_level}
