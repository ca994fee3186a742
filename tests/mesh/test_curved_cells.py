"""Curved quadratic cells: the Jacobian of their map is a polynomial that may change sign between
the nodes, where it is positive; the validity check samples a lattice of points inside."""

import numpy as np

from solver.mesh.cells import CELLS
from solver.mesh.quality import map_jacobians, sample_points

# one 6-node triangle: positive Jacobians at its six nodes, negative over about 18% of it
FOLDED_INSIDE = np.array([(0, 0), (1, 0), (0, 1), (0.0241251, -0.03991518), (0.86550245, 0.71994619),
                          (0.38441683, 0.31327992)])


def test_a_quadratic_triangle_inverted_between_its_nodes_is_found():
    ref = CELLS["triangle6"]
    J = np.einsum("nd,qne->qde", FOLDED_INSIDE, ref.grad(ref.vertices))
    assert np.linalg.det(J).min() > 0.01  # the nodes alone see a valid cell
    assert map_jacobians(FOLDED_INSIDE, np.arange(6)[None], "triangle6").min() < -0.4


def test_the_samples_hold_the_nodes_and_stay_in_the_cell():
    for name in ("triangle6", "quadrilateral9", "tetrahedron10", "hexahedron27"):
        ref, samples = CELLS[name], sample_points(name)
        assert all(np.isclose(samples, v).all(axis=1).any() for v in ref.vertices)
        assert samples.min() >= 0 and samples.max() <= 1
        if ref.linear.n_corners == ref.dim + 1:
            assert samples.sum(axis=1).max() <= 1 + 1e-12
