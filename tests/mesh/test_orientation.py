"""Folded meshes: a node, or a row of nodes, pushed past its neighbours (so that two cells lie on
the same side of the facet they share) is refused in one line naming the file, a cell and its
position (exit 2, every rank count); a mesh whose cells all have the other orientation (mirrored
node order), or whose cells mix both orientations as the surfaces of one Gmsh model may, is
accepted and gives the right answer. Small meshes written with meshio."""

import h5py
import meshio
import numpy as np
import pytest
from conftest import run_solver
from mpi4py import MPI

from solver.errors import CaseError
from solver.mesh.cells import CELLS
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
