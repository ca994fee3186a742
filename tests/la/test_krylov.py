"""Conjugate gradients' breakdowns: a direction of no descent (p.Ap <= 0) or a preconditioner that
is not positive on the residual (r.z <= 0) end the solve as not converged, flagged as a breakdown
(never a ZeroDivisionError); a sound system converges without the flag."""

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from solver.la.krylov import pcg
from solver.la.matrix import DistributedMatrix
from solver.parallel.exchange import HaloExchange


def serial(A: sp.csr_matrix) -> DistributedMatrix:
    n = A.shape[0]
    halo = HaloExchange(MPI.COMM_SELF, n, np.arange(n), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    return DistributedMatrix(A.tocsr(), halo)


def laplacian(n: int) -> sp.csr_matrix:
    return sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1], format="csr")


def test_a_sound_system_converges_without_a_breakdown():
    A, b = serial(laplacian(50)), np.ones(50)
    info = pcg(A, b, np.zeros(50), lambda r: r.copy(), 1e-10)
    assert info.converged and not info.breakdown


def test_an_indefinite_system_is_a_breakdown():
    A = serial(-laplacian(50))
    info = pcg(A, np.ones(50), np.zeros(50), lambda r: r.copy(), 1e-10)
    assert not info.converged and info.breakdown and info.iterations == 0


def test_a_preconditioner_not_positive_on_the_residual_is_a_breakdown():
    """z = -r: r.z < 0 at once (its ratio with the next r.z divided by zero when r.z was 0)."""
    for precond in (lambda r: -r, lambda r: np.zeros_like(r)):
        info = pcg(serial(laplacian(50)), np.ones(50), np.zeros(50), precond, 1e-10)
        assert not info.converged and info.breakdown
