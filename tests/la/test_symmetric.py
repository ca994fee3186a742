"""Symmetric sparse storage (the upper triangle) against SciPy's CSR product."""

import numpy as np
import pytest
import scipy.sparse as sp

from solver.la import symmetric
from solver.la.symmetric import SymmetricCSR


def _matrix(n: int, seed: int) -> sp.csr_matrix:
    """A random symmetric matrix with empty rows and zero diagonal entries."""
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, n, 6 * n), rng.integers(0, n, 6 * n)
    keep = (rows % 7 != 3) & (cols % 7 != 3)  # some rows and columns stay empty
    vals = rng.standard_normal(keep.sum())
    A = sp.coo_matrix((vals, (rows[keep], cols[keep])), shape=(n, n))
    A = (A + A.T).tocsr()
    A.setdiag(np.where(np.arange(n) % 5 == 0, 0.0, 10.0))
    return A


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "scipy"])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_subtract_product_equals_csr_product(monkeypatch, compiled, dtype, tol):
    if compiled and not symmetric.AVAILABLE:
        pytest.skip("numba is not available")
    monkeypatch.setattr(symmetric, "AVAILABLE", compiled and symmetric.AVAILABLE)
    A = _matrix(300, 1)
    x = np.random.default_rng(2).standard_normal(300).astype(dtype)
    r = np.random.default_rng(3).standard_normal(300).astype(dtype)
    expected = r.astype(np.float64) - A @ x.astype(np.float64)
    S = SymmetricCSR(A, dtype)
    S.subtract_product(x, r)
    assert r.dtype == dtype
    scale = np.abs(expected).max()
    assert np.abs(r - expected).max() <= tol * scale


def test_only_the_upper_triangle_is_read():
    """Entries that differ by rounding across the diagonal give an exactly symmetric operator:
    the upper triangle's."""
    A = _matrix(120, 4).tolil()
    A[10, 3], A[3, 10] = 1.0, 1.0 + 1e-9
    A = A.tocsr()
    U = sp.triu(A, k=1)
    exact = (U + U.T + sp.diags(A.diagonal())).toarray()
    S = SymmetricCSR(A)
    columns = []
    for j in range(120):
        e = np.zeros(120)
        e[j] = 1.0
        r = np.zeros(120)
        S.subtract_product(e, r)
        columns.append(-r)
    M = np.array(columns).T
    assert np.array_equal(M, M.T)
    np.testing.assert_allclose(M, exact, rtol=0, atol=1e-15)


def test_refuses_a_rectangular_matrix():
    with pytest.raises(ValueError, match="square"):
        SymmetricCSR(sp.random(4, 5, density=0.5, format="csr"))


def test_distributed_products_from_the_upper_triangle_equal_the_csr_ones():
    """CG's products (``DistributedMatrix.multiply_symmetric``) and the mass matrix's unsplit
    ``RowsOperator`` give the CSR product, ghost columns included (ghosts of this rank's own
    rows on ``COMM_SELF``)."""
    from mpi4py import MPI

    from solver.la.matrix import DistributedMatrix, RowsOperator
    from solver.parallel.exchange import HaloExchange

    n, g = 300, 40
    rng = np.random.default_rng(5)
    D = _matrix(n, 4)
    ghost_keys = np.sort(rng.choice(n, g, replace=False))
    halo = HaloExchange(MPI.COMM_SELF, n, np.arange(n), np.zeros(g, dtype=np.int64), ghost_keys)
    ghost_block = sp.random(n, g, density=0.05, random_state=6, format="csr")
    rows = sp.hstack([D, ghost_block], format="csr")
    x = np.zeros(n + g)
    x[:n] = rng.standard_normal(n)  # ghosts left at 0: the products must fetch them
    expected = D @ x[:n] + ghost_block @ x[:n][ghost_keys]
    tol = 1e-12 * np.abs(expected).max()
    A = DistributedMatrix(rows, halo)
    assert np.abs(A.matvec(x.copy()) - expected).max() <= tol
    A.multiply_symmetric()
    assert (A.symmetric is not None) == symmetric.AVAILABLE
    y = np.full(n, np.nan)
    assert A.matvec(x.copy(), y) is y
    assert np.abs(y - expected).max() <= tol
    assert np.abs(A.matvec(x.copy()) - expected).max() <= tol
    assert np.abs(RowsOperator(rows, halo).matvec(x.copy()) - expected).max() <= tol
