"""Elements in several physical groups, as Gmsh writes them: MSH 2.2 lists such an element once per
group, MSH 4.1 once (meshio tags it with its entity's first group alone). A side in two boundary
groups, and a surface in two region groups, belong to both in either format, on any number of ranks."""

import h5py
import numpy as np
import pytest
from conftest import run_solver

try:
    import gmsh
except Exception as exc:  # ImportError, or OSError when its shared libraries are missing
    pytest.skip(f"gmsh builds the test meshes and cannot be imported ({exc}); make bootstrap installs it",
                allow_module_level=True)

FORMATS = (2.2, 4.1)


def _write(build, folder, name):
    """The model ``build`` makes, meshed and written in both formats: {version: path}."""
    gmsh.initialize(["", "-v", "0"])
    try:
        gmsh.model.add(name)
        build()
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.25)
        gmsh.model.mesh.generate(2)
        paths = {}
        for version in FORMATS:
            gmsh.option.setNumber("Mesh.MshFileVersion", version)
            paths[version] = folder / f"{name}_{version}.msh"
            gmsh.write(str(paths[version]))
        return paths
    finally:
        gmsh.finalize()


def _sides(dim_tags, x_left, x_right):
    sides = {}
    for _, c in dim_tags:
        x, y, _ = gmsh.model.occ.getCenterOfMass(1, c)
        sides.update({"left": c} if abs(x - x_left) < 1e-9 else {"right": c} if abs(x - x_right) < 1e-9 else
                     {"top": c} if abs(y - 1) < 1e-9 and x_right == 1 else {})
    return sides


def _square():
    """The unit square: ``cold`` = left, ``probe_edge`` = right, then ``hot`` = right and top."""
    s = gmsh.model.occ.addRectangle(0, 0, 0, 1, 1)
    gmsh.model.occ.synchronize()
    side = _sides(gmsh.model.getBoundary([(2, s)], oriented=False), 0, 1)
    gmsh.model.addPhysicalGroup(1, [side["left"]], tag=1, name="cold")
    gmsh.model.addPhysicalGroup(1, [side["right"]], tag=2, name="probe_edge")
    gmsh.model.addPhysicalGroup(1, [side["right"], side["top"]], tag=3, name="hot")
    gmsh.model.addPhysicalGroup(2, [s], tag=10, name="body")


def _two_squares(named=True):
    """[0, 2] x [0, 1] in two squares: ``plate`` (10) = both, then ``copper`` (11) = the right one;
    ``named`` False: the groups have tags only (no $PhysicalNames, so no cell sets in meshio)."""
    a, b = gmsh.model.occ.addRectangle(0, 0, 0, 1, 1), gmsh.model.occ.addRectangle(1, 0, 0, 1, 1)
    gmsh.model.occ.fragment([(2, a)], [(2, b)])
    gmsh.model.occ.synchronize()
    side = _sides(gmsh.model.getEntities(1), 0, 2)
    gmsh.model.addPhysicalGroup(1, [side["left"]], name="left")
    gmsh.model.addPhysicalGroup(1, [side["right"]], name="right")
    surfaces = sorted((gmsh.model.occ.getCenterOfMass(2, t)[0], t) for _, t in gmsh.model.getEntities(2))
    gmsh.model.addPhysicalGroup(2, [t for _, t in surfaces], tag=10, name="plate" if named else "")
    gmsh.model.addPhysicalGroup(2, [surfaces[1][1]], tag=11, name="copper" if named else "")


@pytest.fixture(scope="module")
def meshes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("groups")
    return (_write(_square, folder, "square"), _write(_two_squares, folder, "two"),
            _write(lambda: _two_squares(named=False), folder, "unnamed"))


def test_an_element_in_two_groups_is_read_in_both(meshes):
    from solver.mesh.files import read

    square, two, unnamed = meshes
    counts = {}
    for version in FORMATS:
        data = read(unnamed[version])  # groups without names: named by their tags
        right = data.points[data.cells].mean(axis=1)[:, 0] > 1
        assert np.array_equal(np.isin(data.cell_tags, data.groups.region_tags("11")), right), version
        assert np.all(np.isin(data.cell_tags, data.groups.region_tags("10"))), version
        data = read(square[version])
        tags = data.groups.boundary
        counts[version] = {name: int(np.sum(data.facet_tags == tag)) for name, tag in tags.items()}
        data = read(two[version])
        centroids = data.points[data.cells].mean(axis=1)
        for name, inside in (("plate", np.ones(len(centroids), dtype=bool)), ("copper", centroids[:, 0] > 1)):
            carried = np.isin(data.cell_tags, data.groups.region_tags(name))
            assert np.array_equal(carried, inside), (version, name)
    assert counts[2.2] == counts[4.1]
    assert counts[4.1]["hot"] == 2 * counts[4.1]["probe_edge"] > 0  # the right side (4 facets) and the top


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_region_group_that_shares_its_cells_gets_them_in_both_formats(tmp_path, meshes, nprocs):
    """copper (k = 400) is the right square, inside plate (k = 1): 0.9975 W through [0, 2] x [0, 1]
    held at 0 and 1 (MSH 4.1 gave 0.5 W, copper selecting no cell; MSH 2.2 was refused as overlapping)."""
    _, two, _ = meshes
    flows = []
    for version in FORMATS:
        case = tmp_path / f"c{version}.toml"
        case.write_text(f'[mesh]\nfile = "{two[version]}"\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n'
                        f'[region.cu]\ngroup = "copper"\nk = 400.0\n[boundary.left]\ntype = "dirichlet"\nvalue = 0.0\n'
                        f'[boundary.right]\ntype = "dirichlet"\nvalue = 1.0\n[time]\nscheme = "steady"\n')
        proc = run_solver(nprocs, [str(case), "--quiet"], cwd=tmp_path)
        assert "selects no cell" not in proc.stderr
        with h5py.File(tmp_path / "outputs" / case.stem / f"{case.stem}.h5", "r") as f:
            flows.append(f.attrs["balance_heat_in_right"])
    assert flows[0] == pytest.approx(flows[1], rel=1e-9) and flows[0] == pytest.approx(400 / 401, rel=1e-9)


def _tag_and_name(kind):
    """The unit square (``boundary``) or [0, 2] x [0, 1] in two squares (``region``): the left side
    or square in a group of tag 3 without a name, the right one in the group named "3" (tag 7)."""
    if kind == "boundary":
        s = gmsh.model.occ.addRectangle(0, 0, 0, 1, 1)
        gmsh.model.occ.synchronize()
        side = _sides(gmsh.model.getBoundary([(2, s)], oriented=False), 0, 1)
        gmsh.model.addPhysicalGroup(1, [side["left"]], tag=3)
        gmsh.model.addPhysicalGroup(1, [side["right"]], tag=7, name="3")
        gmsh.model.addPhysicalGroup(2, [s], tag=10, name="body")
        return
    a, b = gmsh.model.occ.addRectangle(0, 0, 0, 1, 1), gmsh.model.occ.addRectangle(1, 0, 0, 1, 1)
    gmsh.model.occ.fragment([(2, a)], [(2, b)])
    gmsh.model.occ.synchronize()
    surfaces = sorted((gmsh.model.occ.getCenterOfMass(2, t)[0], t) for _, t in gmsh.model.getEntities(2))
    gmsh.model.addPhysicalGroup(2, [surfaces[0][1]], tag=3)
    gmsh.model.addPhysicalGroup(2, [surfaces[1][1]], tag=7, name="3")


@pytest.mark.parametrize("kind, dim", [("boundary", 1), ("region", 2)])
def test_a_tag_that_is_another_group_s_name_is_refused_naming_both(tmp_path, kind, dim):
    """Groups without a name are named by their tag: tag 3 unnamed beside the group named "3" (tag 7)
    gave "3" to tag 7 alone, tag 3's facets insulated (or cells without their material) without a
    word. Refused naming both, as a name given to two groups is."""
    from solver.errors import CaseError
    from solver.mesh.files import read

    for version, path in _write(lambda: _tag_and_name(kind), tmp_path, kind).items():
        with pytest.raises(CaseError) as err:
            read(path)
        assert str(err.value).startswith(f'{path}: the name "3" is given to two groups (dimension {dim} tag 7, by '
                                         f'its physical name, and dimension {dim} tag 3, which has no name'), version


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_boundary_named_like_another_group_s_tag_stops_the_run(tmp_path, nprocs):
    """[boundary."3"] on such a file applied to tag 7 (the right side) only, exit 0: exit 2, one line."""
    paths = _write(lambda: _tag_and_name("boundary"), tmp_path, "clash")
    for version, path in paths.items():
        case = tmp_path / f"c{version}.toml"
        case.write_text(f'[mesh]\nfile = "{path}"\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n'
                        f'[boundary."3"]\ntype = "dirichlet"\nvalue = 1.0\n[time]\nscheme = "steady"\n')
        proc = run_solver(nprocs, [str(case), "--dry-run"], cwd=tmp_path, check=False, timeout=60)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1, proc.stderr
        assert 'the name "3" is given to two groups (dimension 1 tag 7, by its physical name, and dimension 1 ' \
               'tag 3, which has no name' in errors[0], errors


@pytest.mark.parametrize("nprocs", [1, 3])
def test_two_boundaries_on_the_same_facets_are_refused(tmp_path, meshes, nprocs):
    """``hot`` (right and top) shares the right side with ``probe_edge``: a Dirichlet value on each
    took those facets for the later one, without a word (a flux there was booked on facets a
    Dirichlet value held; two Robin exchanges were added). One line, exit 2; either alone runs."""
    square, _, _ = meshes
    case = tmp_path / "case.toml"
    case.write_text(f'[mesh]\nfile = "{square[4.1]}"\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n'
                    f'[boundary.cold]\ntype = "dirichlet"\nvalue = 0.0\n[boundary.hot]\ntype = "dirichlet"\n'
                    f'value = 1.0\n[boundary.probe_edge]\ntype = "neumann"\nflux = 5.0\n[time]\nscheme = "steady"\n')
    proc = run_solver(nprocs, [str(case), "--quiet"], cwd=tmp_path, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "boundary.hot and boundary.probe_edge are on the same facets" in errors[0], errors
    case.write_text(case.read_text().replace('type = "neumann"\nflux = 5.0', 'type = "insulated"'))
    insulated = run_solver(nprocs, [str(case), "--quiet"], cwd=tmp_path, check=False)  # (was silently ignored)
    assert insulated.returncode == 2 and "are on the same facets" in insulated.stderr, insulated.stderr
    case.write_text(case.read_text().replace('[boundary.probe_edge]\ntype = "insulated"\n', ""))
    assert run_solver(nprocs, [str(case), "--quiet"], cwd=tmp_path, check=False).returncode == 0
