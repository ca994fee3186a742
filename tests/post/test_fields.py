"""Nodal fields beside the temperature (the liquid fraction of a phase-change run): ``--field NAME``
of plot, probe and export, ``info``'s list, and ``Results.field`` / ``fields`` / ``units``."""

import json
import subprocess
import sys

import meshio
import numpy as np
import pytest
from conftest import mpi_env, run_solver

from solver.errors import CaseError
from solver.io import results

# A 10 x 10 square of sand with a 4 x 4 cm aluminium insert poured at 700 C (solidus 555, liquidus 615).
CASE = """\
temperature_unit = "C"
[mesh]
type = "rectangle"
nx = 10
ny = 10
lengths = [0.1, 0.1]
[material]
k = 1.0
rho = 1500.0
c = 1000.0
[region.metal]
x = [0.03, 0.07]
y = [0.03, 0.07]
k = 150.0
rho = 2685.0
c = 960.0
latent_heat = 3.9e5
solidus = 555.0
liquidus = 615.0
[initial]
temperature = "700 if (x >= 0.03 and x <= 0.07 and y >= 0.03 and y <= 0.07) else 25"
[boundary.left]
type = "robin"
h = 15.0
T_inf = 25.0
[time]
scheme = "backward-euler"
mass = "lumped"
dt = 20.0
t_end = 80.0
"""


def post(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "solver", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=mpi_env())
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The casting (temperature and liquid fraction) and the same without latent heat (temperature only)."""
    d = tmp_path_factory.mktemp("fields")
    (d / "cast.toml").write_text(CASE)
    run_solver(1, ["cast.toml", "--quiet", "--set", f"output.directory={d}"], cwd=d)
    run_solver(1, ["cast.toml", "--quiet", "--set", f"output.directory={d}", "--set", "output.name=plain",
                   "--set", "region.metal.latent_heat=0.0"], cwd=d)
    return {"cast": d / "cast" / "cast.h5", "plain": d / "plain" / "plain.h5"}


def test_results_api_reads_the_liquid_fraction(runs):
    with results.open(runs["cast"]) as r:
        assert r.fields == ("temperature", "liquid_fraction")
        assert r.units("liquid_fraction") == "1" and r.units() == "degC"
        first, last = r.field(0, "liquid_fraction"), r.field(-1, name="liquid_fraction")
        assert first.shape == last.shape == (121,)
        assert first.min() == 0.0 and first.max() == 1.0 and np.all((last >= 0) & (last <= 1))
        centre = np.flatnonzero(np.all(np.isclose(r.points, 0.05), axis=1))[0]
        assert first[centre] == 1.0 and last[centre] < 1.0  # poured liquid, then solidifying
        assert np.array_equal(r.field(-1), r.temperature(-1))  # the default field is the temperature
        assert r.probe([r.points[centre]], 0, name="liquid_fraction")[0] == pytest.approx(1.0)
    with results.open(runs["plain"]) as r:
        assert r.fields == ("temperature",)
        with pytest.raises(CaseError, match="plain.h5 has no such field \\(it holds: temperature\\)"):
            r.field(-1, "liquid_fraction")


def test_info_lists_the_fields(runs):
    assert json.loads(post("info", runs["cast"], "--json").stdout)["fields"] == ["temperature", "liquid_fraction"]
    assert "fields      temperature, liquid_fraction" in post("info", runs["cast"]).stdout
    assert json.loads(post("info", runs["plain"], "--json").stdout)["fields"] == ["temperature"]


def test_plot_a_field_a_series_and_the_default_names(runs, tmp_path):
    import matplotlib.image
    out = tmp_path / "fl.png"
    assert str(out) in post("plot", runs["cast"], "--field", "liquid_fraction", "--step", "1",
                            "-o", out, "--size", "500x400").stdout
    img = matplotlib.image.imread(out)
    assert img.shape[:2] == (400, 500) and np.std(img[..., :3]) > 0.05
    # without -o: the field's name in the file name, so it does not overwrite the temperature's
    default = runs["cast"].with_name("cast_liquid_fraction_000004.png")
    assert post("plot", runs["cast"], "--field", "liquid_fraction").stdout.strip() == str(default)
    assert default.exists() and not runs["cast"].with_name("cast_000004.png").exists()
    series = runs["cast"].with_name("cast_liquid_fraction_series.png")
    assert post("plot", runs["cast"], "--field", "liquid_fraction", "--series").stdout.strip() == str(series)
    assert np.std(matplotlib.image.imread(series)[..., :3]) > 0.01


def test_probe_and_export_a_field(runs, tmp_path):
    table = post("probe", runs["cast"], "--at", "0.05,0.05", "--field", "liquid_fraction", "--csv").stdout.splitlines()
    assert table[0] == 'time,"liquid_fraction(0.05,0.05)"' and len(table) == 1 + 5
    assert float(table[1].split(",")[1]) == 1.0
    with results.open(runs["cast"]) as r:
        T, fl = r.temperature(-1), r.field(-1, "liquid_fraction")
    csv = tmp_path / "last.csv"
    post("export", runs["cast"], "--format", "csv", "-o", csv)
    assert csv.read_text().splitlines()[0] == "x,y,temperature,liquid_fraction"
    data = np.loadtxt(csv, delimiter=",", skiprows=1)
    assert np.array_equal(data[:, 2], T) and np.array_equal(data[:, 3], fl)
    vtu = tmp_path / "fl.vtu"
    post("export", runs["cast"], "--format", "vtu", "--field", "liquid_fraction", "-o", vtu)
    assert list(meshio.read(vtu).point_data) == ["liquid_fraction"]
    assert np.array_equal(meshio.read(vtu).point_data["liquid_fraction"], fl)


@pytest.mark.parametrize("command", [
    ("plot", "--field", "liquid_fraction"),
    ("plot", "--series", "--field", "liquid_fraction"),
    ("probe", "--at", "0.05,0.05", "--field", "liquid_fraction"),
    ("export", "--format", "csv", "--field", "liquid_fraction"),
])
def test_a_missing_field_is_refused_with_one_line(runs, command):
    proc = post(command[0], runs["plain"], *command[1:], check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "error: --field liquid_fraction: plain.h5 has no such field (it holds: temperature)"], proc.stderr
    assert proc.stdout == "" and not list(runs["plain"].parent.glob("*.png")) + list(runs["plain"].parent.glob("*.csv"))


def test_an_unknown_field_names_the_ones_the_file_holds(runs):
    proc = post("plot", runs["cast"], "--field", "porosity", check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == \
        "error: --field porosity: cast.h5 has no such field (it holds: temperature, liquid_fraction)"


def test_a_quadratic_liquid_fraction_is_probed_within_zero_and_one(tmp_path):
    """The quadratic basis overshoots between nodes where the fraction jumps from 0 to 1 (-0.03
    and 1.09 were printed): probes stay within the field's range."""
    (tmp_path / "cast.toml").write_text(CASE)
    run_solver(1, ["cast.toml", "--quiet", "--set", "element.degree=2"], cwd=tmp_path)
    with results.open(tmp_path / "outputs" / "cast" / "cast.h5") as r:
        points = np.random.default_rng(0).uniform(0.02, 0.08, size=(2000, 2))
        cell, xi = r.locator.locate(points)
        raw = np.concatenate([r.locator.interpolate(r.field(i, "liquid_fraction"), cell, xi) for i in range(5)])
        probed = np.concatenate([r.probe(points, i, name="liquid_fraction") for i in range(5)])
    assert raw.min() < -1e-3 or raw.max() > 1 + 1e-3  # the basis does overshoot here
    assert probed.min() >= 0.0 and probed.max() <= 1.0
    inside = (raw >= 0) & (raw <= 1)
    assert np.array_equal(probed[inside], raw[inside])
