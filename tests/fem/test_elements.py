"""Reference elements and quadrature."""

import itertools
import math

import numpy as np
import pytest

from solver.fem.quadrature import quadrature
from solver.mesh.cells import CELLS


@pytest.mark.parametrize("cell", ["triangle", "tetrahedron", "quadrilateral", "hexahedron"])
@pytest.mark.parametrize("degree", [1, 2, 3, 4, 5, 6])
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


@pytest.mark.parametrize("cell", ["triangle", "tetrahedron", "quadrilateral", "hexahedron",
                                  "triangle6", "tetrahedron10", "quadrilateral9", "hexahedron27", "line3"])
def test_shape_functions_are_nodal_and_gradients_consistent(cell):
    ref = CELLS[cell]
    assert np.allclose(ref.shape(ref.vertices), np.eye(ref.n_nodes))
    rng = np.random.default_rng(0)
    p = rng.random((5, ref.dim)) * (0.3 if ref.simplex else 1.0)
    assert np.allclose(ref.shape(p).sum(axis=1), 1.0)
    assert np.allclose(ref.grad(p).sum(axis=1), 0.0)
    eps = 1e-6
    for d in range(ref.dim):
        step = np.zeros(ref.dim)
        step[d] = eps
        fd = (ref.shape(p + step) - ref.shape(p - step)) / (2 * eps)
        assert np.allclose(fd, ref.grad(p)[:, :, d], atol=1e-8)


@pytest.mark.parametrize("cell", ["triangle6", "tetrahedron10", "quadrilateral9", "hexahedron27"])
def test_quadratic_cells_reproduce_quadratics_and_their_facets_are_their_own(cell):
    """Every polynomial of degree 2 is interpolated exactly (so P2/Q2 converge at order 3), and a
    facet's nodes are the nodes of the quadratic facet cell lying on it, in that cell's order."""
    ref = CELLS[cell]
    rng = np.random.default_rng(1)
    x = ref.vertices
    p = rng.random((7, ref.dim)) * (0.3 if ref.simplex else 1.0)
    for powers in itertools.product(range(3), repeat=ref.dim):
        if sum(powers) > 2:
            continue
        f = lambda y: np.prod(y ** np.array(powers), axis=1)  # noqa: E731
        assert np.allclose(ref.shape(p) @ f(x), f(p))
    facet = CELLS[ref.facet_name]
    for nodes in ref.facets:
        assert len(nodes) == facet.n_nodes
        corners = x[list(nodes[: facet.n_corners])]
        # the facet cell's own map through its corners puts each of its nodes where the cell has it
        mapped = facet.linear.shape(facet.vertices) @ corners
        assert np.allclose(mapped, x[list(nodes)])


def test_quadratic_lumping_is_positive_where_row_sums_are_not():
    """The diagonally scaled (HRZ) weights of P2 cells are positive and sum to the volume; the
    row sums of a P2 triangle vanish at its vertices and those of a tetrahedron are negative."""
    from mpi4py import MPI

    from solver.fem.assembly import Assembler
    from solver.mesh.structured import structured_mesh

    for cell, n in (("triangle", (3, 2)), ("tetrahedron", (2, 2, 2)), ("quadrilateral", (3, 2))):
        mesh = structured_mesh(MPI.COMM_SELF, cell, n, [1.0] * len(n), [0.0] * len(n), degree=2)
        a = Assembler(mesh)
        w = a.nodal_weights()
        assert np.all(w > 0) and np.allclose(w.sum(axis=1), 1.0 / len(mesh.cells))  # each cell's volume
        rows = np.asarray(a.mass(1.0).sum(axis=1)).ravel()
        corners = np.unique(mesh.cells[:, : CELLS[mesh.cell_type].n_corners])
        if cell == "triangle":
            assert np.allclose(rows[corners], 0.0, atol=1e-15)
        elif cell == "tetrahedron":
            assert np.all(rows[corners] < 0)
        assert np.all(np.asarray(a.lumped_mass(np.ones(len(mesh.cells))).sum(axis=1)) > 0)
