"""Conjugate gradients' breakdowns: a direction of no descent (p.Ap <= 0) or a preconditioner that
is not positive on the residual (r.z <= 0) end the solve as not converged, flagged as a breakdown
(never a ZeroDivisionError); a sound system converges without the flag."""

import numpy as np
import pytest
import scipy.sparse as sp
from mpi4py import MPI

from solver.la.krylov import gmres, pcg
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


@pytest.mark.parametrize("method", [pcg, gmres])
@pytest.mark.parametrize("power", [-540, -1000, 600])
def test_a_system_of_tiny_or_huge_values_solves_as_its_scaled_copy(method, power):
    """A field decayed to 1e-160 (or grown to 1e180): the squares in the dot products underflowed
    (r.r = 0: "no descent", exit 3 on a sound step) or overflow. b and x are scaled by a power of two
    first, exactly: the solution is the scaled one bit for bit, with the same iterations."""
    n = 50
    A, b = serial(laplacian(n)), np.cos(np.arange(n)) + 1.5
    x0 = np.linspace(0.0, 1.0, n)
    x, x_scaled = x0.copy(), np.ldexp(x0, power)
    jacobi = lambda r: r / 2.0  # noqa: E731
    info = method(A, b, x, jacobi, 1e-10)
    scaled = method(A, np.ldexp(b, power), x_scaled, jacobi, 1e-10)
    assert info.converged and scaled.converged and not scaled.breakdown
    assert scaled.iterations == info.iterations and scaled.residual == info.residual
    assert np.array_equal(x_scaled, np.ldexp(x, power)) if power > -1000 else \
        np.allclose(np.ldexp(x_scaled, -power), x, rtol=1e-8, atol=0)
