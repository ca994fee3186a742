"""Quadratic elements end to end: one owner per node and the numbering of one rank on any number
of ranks, results files identical on 1 and 3 ranks (structured) and within the solver tolerance
(Gmsh), quadratic cells in the XDMF, a restart on other ranks, closed heat balances with Robin and
radiation boundaries, the explicit scheme with the lumped P2 mass, and bad input refused."""

import h5py
import meshio
import numpy as np
import pytest
from conftest import ROOT, run_script, run_solver

from solver.bench.curved import ring_meshes

try:
    import gmsh  # noqa: F401  (solver.bench.curved meshes the ring with it)
except Exception as exc:  # ImportError, or OSError when its shared libraries are missing
    pytest.skip(f"gmsh builds the test meshes and cannot be imported ({exc}); make bootstrap installs it",
                allow_module_level=True)

PLATE = str(ROOT / "inputs" / "plate.toml")
P2 = ["--set", "element.degree=2", "--set", "solver.rtol=1e-13"]


@pytest.fixture(scope="module")
def rings(tmp_path_factory):
    """The ring 0.5 < r < 1 meshed by gmsh, first order and second order (curved edges on the
    circles); boundary groups inner and outer, region group ring."""
    return ring_meshes(tmp_path_factory.mktemp("rings"), 0.25)


def test_one_owner_per_node_and_the_numbering_of_one_rank(nprocs, rings):
    r = run_script(nprocs, "quadratic_checks.py", *rings)
    assert r["ranks"] == nprocs
    for name, m in r["meshes"].items():
        assert m["same_as_one_rank"] and m["coarse_owned"] == m["vertices"] > 0, name
        assert m["constant_error"] <= 1e-15, name
        if m["affine"]:  # straight cells: P reproduces every linear field
            assert m["linear_error"] <= 1e-13, name
    assert r["meshes"][str(rings[1])]["affine"] is False  # the second-order file keeps its curves


def run_plate(tmp_path, nprocs, *extra):
    out = tmp_path / f"np{nprocs}"
    run_solver(nprocs, [PLATE, *P2, "--set", "mesh.nx=12", "--set", "mesh.ny=7", "--set", "time.t_end=60.0",
                        "--set", "output.every=4", "--set", f"output.directory={out}", "--quiet", *extra],
               cwd=tmp_path)
    return out / "plate" / "plate.h5"


def fields(path):
    with h5py.File(path, "r") as f:
        temps = np.array([f["fields/temperature"][k][()] for k in sorted(f["fields/temperature"])])
        return f["mesh/geometry"][()], f["mesh/topology"][()], temps, dict(f.attrs)


@pytest.mark.parametrize("cell", ["triangle", "quadrilateral"])
def test_results_identical_on_1_and_3_ranks_with_quadratic_cells_in_the_xdmf(tmp_path, cell):
    one = fields(run_plate(tmp_path, 1, "--set", f"mesh.cell={cell}"))
    h5 = run_plate(tmp_path, 3, "--set", f"mesh.cell={cell}")
    three = fields(h5)
    assert np.array_equal(one[0], three[0]) and np.array_equal(one[1], three[1])
    assert np.max(np.abs(one[2] - three[2])) <= 1e-10 * np.max(np.abs(one[2]))
    quadratic = {"triangle": ("triangle6", 6), "quadrilateral": ("quad9", 9)}[cell]
    assert one[0].shape == (25 * 15, 2) and one[1].shape[1] == quadratic[1]
    assert three[3]["balance_relative_imbalance"] < 1e-10
    with meshio.xdmf.TimeSeriesReader(h5.with_suffix(".xdmf")) as reader:
        points, cells = reader.read_points_cells()
        assert cells[0].type == quadratic[0] and points.shape == one[0].shape
        _, data, _ = reader.read_data(reader.num_steps - 1)
    assert np.array_equal(data["temperature"], three[2][-1])


def ring_case(folder, mesh, nprocs, *extra):
    """Steady conduction in the ring, hot inside, convection and radiation outside."""
    text = f"""temperature_unit = "C"
[mesh]
file = "{mesh}"
[element]
degree = 2
[material]
k = "10 + 0.02*T"
rho = 2700.0
c = 900.0
[source]
f = 1000.0
[boundary.inner]
type = "dirichlet"
value = 200.0
[boundary.outer]
type = "convection-radiation"
h = 15.0
epsilon = 0.8
T_inf = 20.0
[time]
scheme = "steady"
[solver]
rtol = 1e-13
[nonlinear]
rtol = 1e-13
"""
    path = folder / "ring.toml"
    path.write_text(text)
    out = folder / f"np{nprocs}"
    run_solver(nprocs, [str(path), "--set", f"output.directory={out}", "--quiet", *extra], cwd=folder)
    return out / "ring" / "ring.h5"


def test_second_order_gmsh_ring_agrees_across_ranks_and_closes_its_balance(tmp_path, rings):
    """Curved P2 cells from a second-order Gmsh file (physical groups for the boundaries), a
    conductivity k(T) and convection-radiation: 1 and 3 ranks agree to the solver tolerance and
    the heat balance of the flows closes."""
    one, three = fields(ring_case(tmp_path, rings[1], 1)), fields(ring_case(tmp_path, rings[1], 3))
    assert np.array_equal(one[0], three[0]) and np.array_equal(one[1], three[1])
    assert one[1].shape[1] == 6
    assert np.max(np.abs(one[2] - three[2])) <= 1e-9 * np.max(np.abs(one[2]))
    for attrs in (one[3], three[3]):
        assert attrs["complete"] and attrs["balance_relative_imbalance"] < 1e-12


def test_transient_balance_closes_with_robin_and_radiation(tmp_path):
    """P2 on a box of tetrahedra heated inside: Robin and radiation boundaries, Newton steps of BDF2."""
    case = tmp_path / "box.toml"
    case.write_text('temperature_unit = "C"\n[mesh]\ntype = "box"\ncell = "tetrahedron"\nnx = 4\nny = 4\nnz = 3\n'
                    'lengths = [0.1, 0.1, 0.05]\n[element]\ndegree = 2\n[material]\nk = 167.0\nrho = 2700.0\n'
                    'c = 896.0\n[initial]\ntemperature = 25.0\n[source]\nf = 5e6\n[boundary.left]\n'
                    'type = "robin"\nh = 50.0\nT_inf = 25.0\n[boundary.right]\ntype = "radiation"\nepsilon = 0.9\n'
                    'T_inf = 25.0\n[boundary.top]\ntype = "convection-radiation"\nh = 10.0\nepsilon = 0.5\n'
                    'T_inf = 0.0\n[time]\nscheme = "bdf2"\ndt = 5.0\nt_end = 40.0\n[solver]\nrtol = 1e-13\n'
                    '[nonlinear]\nrtol = 1e-13\n')
    out = tmp_path / "out"
    run_solver(2, [str(case), "--set", f"output.directory={out}", "--quiet"], cwd=tmp_path)
    with h5py.File(out / "box" / "box.h5", "r") as f:
        assert f.attrs["complete"] and f.attrs["nonlinear_iterations"] > 0
        assert f.attrs["balance_relative_imbalance"] < 1e-12
        assert f["mesh/topology"].shape[1] == 10
        assert min(f.attrs[k] for k in f.attrs if k.startswith("balance_heat_in_") and "source" not in k) < 0


def test_restart_from_3_ranks_continues_on_2(tmp_path):
    common = [PLATE, *P2, "--set", "mesh.nx=10", "--set", "mesh.ny=6", "--set", "time.scheme=bdf2",
              "--set", "output.every=2", "--set", "checkpoint.every=3", "--quiet"]
    run_solver(3, [*common, "--set", "time.t_end=80.0", "--set", f"output.directory={tmp_path / 'whole'}"],
               cwd=tmp_path)
    run_solver(3, [*common, "--set", "time.t_end=40.0", "--set", f"output.directory={tmp_path / 'cut'}"],
               cwd=tmp_path)
    run_solver(2, [*common, "--set", "time.t_end=80.0", "--set", f"output.directory={tmp_path / 'cut'}",
                   "--restart", "latest"], cwd=tmp_path)
    whole, cut = fields(tmp_path / "whole" / "plate" / "plate.h5"), fields(tmp_path / "cut" / "plate" / "plate.h5")
    assert whole[2].shape == cut[2].shape
    assert np.max(np.abs(whole[2] - cut[2])) <= 1e-12 * np.max(np.abs(whole[2]))
    assert cut[3]["complete"] and cut[3]["ranks"] == 2


def test_explicit_euler_with_the_lumped_quadratic_mass(tmp_path):
    """The diagonally scaled P2 mass is positive: explicit Euler at its stable step stays bounded
    and closes its balance."""
    out = tmp_path / "out"
    proc = run_solver(1, [str(ROOT / "inputs" / "heater_ramp.toml"), *P2, "--set", "mesh.cell=triangle",
                          "--set", "mesh.nx=10", "--set", "time.scheme=explicit-euler", "--set", 'time.dt="auto"',
                          "--set", "time.t_end=20.0", "--set", f"output.directory={out}"], cwd=tmp_path)
    assert "explicit-euler: stable limit" in proc.stdout
    with h5py.File(out / "heater_ramp" / "heater_ramp.h5", "r") as f:
        assert f.attrs["complete"] and f.attrs["balance_relative_imbalance"] < 1e-10
        temps = f["fields/temperature"][sorted(f["fields/temperature"])[-1]][()]
        assert np.all(np.isfinite(temps)) and temps.min() >= 19.999 and temps.max() < 200


LUMPED = """[mesh]
type = "{shape}"
cell = "{cell}"
nx = 4
ny = 4
{nz}[element]
degree = 2
[material]
k = 1.0
rho = 1.0
c = 1.0
[source]
f = 1.0
[boundary.left]
type = "dirichlet"
value = 0.0
[time]
scheme = "backward-euler"
mass = "lumped"
dt = 5.0
t_end = 60.0
"""


def test_explicit_euler_refused_on_quadratic_triangles_says_one_line(tmp_path):
    """Explicit Euler with k(T) on quadratic triangles: the lumped mass's warning came before the
    refusal, two lines for one input error."""
    proc = run_solver(1, [str(ROOT / "inputs" / "heater_ramp.toml"), *P2, "--set", "mesh.cell=triangle",
                          "--set", "mesh.nx=4", "--set", "time.scheme=explicit-euler", "--set", 'time.dt="auto"',
                          "--set", 'material.k="10 + T / 100"', "--set", f"output.directory={tmp_path}"],
                      cwd=tmp_path, check=False)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "warning:"))]
    assert proc.returncode == 2 and len(lines) == 1 and "explicit-euler\" needs k, rho and c" in lines[0], proc.stderr


@pytest.mark.parametrize("shape, cell, within", [("rectangle", "triangle", 0.01), ("box", "tetrahedron", 0.03),
                                                 ("rectangle", "quadrilateral", 1e-9)])
def test_the_lumped_quadratic_mass_reaches_the_steady_state_and_warns_on_simplices(tmp_path, shape, cell, within):
    """A long run reaches the steady u = x - x^2 / 2, which the quadratic space holds: exactly on
    quadrilaterals, whose lumped weights are their int N_i. On triangles and tetrahedra no positive
    diagonal mass is consistent with the load int f N_i (zero or negative at the vertices), so the
    load takes the lumped mass's nodal quadrature, second-order accurate (within 0.6% and 4.7% of
    the steady maximum here): a warning says so."""
    (tmp_path / "case.toml").write_text(LUMPED.format(shape=shape, cell=cell, nz="nz = 2\n" if shape == "box" else ""))
    proc = run_solver(1, ["case.toml", "--quiet"], cwd=tmp_path)
    assert ("is second-order accurate only" in proc.stderr) == (within > 1e-9), proc.stderr
    with h5py.File(tmp_path / "outputs" / "case" / "case.h5", "r") as f:
        x = f["mesh/geometry"][:, 0]
        temps = f["fields/temperature"][sorted(f["fields/temperature"])[-1]][()]
    assert np.max(np.abs(temps - (x - x * x / 2))) < within


HEATED = """[mesh]
type = "{shape}"
cell = "{cell}"
nx = 3
ny = 3
{nz}lengths = [1.0, 1.0{z}]
[element]
degree = 2
[material]
k = 2.0
rho = 1000.0
c = 1000.0
[initial]
temperature = 0.0
[source]
f = {f}
{flux}[time]
scheme = "{scheme}"
mass = "lumped"
dt = 5.0
t_end = 100.0
"""


@pytest.mark.parametrize("nprocs", [1, 3])
@pytest.mark.parametrize("shape, cell", [("rectangle", "triangle"), ("box", "tetrahedron")])
def test_a_uniformly_heated_body_heats_uniformly_with_the_lumped_quadratic_mass(tmp_path, shape, cell, nprocs):
    """An insulated body under a uniform source, 2 W/(m K) and 1e6 J/(m^3 K): 100 C after 100 s,
    everywhere. With the load int f N_i, zero at a triangle's vertices and negative at a
    tetrahedron's, the lumped mass left the vertices at 1.25 C and -176 C (exit 0, the balance
    closed); it takes the source at the nodes now. A flux into faces of tetrahedra reaches their
    corners too, and the undershoots inside (the consistent mass's -36 C for 232 C) stay small."""
    box = shape == "box"
    text = HEATED.format(shape=shape, cell=cell, nz="nz = 3\n" if box else "", z=", 1.0" if box else "", f="1.0e6",
                         flux="", scheme="backward-euler")
    (tmp_path / "case.toml").write_text(text)
    run_solver(nprocs, ["case.toml", "--quiet"], cwd=tmp_path)
    with h5py.File(tmp_path / "outputs" / "case" / "case.h5", "r") as f:
        temps = f["fields/temperature"][sorted(f["fields/temperature"])[-1]][()]
    assert np.allclose(temps, 100.0, rtol=1e-8, atol=0)  # (the solves to rtol = 1e-10)
    if not box:
        return
    flux = '[boundary.left]\ntype = "neumann"\nflux = 1.0e5\n'
    (tmp_path / "case.toml").write_text(text.replace("f = 1.0e6", "f = 0.0").replace("[time]", flux + "[time]"))
    run_solver(nprocs, ["case.toml", "--quiet", "--overwrite"], cwd=tmp_path)
    with h5py.File(tmp_path / "outputs" / "case" / "case.h5", "r") as f:
        x = f["mesh/geometry"][:, 0]
        temps = f["fields/temperature"][sorted(f["fields/temperature"])[-1]][()]
        assert abs(f.attrs["balance_heat_in_left"] - 1e7) < 1e-3 and f.attrs["balance_relative_imbalance"] < 1e-10
    assert temps.min() > -0.01 * temps.max() and temps[x == 0.0].min() > 10.0  # the heated face's corners warmed


@pytest.mark.parametrize("degree", [0, 3, "true"])
def test_an_unsupported_degree_is_refused(tmp_path, degree):
    proc = run_solver(2, [PLATE, "--set", f"element.degree={degree}"], cwd=tmp_path, check=False, timeout=30)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr
    assert "element.degree must be one of 1, 2" in errors[0]


@pytest.mark.parametrize("fault, message", [
    ("far", "edge midpoint node more than 0.5 edge lengths off the middle of its edge"),
    ("inverted", "the Jacobian of its quadratic map changes sign")])  # (named as the file is read)
def test_inconsistent_midpoints_of_a_second_order_mesh_are_refused(tmp_path, rings, fault, message):
    m = meshio.read(rings[1])
    cells = m.cells_dict["triangle6"]
    cell = cells[len(cells) // 2]
    a, b, mid = m.points[cell[0]], m.points[cell[1]], cell[3]
    if fault == "far":  # off its edge, sideways, by 0.8 edge lengths
        m.points[mid] = 0.5 * (a + b) + 0.8 * np.array([-(b - a)[1], (b - a)[0], 0.0])
    else:  # along its edge, near a corner: the map folds over inside the cell
        m.points[mid] = a + 0.05 * (b - a)
    bad = tmp_path / "bad.msh"
    meshio.write(bad, m, file_format="gmsh22", binary=False)
    for nprocs in (1, 3):
        proc = run_solver(nprocs, [str(ring_case_file(tmp_path, bad))], cwd=tmp_path, check=False, timeout=60)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1 and message in errors[0], proc.stderr
        assert "bad.msh" in errors[0] and "Traceback" not in proc.stderr


def ring_case_file(folder, mesh):
    path = folder / "bad.toml"
    path.write_text(f'[mesh]\nfile = "{mesh}"\n[element]\ndegree = 2\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n'
                    '[boundary.inner]\ntype = "dirichlet"\nvalue = 1.0\n[time]\nscheme = "steady"\n')
    return path


@pytest.mark.parametrize("nprocs", [3])
def test_a_conductivity_of_t_is_evaluated_at_the_quadrature_points_of_quadratic_cells(tmp_path, nprocs):
    """k(T, x) of 100 at the cells' corners only and 0.01 everywhere else: interpolated from its
    nodal values with the quadratic basis it went below zero between them (the field went to -0.65 C
    between walls at 20 and 100 C, exit 0; later exit 3). Evaluated at the quadrature points, where
    it is 0.01, the run agrees with k = 0.01 to the solver's tolerance."""
    corners = "abs(x/0.025 - floor(x/0.025 + 0.5)) < 1e-6 and abs(y/0.025 - floor(y/0.025 + 0.5)) < 1e-6"
    common = [PLATE, *P2, "--set", "mesh.nx=8", "--set", "mesh.ny=4", "--set", "time.t_end=20.0",
              "--set", "nonlinear.rtol=1e-12", "--overwrite", "--quiet"]
    temps = []
    for name, k in (("spiked", f'"where({corners}, 100, 0.01) + 0*T"'), ("flat", '"0.01 + 0*T"')):
        out = tmp_path / name
        run_solver(nprocs, [*common, "--set", f"material.k={k}", "--set", f"output.directory={out}"], cwd=tmp_path)
        temps.append(fields(out / "plate" / "plate.h5")[2][-1])
    spiked, flat = temps
    assert np.max(np.abs(spiked - flat)) <= 1e-9 * np.max(np.abs(flat))


SLAB = """[mesh]
type = "rectangle"
cell = "quadrilateral"
nx = 8
ny = 2
lengths = [1.0, 0.1]
[element]
degree = 2
[material]
k = "1 + T"
rho = 1.0
c = 1.0
[initial]
temperature = 0.0
[boundary.left]
type = "dirichlet"
value = 0.0
[boundary.right]
type = "dirichlet"
value = 100.0
[time]
scheme = "steady"
[solver]
rtol = 1e-12
[nonlinear]
rtol = 1e-12
"""


@pytest.mark.parametrize("nprocs, scheme", [(1, "steady"), (3, "steady"), (1, "backward-euler")])
def test_a_conductivity_of_t_beside_a_wall_far_from_the_initial_temperature(tmp_path, nprocs, scheme):
    """k = 1 + T, the wall at 100 C beside nodes at 0: the quadratic interpolant of the start dips
    to -8.7 C between them, and Newton's first full step to -21 C at nodes, where k is not > 0:
    exit 3 naming k, where linear elements solve it. k is evaluated within the cell's nodal range,
    and Newton steps that leave a property's range are halved. The steady heat flow is the
    Kirchhoff transform's, int_0^100 (1 + T) dT x 0.1 m / 1 m = 510 W."""
    case = tmp_path / "slab.toml"
    case.write_text(SLAB)
    extra = [] if scheme == "steady" else ["--set", f"time.scheme={scheme}", "--set", "time.dt=0.01",
                                           "--set", "time.t_end=0.1"]
    run_solver(nprocs, [str(case), "--quiet", *extra], cwd=tmp_path)
    with h5py.File(tmp_path / "outputs" / "slab" / "slab.h5", "r") as f:
        assert f.attrs["complete"] and f.attrs["balance_relative_imbalance"] < 1e-9
        if scheme == "steady":
            assert f.attrs["balance_heat_in_right"] == pytest.approx(510.0, rel=1e-3)


def test_dirichlet_values_are_held_exactly_through_newton_updates(tmp_path):
    """A wall at 0 K, Newton's updates solved with AMG (3 ranks): the wall's nodes ended at -4e-16 K
    (round-off of the preconditioned solve), below absolute zero: exit 3. The Kirchhoff transform
    of k_z = 1 + 0.005 T gives 1.25 W."""
    case = tmp_path / "box.toml"
    case.write_text('temperature_unit = "K"\n[mesh]\ntype = "box"\ncell = "tetrahedron"\nnx = 3\nny = 3\nnz = 6\n'
                    'lengths = [0.1, 0.1, 1.0]\n[element]\ndegree = 2\n[material]\n'
                    'k = [5.0, "3.0", "1 + 0.005*T"]\nrho = 1.0\nc = 1.0\n[initial]\ntemperature = "100*z"\n'
                    '[boundary.front]\ntype = "dirichlet"\nvalue = 0.0\n[boundary.back]\ntype = "dirichlet"\n'
                    'value = 100.0\n[time]\nscheme = "steady"\n[solver]\npreconditioner = "amg"\nrtol = 1e-12\n'
                    '[nonlinear]\nrtol = 1e-12\n')
    run_solver(3, [str(case), "--quiet"], cwd=tmp_path)
    with h5py.File(tmp_path / "outputs" / "box" / "box.h5", "r") as f:
        assert f.attrs["balance_heat_in_back"] == pytest.approx(1.25, rel=1e-3)
        z, T = f["mesh/geometry"][:, 2], f["fields/temperature"]["000000"][()]
    assert np.all(T[z == 0.0] == 0.0) and np.all(T[z == 1.0] == 100.0)
