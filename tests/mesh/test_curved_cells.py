"""Curved quadratic cells: the Jacobian of their map is a polynomial that may change sign between
the nodes, where it is positive; the validity check samples a lattice of points inside."""

import meshio
import numpy as np
import pytest
from conftest import ROOT, one_error, run_solver

from solver.mesh.cells import CELLS
from solver.mesh.quality import corner_jacobians, map_folds, map_jacobians, sample_points

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


# one 9-node quadrilateral of positive Jacobian throughout whose corners alone make a dart (the corner
# at (0.45, 0.45) points inwards): its curved edges turn it
CURVED_DART = np.array([(0, 0), (1, 0), (0.45, 0.45), (0, 1), (0.4973, -0.3401), (0.7794, 0.1314),
                        (0.2117, 0.5327), (-0.2486, 0.7878), (0.2531, 0.0222)])
STEADY = """[mesh]
file = "{mesh}"
[element]
degree = 2
[material]
k = 1.0
rho = 1.0
c = 1.0
[boundary.left]
type = "dirichlet"
value = 0.0
[boundary.right]
type = "dirichlet"
value = 1.0
[time]
scheme = "steady"
[output]
directory = "{out}"
"""


def _one_quad9(folder, nodes):
    """A case on one 9-node quadrilateral, fixed on its edges 3-0 (left) and 1-2 (right)."""
    mesh = folder / "quad9.msh"
    meshio.Mesh(np.column_stack([nodes, np.zeros(9)]), [("line3", np.array([[3, 0, 7], [1, 2, 5]])),
                                                        ("quad9", np.arange(9)[None])],
                cell_data={"gmsh:physical": [np.array([1, 2]), np.array([3])],
                           "gmsh:geometrical": [np.array([1, 2]), np.array([3])]},
                field_data={"left": np.array([1, 1]), "right": np.array([2, 1]), "body": np.array([3, 2])}
                ).write(mesh, file_format="gmsh22", binary=False)
    case = folder / "quad9.toml"
    case.write_text(STEADY.format(mesh=mesh, out=folder / "out"))
    return case


def test_a_curved_cell_is_judged_by_its_map_not_by_its_corners():
    dart = np.arange(9)[None]
    assert corner_jacobians(CURVED_DART, dart[:, :4], "quadrilateral").min() < 0  # its corners: a dart
    assert map_jacobians(CURVED_DART, dart, "quadrilateral9").min() > 0.5
    folded = CURVED_DART.copy()
    folded[4] = (0.5, 0.6)  # the bottom edge's midpoint pushed past the cell's middle: the map folds
    assert corner_jacobians(folded, dart[:, :4], "quadrilateral").min() < 0
    assert map_folds(folded, dart, "quadrilateral9").all() and not map_folds(CURVED_DART, dart, "quadrilateral9").any()


def test_a_valid_curved_cell_with_a_dart_of_corners_is_solved(tmp_path):
    run_solver(1, [_one_quad9(tmp_path, CURVED_DART)], cwd=ROOT, timeout=60)


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_cell_folded_by_a_midpoint_node_is_refused_naming_where(tmp_path, nprocs):
    square = np.array([(0, 0), (1, 0), (1, 1), (0, 1), (0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5), (0.5, 0.5)])
    square[7] = (0.45, 0.5)  # the left edge's midpoint, 0.45 edge lengths in: the map folds near it
    proc = run_solver(nprocs, [_one_quad9(tmp_path, square)], cwd=ROOT, timeout=60, check=False)
    line = one_error(proc, 2)
    assert "element 1 of its kind" in line and "quadratic map changes sign" in line and "Traceback" not in proc.stderr
