"""Steady cases on meshes of disconnected parts: every part needs a dirichlet, robin (convection)
or radiation boundary, else its temperature is not determined; such a mesh is refused in one line
naming the file, the part's cells and a point in it (exit 2, any rank count), and accepted once
every part has one. Three unit squares side by side (8 triangles each), written with meshio."""

import h5py
import meshio
import numpy as np
import pytest
from conftest import one_error, run_script, run_solver

from solver.mesh.components import local_components

PARTS = 3
CASE = """[mesh]
file = "parts.msh"
[material]
k = 1.0
rho = 1.0
c = 1.0
[boundary.left]
{left}
{extra}[time]
{time}
"""


def write_parts(path):
    """Squares [2i, 2i + 1] x [0, 1], nodes part by part; groups "left" (x = 0 on part 0),
    "middle" (y = 0 on part 1), "far" (x = 5 on part 2) and "both" (middle's and far's facets)."""
    x, y = np.meshgrid(np.linspace(0, 1, 3), np.linspace(0, 1, 3), indexing="ij")
    square = np.column_stack([x.ravel(), y.ravel(), np.zeros(9)])
    node = np.arange(9).reshape(3, 3)
    a, b, c, d = node[:-1, :-1].ravel(), node[1:, :-1].ravel(), node[1:, 1:].ravel(), node[:-1, 1:].ravel()
    tri = np.concatenate([np.column_stack([a, b, c]), np.column_stack([a, c, d])])
    points = np.concatenate([square + [2 * i, 0, 0] for i in range(PARTS)])
    cells = np.concatenate([tri + 9 * i for i in range(PARTS)])
    left = np.column_stack([node[0, :-1], node[0, 1:]])
    far = left + 9 * (PARTS - 1) + 6
    middle = np.column_stack([node[:-1, 0], node[1:, 0]]) + 9
    both = np.concatenate([middle, far])
    blocks = [("line", left), ("line", far), ("line", middle), ("line", both), ("triangle", cells)]
    tags = [np.full(len(left), 1), np.full(len(far), 2), np.full(len(middle), 4), np.full(len(both), 5),
            np.full(len(cells), 3)]
    names = {"left": np.array([1, 1]), "far": np.array([2, 1]), "middle": np.array([4, 1]), "both": np.array([5, 1]),
             "domain": np.array([3, 2])}
    meshio.write(path, meshio.Mesh(points, blocks, cell_data={"gmsh:physical": tags, "gmsh:geometrical": tags},
                                   field_data=names), file_format="gmsh22", binary=False)
    return cells


@pytest.fixture()
def folder(tmp_path):
    write_parts(tmp_path / "parts.msh")
    return tmp_path


def run(folder, nprocs, extra="", time='scheme = "steady"', left='type = "dirichlet"\nvalue = 1.0'):
    (folder / "case.toml").write_text(CASE.format(left=left, extra=extra, time=time))
    return run_solver(nprocs, ["case.toml", "--quiet", "--overwrite"], cwd=folder, check=False, timeout=180)


def test_the_mesh_has_three_parts(tmp_path):
    cells = write_parts(tmp_path / "parts.msh")
    assert len(np.unique(local_components(PARTS * 9, cells))) == PARTS


def test_distributed_components_match_the_serial_ones(tmp_path):
    """A snake of strips that crosses the 3 ranks back and forth, a pair and two single strips."""
    result = run_script(3, "components_checks.py", tmp_path, timeout=180)
    assert result["ok"] and result["components"] == 4 and max(result["ranks_per_component"].values()) > 1


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_part_without_a_fixing_boundary_is_refused(folder, nprocs):
    """Part 0 has the dirichlet boundary, part 2 a robin one, part 1 none."""
    proc = run(folder, nprocs, extra='[boundary.far]\ntype = "robin"\nh = 5.0\nT_inf = 20.0\n')
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert errors[0].startswith("error: case.toml: mesh.file = parts.msh: 1 of the mesh's 3 "
                                "disconnected parts touch no dirichlet boundary, nor a robin or radiation one with h "
                                "or epsilon > 0 on it, such as the part of 8 cells through (2, 0): time.scheme = "
                                "\"steady\" cannot determine"), errors


@pytest.mark.parametrize("nprocs, kind", [(1, 'type = "robin"\nh = "where(x < 3, 5, 0)"\nT_inf = 20.0'),
                                          (3, 'type = "radiation"\nepsilon = "where(x < 3, 0.8, 0)"\nT_inf = 300.0')])
def test_an_exchange_that_is_zero_on_one_part_does_not_hold_it(folder, nprocs, kind):
    """One robin (or radiation) boundary over parts 1 and 2, with h (epsilon) zero on part 2: it
    held both (a singular solve, exit 3, "try a smaller time.dt" for a steady case); exit 2."""
    unit = 'temperature_unit = "K"\n' if "radiation" in kind else ""
    (folder / "case.toml").write_text(unit + CASE.format(left='type = "dirichlet"\nvalue = 300.0',
                                                         extra=f"[boundary.both]\n{kind}\n", time='scheme = "steady"'))
    proc = run_solver(nprocs, ["case.toml", "--quiet", "--overwrite"], cwd=folder, check=False, timeout=180)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "1 of the mesh's 3 disconnected parts touch no dirichlet boundary" in errors[0] and \
        "the part of 8 cells through (4, 0)" in errors[0], errors


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_steady_case_with_every_part_fixed_runs(folder, nprocs):
    extra = ('[boundary.far]\ntype = "robin"\nh = 5.0\nT_inf = 20.0\n'
             '[boundary.middle]\ntype = "dirichlet"\nvalue = 3.0\n')
    proc = run(folder, nprocs, extra=extra)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(folder / "outputs" / "case" / "case.h5", "r") as f:
        temperature = f["fields/temperature"][sorted(f["fields/temperature"])[-1]][()]
    assert np.allclose(temperature.reshape(PARTS, 9), [[1.0], [3.0], [20.0]], rtol=0, atol=1e-8)


def test_a_transient_case_or_one_without_any_fixing_boundary_is_not_this_checks(folder):
    """Transient: the mass matrix holds every part, the case runs; no fixing boundary at all:
    the steady solver's own message."""
    assert run(folder, 1, time="dt = 0.1\nt_end = 0.2").returncode == 0
    proc = run(folder, 1, left='type = "neumann"\nflux = 1.0')
    assert proc.returncode == 2 and "needs at least one dirichlet boundary, or a robin one" in proc.stderr, proc.stderr


STEADY_EXCHANGE = """temperature_unit = "K"
[mesh]
nx = 8
ny = 4
[material]
k = 45.0
rho = 7850.0
c = 460.0
[boundary.right]
{boundary}
[time]
scheme = "steady"
"""


@pytest.mark.parametrize("boundary", ['type = "robin"\nh = 0.0\nT_inf = 300.0',
                                      'type = "robin"\nh = "0 * x"\nT_inf = 300.0',
                                      'type = "robin"\nh = "where(t > 1e9, 25, 0)"\nT_inf = 300.0',
                                      'type = "radiation"\nepsilon = 0.0\nT_inf = 300.0',
                                      'type = "radiation"\nepsilon = { table = [[0.0, 0.0], [900.0, 0.0]] }\n'
                                      'T_inf = 300.0'])
def test_a_steady_case_whose_only_exchange_is_zero_is_refused(tmp_path, boundary):
    """h = 0 (or epsilon = 0) everywhere insulates: the steady system is singular (the run gave
    T = 0 with exit 0); exit 2, as with no boundary at all. Also an h of t that is 0 at the steady
    solve's time (it was "did not converge in 0 iterations", exit 3), and an epsilon table of zeros
    (it was "singular or indefinite", exit 3)."""
    (tmp_path / "case.toml").write_text(STEADY_EXCHANGE.format(boundary=boundary))
    proc = run_solver(1, ["case.toml", "--quiet"], cwd=tmp_path, check=False, timeout=180)
    assert proc.returncode == 2 and "needs at least one dirichlet boundary" in proc.stderr, proc.stderr



HELD_BY = {"tiny h": ('type = "robin"\nh = 1e-14\nT_inf = 290.0', "held too weakly"),
           "epsilon zero at the solution": ('type = "radiation"\nepsilon = "where(T > 1000, 0.5, 0)"\nT_inf = 290.0',
                                            "held by no boundary")}


@pytest.mark.parametrize("nprocs, how", [(1, "tiny h"), (3, "tiny h"), (1, "epsilon zero at the solution")])
def test_a_part_held_too_weakly_to_determine_its_temperature_fails_after_the_solve(folder, nprocs, how):
    """Part 2's only exchange is negligible (h = 1e-14 against k = 1) or zero at the temperature
    reached (epsilon of T): the solver's tolerance, relative to the whole system, left part 2 at
    about the initial guess (38.8 or 0 where 20 is right, exit 0). Its own heat balance tells: exit
    3. A firm exchange on the same mesh solves, the part at its T_inf."""
    boundary, words = HELD_BY[how]
    case = 'temperature_unit = "K"\n' + CASE.format(left='type = "dirichlet"\nvalue = 300.0', time='scheme = "steady"',
                                                     extra=f'[boundary.far]\n{boundary}\n[boundary.middle]\n'
                                                           'type = "dirichlet"\nvalue = 310.0\n'
                                                           '[initial]\ntemperature = 300.0\n')
    (folder / "case.toml").write_text(case)
    proc = run_solver(nprocs, ["case.toml", "--quiet", "--overwrite"], cwd=folder, check=False, timeout=180)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 3 and len(errors) == 1, proc.stderr
    assert "the part of 8 cells through (4, 0)" in errors[0] and words in errors[0], errors
    with h5py.File(folder / "outputs" / "case" / "case.h5", "r") as f:
        assert len(f["time"]) == 0  # the refused steady state is not written (probe served it, exit 0)
    if nprocs > 1:
        return
    firm = case.replace("h = 1e-14", "h = 1e-6").replace('epsilon = "where(T > 1000, 0.5, 0)"', "epsilon = 0.5")
    (folder / "case.toml").write_text(firm)
    firm = run_solver(nprocs, ["case.toml", "--quiet", "--overwrite"], cwd=folder, check=False, timeout=180)
    assert firm.returncode == 0, firm.stderr
    with h5py.File(folder / "outputs" / "case" / "case.h5", "r") as f:
        temperature = f["fields/temperature"][sorted(f["fields/temperature"])[-1]][()]
    assert np.allclose(temperature.reshape(PARTS, 9)[2], 290.0, rtol=0, atol=1e-6)


def test_a_body_held_by_a_negligible_exchange_is_named_as_singular(tmp_path):
    """A structured steady body whose only boundary is a convection of h = 1e-14 against k = 45:
    conjugate gradients meet no descent (p.Ap <= 0) at once. It said "did not converge in 0
    iterations" and advised a larger max_iterations; the line now names the singular system."""
    (tmp_path / "case.toml").write_text(
        '[mesh]\ntype = "rectangle"\ncell = "triangle"\nnx = 8\nny = 8\nlengths = [0.2, 0.1]\n'
        "[material]\nk = 45.0\nrho = 7850.0\nc = 460.0\n[source]\nf = 100.0\n"
        '[boundary.right]\ntype = "robin"\nh = 1e-14\nT_inf = 20.0\n[time]\nscheme = "steady"\n')
    error = one_error(run_solver(1, ["case.toml", "--quiet"], cwd=tmp_path, check=False, timeout=180), 3)
    assert "singular or indefinite" in error and "firmer exchange" in error, error
