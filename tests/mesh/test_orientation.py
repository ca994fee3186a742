"""Folded meshes: a node, or a row of nodes, pushed past its neighbours (so that two cells lie on
the same side of the facet they share) is refused in one line naming the file, a cell and its
position (exit 2, every rank count); a mesh whose cells all have the other orientation (mirrored
node order), or whose cells mix both orientations as the surfaces of one Gmsh model may, is
accepted and gives the right answer. Small meshes written with meshio."""

import h5py
import meshio
import numpy as np
import pytest
from conftest import one_error, run_solver
from mpi4py import MPI

from solver.errors import CaseError
from solver.mesh.bernstein import lattice_values, sound_jacobians
from solver.mesh.cells import CELLS
from solver.mesh.conformity import check_mesh_file
from solver.mesh.quality import check_cells, corner_jacobians, folded_cells
from solver.mesh.structured import structured_mesh

N = 4  # cells per side of the unit square
CASE = """[mesh]
file = "{mesh}"
[material]
k = 1.0
rho = 1.0
c = 1.0
[boundary.left]
type = "dirichlet"
value = 1.0
[boundary.right]
type = "dirichlet"
value = 3.0
[time]
scheme = "steady"
[output]
directory = "{out}"
"""


def square():
    """Points, triangles and the left and right boundary lines of the unit square, N x N squares
    each split in two, counterclockwise."""
    x, y = np.meshgrid(np.linspace(0, 1, N + 1), np.linspace(0, 1, N + 1), indexing="ij")
    points = np.column_stack([x.ravel(), y.ravel(), np.zeros(x.size)])
    node = np.arange(x.size).reshape(N + 1, N + 1)
    a, b, c, d = node[:-1, :-1].ravel(), node[1:, :-1].ravel(), node[1:, 1:].ravel(), node[:-1, 1:].ravel()
    cells = np.concatenate([np.column_stack([a, b, c]), np.column_stack([a, c, d])])
    left, right = node[0], node[-1]
    return points, cells, np.column_stack([left[:-1], left[1:]]), np.column_stack([right[:-1], right[1:]])


def write(path, points, cells, left, right):
    blocks = [("line", left), ("line", right), ("triangle", cells)]
    physical = [np.full(len(left), 1), np.full(len(right), 2), np.full(len(cells), 3)]
    mesh = meshio.Mesh(points, blocks, cell_data={"gmsh:physical": physical, "gmsh:geometrical": physical},
                       field_data={"left": np.array([1, 1]), "right": np.array([2, 1]), "domain": np.array([3, 2])})
    meshio.write(path, mesh, file_format="gmsh22", binary=False)
    return path


def folded():
    """The triangles with the node at (0.5, 0.5) pushed to (0.9, 0.6), past its neighbour at (0.75, 0.5)."""
    points, cells, left, right = square()
    points[np.all(np.isclose(points[:, :2], 0.5), axis=1), :2] = (0.9, 0.6)
    return points, cells, left, right


def solve(tmp_path, name, mesh, nprocs, check=True):
    case = tmp_path / f"{name}.toml"
    case.write_text(CASE.format(mesh=mesh, out=tmp_path / f"out_{name}_{nprocs}"))
    return run_solver(nprocs, [case, "--quiet"], cwd=tmp_path, check=check, timeout=60)


def test_the_folded_mesh_has_triangles_of_both_orientations():
    """The mesh of the tests below is what it claims: two triangles inverted, none degenerate."""
    points, cells, _, _ = folded()
    det = corner_jacobians(points[:, :2], cells, "triangle")[:, 0]
    assert np.all(np.abs(det) > 1e-3) and np.count_nonzero(det < 0) == 2


@pytest.mark.parametrize("degree", [1, 2])
@pytest.mark.parametrize("cell", ["triangle", "quadrilateral", "tetrahedron", "hexahedron"])
def test_every_cell_type_mirrored_passes_and_folded_is_refused(cell, degree):
    """A structured mesh (4 cells a side) mirrored in x passes; folded by a non-monotone map of x
    (the nodes at x = 0.5 pushed to 0.9, past those at 0.75; midpoints kept straight) it is refused."""
    dim = CELLS[cell].dim
    mesh = structured_mesh(MPI.COMM_SELF, cell, (4,) * dim, (1.0,) * dim, (0.0,) * dim, degree)
    x = mesh.coords[:, 0].copy()
    mesh.coords[:, 0] = -x
    check_cells(mesh, "mirrored")
    mesh.coords[:, 0] = np.interp(x, [0, 0.5, 0.75, 1], [0, 0.9, 0.75, 1])
    with pytest.raises(CaseError, match=r"^folded: cell \d+ of \d+ \(\w+, counted from 1 in the mesh.s order\) "
                       r"at \(0\.[6789]\d*, [\d., ]+\) folds over a "
                       r"neighbour \(the two lie on the same side of the facet they share; \d+ cells are so\)"):
        check_cells(mesh, "folded")
    check_cells(mesh, "generated", folds=False)  # a generated mesh is not searched for folds


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_folded_mesh_is_refused_naming_a_cell_and_its_position(tmp_path, nprocs):
    path = write(tmp_path / "folded.msh", *folded())
    proc = solve(tmp_path, "folded", path, nprocs, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert errors[0].startswith(f"error: {tmp_path / 'folded.toml'}: mesh.file = {path}: cell "), errors
    assert "folds over a neighbour (the two lie on the same side of the facet they share; " in errors[0], errors


def test_the_fold_test_ignores_orientation_and_marks_both_cells_of_a_fold():
    points, cells, _, _ = square()
    mixed = cells.copy()
    mixed[::2] = mixed[::2, ::-1]  # every other triangle clockwise: valid, as two Gmsh surfaces may be
    assert not folded_cells(points[:, :2], mixed, "triangle").any()
    points_f, cells_f, _, _ = folded()
    marked = folded_cells(points_f[:, :2], cells_f, "triangle")
    det = corner_jacobians(points_f[:, :2], cells_f, "triangle")[:, 0]
    assert marked[det < 0].all() and marked.sum() >= 2


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_mesh_of_both_orientations_gives_the_same_answer(tmp_path, nprocs):
    """Every other triangle clockwise (as two Gmsh surfaces of opposite orientation): accepted,
    and the exact T = 1 + 2x."""
    points, cells, left, right = square()
    cells[::2] = cells[::2, ::-1]
    solve(tmp_path, "mixed", write(tmp_path / "mixed.msh", points, cells, left, right), nprocs)
    with h5py.File(tmp_path / f"out_mixed_{nprocs}" / "mixed" / "mixed.h5", "r") as f:
        temperature = f["fields/temperature"][sorted(f["fields/temperature"])[-1]][()]
    assert np.allclose(temperature, 1 + 2 * points[:, 0], rtol=0, atol=1e-8)


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_mirrored_mesh_gives_the_same_answer(tmp_path, nprocs):
    """Every cell clockwise (reversed node order): accepted, and the exact T = 1 + 2x."""
    points, cells, left, right = square()
    solve(tmp_path, "mirrored", write(tmp_path / "mirrored.msh", points, cells[:, ::-1].copy(), left, right), nprocs)
    with h5py.File(tmp_path / f"out_mirrored_{nprocs}" / "mirrored" / "mirrored.h5", "r") as f:
        temperature = f["fields/temperature"][sorted(f["fields/temperature"])[-1]][()]
    assert np.allclose(temperature, 1 + 2 * points[:, 0], rtol=0, atol=1e-8)


@pytest.mark.parametrize("nprocs", [1, 3])
@pytest.mark.parametrize("cell", ["tetrahedron", "hexahedron"])
def test_a_3d_mesh_with_every_node_in_one_plane_is_refused_as_such(tmp_path, cell, nprocs):
    """Volume cells written with z = 0 everywhere (a 2D model exported as 3D): refused in one line
    that says the nodes lie in one plane, not as a boundary element listed out of order."""
    mesh = structured_mesh(MPI.COMM_SELF, cell, (2, 2, 2), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), 1)
    points = mesh.coords.copy()
    points[:, 2] = 0.0
    cells = mesh.cells[: mesh.n_owned_cells]
    faces = np.concatenate([cells[:, list(f)] for f in CELLS[cell].facets])
    facet = CELLS[CELLS[cell].facet_name].meshio
    path = tmp_path / "flat.msh"
    meshio.write(path, meshio.Mesh(points, [(facet, faces), (CELLS[cell].meshio, cells)]), file_format="gmsh22",
                 binary=False)
    proc = solve(tmp_path, "flat", path, nprocs, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "every node of its volume cells (tetrahedra or hexahedra) lies in one plane" in errors[0], errors


# a hexahedron whose Jacobian is positive at its corners and at all 27 points of the 3 x 3 x 3 lattice
# of its reference cube, and negative near (0.75, 0, 0) of it: it folds inside
FOLDED_HEXAHEDRON = np.array([(-0.3, 0.2, -0.2), (1.3, 0.6, 0.6), (1.6, 0.8, -0.2), (-0.1, 0.6, 0.4), (0.0, -1.0, 1.8),
                              (1.1, 0.6, 0.9), (0.7, 0.9, 1.0), (0.0, 0.7, 1.0)])
HEXAHEDRON_CASE = CASE.replace("left", "bottom").replace("right", "top")


def twisted_top(turn, shift):
    """The unit cube with its top face turned by ``turn`` degrees about its centre, and its
    corners 4 and 6 moved ``shift`` along x."""
    points = CELLS["hexahedron"].vertices.copy()
    t = np.radians(turn)
    rotation = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    points[4:, :2] = (points[4:, :2] - 0.5) @ rotation.T + 0.5
    points[[4, 6], 0] += shift
    return points


def test_a_hexahedron_folded_inside_with_its_corners_of_one_sign_is_refused():
    """Its eight corner Jacobians (and those at the 27 points of a 3 x 3 x 3 lattice) are positive:
    it was accepted, and solved over a volume counted twice. The Bernstein coefficients of det J
    bound it over the whole cell: refused naming where it folds."""
    cell = np.arange(8)[None]
    assert lattice_values(FOLDED_HEXAHEDRON[None], "hexahedron").min() > 0.15  # (the 27 points, corners among them)
    assert not sound_jacobians(FOLDED_HEXAHEDRON, cell, "hexahedron")[0][0]
    assert sound_jacobians(twisted_top(150, 0.0), cell, "hexahedron")[0][0]  # twisted hard, sound
    assert not sound_jacobians(twisted_top(180, 0.5), cell, "hexahedron")[0][0]
    facets = np.zeros((0, 4), int), np.zeros(0, int)
    with pytest.raises(CaseError, match=r"element 1 of its kind \(near .*\) folds inside: the Jacobian of its "
                       r"trilinear map changes sign or vanishes near \(0\.9, 0\.5, 0\.4\), though its "
                       r"corners' are of one sign"):
        check_mesh_file("m.msh", FOLDED_HEXAHEDRON, cell, "hexahedron", *facets)
    check_mesh_file("m.msh", twisted_top(150, 0.0), cell, "hexahedron", *facets)


@pytest.mark.parametrize("degree", [1, 2])
def test_a_distributed_hexahedron_folded_inside_is_refused(degree):
    """The check of a built mesh (a mesh file read with another degree, a structured one moved)
    judges a hexahedron throughout too."""
    mesh = structured_mesh(MPI.COMM_SELF, "hexahedron", (1, 1, 1), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), degree)
    corners = mesh.cells[0, :8]
    mesh.coords[corners] = FOLDED_HEXAHEDRON
    if degree == 2:  # straight edges
        ref = CELLS["hexahedron27"]
        mesh.coords[mesh.cells[0]] = CELLS["hexahedron"].shape(ref.vertices) @ FOLDED_HEXAHEDRON
    with pytest.raises(CaseError, match=r"^moved: cell 1 of 1 \(hexahedron(27)?, counted from 1 in the mesh.s order\) "
                       r"(folds inside: the Jacobian of its trilinear map|is inverted in part by its curved edges: "
                       r"the Jacobian of its quadratic map) changes sign or vanishes (inside it, )?near "
                       r"\(0\.9, 0\.5, 0\.4\)"):
        check_cells(mesh, "moved", folds=False)


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_mesh_file_with_a_hexahedron_folded_inside_is_refused_on_every_rank_count(tmp_path, nprocs):
    """Two unit cubes and, on top, one whose top face is turned half a turn and two of its corners
    moved: its Jacobian is negative below (1, 1, 2.55) with its corners' of one sign; it ran to
    exit 0 with a heat flow of its own making."""
    square = CELLS["hexahedron"].vertices[:4]
    points = np.vstack([square + (0.0, 0.0, z) for z in (0.0, 1.0, 2.0)] + [twisted_top(180, 0.5)[4:] + (0, 0, 2)])
    hexes = np.array([[0, 1, 2, 3, 4, 5, 6, 7], [4, 5, 6, 7, 8, 9, 10, 11], [8, 9, 10, 11, 12, 13, 14, 15]])
    blocks = [("quad", np.array([[0, 3, 2, 1]])), ("quad", np.array([[12, 13, 14, 15]])), ("hexahedron", hexes)]
    physical = [np.array([1]), np.array([2]), np.full(3, 3)]
    mesh = tmp_path / "twisted.msh"
    meshio.write(mesh, meshio.Mesh(points, blocks, cell_data={"gmsh:physical": physical, "gmsh:geometrical": physical},
                                   field_data={"bottom": np.array([1, 2]), "top": np.array([2, 2]),
                                               "body": np.array([3, 3])}), file_format="gmsh22", binary=False)
    case = tmp_path / "twisted.toml"
    case.write_text(HEXAHEDRON_CASE.format(mesh=mesh, out=tmp_path / "out"))
    proc = run_solver(nprocs, [case, "--quiet"], cwd=tmp_path, check=False, timeout=60)
    line = one_error(proc, 2)
    assert f"{mesh}: element 3 of its kind (near " in line and "folds inside" in line, line
    assert "Traceback" not in proc.stderr
