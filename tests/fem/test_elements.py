"""Reference elements and quadrature."""

import itertools
import math

import numpy as np
import pytest

from solver.fem.quadrature import quadrature
from solver.mesh.cells import CELLS


@pytest.mark.parametrize("cell", ["triangle", "tetrahedron", "quadrilateral", "hexahedron"])
@pytest.mark.parametrize("degree", [1, 2, 3, 4, 5])
def test_quadrature_is_exact_for_monomials(cell, degree):
    ref = CELLS[cell]
    pts, w = quadrature(cell, degree)
    for powers in itertools.product(range(degree + 1), repeat=ref.dim):
        if sum(powers) > degree:
            continue
        if ref.affine:  # int over the unit simplex: prod(a_i!) / (d + sum a_i)!
            exact = math.prod(math.factorial(a) for a in powers) / math.factorial(ref.dim + sum(powers))
        else:
            if max(powers) > degree:
                continue
            exact = math.prod(1.0 / (a + 1) for a in powers)
        approx = np.sum(w * np.prod(pts ** np.array(powers), axis=1))
        assert approx == pytest.approx(exact, rel=1e-12, abs=1e-14), (powers, approx, exact)


@pytest.mark.parametrize("cell", ["triangle", "tetrahedron", "quadrilateral", "hexahedron"])
def test_shape_functions_are_nodal_and_gradients_consistent(cell):
    ref = CELLS[cell]
    assert np.allclose(ref.shape(ref.vertices), np.eye(ref.n_nodes))
    rng = np.random.default_rng(0)
    p = rng.random((5, ref.dim)) * (0.3 if ref.affine else 1.0)
    assert np.allclose(ref.shape(p).sum(axis=1), 1.0)
    assert np.allclose(ref.grad(p).sum(axis=1), 0.0)
    eps = 1e-6
    for d in range(ref.dim):
        step = np.zeros(ref.dim)
        step[d] = eps
        fd = (ref.shape(p + step) - ref.shape(p - step)) / (2 * eps)
        assert np.allclose(fd, ref.grad(p)[:, :, d], atol=1e-8)
