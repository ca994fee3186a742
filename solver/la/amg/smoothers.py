"""The smoother of every level: Chebyshev polynomials in ``D^-1 A``, and the Lanczos estimate
of ``lam = rho(D^-1 A)`` that places them.

* **Lanczos**: a few steps on ``D^-1/2 A D^-1/2`` (symmetric, the same spectrum), the dot
  products by ``Allreduce``, from a deterministic start vector made from global ids (so runs
  repeat exactly, on any number of ranks); the largest Ritz value underestimates lam slightly,
  which the interval's upper end (``upper`` > 1) covers. The same estimate gives the
  prolongator smoothing its ``omega`` (:mod:`~solver.la.amg.smooth`).
* **Chebyshev** of degree ``degree`` on ``[lower * lam, upper * lam]``: the three-term
  recurrence ``d_k = c1 d_{k-1} + c2 D^-1 r_k``, with ``D^-1`` folded into per-row
  coefficient vectors, one product with A per degree. No Gauss-Seidel, so the smoother gives
  the same iterates on any number of ranks; pre- and post-smoothing are the same symmetric
  operator, so with the exact coarsest solve the V-cycle is symmetric (CG-safe).

Pre-smoothing starts from ``x = 0`` (its first product is skipped) and returns the residual
its last product made, which restriction needs; the vector updates are in place (BLAS
``axpy``, ``out=`` arguments) on the level's preallocated arrays.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg.blas import get_blas_funcs

from solver.la.amg.numbering import allsum
from solver.la.matrix import DistributedMatrix

__all__ = ["ChebyshevSmoother", "hash_vector", "lanczos_max"]


def hash_vector(gids: np.ndarray) -> np.ndarray:
    """A deterministic pseudo-random vector in [-0.5, 0.5) from global ids (Lanczos start)."""
    h = (gids.astype(np.uint64) * np.uint64(2654435761) + np.uint64(12345)) % np.uint64(2 ** 32)
    return h.astype(np.float64) / 2.0 ** 32 - 0.5


def lanczos_max(comm, A: DistributedMatrix, dinv: np.ndarray, gids: np.ndarray, steps: int) -> float:
    """Largest Ritz value of ``D^-1 A`` (as ``D^-1/2 A D^-1/2``) after ``steps`` Lanczos steps,
    deterministic; every rank calls it (idle ranks with empty vectors)."""
    n = A.n_owned
    s = np.sqrt(dinv)
    v = np.zeros(len(gids))
    v[:n] = hash_vector(gids[:n]) + 1.0  # positive-ish: a smooth part too
    norm = math.sqrt(allsum(comm, [np.dot(v[:n], v[:n])])[0])
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
        alpha = allsum(comm, [np.dot(w, v[:n])])[0]
        w -= alpha * v[:n]
        beta = math.sqrt(max(allsum(comm, [np.dot(w, w)])[0], 0.0))
        alphas.append(alpha)
        if beta <= 1e-12 * abs(alpha):
            break
        betas.append(beta)
        v_old = v[:n].copy()
        v[:n] = w / beta
    k = len(alphas)
    T = np.diag(alphas) + np.diag(betas[: k - 1], 1) + np.diag(betas[: k - 1], -1)
    return float(np.linalg.eigvalsh(T)[-1])


class ChebyshevSmoother:
    """Chebyshev smoothing of a level, a base of :class:`~solver.la.amg.level.Level`: it uses
    the level's matrix ``A``, ``gids``, sizes ``n`` and ``n_local``, ``dtype``, the work array
    ``s`` and the product ``sub_matvec``, and sets ``dinv``, ``lam`` and ``degree``. A base
    rather than a member, so that the V-cycle calls it with no extra attribute lookup."""

    def set_smoother(self, comm, degree: int, lower: float, upper: float, steps: int) -> None:
        """Chebyshev polynomial of ``degree`` in D^-1 A on [lower, upper] * lam_max (Lanczos)."""
        d = self.A.diagonal()
        if np.any(d < 0):
            raise ValueError("AMG needs a matrix with a positive diagonal (SPD)")
        dinv = np.zeros_like(d)
        np.divide(1.0, d, out=dinv, where=d != 0.0)
        self.dinv = dinv
        self.lam = lanczos_max(comm, self.A, dinv, self.gids, steps)
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
        blas_axpy = get_blas_funcs("axpy", dtype=self.dtype)
        # y += a x in place (BLAS refuses empty arrays: an idle rank has nothing to add)
        self.axpy = (lambda x, y, a: blas_axpy(x, y, a=a)) if self.n else (lambda x, y, a: None)
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
