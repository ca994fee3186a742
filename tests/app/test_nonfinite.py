"""No silent wrong answer: non-finite input values, values that overflow the system, overflowing
sizes, degenerate cells and bad node references are refused in one line naming the key or file
(exit 2; exit 3 when an input goes bad only later in the run, naming the step, the value, the
time and the place, on every path: linear, nonlinear, explicit); empty regions warned."""

import re

import pytest
from conftest import run_script, run_solver

EXPECTED = {
    "source_overflow": "source.f must be a finite number, got '1e308 * 10', which is inf",
    "source_division_by_zero": "source.f gives a non-finite value",
    "source_constant_division": "source.f: division by zero in '1 / 0': its divisor is 0 whatever x, y, z, t and T",
    "source_singular_in_time": "step 2 (t = 0.2): source.f = inf at (",
    "source_nan_later": "step 2 (t = 0.2): source.f = inf at (",
    "source_nan_later_adaptive": "source.f = inf at (",
    "initial_overflow": "initial.temperature must be a finite number, got '1e308 * 10', which is inf",
    "dirichlet_log_of_negative": "boundary.left.value gives a non-finite value",
    "robin_h_nan_later": "step 2 (t = 0.2): boundary.right.h = nan at (1, ",
    "robin_T_inf_nan": "boundary.right.T_inf gives a non-finite value",  # (not "h or T_inf": h is checked first)
    "robin_h_nan": "boundary.right.h gives a non-finite value",
    "neumann_flux_inf": "boundary.top.flux must be a finite number, got 'exp(1000)', which is inf",
    "huge_capacity": "material.rho and material.c (or mesh sizes): the system's entries from it reach 1",
    "huge_source_steady": "source.f = 1e+300 at (",
    "huge_lengths": "mesh.lengths / mesh.origin: cell 1 of 72 (triangle, counted from 1 in the mesh's order) is too "
                    "large for double precision",
    "nonlinear_dirichlet_nan_later": "step 2 (t = 0.2): boundary.left.value = nan at (0, ",
    "nonlinear_source_nan_later": "step 2 (t = 0.2): source.f = inf at (",
    "nonlinear_flux_nan_later": "step 2 (t = 0.2): boundary.top.flux = nan at (",
    "nonlinear_T_inf_nan_later": "step 2 (t = 0.2): boundary.right.T_inf = nan at (1, ",
    "explicit_source_nan_later": ": source.f = inf at (",
    "huge_h": "boundary.right.h = 1e+300 at (1, ",
    "huge_flux": "boundary.top.flux = 1e+300 at (",
    "huge_flux_later": "step 1 (t = 0.1): boundary.top.flux = 1e+299 at (",
    "huge_source_later": "step 1 (t = 0.1): source.f = 1e+299 at (",
    "nonlinear_huge_source_later": "step 1 (t = 0.1): source.f = 1e+299 at (",
    "huge_h_later": "step 1 (t = 0.1): boundary.right.h = 1e+299 at (1, ",
}


@pytest.mark.parametrize("nprocs", [1, 3])
def test_non_finite_input_is_refused_with_its_key(tmp_path, nprocs):
    result = run_script(nprocs, "nonfinite_checks.py", tmp_path)
    for name, expected in EXPECTED.items():
        r = result[name]
        later = "later" in name or "in_time" in name  # found during the run: exit 3 at that step
        assert r["status"] == (3 if later else 2) and len(r["error"]) == 1 and not r["warnings"], (name, r)
        assert r["error"][0].startswith(f"error: {tmp_path / 'case.toml'}: ") and expected in r["error"][0], (name, r)


MSH = """$MeshFormat
2.2 0 8
$EndMeshFormat
$PhysicalNames
1
1 1 "left"
$EndPhysicalNames
$Nodes
4
1 0 0 0
2 1 0 0
3 {x3} {y3} 0
4 0 1 0
$EndNodes
$Elements
3
1 1 2 1 1 4 1
2 2 2 0 1 1 2 3
3 2 2 0 1 1 3 {n3}
$EndElements
"""
CASE = """[mesh]
file = "m.msh"
[material]
k = 1.0
rho = 1.0
c = 1.0
[boundary.left]
type = "dirichlet"
value = 1.0
[time]
dt = 0.1
t_end = 0.2
"""


@pytest.mark.parametrize("nprocs", [1, 2])  # two cells
@pytest.mark.parametrize("x3, y3, n3, message", [
    ("1", "nan", "4", "m.msh: node 3 has a non-finite coordinate"),
    ("1", "0", "4", "mesh.file = m.msh: cell 1 of 2 (triangle, counted from 1 in the mesh's order) has no volume"),
    ("1", "1", "9", "m.msh:"),
])
def test_bad_mesh_files_are_refused(tmp_path, nprocs, x3, y3, n3, message):
    (tmp_path / "m.msh").write_text(MSH.format(x3=x3, y3=y3, n3=n3))
    (tmp_path / "case.toml").write_text(CASE)
    proc = run_solver(nprocs, ["case.toml", "--quiet"], cwd=tmp_path, check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and message in errors[0], proc.stderr


@pytest.mark.parametrize("nprocs", [1, 3])
@pytest.mark.parametrize("mesh, message", [
    ('type = "box"\ncell = "tetrahedron"\nnx = 3\nny = 3\nnz = 3\nlengths = [1e-150, 1e-150, 1e-150]',
     "is too small for double precision: its volume (size^dim) underflows"),
    ('type = "rectangle"\ncell = "triangle"\nnx = 3\nny = 3\nlengths = [1e155, 1e155]',
     "is too large for double precision: its volume (size^dim) overflows"),
    ('type = "rectangle"\ncell = "quadrilateral"\nnx = 3\nny = 3\nlengths = [0.003, 0.003]\norigin = [1e11, 0.0]',
     "is too small for its distance from the origin in double precision (about 0.001 across, at coordinates up "
     "to 1e+11"),
])
def test_cells_whose_volume_leaves_the_range_of_doubles_are_named_so(tmp_path, nprocs, mesh, message):
    """Tetrahedra of 3.3e-151 m (volumes of 1e-452, zero in doubles) were said to have no volume,
    "degenerate, or its size overflows"; they are named too small, and cells of 3.3e154 too large.
    The advice keeps the coordinates in metres: it was to give them in millimetres or kilometres,
    which the solver reads as metres (the same run's heat flows off by powers of 1000)."""
    (tmp_path / "case.toml").write_text(CASE.replace('file = "m.msh"', mesh))
    proc = run_solver(nprocs, ["case.toml", "--quiet"], cwd=tmp_path, check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and message in errors[0] and "cell 1 of" in errors[0], proc.stderr
    assert "volume" not in message or "read in metres" in errors[0] and "unit (" not in errors[0], errors[0]


@pytest.mark.parametrize("origin", ["[1e6, 0.0]", "[5e5, 5.5e6]"])
def test_cells_far_from_the_origin_keep_their_heat_where_doubles_hold_their_size(tmp_path, origin):
    """1 mm cells at 1e11 m kept two digits of their sizes (a source of 4 W booked as 3.99 W, exit 0:
    refused above); at 1e6 m they keep ten, and the source is booked to round-off; at a UTM northing
    (5.5e6 m) too, where they were refused."""
    (tmp_path / "case.toml").write_text(
        CASE.replace('file = "m.msh"', 'type = "rectangle"\ncell = "quadrilateral"\nnx = 10\nny = 10\n'
                     f'lengths = [0.01, 0.01]\norigin = {origin}')
        .replace("[time]\ndt = 0.1\nt_end = 0.2", '[time]\nscheme = "steady"\n[source]\nf = 40000.0'))
    proc = run_solver(1, ["case.toml"], cwd=tmp_path)
    source = re.search(r"source \+([0-9.e+-]+)", proc.stdout)
    assert source and abs(float(source.group(1)) - 4.0) < 1e-9, proc.stdout


def test_a_region_that_selects_no_cell_is_reported(tmp_path):
    (tmp_path / "case.toml").write_text(CASE.replace('file = "m.msh"', 'type = "rectangle"\ncell = "triangle"\n'
                                                     'nx = 4\nny = 4\nlengths = [1.0, 1.0]')
                                        + '[region.outside]\nx = [5.0, 6.0]\nk = 2.0\n')
    proc = run_solver(1, ["case.toml"], cwd=tmp_path)
    assert "region.outside selects no cell" in proc.stdout + proc.stderr



OVERFLOW_CASE = """[mesh]
nx = 4
ny = 4
[material]
k = 1.0
rho = 1.0
c = 1.0
[boundary.left]
type = "dirichlet"
value = 1.0
[boundary.right]
type = "robin"
h = 2.0
T_inf = 0.0
[boundary.top]
type = "neumann"
flux = 1.0
[time]
dt = 0.1
t_end = 0.2
"""


@pytest.mark.parametrize("nprocs", [1, 2])
@pytest.mark.parametrize("edits, status, message", [
    (["boundary.right.h=1e300"], 2, "boundary.right.h = 1e+300 at (1, "),
    (['boundary.top.flux="1e300 * t"'], 3, "step 1 (t = 0.1): boundary.top.flux = 1e+299 at ("),
    # adaptive steps, judged at time.dt_max: checked at the first step only, it overflowed the fifth, naming no key
    (['time.dt="adaptive"', "time.dt_initial=1e-6", "time.t_end=1000", "boundary.right.h=1e158"], 2,
     "boundary.right.h = 1e+158 at (1, "),
    # properties of T, judged at the initial temperature: the run stopped at step 1 on a residual of inf (exit 3)
    (['material.k="1e300*(1+T)"'], 2, "material.k (or mesh sizes), at the initial temperature: the system's"),
    (['material.c="1e300*(1+T)"'], 2, "material.rho and material.c (or mesh sizes), at the initial temperature"),
], ids=["constant", "of-t", "adaptive", "k-of-T", "c-of-T"])
def test_an_input_that_overflows_the_system_is_named(tmp_path, nprocs, edits, status, message):
    """A finite h, flux or source so large that the solve's sums of squares overflow: the run
    stopped at step 1 with "the linear system holds non-finite values" (exit 2, naming no key) and
    left its results. A constant is refused before anything is written (exit 2); one of t at its
    step (exit 3, the results kept up to the step before)."""
    (tmp_path / "case.toml").write_text(OVERFLOW_CASE)
    proc = run_solver(nprocs, ["case.toml", "--quiet", *[a for e in edits for a in ("--set", e)]], cwd=tmp_path,
                      check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == status and len(errors) == 1 and errors[0].startswith(f"error: case.toml: {message}"), \
        proc.stderr
    assert (tmp_path / "outputs" / "case" / "case.h5").exists() == (status == 3)
    assert (tmp_path / "outputs" / "case" / "case.log").exists() == (status == 3)


@pytest.mark.parametrize("nprocs", [1, 3])
@pytest.mark.parametrize("edits, message, weighed", [
    (["material.k=1e300"], "material.k (or mesh sizes): the system's", True),
    # k of T from a table: the capacity Jacobian, assembled with the conduction weighted by 0, was named
    (["mesh.cell=triangle", "material.k={table=[[0, 1e307], [100, 1e307]]}"],
     "material.k (or mesh sizes), at the initial temperature", True),
    (["material.rho=1e300", "material.c=1e8", "boundary.left.value=100"],
     "material.rho and material.c (or mesh sizes): the system's", False),
    (["boundary.left.value=1e300", "run.temperature_range=[-200, 1e301]"], "boundary.left.value = 1e+300 at (0, ",
     False),
    # a region's k or capacity: the line named material.k, which the case had right
    (["region.hot.x=[0, 0.5]", "region.hot.k=1e300"], "material.k or region.hot.k (or mesh sizes): the system's",
     True),
    (["region.hot.x=[0, 0.5]", "region.hot.rho=1e300", "region.hot.c=1e8", "boundary.left.value=100"],
     "material.rho and material.c or region.hot.rho and region.hot.c (or mesh sizes): the system's", False),
], ids=["k", "k-table", "capacity", "dirichlet", "region-k", "region-capacity"])
def test_an_overflowing_input_names_its_key_and_dt_only_where_dt_weighs_it(tmp_path, nprocs, edits, message,
                                                                           weighed):
    """The line names the input that overflows the system (not another that it spoils), and the
    time step only where the step weighs that input (a capacity or a Dirichlet value it does not)."""
    (tmp_path / "case.toml").write_text(OVERFLOW_CASE)
    proc = run_solver(nprocs, ["case.toml", "--quiet", *[a for e in edits for a in ("--set", e)]], cwd=tmp_path,
                      check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and errors[0].startswith(f"error: case.toml: {message}"), \
        proc.stderr
    assert errors[0].endswith("time.dt = 0.1, which weighs it") == weighed, errors[0]
    assert "Warning" not in proc.stderr, proc.stderr  # (NumPy's overflow warnings of the balance, before the line)
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("nprocs", [1, 3])
@pytest.mark.parametrize("edits, key, expression", [
    (["material.k=1.7e308"], "material.k (or mesh sizes)", False),
    (["material.rho=1.7e308", "mesh.lengths=[40, 40]"], "material.rho and material.c (or mesh sizes)", False),
    (['source.f="1 / (x - x)"'], "source.f", True),
], ids=["k", "rho", "source-of-x"])
def test_a_number_that_overflows_on_the_mesh_is_not_called_an_expression(tmp_path, nprocs, edits, key, expression):
    """A k or rho written as a number whose matrix overflows: the line said "check the expression",
    meant for expressions; it speaks of the values where they are numbers."""
    (tmp_path / "case.toml").write_text(OVERFLOW_CASE)
    proc = run_solver(nprocs, ["case.toml", "--quiet", *[a for e in edits for a in ("--set", e)]], cwd=tmp_path,
                      check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert errors[0].startswith(f"error: case.toml: {key} gives a non-finite value (inf or NaN) on the mesh"), errors
    assert errors[0].endswith("check the expression and its units" if expression else
                              "check the values and their units"), errors
    assert not (tmp_path / "outputs").exists()
