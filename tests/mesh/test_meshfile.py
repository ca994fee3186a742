"""Unstructured Gmsh meshes: convergence, rank-independent results in the original numbering,
every file format, partitioners, and clear refusals of bad meshes and missing groups."""

import re

import h5py
import meshio
import numpy as np
import pytest
from conftest import ROOT, run_script, run_solver

try:
    import gmsh
except Exception as exc:  # ImportError, or OSError when its shared libraries are missing
    pytest.skip(f"gmsh builds the test meshes and cannot be imported ({exc}); make bootstrap installs it",
                allow_module_level=True)

PLATE = ROOT / "inputs" / "plate_with_holes.toml"
PLATE_MESH = ROOT / "inputs" / "geometry" / "plate_with_holes.msh"


def unit_meshes(folder, dim, size, levels=3, binary=True, version=4.1):
    """The unit square/cube meshed by gmsh and refined uniformly levels-1 times (h halves);
    groups named like the structured boundaries."""
    gmsh.initialize()
    gmsh.option.setNumber("General.Terminal", 0)
    try:
        gmsh.model.add(f"unit{dim}")
        if dim == 2:
            gmsh.model.occ.addRectangle(0, 0, 0, 1, 1)
        else:
            gmsh.model.occ.addBox(0, 0, 0, 1, 1, 1)
        gmsh.model.occ.synchronize()
        names = {(0, 0): "left", (0, 1): "right", (1, 0): "bottom", (1, 1): "top", (2, 0): "front", (2, 1): "back"}
        for _, tag in gmsh.model.getEntities(dim - 1):
            box = gmsh.model.getBoundingBox(dim - 1, tag)
            for (axis, side), name in names.items():
                if axis < dim and abs(box[axis] - side) < 1e-5 and abs(box[axis + 3] - side) < 1e-5:
                    gmsh.model.addPhysicalGroup(dim - 1, [tag], name=name)
        gmsh.model.addPhysicalGroup(dim, [t for _, t in gmsh.model.getEntities(dim)], name="domain")
        gmsh.option.setNumber("Mesh.MeshSizeMax", size)
        gmsh.model.mesh.setSize(gmsh.model.getEntities(0), size)
        gmsh.option.setNumber("Mesh.Binary", int(binary))
        gmsh.option.setNumber("Mesh.MshFileVersion", version)
        gmsh.model.mesh.generate(dim)
        paths = []
        for i in range(levels):
            if i:
                gmsh.model.mesh.refine()
            path = folder / f"unit{dim}_{i}.msh"
            gmsh.write(str(path))
            paths.append(str(path))
        return paths
    finally:
        gmsh.finalize()


@pytest.fixture(scope="module")
def unit_square(tmp_path_factory):
    return unit_meshes(tmp_path_factory.mktemp("square"), 2, 0.2)


def test_manufactured_solution_converges_on_unstructured_triangles(unit_square, nprocs):
    r = run_script(nprocs, "mms_file.py", "triangle", *unit_square, timeout=180)
    assert all(abs(p - 2.0) <= 0.15 for p in r["l2_orders"]), r
    assert all(abs(p - 1.0) <= 0.15 for p in r["h1_orders"]), r
    assert max(r["imbalance"]) < 1e-8


def run_plate(tmp_path, nprocs, *extra):
    out = tmp_path / f"np{nprocs}"
    sets = ["--set", f"output.directory={out}", "--set", "time.t_end=100.0", "--set", "solver.rtol=1e-13"]
    proc = run_solver(nprocs, [PLATE, *sets, *extra], cwd=ROOT)
    with h5py.File(out / "plate_with_holes" / "plate_with_holes.h5", "r") as f:
        temps = np.array([f["fields/temperature"][k][()] for k in sorted(f["fields/temperature"])])
        return f["mesh/geometry"][()], f["mesh/topology"][()], temps, proc.stdout


def test_results_identical_on_1_to_4_ranks_in_the_original_numbering(tmp_path):
    m = meshio.read(PLATE_MESH)
    geometry, topology, reference, _ = run_plate(tmp_path, 1)
    assert np.array_equal(geometry, m.points[:, :2])  # the file's own node order
    assert np.array_equal(topology, m.get_cells_type("triangle"))  # and cell order
    for n in (2, 3, 4):
        g, t, temps, stdout = run_plate(tmp_path, n)
        assert np.array_equal(g, geometry) and np.array_equal(t, topology)
        assert np.max(np.abs(temps - reference)) <= 1e-10 * np.max(np.abs(reference))
        assert "partition: metis, edge cut" in stdout and "imbalance" in stdout


def test_rcb_partitioner_gives_the_same_answer(tmp_path):
    _, _, reference, _ = run_plate(tmp_path / "metis", 3)
    _, _, temps, stdout = run_plate(tmp_path / "rcb", 3, "--set", "mesh.partitioner=rcb")
    assert "partition: rcb" in stdout
    assert np.max(np.abs(temps - reference)) <= 1e-10 * np.max(np.abs(reference))


def test_without_pymetis_auto_falls_back_to_rcb_and_metis_is_refused(tmp_path, monkeypatch):
    hide = tmp_path / "no_pymetis"
    hide.mkdir()
    (hide / "pymetis.py").write_text("raise ImportError('pymetis is hidden by this test')\n")
    monkeypatch.setenv("PYTHONPATH", str(hide))
    _, _, reference, _ = run_plate(tmp_path / "metis", 1)
    _, _, temps, stdout = run_plate(tmp_path / "auto", 3)
    assert "partition: rcb" in stdout
    assert np.max(np.abs(temps - reference)) <= 1e-10 * np.max(np.abs(reference))
    proc = run_solver(3, [PLATE, "--set", "mesh.partitioner=metis"], cwd=ROOT, check=False, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert 'mesh.partitioner: "metis" needs pymetis, which is not installed' in proc.stderr


def test_every_file_format_gives_the_same_result(tmp_path):
    """Gmsh 2.2 and 4.1, ASCII and binary, and XDMF (written by meshio) give identical fields."""
    results = []
    formats = [(2.2, False), (2.2, True), (4.1, False), (4.1, True), ("xdmf", None)]
    for version, binary in formats:
        folder = tmp_path / f"{version}{'b' if binary else 'a'}"
        folder.mkdir()
        if version == "xdmf":
            source = unit_meshes(folder, 2, 0.25, levels=1)[0]
            path = folder / "unit.xdmf"
            original = meshio.read(source)
            meshio.write(path, original)
            left = str(original.field_data["left"][0])  # XDMF keeps tags, not names: groups named by tag
        else:
            path = unit_meshes(folder, 2, 0.25, levels=1, binary=binary, version=version)[0]
            left = "left"
        case = folder / "case.toml"
        case.write_text(f"""
[mesh]
file = "{path}"
[material]
k = 2.0
rho = 1.0
c = 1.0
[initial]
temperature = "x * y"
[boundary.{left}]
type = "dirichlet"
value = 1.0
[time]
scheme = "crank-nicolson"
dt = 0.01
t_end = 0.05
[solver]
rtol = 1e-13
[output]
directory = "{folder}"
""")
        run_solver(2, [case], cwd=ROOT)
        with h5py.File(folder / "case" / "case.h5", "r") as f:
            xy = f["mesh/geometry"][()]
            values = f["fields/temperature"][sorted(f["fields/temperature"])[-1]][()]
        order = np.lexsort((xy[:, 1].round(12), xy[:, 0].round(12)))  # each format numbers nodes its own way
        results.append((xy[order], values[order]))
    for xy, values in results[1:]:
        assert np.allclose(xy, results[0][0], atol=1e-12)
        assert np.max(np.abs(values - results[0][1])) < 1e-10


@pytest.mark.parametrize("nprocs", [1, 3])
def test_missing_group_and_corrupt_file_are_refused(tmp_path, nprocs):
    proc = run_solver(nprocs, [PLATE, "--set", "boundary.rim.type=insulated"], cwd=ROOT, check=False, timeout=30)
    assert proc.returncode == 2
    assert ("boundary.rim: the mesh inputs/geometry/plate_with_holes.msh has no boundary group 'rim' "
            "(it has: bottom, holes, left, right, top)") in proc.stderr, proc.stderr
    corrupt = tmp_path / "corrupt.msh"
    corrupt.write_bytes(PLATE_MESH.read_bytes()[:5000])
    proc = run_solver(nprocs, [PLATE, "--set", f"mesh.file={corrupt}"], cwd=ROOT, check=False, timeout=30)
    assert proc.returncode == 2 and f"{corrupt}: cannot read the mesh" in proc.stderr, proc.stderr
    proc = run_solver(nprocs, [PLATE, "--set", "mesh.file=nowhere.msh"], cwd=ROOT, check=False, timeout=30)
    assert proc.returncode == 2 and f"nowhere.msh: mesh file not found (mesh.file: a relative path is taken from the " \
                                    f"current directory, {ROOT})" in proc.stderr
    proc = run_solver(nprocs, [PLATE, "--set", "region.x.group=nothing", "--set", "region.x.k=1"], cwd=ROOT,
                      check=False, timeout=30)
    assert proc.returncode == 2 and "has no region group 'nothing' (it has: plate)" in proc.stderr
    proc = run_solver(nprocs, [PLATE, "--set", "region.x.z=[2, 3]", "--set", "region.x.k=1", "--dry-run"], cwd=ROOT,
                      check=False, timeout=30)  # the box was taken without z: the region applied everywhere
    assert proc.returncode == 2 and "region.x.z: the mesh is 2D (a box in 2D takes x and y only)" in proc.stderr
    surface = tmp_path / "surface.msh"  # triangles in 3D space: a surface, not a volume
    surface.write_text("$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$Nodes\n4\n1 0 0 0\n2 1 0 0.5\n3 0 1 0.2\n"
                       "4 1 1 1\n$EndNodes\n$Elements\n2\n1 2 2 0 1 1 2 3\n2 2 2 0 1 2 4 3\n$EndElements\n")
    proc = run_solver(nprocs, [PLATE, "--set", f"mesh.file={surface}", "--dry-run"], cwd=ROOT, check=False, timeout=30)
    assert proc.returncode == 2 and "surface elements (triangles or quadrangles) in 3D space" in proc.stderr


@pytest.mark.parametrize("nprocs, renamed, name, groups", [
    (1, b'1 2 "right"', b'"left"', "dimension 1 tag 1, and dimension 1 tag 2"),
    (1, b'1 2 "right"', b"left", "dimension 1 tag 1, and dimension 1 tag 2"),  # unquoted, as meshio reads too
    (3, b'2 6 "plate"', b'"left"', "dimension 1 tag 1, and dimension 2 tag 6")])
def test_a_physical_name_given_to_two_groups_is_refused(tmp_path, nprocs, renamed, name, groups):
    """The binary example mesh with "left" given to a second group: meshio keeps one group per
    name, and the other's facets ran insulated (a Dirichlet side lost, exit 0; or, across
    dimensions, "no boundary group"). Exit 2 naming both."""
    mesh = tmp_path / "twice.msh"
    data = PLATE_MESH.read_bytes()
    assert data.count(renamed) == 1
    mesh.write_bytes(data.replace(renamed, renamed.split(b'"')[0] + name))
    proc = run_solver(nprocs, [PLATE, "--set", f"mesh.file={mesh}", "--dry-run"], cwd=ROOT, check=False, timeout=30)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert f'the physical name "left" is given to two groups ({groups})' in errors[0], errors


def test_heatsink_example_balances_its_heat(tmp_path):
    proc = run_solver(2, [ROOT / "inputs" / "heatsink.toml", "--set", f"output.directory={tmp_path}"], cwd=ROOT)
    with h5py.File(tmp_path / "heatsink" / "heatsink.h5", "r") as f:
        assert f.attrs["balance_heat_in_base"] == pytest.approx(20.0, rel=1e-4)
        assert f.attrs["balance_heat_in_fins"] == pytest.approx(-20.0, rel=1e-4)
        assert f.attrs["balance_relative_imbalance"] < 1e-8
    assert "partition:" in proc.stdout


LOOSE = """$MeshFormat
2.2 0 8
$EndMeshFormat
$PhysicalNames
3
1 1 "left"
1 2 "right"
2 10 "plate"
$EndPhysicalNames
$Nodes
6
1 0 0 0
2 1 0 0
3 1 1 0
4 0 1 0
5 5 0 0
6 5 1 0
$EndNodes
$Elements
4
1 1 2 1 1 1 4
2 1 2 2 2 5 6
3 2 2 10 10 1 2 3
4 2 2 10 10 1 3 4
$EndElements
"""


def test_files_whose_cells_or_facets_would_be_left_out_are_refused(tmp_path):
    """Each was read in part without a word, and solved: a hanging node (an insulated crack
    along the big cell's edge), a boundary facet through nodes no cell uses (its Dirichlet value
    dropped), prisms beside a hexahedron (the prisms dropped), a header meshio cannot read
    (meshio printed two lines and ended the process: exit 1), and boundary elements of a quadratic
    mesh identified by their corners only (a midpoint of another edge: the condition on a folded
    facet; 2-node lines beside 6-node triangles: the condition dropped)."""
    (tmp_path / "loose.msh").write_text(LOOSE)
    (tmp_path / "header.msh").write_text(LOOSE.replace("2.2 0 8", "2.2 1 8"))
    points = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1],
                       [2, 0, 0], [2, 1, 0], [2, 0, 1], [2, 1, 1]], dtype=float)
    meshio.write(tmp_path / "mixed.msh", meshio.Mesh(points, [("hexahedron", [[0, 1, 2, 3, 4, 5, 6, 7]]),
                                                              ("wedge", [[1, 8, 9, 5, 10, 11], [1, 9, 2, 5, 11, 6]])]),
                 file_format="gmsh22", binary=False)
    hanging = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [2, 0], [2, 0.5], [1, 0.5], [2, 1]], dtype=float)
    _write_mesh(tmp_path / "hanging.msh", hanging, "quad", [[0, 1, 2, 3], [1, 4, 5, 6], [6, 5, 7, 2]])
    square8 = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0], [1, 0.5], [0.5, 1], [0, 0.5]], dtype=float)
    _write_mesh(tmp_path / "quad8.msh", square8, "quad8", [list(range(8))])  # was "no ... quad ... cells"
    _write_mesh(tmp_path / "twisted.msh", points[:8], "hexahedron", [[0, 1, 2, 3, 5, 4, 6, 7]])  # was "not conforming"
    stray = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [5, 5, 5], [6, 5, 5], [5, 6, 5], [5, 5, 6]], float)
    meshio.write(tmp_path / "stray.msh", meshio.Mesh(stray, [("triangle", [[0, 1, 2], [0, 2, 3]]),
                                                             ("tetra", [[4, 5, 6, 7]])],
                                                     cell_data={"gmsh:physical": [[1, 1], [2]],
                                                                "gmsh:geometrical": [[1, 1], [2]]}),
                 file_format="gmsh22", binary=False)  # a 2D mesh with one stray tetrahedron
    six = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0.5, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0]], float)
    for name, facet in (("wrongmid.msh", ("line3", [[0, 1, 4]])), ("linear_facet.msh", ("line", [[0, 1]]))):
        meshio.write(tmp_path / name, meshio.Mesh(six, [("triangle6", [[0, 1, 2, 3, 4, 5]]), facet],
                                                  cell_data={"gmsh:physical": [[1], [2]],
                                                             "gmsh:geometrical": [[1], [2]]}),
                     file_format="gmsh22", binary=False)
    expected = {"hanging.msh": "the mesh is not conforming: elements 1 and 2 of its kind (at 1, 0.25) touch",
                "wrongmid.msh": "boundary element 1 of its kind (near 0.5, 0) lists nodes beyond its corners that are "
                                "not its cell's (the midpoints of its edges in order; 1 such boundary element)",
                "linear_facet.msh": "1 boundary elements of type line beside triangle6 cells, whose facets are of type "
                                    "line3",
                "stray.msh": "the mesh is the file's 1 tetrahedron cells (a file of 1 tetrahedron cells among more "
                             "lower-dimensional ones: if those are the mesh, remove the tetrahedron cells",
                "loose.msh": "1 boundary facets (the first of group 'right') pass through nodes that no cell uses",
                "mixed.msh": "2 cells of type wedge: the solver takes",
                "quad8.msh": "1 cells of type quad8: the solver takes",
                "twisted.msh": "element 1 of its kind (near 0.5, 0.5, 0.5) is inverted or self-intersecting",
                "header.msh": "cannot read the mesh"}
    for name, message in expected.items():
        proc = run_solver(1, [PLATE, "--set", f"mesh.file={tmp_path / name}", "--dry-run"], cwd=ROOT, check=False,
                          timeout=30)
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1 and message in errors[0], (name, proc.stderr)
        assert "Traceback" not in proc.stderr and not any(ln.startswith("Error") for ln in proc.stderr.splitlines())


def _write_mesh(path, points, cell_type, cells):
    points = np.c_[points, np.zeros(len(points))] if points.shape[1] == 2 else points
    cells = np.asarray(cells)
    meshio.write(path, meshio.Mesh(points, [(cell_type, cells)], cell_data={"gmsh:physical": [np.full(len(cells), 1)],
                 "gmsh:geometrical": [np.full(len(cells), 1)]}), file_format="gmsh22", binary=False)


def _unit_cube_tets(x0, mirrored):
    """The cube [x0, x0 + 1] x [0, 1]^2 in six tetrahedra around its diagonal; ``mirrored`` in y
    splits its faces x = const along the other diagonal."""
    points = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], float)
    points[:, 0] += x0
    if mirrored:
        points[:, 1] = 1 - points[:, 1]
    return points, np.array([[0, 1, 2, 6], [0, 2, 3, 6], [0, 3, 7, 6], [0, 7, 4, 6], [0, 4, 5, 6], [0, 5, 1, 6]])


def _merged(parts):
    """Points and cells of meshes put together, coincident nodes merged, cells oriented positively."""
    points = np.vstack([p for p, _ in parts])
    cells = np.vstack([c + sum(len(p) for p, _ in parts[:i]) for i, (_, c) in enumerate(parts)])
    points, index = np.unique(np.round(points, 9), axis=0, return_inverse=True)
    cells = index.ravel()[cells]
    if cells.shape[1] == 4:
        e = points[cells[:, 1:]] - points[cells[:, :1]]
        flip = np.linalg.det(e) < 0
        cells[flip] = cells[flip][:, [0, 2, 1, 3]]
    return points, cells


def _grid_hexes(x0, n, h):
    """Hexahedra of size (1, h, h) filling [x0, x0 + 1] x [0, 1]^2 (n = 1 / h per side)."""
    i, j, k = np.meshgrid(np.arange(2), np.arange(n + 1), np.arange(n + 1), indexing="ij")
    points = np.stack([x0 + i, j * h, k * h], axis=-1).reshape(-1, 3).astype(float)
    node = np.arange(len(points)).reshape(2, n + 1, n + 1)
    j, k = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
    cells = np.stack([node[0, j, k], node[1, j, k], node[1, j + 1, k], node[0, j + 1, k],
                      node[0, j, k + 1], node[1, j, k + 1], node[1, j + 1, k + 1], node[0, j + 1, k + 1]], axis=1)
    return points, cells


@pytest.mark.parametrize("case", ["tetrahedra split along different diagonals", "a face of 2 x 2 hexahedra on one",
                                  "two touching squares", "two overlapping squares", "conforming tetrahedra"])
def test_non_conforming_meshes_are_refused(tmp_path, case):
    """Cells that touch along part of a facet without sharing its nodes leave an insulated crack:
    refused, naming two of the cells; a conforming mesh of the same shape is read."""
    from solver.errors import CaseError
    from solver.mesh.files import read

    parts = {"tetrahedra split along different diagonals": [_unit_cube_tets(0, False), _unit_cube_tets(1, True)],
             "a face of 2 x 2 hexahedra on one": [_grid_hexes(0, 1, 1.0), _grid_hexes(1, 2, 0.5)],
             "conforming tetrahedra": [_unit_cube_tets(0, False), _unit_cube_tets(1, False)]}
    if case.startswith("two"):  # each square in two triangles, with nodes of its own; x0 = 1 or 0.6
        x0 = 1.0 if "touching" in case else 0.6
        points = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [x0, 0], [x0 + 1, 0], [x0 + 1, 1], [x0, 1]], dtype=float)
        cells, kind = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]]), "triangle"
    else:
        points, cells = _merged(parts[case])
        kind = "tetra" if cells.shape[1] == 4 else "hexahedron"
    _write_mesh(tmp_path / "m.msh", points, kind, cells)
    if case.startswith("conforming"):
        assert len(read(tmp_path / "m.msh").cells) == 12
        return
    with pytest.raises(CaseError, match="the mesh is not conforming: elements [0-9]+ and [0-9]+ of its kind .* touch "
                                        "or overlap without sharing the nodes of their facets"):
        read(tmp_path / "m.msh")


@pytest.mark.parametrize("kind", ["quad", "triangle", "hexahedron"])
def test_a_cell_laid_over_others_along_the_boundary_is_refused(tmp_path, kind):
    """One more cell over a conforming grid whose facets all lie on the outer boundary (the whole
    square or cube, or a corner triangle over smaller ones): its facets are exterior and no cell
    lies outside them, but points just inside the grid's exterior facets are in two cells (the
    heat of the source was counted twice, exit 0)."""
    from solver.errors import CaseError
    from solver.mesh.files import read

    if kind == "hexahedron":
        points, cells = _merged([_grid_hexes(0, 2, 0.5)])
        cube = [int(np.flatnonzero(np.all(np.isclose(points, corner), axis=1))[0]) for corner in
                ([0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1])]
        cells = np.vstack([cells, cube])
    else:
        n = 4
        x, y = np.meshgrid(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1))
        points = np.column_stack([x.ravel(), y.ravel()])
        i, j = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(n)))
        quads = np.stack([j * (n + 1) + i, j * (n + 1) + i + 1, (j + 1) * (n + 1) + i + 1, (j + 1) * (n + 1) + i], 1)
        if kind == "quad":
            cells = np.vstack([quads, [0, n, n * (n + 1) + n, n * (n + 1)]])
        else:  # the grid in triangles, and one over the corner (0, 0), (0.5, 0), (0, 0.5)
            cells = np.vstack([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]], [0, 2, 2 * (n + 1)]])
    _write_mesh(tmp_path / "m.msh", points, kind, cells)
    with pytest.raises(CaseError, match="the mesh is not conforming: elements [0-9]+ and [0-9]+ of its kind .* touch "
                                        "or overlap"):
        read(tmp_path / "m.msh")
    _write_mesh(tmp_path / "m.msh", points, kind, cells[:-1])  # without it: read
    assert len(read(tmp_path / "m.msh").cells) == len(cells) - 1


@pytest.mark.parametrize("kind", ["triangle", "quadrilateral", "tetrahedron", "hexahedron"])
def test_a_cell_laid_over_others_on_their_nodes_inside_the_domain_is_refused(kind):
    """One more cell on nodes of a conforming grid, away from its boundary: its facets are
    exterior facets inside the domain, whose probes lie in the grid's cells, and the cells about
    its corners overlap there (the heat of 1 W came out as 1.05 W, exit 0)."""
    from solver.errors import CaseError
    from solver.mesh.conformity import SIMPLICES, check_mesh_file

    n, dim = 8, 3 if kind in ("tetrahedron", "hexahedron") else 2
    axes = np.meshgrid(*[np.linspace(0, 1, n + 1)] * dim, indexing="ij")
    points = np.column_stack([a.ravel() for a in axes])
    node = np.arange(len(points)).reshape((n + 1,) * dim)
    i = [a.ravel() for a in np.meshgrid(*[np.arange(n)] * dim, indexing="ij")]
    if dim == 2:
        a, b, c, d = node[i[0], i[1]], node[i[0] + 1, i[1]], node[i[0] + 1, i[1] + 1], node[i[0], i[1] + 1]
        grid = np.stack([a, b, c, d], 1) if kind == "quadrilateral" else \
            np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
        stray = [node[2, 2], node[5, 3], node[3, 5]] if kind == "triangle" else \
            [node[1, 1], node[4, 2], node[4, 4], node[2, 4]]
    else:
        x, y, z = i
        corner = [node[x + dx, y + dy, z + dz] for dx, dy, dz in
                  ((0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1))]
        hexes = np.stack(corner, 1)
        grid = hexes if kind == "hexahedron" else np.concatenate([hexes[:, t] for t in SIMPLICES["hexahedron"]])
        stray = [node[1, 1, 1], node[4, 2, 1], node[2, 4, 2], node[2, 2, 4]] if kind == "tetrahedron" else \
            [node[1, 1, 1], node[4, 1, 1], node[4, 4, 1], node[1, 4, 1], node[1, 1, 4], node[4, 1, 4],
             node[4, 4, 4], node[1, 4, 4]]
    facets, tags = np.zeros((0, 2 if dim == 2 else (4 if kind == "hexahedron" else 3)), dtype=np.int64), \
        np.zeros(0, dtype=np.int64)
    check_mesh_file("m.msh", points, grid, kind, facets, tags)  # the grid alone: conforming
    with pytest.raises(CaseError, match="the mesh is not conforming") as refused:
        check_mesh_file("m.msh", points, np.vstack([grid, stray]), kind, facets, tags)
    assert "touch or overlap" in str(refused.value)  # (the probes beside its facets, inside the grid's cells)
    if kind == "triangle":  # the angle about its corners finds it too
        from solver.mesh.cells import CELLS
        from solver.mesh.conformity import _refuse_crowded_nodes

        with pytest.raises(CaseError, match=r"the cells about node 33 \(near 0.375, 0.625\) fill 1.176 times the full"):
            _refuse_crowded_nodes("m.msh", points, points, np.vstack([grid, stray]), CELLS[kind].linear)


def _unit_grid(kind, n):
    """The unit square or cube in n per side squares (cubes), as quadrilaterals (hexahedra) or split
    into triangles (six tetrahedra each)."""
    from solver.mesh.conformity import SIMPLICES

    dim = 3 if kind in ("tetrahedron", "hexahedron") else 2
    axes = np.meshgrid(*[np.linspace(0, 1, n + 1)] * dim, indexing="ij")
    points = np.column_stack([a.ravel() for a in axes])
    node = np.arange(len(points)).reshape((n + 1,) * dim)
    i = [a.ravel() for a in np.meshgrid(*[np.arange(n)] * dim, indexing="ij")]
    steps = ((0, 0), (1, 0), (1, 1), (0, 1)) if dim == 2 else \
        ((0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1))
    boxes = np.stack([node[tuple(a + d for a, d in zip(i, step))] for step in steps], 1)
    if kind in ("quadrilateral", "hexahedron"):
        return points, boxes
    return points, np.concatenate([boxes[:, t] for t in SIMPLICES["quadrilateral" if dim == 2 else "hexahedron"]])


@pytest.mark.parametrize("scale", [1.0, 1e155, 1e-160])
@pytest.mark.parametrize("kind", ["triangle", "quadrilateral", "tetrahedron", "hexahedron"])
def test_a_part_wholly_inside_another_on_nodes_of_its_own_is_refused(kind, scale):
    """A small grid of cells on nodes of its own inside a grid, away from its boundary (or one
    cell): its facets are exterior facets among the grid's interior cells, which the probes' query
    passed over (a source's 1 J came out as 1.01 J, exit 0). At coordinates of 1e155 the k-d tree's
    squared distances overflowed (an internal error), and the solid angles of tetrahedra called the
    grid alone crowded; at 1e-160 they vanished, and the part went unseen: the checks run on
    coordinates scaled to about 1."""
    from solver.errors import CaseError
    from solver.mesh.conformity import check_mesh_file

    points, grid = _unit_grid(kind, 8)
    dim = points.shape[1]
    facets, tags = np.zeros((0, {2: 2, 3: 4 if kind == "hexahedron" else 3}[dim]), dtype=np.int64), \
        np.zeros(0, dtype=np.int64)
    check_mesh_file("m.msh", points * scale, grid, kind, facets, tags)  # the grid alone: conforming
    for n, size in ((2, 0.3), (1, 0.15)):
        inner_points, inner = _unit_grid(kind, n)
        both = np.vstack([points, 0.4 + size * inner_points]) * scale
        cells = np.vstack([grid, inner + len(points)])
        with pytest.raises(CaseError, match="the mesh is not conforming: elements [0-9]+ and [0-9]+ of its kind "
                                            r"\(at ([^)]*)\) touch or overlap") as refused:
            check_mesh_file("m.msh", both, cells, kind, facets, tags)
        at = np.array(str(refused.value).split("(at ")[1].split(")")[0].split(", "), dtype=float) / scale
        assert np.all((at >= 0.4) & (at <= 0.4 + size)), at  # (on the inner part's boundary)


@pytest.mark.parametrize("far", [1e300, -1e300, 1e-300])
@pytest.mark.parametrize("kind", ["triangle", "quadrilateral", "tetrahedron", "hexahedron"])
def test_a_node_no_cell_uses_does_not_scale_the_conformity_checks(kind, far):
    """A node no cell uses at 1e300 set the checks' scale: the cells' products vanished, and a part
    on nodes of its own inside another was accepted (a source's 0.1 J counted as 0.2 J, exit 0)."""
    from solver.errors import CaseError
    from solver.mesh.conformity import check_mesh_file

    points, grid = _unit_grid(kind, 8)
    inner_points, inner = _unit_grid(kind, 2)
    dim = points.shape[1]
    both = np.vstack([points, 0.4 + 0.3 * inner_points, np.full((1, dim), far)])
    facets, tags = np.zeros((0, {2: 2, 3: 4 if kind == "hexahedron" else 3}[dim]), dtype=np.int64), \
        np.zeros(0, dtype=np.int64)
    check_mesh_file("m.msh", both, grid, kind, facets, tags)  # the grid alone: conforming
    with pytest.raises(CaseError, match=r"the mesh is not conforming: elements [0-9]+ and [0-9]+ of its kind \(at "
                                        r"0\.[4-7][0-9]*, 0\.[4-7]"):
        check_mesh_file("m.msh", both, np.vstack([grid, inner + len(points)]), kind, facets, tags)


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_triangle_inside_a_square_on_nodes_of_its_own_is_refused_on_every_rank_count(tmp_path, nprocs):
    """One triangle on three nodes of its own inside a square of 32: its source's heat was counted
    twice there (1.01 J for 1 J, exit 0); refused with exit 2 however many ranks run it."""
    points, cells = _unit_grid("triangle", 4)
    points = np.vstack([points, [(0.4, 0.4), (0.55, 0.4), (0.4, 0.55)]])
    _write_mesh(tmp_path / "m.msh", points, "triangle", np.vstack([cells, [len(points) - 3, len(points) - 2,
                                                                           len(points) - 1]]))
    (tmp_path / "case.toml").write_text('[mesh]\nfile = "m.msh"\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n'
                                        '[source]\nf = 1.0\n[time]\nscheme = "backward-euler"\ndt = 0.5\n'
                                        't_end = 1.0\n')
    proc = run_solver(nprocs, ["case.toml"], cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "touch or overlap" in errors[0], proc.stderr


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_square_of_side_1e155_runs_on_every_rank_count(tmp_path, nprocs):
    """Coordinates up to 1e155 (cells of 1.25e154, whose areas still fit a double): the conformity
    check's squared distances overflowed, an internal error (and an ORTE error on 3 ranks)."""
    points, cells = _unit_grid("triangle", 8)
    side = np.flatnonzero(np.isclose(points[:, 0], 0)), np.flatnonzero(np.isclose(points[:, 0], 1))
    lines = [np.stack([s[:-1], s[1:]], 1) for s in side]
    meshio.write(tmp_path / "m.msh", meshio.Mesh(np.c_[points * 1e155, np.zeros(len(points))], [
        ("line", np.vstack(lines)), ("triangle", cells)], cell_data={
        "gmsh:physical": [np.repeat([1, 2], 8), np.full(len(cells), 3)],
        "gmsh:geometrical": [np.repeat([1, 2], 8), np.full(len(cells), 1)]},
        field_data={"left": np.array([1, 1]), "right": np.array([2, 1])}), file_format="gmsh22", binary=False)
    (tmp_path / "case.toml").write_text('[mesh]\nfile = "m.msh"\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n'
                                        '[boundary.left]\ntype = "dirichlet"\nvalue = 0.0\n[boundary.right]\n'
                                        'type = "dirichlet"\nvalue = 1.0\n[time]\nscheme = "steady"\n')
    proc = run_solver(nprocs, ["case.toml"], cwd=tmp_path, timeout=60)
    assert "heat flows in (W): left -1, right +1;" in proc.stdout + proc.stderr


@pytest.mark.parametrize("case", ["split along different diagonals", "conforming", "tagged facet not of a cell"])
def test_meshes_of_over_two_million_nodes_are_checked_too(case):
    """Three node ids of a facet no longer fit one 63-bit key past 2^21 nodes: such meshes went
    unchecked. The same tetrahedra, their node ids moved past 2^21 (unused nodes before them)."""
    from solver.errors import CaseError
    from solver.mesh.conformity import check_mesh_file

    points, cells = _merged([_unit_cube_tets(0, False), _unit_cube_tets(1, case.startswith("split"))])
    shift = 1 << 21
    points = np.vstack([np.zeros((shift, 3)), points])
    facet = cells[0, [0, 1, 2]]  # a face of the first cell, or three nodes of no cell's face:
    across = np.array([cells[0, 0], cells[0, 1], np.setdiff1d(cells[-1], cells[0])[0]])
    facets = np.sort(across if case.startswith("tagged") else facet)[None, :] + shift
    tags = np.array([7])
    if case == "conforming":
        kept, kept_tags, _ = check_mesh_file("m.msh", points, cells + shift, "tetrahedron", facets, tags)
        assert np.array_equal(kept, facets) and kept_tags.tolist() == [7]
        return
    message = "is not conforming" if case.startswith("split") else "are not facets of the mesh's cells"
    with pytest.raises(CaseError, match=message):
        check_mesh_file("m.msh", points, cells + shift, "tetrahedron", facets, tags)


@pytest.mark.parametrize("shift", [0, 1 << 21])
def test_a_facet_of_three_cells_is_refused_naming_one_of_them(shift):
    """A fan of tetrahedra about one face, the third laid on it among many conforming cells: the
    message names its element (the keys of one word are sorted in place and made again a chunk at
    a time to find it; those of two words, past 2^21 nodes, are kept)."""
    from solver.errors import CaseError
    from solver.mesh.conformity import CHUNK, check_mesh_file

    n = 24  # 6 n^3 = 82,944 tetrahedra: more facets than a chunk
    axes = np.meshgrid(*[np.linspace(0, 1, n + 1)] * 3, indexing="ij")
    points = np.column_stack([a.ravel() for a in axes])
    node = np.arange(len(points)).reshape((n + 1,) * 3)
    x, y, z = (a.ravel() for a in np.meshgrid(*[np.arange(n)] * 3, indexing="ij"))
    hexes = np.stack([node[x + dx, y + dy, z + dz] for dx, dy, dz in ((0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0),
                                                                        (0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1))], 1)
    tets = np.concatenate([hexes[:, t] for t in ((0, 1, 2, 6), (0, 2, 3, 6), (0, 3, 7, 6), (0, 7, 4, 6), (0, 4, 5, 6),
                                                 (0, 5, 1, 6))])
    assert 4 * len(tets) > CHUNK
    face = tets[-1, :3]  # a face of the last cell inside the cube: two cells share it, the third is laid on it
    outside = len(points)
    points = np.vstack([points, points[face].mean(axis=0) + [0.01, 0.02, 0.5]])
    third = np.array([[*face, outside]])
    third = third if _signed_volume(points, third[0]) > 0 else third[:, [1, 0, 2, 3]]
    sharing = np.isin(tets, face).sum(axis=1) == 3  # the two cells of the face last: found past the first chunk
    cells = np.vstack([tets[~sharing], tets[sharing], third])
    if shift:
        points, cells = np.vstack([np.zeros((shift, 3)), points]), cells + shift
    empty = np.zeros((0, 3), dtype=np.int64)
    with pytest.raises(CaseError, match=r"a facet of element (\d+) of its kind .* is shared by three or more "
                                        r"elements") as refused:
        check_mesh_file("m.msh", points, cells, "tetrahedron", empty, np.zeros(0, dtype=np.int64))
    element = int(re.search(r"element (\d+)", str(refused.value)).group(1)) - 1
    assert set(face + shift) <= set(cells[element].tolist())


def _signed_volume(points, tet):
    a, b, c, d = points[tet]
    return float(np.dot(np.cross(b - a, c - a), d - a))


def _square_triangles(n, degree=1):
    """The unit square in 2 n^2 triangles (degree 2: 6-node, midpoints shared), and its side x = 1."""
    x, y = np.meshgrid(np.linspace(0, 1, 2 * n + 1), np.linspace(0, 1, 2 * n + 1), indexing="ij")
    points = np.column_stack([x.ravel(), y.ravel()])
    node = np.arange(len(points)).reshape(2 * n + 1, 2 * n + 1)
    i, j = (a.ravel() for a in np.meshgrid(np.arange(0, 2 * n, 2), np.arange(0, 2 * n, 2), indexing="ij"))
    a, b, c, d = node[i, j], node[i + 2, j], node[i + 2, j + 2], node[i, j + 2]
    cells = np.concatenate([np.stack([a, b, c, node[i + 1, j], node[i + 2, j + 1], node[i + 1, j + 1]], axis=1),
                            np.stack([a, c, d, node[i + 1, j + 1], node[i + 1, j + 2], node[i, j + 1]], axis=1)])
    right = np.stack([node[-1, 0:-1:2], node[-1, 2::2], node[-1, 1::2]], axis=1)
    return points, (cells if degree == 2 else cells[:, :3]), (right if degree == 2 else right[:, :2])


def _write_with_right(path, points, kind, cells, facet_kind, right):
    points = np.c_[points, np.zeros(len(points))]
    meshio.write(path, meshio.Mesh(points, [(kind, cells), (facet_kind, right)],
                                   cell_data={"gmsh:physical": [np.full(len(cells), 1), np.full(len(right), 2)],
                                              "gmsh:geometrical": [np.full(len(cells), 1), np.full(len(right), 2)]},
                                   field_data={"domain": np.array([1, 2]), "right": np.array([2, 1])}),
                 file_format="gmsh22", binary=False)


def test_boundary_elements_and_quadratic_edges_must_match_the_cells(tmp_path):
    """A boundary element spanning several cell facets (its condition held at its corners only) and
    quadratic cells with midpoint nodes of their own on a shared edge (a torn field) are refused;
    a boundary element listed twice in its group counts once (its flux was applied twice), and a
    planar mesh with rounding noise in z is read as 2D."""
    from solver.errors import CaseError
    from solver.mesh.files import read

    points, cells, right = _square_triangles(2)
    twice = np.concatenate([right, right[:, ::-1]])
    _write_with_right(tmp_path / "twice.msh", points, "triangle", cells, "line", twice)
    assert len(read(tmp_path / "twice.msh").facets) == len(right)
    _write_with_right(tmp_path / "long.msh", points, "triangle", cells, "line", right[[0, 1], [0, 1]][None])
    with pytest.raises(CaseError, match="1 boundary elements .* are not facets of the mesh's cells"):
        read(tmp_path / "long.msh")
    noisy = np.c_[points, 1e-17 * np.cos(np.arange(len(points)))]
    meshio.write(tmp_path / "noisy.msh", meshio.Mesh(noisy, [("triangle", cells)]), file_format="gmsh22", binary=False)
    assert read(tmp_path / "noisy.msh").points.shape[1] == 2
    points, cells, right = _square_triangles(2, degree=2)
    own = cells.copy()  # the second triangle of each square: a midpoint node of its own on the diagonal
    torn = np.vstack([points, points[own[len(own) // 2:, 3]]])
    own[len(own) // 2:, 3] = len(points) + np.arange(len(own) // 2)
    _write_with_right(tmp_path / "p2.msh", points, "triangle6", cells, "line3", right)
    assert len(read(tmp_path / "p2.msh").cells) == len(cells)
    _write_with_right(tmp_path / "torn.msh", torn, "triangle6", own, "line3", right)
    with pytest.raises(CaseError, match="share an edge .* have midpoint nodes of their own there"):
        read(tmp_path / "torn.msh")
    swapped = cells.copy()  # two midpoint nodes of one cell in another order: named as such, not as a mismatch
    swapped[0, [3, 4]] = swapped[0, [4, 3]]
    _write_with_right(tmp_path / "swapped.msh", points, "triangle6", swapped, "line3", right)
    with pytest.raises(CaseError, match="element 1 of its kind .* has an edge midpoint node .*check the order"):
        read(tmp_path / "swapped.msh")


@pytest.mark.parametrize("shift", [0, 1 << 15])
@pytest.mark.parametrize("fault", ["none", "corners crossed", "a corner off the face", "a node doubled inside"])
def test_hexahedra_faces_are_matched_by_all_four_corners_in_order(tmp_path, fault, shift):
    """Faces of hexahedra were matched by their three smallest node ids: a boundary quadrilateral
    with its corners crossed (0.89 W for 1 W) or its fourth corner elsewhere (1.25 W), and two
    cells whose shared face had a node doubled on one side (a crack: 0.81 W), were accepted.
    ``shift``: node ids past 2^15 (unused nodes before them), whose four ids take two words."""
    from solver.errors import CaseError
    from solver.mesh.files import read

    points, cells = _merged([_grid_hexes(0, 2, 0.5), _grid_hexes(1, 2, 0.5)])
    right = cells[points[cells[:, 1], 0] == 2.0][:, [1, 2, 6, 5]]  # the faces x = 2, in order round them
    if fault == "corners crossed":
        right[0] = right[0, [0, 2, 1, 3]]
    elif fault == "a corner off the face":  # its largest corner moved to the far corner of the side x = 2
        largest = int(np.argmax(right[0]))
        right[0, largest] = right.max()
        assert right[0, largest] > np.sort(right[0])[2]  # its three smallest corners are still a face's
    elif fault == "a node doubled inside":  # the shared face's largest node, doubled for the cells beyond it
        beyond = points[cells[:, 0], 0] == 1.0
        shared = int(cells[beyond][:, [0, 3, 7, 4]].max())
        points = np.vstack([points, points[shared]])
        cells[beyond] = np.where(cells[beyond] == shared, len(points) - 1, cells[beyond])
    points, cells, right = np.vstack([np.full((shift, 3), 9.0), points]), cells + shift, right + shift
    mesh = meshio.Mesh(points, [("hexahedron", cells), ("quad", right)],
                       cell_data={"gmsh:physical": [np.full(len(cells), 1), np.full(len(right), 2)],
                                  "gmsh:geometrical": [np.full(len(cells), 1), np.full(len(right), 2)]},
                       field_data={"domain": np.array([1, 3]), "right": np.array([2, 2])})
    meshio.write(tmp_path / "m.msh", mesh, file_format="gmsh22", binary=False)
    if fault == "none":
        assert len(read(tmp_path / "m.msh").facets) == 4
        return
    message = {"corners crossed": "lists its corners in an order that does not go round its face",
               "a corner off the face": "are not facets of the mesh's cells",
               "a node doubled inside": "touch or overlap without sharing the nodes of their facets"}[fault]
    with pytest.raises(CaseError, match=message):
        read(tmp_path / "m.msh")


@pytest.mark.parametrize("kind, cells", [("quad", [[0, 1, 4, 3], [1, 2, 5, 5]]), ("triangle", [[0, 1, 4], [1, 5, 5]])])
def test_a_cell_that_lists_a_node_twice_is_called_degenerate(tmp_path, kind, cells):
    """It was refused as "boundary elements ... are not facets of the mesh's cells"."""
    from solver.errors import CaseError
    from solver.mesh.files import read

    points = np.array([[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1]], dtype=float)
    _write_mesh(tmp_path / "m.msh", points, kind, cells)
    with pytest.raises(CaseError, match="element 2 of its kind .* lists a node more than once: a degenerate cell"):
        read(tmp_path / "m.msh")


def test_a_second_order_xdmf_mesh_says_which_formats_hold_one(tmp_path):
    """meshio cannot read back the XDMF of quadratic cells with their boundary elements (a mixed
    topology, as meshio writes a converted Gmsh file): the refusal was a bare KeyError."""
    from solver.errors import CaseError
    from solver.mesh.files import read

    points, cells, right = _square_triangles(2, degree=2)
    meshio.write(tmp_path / "p2.xdmf", meshio.Mesh(np.c_[points, np.zeros(len(points))],
                                                   [("triangle6", cells), ("line3", right)]))
    with pytest.raises(CaseError, match="does not read second-order cells with boundary elements from XDMF"):
        read(tmp_path / "p2.xdmf")


def test_a_mesh_without_recognised_tags_says_where_groups_are_read_from(tmp_path):
    """Tags in cell data of another name ("foo"): the line said only "no named boundary groups"."""
    points = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    meshio.write(tmp_path / "m.xdmf", meshio.Mesh(points, [("triangle", np.array([[0, 1, 2], [0, 2, 3]])),
                                                           ("line", np.array([[0, 1]]))],
                                                  cell_data={"foo": [np.array([1, 1]), np.array([2])]}))
    (tmp_path / "case.toml").write_text('[mesh]\nfile = "m.xdmf"\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n'
                                        '[boundary.left]\ntype = "dirichlet"\nvalue = 1.0\n[time]\nscheme = "steady"\n')
    proc = run_solver(1, ["case.toml", "--dry-run"], cwd=tmp_path, check=False, timeout=30)
    assert proc.returncode == 2 and "has no boundary group 'left' (it has: no boundary groups: facets tagged in " \
                                   "cell data named gmsh:physical (Gmsh), cell_tags (XDMF) or medit:ref" in proc.stderr


def _square_vtu(path, cell_tags, extra_points=()):
    """The unit square in 2 x 4 x 4 triangles, its left (11) and right (12) sides tagged, as VTU."""
    n = 4
    xs = np.linspace(0.0, 1.0, n + 1)
    points = np.array([[x, y, 0.0] for y in xs for x in xs] + list(extra_points))

    def at(a, b):
        return b * (n + 1) + a
    tri = np.array([t for b in range(n) for a in range(n)
                    for t in ([at(a, b), at(a + 1, b), at(a + 1, b + 1)], [at(a, b), at(a + 1, b + 1), at(a, b + 1)])])
    sides = np.array([[at(0, b), at(0, b + 1)] for b in range(n)] + [[at(n, b), at(n, b + 1)] for b in range(n)])
    tags = cell_tags(points[tri].mean(axis=1))
    meshio.write(path, meshio.Mesh(points, [("triangle", tri), ("line", sides)],
                                   cell_data={"cell_tags": [tags, np.r_[[11] * n, [12] * n]]}))


@pytest.mark.parametrize("nprocs", [1, 2])
def test_a_region_tag_beyond_int32_keeps_its_cells_on_every_rank_count(tmp_path, nprocs):
    """A VTU region tagged 2^32 + 2 (int64 cell tags): cut to int32 on the way to several ranks, it
    lost its cells (1 W for the 1.5 W of k = 1 and 3 in series, exit 0, "selects no cell")."""
    _square_vtu(tmp_path / "big.vtu", lambda c: np.where(c[:, 0] < 0.5, 1, 2**32 + 2).astype(np.int64))
    (tmp_path / "case.toml").write_text('[mesh]\nfile = "big.vtu"\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n'
                                        '[boundary.11]\ntype = "dirichlet"\nvalue = 1.0\n[boundary.12]\n'
                                        'type = "dirichlet"\nvalue = 0.0\n[region.r]\ngroup = "4294967298"\nk = 3.0\n'
                                        '[time]\nscheme = "steady"\n')
    proc = run_solver(nprocs, ["case.toml"], cwd=tmp_path)
    assert "heat flows in (W): 11 +1.5, 12 -1.5;" in proc.stdout + proc.stderr and "selects no cell" not in \
        proc.stdout + proc.stderr


def test_nodes_no_cell_uses_decide_nothing(tmp_path):
    """An unused node off the plane of a 2D mesh, or with a NaN coordinate, had the mesh refused as
    surface elements in 3D, or for a non-finite node; unused nodes are dropped, and so are they."""
    from solver.mesh.files import read

    for name, extra in (("off.vtu", [(5.0, 5.0, 1.0)]), ("nan.vtu", [(np.nan, 0.0, 0.0)])):
        _square_vtu(tmp_path / name, lambda c: np.ones(len(c), dtype=np.int64), extra)
        data = read(tmp_path / name)
        assert data.points.shape == (25, 2) and len(data.cells) == 32


def _square_med(path, cell_data, field_data=None, families=None):
    """The unit square in 2 x 4 x 4 triangles and its sides x = 0, 1 and y = 0 (four edges each),
    written as MED by meshio with ``cell_data`` (lines, then triangles) and MED families."""
    points, cells = _unit_grid("triangle", 4)
    sides = [np.flatnonzero(np.isclose(points[:, axis], at)) for axis, at in ((0, 0), (0, 1), (1, 0))]
    lines = np.vstack([np.stack([s[:-1], s[1:]], 1) for s in sides])
    mesh = meshio.Mesh(np.c_[points, np.zeros(len(points))], [("line", lines), ("triangle", cells)],
                       cell_data=cell_data(len(cells)), field_data=field_data or {})
    if families:
        mesh.cell_tags = families
    meshio.write(path, mesh)


@pytest.mark.parametrize("nprocs", [1, 2])
def test_med_files_are_read_with_their_group_names(tmp_path, nprocs):
    """A MED file that meshio writes from a Gmsh mesh carries field data that is no (tag, dimension)
    pair ({'med:nom': [[]]}): an internal error (TypeError, exit 1); its groups are numbered. A MED
    file's group names (meshio's families: tag -> groups) were left out ("it has: -1, -2, ..."):
    a group takes its name, its families one tag; a family in two groups keeps its number."""
    from solver.mesh.files import read

    _square_med(tmp_path / "gmsh.med", lambda n: {"gmsh:physical": [np.repeat([1, 2, 3], 4), np.full(n, 10)]},
                {"left": np.array([1, 1]), "right": np.array([2, 1])})
    assert sorted(read(tmp_path / "gmsh.med").groups.boundary) == ["1", "2", "3"]
    families = {-1: ["left"], -2: ["right"], -3: ["left"], -4: ["bottom", "walls"], -10: ["plate"]}
    sides = np.array([-1, -1, -3, -1, -2, -2, -2, -2, -4, -4, -4, -4])  # left in two families
    _square_med(tmp_path / "m.med", lambda n: {"cell_tags": [sides, np.full(n, -10)]}, families=families)
    groups = read(tmp_path / "m.med").groups
    assert groups.boundary == {"left": -3, "right": -2, "-4": -4} and groups.region == {"plate": -10}
    assert groups.facet_counts == {"left": 4, "right": 4, "-4": 4}
    (tmp_path / "case.toml").write_text('[mesh]\nfile = "m.med"\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n'
                                        '[boundary.left]\ntype = "dirichlet"\nvalue = 0.0\n[boundary.right]\n'
                                        'type = "dirichlet"\nvalue = 1.0\n[region.p]\ngroup = "plate"\nk = 2.0\n'
                                        '[time]\nscheme = "steady"\n')
    proc = run_solver(nprocs, ["case.toml"], cwd=tmp_path, timeout=60)
    assert "heat flows in (W): left -2, right +2;" in proc.stdout + proc.stderr


def test_a_dart_quadrilateral_is_called_not_convex():
    """A quadrilateral with a corner pointing inwards (simple, not convex) was "inverted or
    self-intersecting ... check its node order": it is named for what it is, its corner given; a bow
    tie (two corners swapped) keeps the old message."""
    from solver.errors import CaseError
    from solver.mesh.conformity import check_mesh_file

    no_facets = np.zeros((0, 2), int), np.zeros(0, int)
    points = np.array([(0, 0), (1, 0), (0.2, 0.2), (0, 1), (1, 1)], float)
    with pytest.raises(CaseError, match="element 1 of its kind .* is not convex: its corner at node 3 points inwards"):
        check_mesh_file("m.msh", points, np.array([[0, 1, 2, 3], [1, 4, 3, 2]]), "quadrilateral", *no_facets)
    with pytest.raises(CaseError, match="element 1 of its kind .* is inverted or self-intersecting"):
        check_mesh_file("m.msh", points, np.array([[0, 1, 3, 4]]), "quadrilateral", *no_facets)


def test_cells_of_two_orders_are_refused_with_the_way_to_one_order(tmp_path):
    """3-node triangles beside 6-node ones were told to make all quadrilaterals or to split the
    quadrilaterals, which the file does not have: the line says to mesh one order."""
    from solver.errors import CaseError
    from solver.mesh.files import read

    points = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0.5, 0, 0], [1, 0.5, 0], [0.5, 0.5, 0]], float)
    meshio.write(tmp_path / "orders.msh", meshio.Mesh(points, [("triangle", [[0, 2, 3]]),
                                                              ("triangle6", [[0, 1, 2, 4, 5, 6]])], cell_data={
        "gmsh:physical": [[1], [1]], "gmsh:geometrical": [[1], [1]]}), file_format="gmsh22", binary=False)
    with pytest.raises(CaseError, match=r"mixed triangle and triangle6 meshes are not supported: mesh all cells of "
                                        r"one order \(Gmsh: Mesh.ElementOrder = 2") as info:
        read(tmp_path / "orders.msh")
    assert "quadrilateral" not in str(info.value)


def test_meshes_that_cannot_be_read_say_what_to_do(tmp_path):
    """Triangles beside quadrilaterals were refused with no way out, a Gmsh-partitioned MSH 4.1
    file as damaged (KeyError: 7): each says how to write a mesh that is read. A physical group of
    an empty name was listed as a blank ("it has: , a.b, ..."): it is named by its tag."""
    from solver.errors import CaseError
    from solver.mesh.files import read

    points, cells = _unit_grid("quadrilateral", 2)
    meshio.write(tmp_path / "mixed.msh", meshio.Mesh(np.c_[points, np.zeros(len(points))], [
        ("quad", cells[1:]), ("triangle", cells[:1, :3]), ("triangle", cells[:1, [0, 2, 3]])], cell_data={
        "gmsh:physical": [np.ones(3, int), [1], [1]], "gmsh:geometrical": [np.ones(3, int), [1], [1]]}),
        file_format="gmsh22", binary=False)
    with pytest.raises(CaseError, match="mixed quadrilateral and triangle meshes are not supported: mesh with one "
                                        r"type \(Gmsh: Mesh.RecombineAll = 1 .*split each quadrilateral"):
        read(tmp_path / "mixed.msh")
    gmsh.initialize(["", "-v", "0"])
    try:
        gmsh.model.occ.addRectangle(0, 0, 0, 1, 1)
        gmsh.model.occ.synchronize()
        gmsh.model.addPhysicalGroup(2, [1], name="plate")
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.25)
        gmsh.model.mesh.generate(2)
        gmsh.model.mesh.partition(3)
        gmsh.write(str(tmp_path / "parts.msh"))
    finally:
        gmsh.finalize()
    with pytest.raises(CaseError, match=r"cannot read the mesh: partitioned MSH 4 files \(with \$PartitionedEntities\) "
                                        r"are not read .*save the mesh unpartitioned .*or as MSH 2.2"):
        read(tmp_path / "parts.msh")
    points, cells = _unit_grid("triangle", 1)  # nodes (0, 0), (0, 1), (1, 0), (1, 1)
    nodes = "".join(f"{i + 1} {x} {y} 0\n" for i, (x, y) in enumerate(points))
    elements = ["1 2 5 0 1 2", "1 2 6 0 3 4"] + [f"2 2 1 0 {' '.join(str(n + 1) for n in c)}" for c in cells]
    (tmp_path / "blank.msh").write_text(
        '$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$PhysicalNames\n3\n1 5 ""\n1 6 "right"\n2 1 "plate"\n'
        f'$EndPhysicalNames\n$Nodes\n4\n{nodes}$EndNodes\n$Elements\n4\n'
        + "".join(f"{k + 1} {e}\n" for k, e in enumerate(elements)) + "$EndElements\n")
    assert read(tmp_path / "blank.msh").groups.boundary == {"right": 6, "5": 5}


def _id_files(folder):
    """The unit square as Abaqus, AVS-UCD and Nastran files (nodes named by id) with node 5 given
    twice (the later one moved to x = 0.7, where the elements would take it), as an Abaqus file
    whose nodes are in two *NODE sections, and as a Nastran file with a GRID in coordinate system 2."""
    points, cells = _unit_grid("triangle", 2)
    mesh = meshio.Mesh(np.c_[points, np.zeros(len(points))], [("triangle", cells)])
    meshio.write(folder / "good.inp", mesh)
    meshio.write(folder / "good.avs", mesh)
    meshio.write(folder / "good.bdf", mesh)
    lines = (folder / "good.inp").read_text().split("\n")
    at = lines.index("*NODE")
    end = next(i for i in range(at + 1, len(lines)) if lines[i].startswith("*"))
    (folder / "twice.inp").write_text("\n".join(lines[:end] + ["5, 0.7, 0.0, 0.0"] + lines[end:]))
    (folder / "sections.inp").write_text("\n".join(lines[:at + 4] + ["*NODE"] + lines[at + 4:]))
    lines = (folder / "good.avs").read_text().split("\n")
    head = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    lines[head] = f"{len(points) + 1} " + lines[head].split(" ", 1)[1]
    (folder / "twice.avs").write_text("\n".join(lines[:head + 1 + len(points)] + ["5 0.7 0.0 0.0"]
                                                + lines[head + 1 + len(points):]))
    lines = (folder / "good.bdf").read_text().split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("CTRIA3"))
    (folder / "twice.bdf").write_text("\n".join(lines[:at] + ["GRID,5,,0.7,0.0,0.0"] + lines[at:]))
    at = next(i for i, line in enumerate(lines) if line.startswith("GRID*   5 "))
    lines[at] = lines[at][:24] + "2".rjust(16) + lines[at][40:]  # (large field: CP in columns 25-40)
    (folder / "system.bdf").write_text("\n".join(lines))


def test_node_ids_given_twice_in_abaqus_and_avs_files_are_refused(tmp_path):
    """meshio maps node ids to rows with a dict: of two nodes with one id the elements took the later
    one's coordinates, and a later *NODE section replaced the earlier ones (a KeyError, called a
    damaged file, or other nodes where the ids overlap): refused, as repeated Gmsh tags are. A
    Nastran GRID's coordinate system, which meshio does not apply, is refused too."""
    from solver.errors import CaseError
    from solver.mesh.files import read

    _id_files(tmp_path)
    for name in ("good.inp", "good.avs", "good.bdf"):
        assert len(read(tmp_path / name).cells) == 8
    for name in ("twice.inp", "twice.avs", "twice.bdf"):
        with pytest.raises(CaseError, match=r"1 node id is given to two nodes: the mesh reader keeps the later node"):
            read(tmp_path / name)
    with pytest.raises(CaseError, match=r"sections.inp: 2 \*NODE sections: the mesh reader keeps the nodes of the "
                                        r"last one only"):
        read(tmp_path / "sections.inp")
    points, cells = _unit_grid("tetrahedron", 1)  # (FLAC3D: zones of 3D meshes, points "G<tab>id<tab>x y z")
    meshio.write(tmp_path / "good.f3grid", meshio.Mesh(points, [("tetra", cells)]))
    lines = (tmp_path / "good.f3grid").read_text().split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("G\t"))
    (tmp_path / "twice.f3grid").write_text("\n".join(lines[:at + 8] + ["G\t5\t0.7\t0.0\t0.0"] + lines[at + 8:]))
    assert len(read(tmp_path / "good.f3grid").cells) == 6
    with pytest.raises(CaseError, match=r"1 node id is given to two nodes"):
        read(tmp_path / "twice.f3grid")
    with pytest.raises(CaseError, match=r"system.bdf: 1 GRID cards give their coordinates in a coordinate system of "
                                        r"their own \(CP\), which the mesh reader does not apply"):
        read(tmp_path / "system.bdf")


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_node_id_given_twice_is_refused_on_every_rank_count(tmp_path, nprocs):
    _id_files(tmp_path)
    (tmp_path / "case.toml").write_text('[mesh]\nfile = "twice.inp"\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n'
                                        '[source]\nf = 1.0\n[time]\ndt = 0.1\nt_end = 0.1\n')
    proc = run_solver(nprocs, ["case.toml"], cwd=tmp_path, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "node id is given to two nodes" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_parts_that_touch_at_a_node_or_along_an_edge_alone_are_refused():
    """Two squares sharing a corner (2D), two cubes sharing an edge (3D): no facet between them,
    yet the field carried 0.23 W through the corner, an amount set by the mesh (exit 0). A square
    that shares a whole side passes."""
    from solver.errors import CaseError
    from solver.mesh.conformity import check_mesh_file

    def squares(shift):
        points = np.array([(0, 0), (1, 0), (1, 1), (0, 1)] + [(x + shift[0], y + shift[1])
                                                            for x, y in [(0, 0), (1, 0), (1, 1), (0, 1)]], float)
        cells = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
        merged = {tuple(p): i for i, p in enumerate(points[:4].tolist())}  # shared nodes, once
        cells = np.vectorize(lambda i: merged.get(tuple(points[i].tolist()), i))(cells)
        return points, cells
    points, cells = squares((1, 1))
    with pytest.raises(CaseError, match="its boundary pinches at node 3 "):
        check_mesh_file("m.vtu", points, cells, "triangle", np.zeros((0, 2), int), np.zeros(0, int))
    points, cells = squares((1, 0))
    check_mesh_file("m.vtu", points, cells, "triangle", np.zeros((0, 2), int), np.zeros(0, int))
    cube = np.array([(x, y, z) for z in (0, 1) for y in (0, 1) for x in (0, 1)], float)
    points = np.vstack([cube, [(2, 1, 0), (1, 2, 0), (2, 1, 1), (1, 2, 1), (2, 2, 0), (2, 2, 1)]])
    hexes = np.array([[0, 1, 3, 2, 4, 5, 7, 6], [3, 8, 12, 9, 7, 10, 13, 11]])  # the second on [1, 2]^2 x [0, 1]
    with pytest.raises(CaseError, match="its boundary pinches along the edge of nodes 4 and 8 "):
        check_mesh_file("m.vtu", points, hexes, "hexahedron", np.zeros((0, 4), int), np.zeros(0, int))


def test_parts_that_touch_at_a_corner_alone_in_3d_are_refused():
    """Two tetrahedra (or cubes) sharing one corner: no edge has more than two exterior faces, yet
    the field crossed the corner. A ring of tetrahedra about a node (exterior faces forming two
    cones there) and cubes sharing a face pass."""
    from solver.errors import CaseError
    from solver.mesh.conformity import check_mesh_file

    no_facets = np.zeros((0, 3), int), np.zeros(0, int)
    points = np.array([(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (-1, 0, 0), (0, -1, 0), (0, 0, -1)], float)
    tets = np.array([[0, 1, 2, 3], [0, 5, 4, 6]])
    with pytest.raises(CaseError, match="its boundary pinches at node 1 .*separate groups"):
        check_mesh_file("m.vtu", points, tets, "tetrahedron", *no_facets)
    cube = np.array([(x, y, z) for z in (0, 1) for y in (0, 1) for x in (0, 1)], float)
    points = np.vstack([cube, cube + 1])
    hexes = np.array([[0, 1, 3, 2, 4, 5, 7, 6], [8, 9, 11, 10, 12, 13, 15, 14]])
    hexes[1][hexes[1] == 8] = 7  # the second cube's first corner is the first's last
    with pytest.raises(CaseError, match="its boundary pinches at node 8 "):
        check_mesh_file("m.vtu", points, hexes, "hexahedron", np.zeros((0, 4), int), np.zeros(0, int))
    ring = 8  # tetrahedra about the z axis, sharing the origin and the apex (0, 0, 1) with their neighbours
    angles = 2 * np.pi * np.arange(ring) / ring
    points = np.vstack([[(0, 0, 0), (0, 0, 1)], np.c_[np.cos(angles), np.sin(angles), np.full(ring, 0.5)]])
    tets = np.array([[0, 2 + i, 2 + (i + 1) % ring, 1] for i in range(ring)])
    check_mesh_file("m.vtu", points, tets, "tetrahedron", *no_facets)
    points = np.vstack([cube, cube[4:] + (0, 0, 1)])
    check_mesh_file("m.vtu", points, np.array([[0, 1, 3, 2, 4, 5, 7, 6], [4, 5, 7, 6, 8, 9, 11, 10]]),
                    "hexahedron", np.zeros((0, 4), int), np.zeros(0, int))


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_surface_condition_on_facets_inside_the_domain_is_refused(tmp_path, nprocs):
    """A group of facets across the middle of a square (cells on both sides), given an insulated,
    robin or radiation condition: the insulated one did nothing (no crack: the heat crossed it, exit
    0), the robin one drew 192 W out of the middle of the solid. Refused; a neumann flux there (a
    sheet source) and a dirichlet value still run."""
    n = 4
    xs = np.linspace(0.0, 1.0, n + 1)
    points = np.array([[x, y, 0.0] for y in xs for x in xs])

    def at(a, b):
        return b * (n + 1) + a
    tri = np.array([t for b in range(n) for a in range(n)
                    for t in ([at(a, b), at(a + 1, b), at(a + 1, b + 1)], [at(a, b), at(a + 1, b + 1), at(a, b + 1)])])
    lines = np.array([[at(0, b), at(0, b + 1)] for b in range(n)] + [[at(n, b), at(n, b + 1)] for b in range(n)]
                     + [[at(n // 2, b), at(n // 2, b + 1)] for b in range(n)])
    meshio.write(tmp_path / "m.vtu", meshio.Mesh(points, [("triangle", tri), ("line", lines)], cell_data={
        "cell_tags": [np.ones(len(tri), dtype=np.int64), np.repeat([11, 12, 13], n)]}))
    (tmp_path / "case.toml").write_text('temperature_unit = "C"\n[mesh]\nfile = "m.vtu"\n[material]\nk = 1.0\n'
                                        'rho = 1.0\nc = 1.0\n[boundary.11]\ntype = "dirichlet"\nvalue = 100.0\n'
                                        '[boundary.12]\ntype = "dirichlet"\nvalue = 0.0\n[time]\nscheme = "steady"\n')
    for condition in ('{type="insulated"}', '{type="robin", h=100, T_inf=0}', '{type="radiation", epsilon=1, T_inf=0}'):
        proc = run_solver(nprocs, ["case.toml", "--set", f"boundary.13={condition}", "--dry-run"], cwd=tmp_path,
                          check=False, timeout=60)
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1, proc.stderr
        assert "boundary.13: 4 of the 4 facets of the group '13' of the mesh m.vtu lie inside the domain" in errors[0]
    proc = run_solver(nprocs, ["case.toml", "--set", 'boundary.13={type="neumann", flux=10}'], cwd=tmp_path)
    assert "heat flows in (W): 13 +10, 11 +95, 12 -105;" in proc.stdout + proc.stderr


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_region_whose_group_has_no_cells_is_refused(tmp_path, nprocs):
    """A region named by a physical group that the file lists without cells gave its properties to
    nothing (a warning, exit 0), where a boundary group without facets is refused."""
    points, cells = _unit_grid("triangle", 2)
    nodes = "".join(f"{i + 1} {x} {y} 0\n" for i, (x, y) in enumerate(points))
    left = np.flatnonzero(points[:, 0] == 0)
    left = left[np.argsort(points[left, 1])]
    elements = [f"2 2 1 0 {' '.join(str(n + 1) for n in c)}" for c in cells] + \
        [f"1 2 5 0 {a + 1} {b + 1}" for a, b in zip(left[:-1], left[1:])]
    (tmp_path / "m.msh").write_text(
        '$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$PhysicalNames\n3\n1 5 "left"\n2 1 "plate"\n2 10 "copper"\n'
        f'$EndPhysicalNames\n$Nodes\n{len(points)}\n{nodes}$EndNodes\n$Elements\n{len(elements)}\n'
        + "".join(f"{k + 1} {e}\n" for k, e in enumerate(elements)) + "$EndElements\n")
    (tmp_path / "case.toml").write_text('[mesh]\nfile = "m.msh"\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n'
                                        '[region.cu]\ngroup = "copper"\nk = 400.0\n[time]\nscheme = "steady"\n'
                                        '[boundary.left]\ntype = "dirichlet"\nvalue = 0.0\n')
    proc = run_solver(nprocs, ["case.toml", "--quiet"], cwd=tmp_path, check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and errors == ["error: case.toml: region.cu.group: the group 'copper' of the mesh file "
                                               "has no cells"], proc.stderr
    assert not (tmp_path / "outputs" / "case" / "case.h5").exists()


def test_a_group_of_another_dimension_is_named_for_what_it_is(tmp_path):
    """A region group given as a boundary, a boundary group as a region, or a group of points,
    was "has no boundary group" as if the name were not in the file."""
    proc = run_solver(1, [PLATE, "--set", "boundary.plate.type=insulated", "--dry-run"], cwd=ROOT, check=False)
    assert proc.returncode == 2 and "has no boundary group 'plate': 'plate' is a region group (cells, dimension 2); " \
        "a boundary is a group of facets (dimension 1) (it has: bottom" in proc.stderr, proc.stderr
    proc = run_solver(1, [PLATE, "--set", "region.x.group=left", "--set", "region.x.k=1", "--dry-run"], cwd=ROOT,
                      check=False)
    assert proc.returncode == 2 and "has no region group 'left': 'left' is a boundary group (facets, dimension 1)" \
        in proc.stderr, proc.stderr
    gmsh.initialize()
    gmsh.option.setNumber("General.Terminal", 0)
    try:
        gmsh.model.occ.addRectangle(0, 0, 0, 1, 1)
        gmsh.model.occ.synchronize()
        gmsh.model.addPhysicalGroup(2, [1], name="plate")
        gmsh.model.addPhysicalGroup(1, [4], name="left")
        gmsh.model.addPhysicalGroup(0, [1], name="corner")
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.5)
        gmsh.model.mesh.generate(2)
        gmsh.write(str(tmp_path / "corner.msh"))
        gmsh.option.setNumber("Mesh.SaveAll", 1)
        gmsh.write(str(tmp_path / "all.msh"))
    finally:
        gmsh.finalize()
    case = tmp_path / "case.toml"
    case.write_text('[mesh]\nfile = "corner.msh"\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n'
                    '[boundary.corner]\ntype = "dirichlet"\nvalue = 1.0\n[time]\nscheme = "steady"\n')
    proc = run_solver(1, [case, "--dry-run"], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "'corner' is a group of points (dimension 0)" in proc.stderr, proc.stderr
    proc = run_solver(1, [case, "--set", "mesh.file=all.msh", "--dry-run"], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Gmsh wrote it with Mesh.SaveAll = 1" in proc.stderr, proc.stderr
