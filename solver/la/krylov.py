"""Krylov methods on distributed matrices: preconditioned conjugate gradients, with only owned
entries taking part in reductions (buffer-based ``Allreduce`` on NumPy arrays)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from mpi4py import MPI
from scipy.linalg.blas import daxpy

from solver.la.matrix import DistributedMatrix, dot


@dataclass
class SolveInfo:
    iterations: int
    residual: float  # final ||r|| / ||b||
    converged: bool
    # this rank's largest |r_i / A_ii| left (a Jacobi estimate of the correction still due at a
    # node, in the unknown's units; not reduced): a ||b|| dominated by a few huge rows lets
    # ||r|| <= rtol ||b|| hold while the other rows are far from solved
    correction: float = 0.0
    # CG met a direction of zero or negative curvature (p.Ap <= 0): the operator, with its
    # preconditioner, is singular or indefinite in double precision
    breakdown: bool = False


# ||b|| outside this range: b and x are scaled by a power of two first (exact), since the squares in
# the dot products would underflow (a field decayed to 1e-160 gave r.r = 0 and "no descent") or overflow
WELL_SCALED = (1e-100, 1e100)


def rescaled(method, A: DistributedMatrix, b: np.ndarray, x: np.ndarray, precond, rtol: float, atol: float,
             max_iterations: int, bnorm: float, **options) -> SolveInfo | None:
    """None when ||b|| (``bnorm``, reduced; ``options``: the method's others) lies in
    :data:`WELL_SCALED` or b and x hold nothing to scale; else the solve of ``method`` with b and x
    scaled by the power of two that brings their largest entry near 1 (one more reduction, only
    then), x scaled back in place. Scaling by a power of two is exact, so the iterates are the
    unscaled ones'."""
    if WELL_SCALED[0] <= bnorm <= WELL_SCALED[1] or np.isnan(bnorm):  # (inf: squares that overflow)
        return None
    n = A.n_owned
    top = np.array([max(np.abs(b[:n]).max(initial=0.0), np.abs(x[:n]).max(initial=0.0))])
    A.halo.pattern.comm.Allreduce(MPI.IN_PLACE, top, op=MPI.MAX)
    if not np.isfinite(top[0]) or top[0] == 0.0:
        return None
    exponent = -math.frexp(top[0])[1]
    if exponent == 0:
        return None
    np.ldexp(x, exponent, out=x)
    info = method(A, np.ldexp(b[:n], exponent), x, precond, rtol, math.ldexp(atol, exponent), max_iterations,
                  **options)
    np.ldexp(x, -exponent, out=x)
    return replace(info, correction=math.ldexp(info.correction, -exponent))


def pcg(A: DistributedMatrix, b: np.ndarray, x: np.ndarray, precond, rtol: float,
        atol: float = 0.0, max_iterations: int = 1000, held: np.ndarray | None = None) -> SolveInfo:
    """Preconditioned conjugate gradients for SPD ``A``; ``x`` (local size) is the initial
    guess and is overwritten. Converged when ||r|| <= max(rtol ||b||, atol), ``||b||`` taken
    over the owned rows other than ``held`` (Dirichlet rows, which ``x`` solves from the start:
    their ``diag * g``, of the stiffness across a thin layer, would hide the other rows).

    Three scalar ``Allreduce`` per iteration (p.Ap; r.r; r.z): the residual norm is reduced
    before the preconditioner, so the iteration that converges does not apply it (with a
    multigrid V-cycle, the costliest part of an iteration, to no use)."""
    comm = A.halo.pattern.comm
    n = A.n_owned
    with np.errstate(over="ignore"):  # (judged just below)
        bnorm = np.sqrt(dot(comm, b, b, n) if held is None else free_dot(comm, b, held, n))
    scaled = rescaled(pcg, A, b, x, precond, rtol, atol, max_iterations, bnorm, held=held)
    if scaled is not None:
        return scaled
    r = b[:n] - A.matvec(x)
    rr = dot(comm, r, r, n)
    scale = bnorm if bnorm > 0 else max(float(np.sqrt(rr)), 1.0)  # b = 0: relative to r0
    target = max(rtol * scale, atol)
    if not (np.isfinite(scale) and np.isfinite(rr)):  # inf or NaN data: never "converged"
        return SolveInfo(0, float("nan"), False)
    it = 0
    p = np.zeros_like(x)
    Ap = np.empty(n)
    rz = None
    breakdown = False
    # in-place BLAS updates (no temporaries of the vector size); BLAS refuses empty vectors
    axpy = daxpy if n else (lambda x_, y_, a=1.0: y_)
    while np.sqrt(rr) > target and it < max_iterations:
        z = precond(r)
        rz_new = dot(comm, r, z, n)
        if not rz_new > 0:  # the preconditioner is not positive definite on r (or r.z underflowed)
            breakdown = True
            break
        if rz is None:
            p[:n] = z
        else:
            p[:n] *= rz_new / rz  # p = z + beta p
            p[:n] += z
        rz = rz_new
        A.matvec(p, Ap)
        pAp = dot(comm, p, Ap, n)
        if not pAp > 0:
            breakdown = True  # not SPD (or round-off): reported as not converged
            break
        alpha = rz / pAp
        axpy(p[:n], x[:n], a=alpha)  # x += alpha p
        axpy(Ap, r, a=-alpha)  # r -= alpha A p
        rr = dot(comm, r, r, n)
        it += 1
        if not np.isfinite(rr):
            break  # reported as not converged
    A.halo.update(x)
    return SolveInfo(it, float(np.sqrt(rr) / scale), bool(np.sqrt(rr) <= target), correction(A, r),
                     breakdown and not np.sqrt(rr) <= target)


def free_dot(comm, b: np.ndarray, held: np.ndarray, n_owned: int) -> float:
    """b.b over the owned rows other than ``held`` (collective)."""
    free = b[:n_owned].copy()
    free[held] = 0.0
    return dot(comm, free, free, n_owned)


def correction(A: DistributedMatrix, r: np.ndarray) -> float:
    """This rank's largest |r_i / A_ii| over its owned rows (no communication)."""
    if not len(r):
        return 0.0
    diag = getattr(A, "_abs_diagonal", None)
    if diag is None:
        if not hasattr(A, "diagonal"):  # an operator without its entries: nothing to estimate
            return 0.0
        diag = np.abs(A.diagonal())
        diag[diag == 0] = np.inf
        A._abs_diagonal = diag
    with np.errstate(all="ignore"):
        return float(np.max(np.abs(r) / diag))


GMRES_RESTART = 40  # Krylov vectors kept before GMRES restarts


def gmres(A: DistributedMatrix, b: np.ndarray, x: np.ndarray, precond, rtol: float, atol: float = 0.0,
          max_iterations: int = 1000) -> SolveInfo:
    """Right-preconditioned restarted GMRES (flexible: the preconditioned vectors are kept) for a
    non-symmetric ``A``; ``x`` (local size) is the initial guess and is overwritten. Converged
    when the true residual ||b - A x|| <= max(rtol ||b||, atol). Classical Gram-Schmidt applied
    twice (two fused ``Allreduce`` per iteration, stable as modified Gram-Schmidt) and one for the
    norm. The basis grows only as far as the iterations go, at most :data:`GMRES_RESTART` vectors."""
    restart = GMRES_RESTART
    comm = A.halo.pattern.comm
    n = A.n_owned
    with np.errstate(over="ignore"):  # (judged just below)
        bnorm = np.sqrt(dot(comm, b, b, n))
    scaled = rescaled(gmres, A, b, x, precond, rtol, atol, max_iterations, bnorm)
    if scaled is not None:
        return scaled
    scale = target = None
    it = 0
    work = np.zeros_like(x)  # a local vector (ghosts) for the products
    residual = np.inf
    while True:
        r = b[:n] - A.matvec(x)
        beta = np.sqrt(dot(comm, r, r, n))
        if scale is None:
            scale = bnorm if bnorm > 0 else max(beta, 1.0)
            target = max(rtol * scale, atol)
        residual = beta
        if not (np.isfinite(beta) and np.isfinite(scale)):  # inf or NaN data: never "converged"
            return SolveInfo(it, float("nan"), False)
        if beta <= target or it >= max_iterations:
            break
        V = np.empty((min(8, restart + 1), n))  # grows by doubling, up to restart + 1 rows
        Z = np.empty((min(8, restart), n))
        V[0] = r / beta
        H = np.zeros((restart + 1, restart))
        g = np.zeros(restart + 1)
        g[0] = beta
        cs, sn = np.zeros(restart), np.zeros(restart)
        j = 0
        for j in range(restart):
            if j >= len(Z):
                Z = _grown(Z, restart)
            Z[j] = precond(V[j])
            work[:n] = Z[j]
            w = A.matvec(work)
            basis = V[: j + 1]
            h = np.empty(j + 1)
            comm.Allreduce(basis @ w, h)
            w -= h @ basis
            h2 = np.empty(j + 1)
            comm.Allreduce(basis @ w, h2)
            w -= h2 @ basis
            h += h2
            hn = np.sqrt(dot(comm, w, w, n))
            H[: j + 1, j] = h
            H[j + 1, j] = hn
            for i in range(j):  # earlier Givens rotations on the new column
                H[i, j], H[i + 1, j] = cs[i] * H[i, j] + sn[i] * H[i + 1, j], -sn[i] * H[i, j] + cs[i] * H[i + 1, j]
            rho = np.hypot(H[j, j], H[j + 1, j])
            cs[j], sn[j] = (H[j, j] / rho, H[j + 1, j] / rho) if rho > 0 else (1.0, 0.0)
            H[j, j] = rho
            H[j + 1, j] = 0.0
            g[j + 1] = -sn[j] * g[j]
            g[j] = cs[j] * g[j]
            it += 1
            residual = abs(g[j + 1])
            if residual <= target or it >= max_iterations or hn <= 1e-300:
                break
            if j + 1 >= len(V):
                V = _grown(V, restart + 1)
            V[j + 1] = w / hn
        k = j + 1
        y = np.linalg.solve(np.triu(H[:k, :k]) + np.diag(np.where(np.diag(H[:k, :k]) == 0, 1.0, 0.0)), g[:k])
        x[:n] += y @ Z[:k]
        A.halo.update(x)
        if residual <= target or it >= max_iterations or hn <= 1e-300:
            r = b[:n] - A.matvec(x)  # the true residual decides
            residual = np.sqrt(dot(comm, r, r, n))
            if residual <= target or it >= max_iterations:
                break
    A.halo.update(x)
    return SolveInfo(it, float(residual / scale), bool(residual <= target))


def _grown(rows: np.ndarray, limit: int) -> np.ndarray:
    """``rows`` with room for twice as many (at most ``limit``), the first ones copied."""
    out = np.empty((min(2 * len(rows), limit), rows.shape[1]))
    out[: len(rows)] = rows
    return out
