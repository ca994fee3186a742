"""Krylov methods on distributed matrices: preconditioned conjugate gradients, with only owned
entries taking part in reductions (buffer-based ``Allreduce`` on NumPy arrays)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mpi4py import MPI
from scipy.linalg.blas import daxpy

from solver.la.matrix import DistributedMatrix, dot


@dataclass
class SolveInfo:
    iterations: int
    residual: float  # final ||r|| / ||b||
    converged: bool


def pcg(A: DistributedMatrix, b: np.ndarray, x: np.ndarray, precond, rtol: float,
        atol: float = 0.0, max_iterations: int = 1000) -> SolveInfo:
    """Preconditioned conjugate gradients for SPD ``A``; ``x`` (local size) is the initial
    guess and is overwritten. Converged when ||r|| <= max(rtol ||b||, atol).
    Two ``Allreduce`` per iteration (p.Ap, then r.z and r.r together)."""
    comm = A.halo.pattern.comm
    n = A.n_owned
    sums = np.empty(2)
    bnorm = np.sqrt(dot(comm, b, b, n))
    r = b[:n] - A.matvec(x)
    z = precond(r)
    p = np.zeros_like(x)
    p[:n] = z
    Ap = np.empty(n)
    local = np.array([np.dot(r, z), np.dot(r, r)])
    comm.Allreduce(local, sums, op=MPI.SUM)
    rz, rr = sums
    scale = bnorm if bnorm > 0 else max(float(np.sqrt(rr)), 1.0)  # b = 0: relative to r0
    target = max(rtol * scale, atol)
    it = 0
    # in-place BLAS updates (no temporaries of the vector size); BLAS refuses empty vectors
    axpy = daxpy if n else (lambda x_, y_, a=1.0: y_)
    while np.sqrt(rr) > target and it < max_iterations:
        A.matvec(p, Ap)
        pAp = dot(comm, p, Ap, n)
        if pAp <= 0:
            break  # not SPD (or breakdown): reported as not converged
        alpha = rz / pAp
        axpy(p[:n], x[:n], a=alpha)  # x += alpha p
        axpy(Ap, r, a=-alpha)  # r -= alpha A p
        z = precond(r)
        local[0], local[1] = np.dot(r, z), np.dot(r, r)
        comm.Allreduce(local, sums, op=MPI.SUM)
        rz_new, rr = sums
        p[:n] *= rz_new / rz  # p = z + beta p
        p[:n] += z
        rz = rz_new
        it += 1
    A.halo.update(x)
    return SolveInfo(it, float(np.sqrt(rr) / scale), bool(np.sqrt(rr) <= target))
