"""Distributed sparse linear algebra: matrix-vector products, preconditioners and PCG.

Vectors are local arrays ``[owned..., ghosts...]``; only owned entries take part in
reductions. A :class:`DistributedMatrix` holds a rank's owned rows split into the block
acting on owned columns and the block acting on ghost columns, so that the ghost
exchange overlaps with the owned-block product. Reductions use buffer-based
``Allreduce`` on NumPy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from mpi4py import MPI

from solver.exchange import HaloExchange


class DistributedMatrix:
    """Owned rows of a square distributed matrix (columns in local numbering)."""

    def __init__(self, owned_rows: sp.csr_matrix, halo: HaloExchange):
        n = halo.n_owned
        owned_rows = owned_rows.tocsr()
        self.halo = halo
        self.n_owned = n
        self.diag_block = owned_rows[:, :n].tocsr()
        self.offdiag_block = owned_rows[:, n:].tocsr()
        self.has_offdiag = self.offdiag_block.nnz > 0
        # only the rows next to the ghosts have ghost columns: multiply and add just those
        self.coupled_rows = np.flatnonzero(np.diff(self.offdiag_block.indptr))
        self.coupling = self.offdiag_block[self.coupled_rows]

    def diagonal(self) -> np.ndarray:
        return self.diag_block.diagonal()

    def matvec(self, x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """y = A x for the owned rows; updates the ghosts of ``x`` on the way."""
        request = self.halo.begin(x)
        y_new = self.diag_block @ x[: self.n_owned]
        request.Wait()
        if self.has_offdiag:
            y_new[self.coupled_rows] += self.coupling @ x[self.n_owned:]
        if y is None:
            return y_new
        y[:] = y_new
        return y


def dot(comm, a: np.ndarray, b: np.ndarray, n_owned: int) -> float:
    buf = np.array([np.dot(a[:n_owned], b[:n_owned])])
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    return float(buf[0])


class Identity:
    name = "none"

    def __call__(self, r):
        return r.copy()


class Jacobi:
    name = "jacobi"

    def __init__(self, A: DistributedMatrix):
        d = A.diagonal()
        if np.any(d <= 0):
            raise ValueError("Jacobi preconditioner needs a positive diagonal")
        self.inv_diag = 1.0 / d

    def __call__(self, r):
        return r * self.inv_diag


def nested_dissection(A: sp.csr_matrix) -> np.ndarray | None:
    """METIS nested-dissection ordering of a symmetric matrix's graph (pymetis), or None
    when pymetis is missing or the matrix is too small to bother."""
    if A.shape[0] < 5000:
        return None
    try:
        import pymetis
    except ImportError:
        return None
    G = A.tocsr(copy=True)
    G.setdiag(0.0)
    G.eliminate_zeros()
    perm = pymetis.nested_dissection(adjacency=pymetis.CSRAdjacency(G.indptr, G.indices))
    return np.asarray(perm[0] if isinstance(perm, tuple) else perm, dtype=np.int64)


class BlockJacobi:
    """Each rank factorises its owned diagonal block once (SuperLU) and solves with it.

    The block is symmetric positive definite: symmetric mode, no pivoting, and a fill-reducing
    ordering: METIS nested dissection (pymetis) when available, which at 250k-1M DOFs in 2D
    has about 20-30% less fill and factorises about twice as fast as SuperLU's own minimum
    degree on A^T + A (the fallback; itself about half the fill of SuperLU's default)."""

    name = "bjacobi"

    def __init__(self, A: DistributedMatrix):
        block = A.diag_block
        self.perm = nested_dissection(block)
        if self.perm is None:
            self.lu = spla.splu(block.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                options={"SymmetricMode": True})
        else:
            self.lu = spla.splu(block[self.perm][:, self.perm].tocsc(), permc_spec="NATURAL",
                                diag_pivot_thresh=0.0, options={"SymmetricMode": True})

    def __call__(self, r):
        if self.perm is None:
            return self.lu.solve(r)
        z = np.empty_like(r)
        z[self.perm] = self.lu.solve(r[self.perm])
        return z


class BlockILU:
    """Block Jacobi with an incomplete LU (SuperLU's ILUTP) of each rank's block: less memory
    than the full factorisation, more iterations."""

    name = "ilu"

    def __init__(self, A: DistributedMatrix, drop_tol: float = 1e-4, fill_factor: float = 10.0):
        self.ilu = spla.spilu(A.diag_block.tocsc(), drop_tol=drop_tol, fill_factor=fill_factor,
                              permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                              options={"SymmetricMode": True})

    def __call__(self, r):
        return self.ilu.solve(r)


class BlockAMG:
    """Block Jacobi with one smoothed-aggregation AMG V-cycle (pyamg) on each rank's block:
    iteration counts that stay flat under refinement on a rank, at O(n) memory."""

    name = "amg"

    def __init__(self, A: DistributedMatrix):
        try:
            import pyamg
        except ImportError:
            raise ImportError("solver.preconditioner = \"amg\" needs pyamg: pip install pyamg "
                              "(or pip install .[amg])") from None
        ml = pyamg.smoothed_aggregation_solver(A.diag_block.tocsr(), symmetry="symmetric", max_coarse=500)
        self.cycle = ml.aspreconditioner(cycle="V")  # symmetric smoothing: fit for CG

    def __call__(self, r):
        return self.cycle.matvec(r)


PRECONDITIONERS = {"none": lambda A: Identity(), "jacobi": Jacobi, "bjacobi": BlockJacobi,
                   "ilu": BlockILU, "amg": BlockAMG}


def make_preconditioner(name: str, A: DistributedMatrix):
    return PRECONDITIONERS[name](A)


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
    local = np.array([np.dot(r, z), np.dot(r, r)])
    comm.Allreduce(local, sums, op=MPI.SUM)
    rz, rr = sums
    scale = bnorm if bnorm > 0 else max(float(np.sqrt(rr)), 1.0)  # b = 0: relative to r0
    target = max(rtol * scale, atol)
    it = 0
    while np.sqrt(rr) > target and it < max_iterations:
        Ap = A.matvec(p)
        pAp = dot(comm, p, Ap, n)
        if pAp <= 0:
            break  # not SPD (or breakdown): reported as not converged
        alpha = rz / pAp
        x[:n] += alpha * p[:n]
        r -= alpha * Ap
        z = precond(r)
        local[0], local[1] = np.dot(r, z), np.dot(r, r)
        comm.Allreduce(local, sums, op=MPI.SUM)
        rz_new, rr = sums
        p[:n] = z + (rz_new / rz) * p[:n]
        rz = rz_new
        it += 1
    A.halo.update(x)
    return SolveInfo(it, float(np.sqrt(rr) / scale), bool(np.sqrt(rr) <= target))
