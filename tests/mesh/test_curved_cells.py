"""Curved quadratic cells: the Jacobian of their map is a polynomial that may change sign between
the nodes, where it is positive, and between any lattice of samples; the validity check bounds it
over the whole cell by its Bernstein coefficients."""

import meshio
import numpy as np
import pytest
from conftest import ROOT, one_error, run_solver

from solver.mesh.cells import CELLS
from solver.errors import CaseError
from solver.mesh.bernstein import children, coefficients, determinants, lattice, lattice_values, sound_jacobians, \
    subdivision
from solver.mesh.conformity import check_mesh_file
from solver.mesh.quality import corner_jacobians

# one 6-node triangle: positive Jacobians at its six nodes, negative over about 18% of it
FOLDED_INSIDE = np.array([(0, 0), (1, 0), (0, 1), (0.0241251, -0.03991518), (0.86550245, 0.71994619),
                          (0.38441683, 0.31327992)])


def test_a_quadratic_triangle_inverted_between_its_nodes_is_found():
    ref = CELLS["triangle6"]
    J = np.einsum("nd,qne->qde", FOLDED_INSIDE, ref.grad(ref.vertices))
    assert np.linalg.det(J).min() > 0.01  # the nodes alone see a valid cell
    assert not sound_jacobians(FOLDED_INSIDE, np.arange(6)[None], "triangle6")[0].any()


def _old_samples(name):
    """The lattice the check sampled before: spacing 1/6 in 2D, 1/4 in 3D, the nodes among them."""
    ref = CELLS[name]
    n = 6 if ref.dim == 2 else 4
    grid = np.stack(np.meshgrid(*[np.arange(n + 1)] * ref.dim, indexing="ij"), axis=-1).reshape(-1, ref.dim)
    return (grid[grid.sum(axis=1) <= n] if ref.simplex else grid) / n


def _fine_minimum(nodes, name, n=24):
    ref = CELLS[name]
    grid = np.stack(np.meshgrid(*[np.arange(n + 1)] * ref.dim, indexing="ij"), axis=-1).reshape(-1, ref.dim)
    grid = (grid[grid.sum(axis=1) <= n] if ref.simplex else grid) / n
    return np.linalg.det(np.einsum("nd,qne->qde", nodes, ref.grad(grid))).min()


# cells folded between the samples of the check before (positive there, nodes included; negative
# inside, midpoint nodes within 0.4 edge lengths of the middles of their edges)
FOLDED_BETWEEN = {
    "triangle6": [(0, 0), (1, 0), (0, 1), (0.15, 0.15), (0.65, 0.74), (-0.1, 0.19)],
    "quadrilateral9": [(0, 0), (1, 0), (1, 1), (0, 1), (0.657, 0.076), (1.215, 0.595), (0.745, 0.72), (-0.231, 0.694),
                       (0.329, 0.414)],
    "tetrahedron10": [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0.67, -0.09, -0.14), (0.55, 0.4, 0.19),
                      (-0.07, 0.47, 0.08), (0.06, -0.15, 0.65), (0.18, -0.23, 0.88), (-0.01, 0.57, 0.77)],
    "hexahedron27": [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1),
                     (0.51, -0.11, 0.06), (0.84, 0.51, 0.06), (0.39, 1.09, 0.01), (0.06, 0.56, -0.06),
                     (0.43, -0.04, 0.99), (1.04, 0.44, 0.97), (0.47, 1.14, 0.95), (0.18, 0.24, 0.97),
                     (0.02, 0.03, 0.33), (0.85, -0.1, 0.44), (0.87, 0.88, 0.62), (0.2, 0.99, 0.55),
                     (0.04, 0.37, 0.49), (1.0, 0.5, 0.57), (0.27, -0.09, 0.45), (0.49, 0.86, 0.39),
                     (0.53, 0.73, -0.01), (0.66, 0.61, 1.08), (0.44, 0.23, 0.54)],
}


@pytest.mark.parametrize("name", sorted(FOLDED_BETWEEN))
def test_a_curved_cell_folded_between_any_samples_is_refused(name):
    """Each was accepted: its Jacobian positive at the points sampled (1/6 of the cell apart in 2D,
    1/4 in 3D), negative between them. Refused by the file check, naming the point."""
    nodes, cell = np.array(FOLDED_BETWEEN[name], dtype=float), np.arange(len(FOLDED_BETWEEN[name]))[None]
    ref = CELLS[name]
    assert np.linalg.det(np.einsum("nd,qne->qde", nodes, ref.grad(_old_samples(name)))).min() > 0
    assert _fine_minimum(nodes, name) < -0.01
    assert not sound_jacobians(nodes, cell, name)[0].any()
    facets = np.zeros((0, CELLS[ref.facet_name].n_nodes), int), np.zeros(0, int)
    with pytest.raises(CaseError, match=r"element 1 of its kind .* quadratic map changes sign or vanishes near \("):
        check_mesh_file("m.msh", nodes, cell, name, *facets)


@pytest.mark.parametrize("name", ["quadrilateral", "hexahedron", "triangle6", "quadrilateral9", "tetrahedron10",
                                  "hexahedron27"])
def test_the_bernstein_coefficients_bound_the_jacobian_over_the_cell(name):
    """Over random cells: the least coefficient is at most the least det J of a fine lattice, which is
    at most the least of the values it comes from; a bilinear quadrilateral's det J is linear (its
    coefficients are its corners' values)."""
    ref = CELLS[name]
    rng = np.random.default_rng(3)
    for _ in range(20):
        nodes = ref.vertices + rng.normal(scale=0.15, size=ref.vertices.shape)
        values = lattice_values(nodes[None], name)
        low = coefficients(values, name).min()
        assert low <= _fine_minimum(nodes, name, 12) + 1e-12 <= values.min() + 2e-12
    if name == "quadrilateral":
        assert len(lattice(name)[0]) == 4  # the corners decide
@pytest.mark.parametrize("name", ["hexahedron", "triangle6", "quadrilateral9", "tetrahedron10", "hexahedron27"])
def test_a_cell_cut_in_pieces_has_the_coefficients_of_its_pieces(name):
    """The coefficients cut by one matrix are those of det J on each piece, from its own lattice."""
    ref, (x, to_bernstein), (o, A) = CELLS[name], lattice(name), children(name)
    nodes = ref.vertices + np.random.default_rng(4).normal(scale=0.15, size=ref.vertices.shape)
    cut = subdivision(name) @ coefficients(lattice_values(nodes[None], name), name)[0]
    for k in range(len(o)):
        values = determinants(np.einsum("nd,qne->qde", nodes, ref.grad(o[k] + x @ A[k].T)))
        assert np.allclose(to_bernstein @ values, cut[k * len(x): (k + 1) * len(x)], rtol=0, atol=1e-10)


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
    assert lattice_values(CURVED_DART[dart], "quadrilateral9").min() > 0.5
    folded = CURVED_DART.copy()
    folded[4] = (0.5, 0.6)  # the bottom edge's midpoint pushed past the cell's middle: the map folds
    assert corner_jacobians(folded, dart[:, :4], "quadrilateral").min() < 0
    assert not sound_jacobians(folded, dart, "quadrilateral9")[0].any()
    assert sound_jacobians(CURVED_DART, dart, "quadrilateral9")[0].all()


def test_a_valid_curved_cell_with_a_dart_of_corners_is_solved(tmp_path):
    run_solver(1, [_one_quad9(tmp_path, CURVED_DART)], cwd=ROOT, timeout=60)


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_cell_folded_by_a_midpoint_node_is_refused_naming_where(tmp_path, nprocs):
    square = np.array([(0, 0), (1, 0), (1, 1), (0, 1), (0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5), (0.5, 0.5)])
    square[7] = (0.45, 0.5)  # the left edge's midpoint, 0.45 edge lengths in: the map folds near it
    proc = run_solver(nprocs, [_one_quad9(tmp_path, square)], cwd=ROOT, timeout=60, check=False)
    line = one_error(proc, 2)
    assert "element 1 of its kind" in line and "quadratic map changes sign" in line and "Traceback" not in proc.stderr


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_quadrilateral_folded_between_the_samples_is_refused_on_every_rank_count(tmp_path, nprocs):
    proc = run_solver(nprocs, [_one_quad9(tmp_path, np.array(FOLDED_BETWEEN["quadrilateral9"], dtype=float))],
                      cwd=ROOT, timeout=60, check=False)
    line = one_error(proc, 2)
    assert "element 1 of its kind" in line and "quadratic map changes sign or vanishes near (" in line
    assert "Traceback" not in proc.stderr
