"""Post-processing: info, plot, probe, export, the Python API, progress output and --dry-run."""

import json
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import meshio
import numpy as np
import pytest
import tomli_w
from conftest import ROOT, mpi_env, run_solver

from solver.io import results
from solver.bench.verify import mms_case

PLATE = str(ROOT / "inputs" / "plate.toml")


def post(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "solver", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=mpi_env())
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def plate_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("plate")
    files = {}
    for n in (1, 3):
        out = d / f"np{n}"
        run_solver(n, [PLATE, "--set", "mesh.nx=40", "--set", "mesh.ny=20", "--set", "time.t_end=120.0",
                       "--set", f"output.directory={out}", "--set", "solver.rtol=1e-12",
                       "--set", "output.probes=[[0.1, 0.05], [0.19, 0.09]]"], cwd=d)
        files[n] = out / "plate" / "plate.h5"
    return files


@pytest.fixture(scope="module")
def block_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("block")
    run_solver(2, [ROOT / "inputs" / "block3d.toml", "--set", "mesh.nx=8", "--set", "mesh.ny=8", "--set", "mesh.nz=8",
                   "--set", "time.t_end=20.0", "--set", f"output.directory={d}"], cwd=d)
    return d / "block3d" / "block3d.h5"


def test_info_is_the_same_from_1_and_3_ranks(plate_runs):
    a = json.loads(post("info", plate_runs[1], "--json").stdout)
    b = json.loads(post("info", plate_runs[3], "--json").stdout)
    for key in ("case", "mesh", "snapshots", "steps", "time_range", "scheme", "complete"):
        assert a[key] == b[key], key
    for stat in ("min", "max", "mean"):
        assert a["last"][stat] == pytest.approx(b["last"][stat], rel=1e-9)
    assert (a["ranks"], b["ranks"]) == (1, 3)
    text = post("info", plate_runs[3]).stdout
    assert "2 steps" not in text and "861 nodes" in text and "quadrilateral" not in text and "triangle" in text
    assert "snapshots   3 (steps 0..24, t = 0..120)" in text and "last field  t = 120" in text


def png(path):
    import matplotlib.image
    return matplotlib.image.imread(path)


def test_plot_2d_field_3d_slice_and_series(plate_runs, block_run, tmp_path):
    out = tmp_path / "field.png"
    assert str(out) in post("plot", plate_runs[3], "-o", out, "--size", "800x500", "--mesh").stdout
    img = png(out)
    assert img.shape[:2] == (500, 800) and np.std(img[..., :3]) > 0.05
    out3 = tmp_path / "slice.png"
    post("plot", block_run, "--slice", "z=0.05", "-o", out3, "--size", "600x600")
    img3 = png(out3)
    assert img3.shape[:2] == (600, 600) and np.std(img3[..., :3]) > 0.05
    refused = post("plot", block_run, "--mesh", "-o", tmp_path / "edges.png", check=False)
    assert refused.returncode == 2 and "--mesh: block3d.h5 holds a 3D field" in refused.stderr  # was ignored
    assert not (tmp_path / "edges.png").exists()
    for spec in ("yz=0.05", "=0.05", "z=nan"):  # "xyz".index("yz") plotted y
        refused = post("plot", block_run, "--slice", spec, "-o", tmp_path / "bad.png", check=False)
        assert refused.returncode == 2 and f"--slice {spec}: expected" in refused.stderr, refused.stderr
    series = tmp_path / "series.png"
    post("plot", plate_runs[1], "--series", "-o", series)
    assert np.std(png(series)[..., :3]) > 0.01


def test_probe_at_a_node_and_at_a_cell_centre(plate_runs):
    with results.open(plate_runs[1]) as r:
        T = r.temperature(-1)
        node = 123
        assert r.probe([r.points[node]], -1)[0] == pytest.approx(T[node], abs=1e-12)
        cell = r.cells[77]
        centre = r.points[cell].mean(axis=0)
        assert r.probe([centre], -1)[0] == pytest.approx(T[cell].mean(), abs=1e-12)  # P1: vertex mean
        x, y = (float(c) for c in r.points[node])
    table = post("probe", plate_runs[1], "--at", f"{x!r},{y!r}", "--csv").stdout.splitlines()
    assert table[0].startswith("time,") and len(table) == 1 + 3
    assert float(table[-1].split(",")[1]) == pytest.approx(T[node], abs=1e-12)
    shown = post("probe", plate_runs[1], "--at", "0.1,0.05").stdout.splitlines()  # the table: with units
    assert shown[0].split() == ["time", "[s]", "T(0.1,0.05)", "[C]"], shown


def test_recorded_probes_equal_the_probe_command(plate_runs):
    with h5py.File(plate_runs[3], "r") as f:
        recorded = f["probes/values"][()]
        times = f["probes/time"][()]
    assert len(times) == 25 and times[-1] == 120.0  # every step, from t = 0
    with results.open(plate_runs[3]) as r:
        assert np.allclose(r.probe([[0.1, 0.05], [0.19, 0.09]], -1), recorded[-1], atol=1e-12)


@pytest.mark.parametrize("cell", ["triangle", "quadrilateral"])
def test_probe_matches_the_manufactured_solution(tmp_path, cell):
    case = mms_case(cell, 16, "steady")
    values = {k: v for k, v in case.values.items()}
    values["output"] = {"directory": str(tmp_path), "name": "mms"}
    path = tmp_path / "mms.toml"
    path.write_text(tomli_w.dumps(_plain(values)))
    run_solver(1, [path], cwd=tmp_path)
    rng = np.random.default_rng(1)
    pts = rng.random((20, 2)) * 0.98 + 0.01
    with results.open(tmp_path / "mms" / "mms.h5") as r:
        got = r.probe(pts, -1)
    exact = np.cos(np.pi * pts[:, 0] / 2 + 0.3) * np.cos(np.pi * pts[:, 1] / 2 + 0.2)
    assert np.max(np.abs(got - exact)) < 5e-3  # O(h^2) with h = 1/16


def _plain(v):
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items() if x is not None}
    return v


def test_export_vtu_csv_xdmf(plate_runs, tmp_path):
    vtu = tmp_path / "last.vtu"
    done = post("export", plate_runs[3], "--format", "vtu", "-o", vtu)
    assert "warning" not in done.stderr.lower(), done.stderr  # 2D points go out as z = 0, as VTK wants
    m = meshio.read(vtu)
    with results.open(plate_runs[3]) as r:
        T, points = r.temperature(-1), r.points
    assert np.array_equal(m.point_data["temperature"], T) and np.allclose(m.points[:, :2], points)
    assert m.points.shape[1] == 3 and not m.points[:, 2].any()
    csv = tmp_path / "first.csv"
    post("export", plate_runs[3], "--format", "csv", "--step", "0", "-o", csv)
    data = np.loadtxt(csv, delimiter=",", skiprows=1)
    assert data.shape == (len(points), 3)
    xdmf = tmp_path / "all.xdmf"
    post("export", plate_runs[3], "--format", "xdmf", "--all", "-o", xdmf)
    with meshio.xdmf.TimeSeriesReader(xdmf) as reader:
        reader.read_points_cells()
        assert reader.num_steps == 3
    # every snapshot as vtu: series_000000.vtu, ... (were series.vtu_000000.vtu) and a .pvd with the times
    printed = post("export", plate_runs[3], "--format", "vtu", "--all", "-o", tmp_path / "series.vtu").stdout.split()
    assert [Path(p).name for p in printed] == ["series_000000.vtu", "series_000001.vtu", "series_000002.vtu",
                                               "series.pvd"]
    with results.open(plate_runs[3]) as r:
        assert (tmp_path / "series.pvd").read_text().count("<DataSet timestep=") == len(r.times)
        assert f'timestep="{float(r.times[-1])!r}" file="series_000002.vtu"' in (tmp_path / "series.pvd").read_text()
    # meshio writes <stem>.h5 beside the .xdmf: never over a run's results file, the one read or another
    before = plate_runs[3].read_bytes()
    for target in (plate_runs[3].with_suffix(".xdmf"), plate_runs[1].with_suffix(".xdmf")):
        proc = post("export", plate_runs[3], "--format", "xdmf", "-o", target, check=False)
        assert proc.returncode == 2 and "which it would overwrite" in proc.stderr, proc.stderr
    assert plate_runs[3].read_bytes() == before
    default = post("export", plate_runs[3], "--format", "xdmf")
    assert default.stdout.strip().endswith("_export.xdmf") and plate_runs[3].read_bytes() == before


def test_bad_requests_are_refused(plate_runs, tmp_path):
    checks = [
        (("info", tmp_path / "nothing.h5"), "nothing.h5: results file not found"),
        (("info", plate_runs[1].with_suffix(".xdmf")), "not an HDF5 file"),
        (("info", plate_runs[1].parent / "checkpoint.h5"), "a checkpoint, not a run's results"),
        (("plot", plate_runs[1], "--step", "7"), "--step 7: plate.h5 has 3 snapshots"),
        (("plot", plate_runs[1], "--time", "999"), "--time 999: outside the times"),
        (("probe", plate_runs[1], "--at", "5,5"), "--at 5,5: point is outside the mesh"),
        (("probe", plate_runs[1], "--at", "0.1"), "the mesh is 2D, give 2 coordinates"),
        (("export", plate_runs[1], "--format", "stl"), "invalid choice: 'stl'"),
    ]
    for args, message in checks:
        proc = post(*args, check=False)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_info_on_what_a_stopped_run_or_study_left_says_how_to_go_on(plate_runs, tmp_path):
    """A results file that its run began but did not finish creating (its attributes, no mesh yet:
    a full disk or a kill; or not even HDF5's superblock: zeros) was called a foreign file, or "not an
    HDF5 file"; the folder of a study stopped before its
    study file, its finished samples in study_groups/, gave "results file not found"."""
    begun = tmp_path / "begun.h5"
    with h5py.File(plate_runs[1], "r") as done, h5py.File(begun, "w") as f:
        f.attrs.update({k: v for k, v in done.attrs.items() if k in ("solver_version", "run_id", "status", "case")})
        f.create_group("mesh")
    proc = post("info", begun, check=False)
    assert proc.returncode == 2 and "a run that stopped while creating it" in proc.stderr, proc.stderr
    assert "--overwrite" in proc.stderr and "begun.log" in proc.stderr, proc.stderr
    blank = tmp_path / "blank.h5"  # cut before HDF5 wrote its superblock (zeros), its run's log beside it
    blank.write_bytes(bytes(4096))
    assert "not an HDF5 file" in post("info", blank, check=False).stderr
    (tmp_path / "blank.log").write_text("run: started\n")
    (tmp_path / ".solver.lock").write_text(f"{socket.gethostname()} 4194304999\n")  # a killed run's: no process
    for command in (("info",), ("probe", "--at", "0.1,0.05")):
        proc = post(command[0], blank, *command[1:], check=False)
        assert proc.returncode == 2 and "a run that stopped while creating it" in proc.stderr, proc.stderr
        assert "--overwrite" in proc.stderr and "blank.log" in proc.stderr, proc.stderr
    (tmp_path / ".solver.lock").write_text(f"{socket.gethostname()} {os.getpid()}\n")  # a live run creating it
    proc = post("info", blank, check=False)
    assert proc.returncode == 2 and "not an HDF5 file for now: a run holds its folder" in proc.stderr, proc.stderr
    (tmp_path / ".solver.lock").unlink()
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f.attrs["solver_version"] = "0.5.0"
    proc = post("info", tmp_path / "foreign.h5", check=False)
    assert proc.returncode == 2 and "not a results file of this solver" in proc.stderr, proc.stderr
    groups = tmp_path / "s" / "study_groups"
    groups.mkdir(parents=True)
    with h5py.File(groups / "s.group00000.study.h5", "w") as f:
        f.attrs.update({"solver_study": 1, "status": "partial", "name": "s", "study_source": "studies/s.toml"})
    for path in (tmp_path / "s", tmp_path / "s" / "s.study.h5", tmp_path / "s" / "s.h5"):
        proc = post("info", path, check=False)
        assert proc.returncode == 2 and "no study file yet" in proc.stderr, proc.stderr
        assert "study studies/s.toml --restart latest" in proc.stderr and "1 group file" in proc.stderr, proc.stderr
    (tmp_path / "s" / ".solver.lock").write_text(f"{socket.gethostname()} {os.getpid()}\n")  # a study still running
    proc = post("info", tmp_path / "s" / "s.study.h5", check=False)
    assert proc.returncode == 2 and "the study s is still running" in proc.stderr, proc.stderr
    assert "--restart" not in proc.stderr and "1 group file" in proc.stderr, proc.stderr
    proc = post("info", tmp_path / "s" / "other.study.h5", check=False)  # another study's: not found
    assert proc.returncode == 2 and "results file not found" in proc.stderr, proc.stderr


def test_a_damaged_mesh_or_a_truncated_file_is_named_so(plate_runs, tmp_path):
    """A node number beyond the mesh in /mesh/topology: info, probe and plot failed with an
    IndexError (exit 1); a file cut short was called "not an HDF5 file"."""
    from solver.errors import CaseError

    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(plate_runs[1].read_bytes())
    with h5py.File(damaged, "r+") as f:
        f["mesh/topology"][5, 0] = 10848
    with results.open(damaged) as r, pytest.raises(CaseError, match="damaged file: /mesh/topology refers to nodes"):
        r.locator
    cut = tmp_path / "cut.h5"
    cut.write_bytes(plate_runs[1].read_bytes()[:-1024])
    with pytest.raises(CaseError, match="a damaged or truncated HDF5 file"):
        results.open(cut)


def _del(f, name):
    del f[name]


def _replace(f, name, value):
    del f[name]
    f[name] = value


DAMAGES = {  # each was an internal error (exit 1) in some command, or a wrong reading with exit 0
    "no step table": (lambda f: _del(f, "step"), "damaged file: /step is missing"),
    "no topology": (lambda f: _del(f, "mesh/topology"), "damaged file: /mesh/topology is missing"),
    "case not TOML": (lambda f: f.attrs.__setitem__("case", "[[[ x"), "its attribute case is not valid TOML"),
    "ranks not a number": (lambda f: f.attrs.__setitem__("ranks", "many"), "attribute ranks = 'many' is not a whole",
                           "info"),
    "times not in order": (lambda f: _replace(f, "time", f["time"][()][::-1].copy()), "not in increasing order"),
    "time a group": (lambda f: (_del(f, "time"), f.create_group("time")), "/time is missing or not a dataset"),
    "points of 3D under triangles": (lambda f: _replace(f, "mesh/geometry", np.pad(f["mesh/geometry"][()],
                                                                                   ((0, 0), (0, 1)))),
                                     "triangle cells on points of 3 coordinates"),
    "a later format": (lambda f: f.attrs.__setitem__("format_version", 999), "results of format 999"),
    "a negative step": (lambda f: f["step"].__setitem__(1, -5), "/step holds step numbers that are negative"),
    "a time not the snapshot's": (lambda f: f["time"].__setitem__(-1, f["time"][-1] + 1000.0), "but /time lists"),
    "a step not the snapshot's": (lambda f: f["step"].__setitem__(-1, f["step"][-1] + 7), "but /step lists"),
    "tables of other lengths": (lambda f: _replace(f, "time", f["time"][:2]), "/time lists 2 snapshots"),
    "a mesh larger than the file": (lambda f: (_del(f, "mesh/geometry"), f.create_dataset(
        "mesh/geometry", shape=(1 << 36, 2), dtype=float, chunks=(1 << 10, 2))), "/mesh/geometry declares 1024 GiB"),
    "a step table larger than the file": (lambda f: (_del(f, "steps/dt"), f.create_dataset(
        "steps/dt", shape=(1 << 40,), dtype=float, chunks=(1 << 10,))), "/steps/dt declares 8192 GiB"),
    "probe values larger than the file": (lambda f: (_del(f, "probes/values"), f.create_dataset(
        "probes/values", shape=(1 << 36, 1), dtype=float, chunks=(1 << 10, 1))), "/probes/values declares 512 GiB"),
    "probe tables of other lengths": (lambda f: _replace(f, "probes/time", np.zeros(3)), "changed after it was",
                                      "--series"),
}


@pytest.fixture(scope="module")
def probed_plate(tmp_path_factory):
    folder = tmp_path_factory.mktemp("probed")
    run_solver(1, [ROOT / "inputs" / "plate.toml", "--set", "mesh.nx=8", "--set", "mesh.ny=4", "--set",
                   "output.probes=[[0.1, 0.05]]", "--set", f"output.directory={folder}", "--quiet"], cwd=folder)
    return folder / "plate" / "plate.h5"


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_results_file_changed_after_it_was_written_is_refused_in_one_line(probed_plate, tmp_path, damage):
    """A file not as the solver writes it: exit 2 and one line in every reading command that reads
    the part changed (all of them, or only ``info`` or ``plot --series``: the others read it)."""
    path = tmp_path / "plate.h5"
    path.write_bytes(probed_plate.read_bytes())
    change, message, *reader = DAMAGES[damage]
    with h5py.File(path, "r+") as f:
        change(f)
    for command in (["info"], ["plot", "-o", tmp_path / "x.png"], ["plot", "--series", "-o", tmp_path / "x.png"],
                    ["probe", "--at", "0.1,0.05"], ["export", "--format", "csv", "-o", tmp_path / "x.csv"]):
        proc = post(*command, path, check=False)
        errors = proc.stderr.strip().splitlines()
        if reader and reader[0] not in command:
            assert proc.returncode == 0, proc.stderr
            continue
        assert proc.returncode == 2 and len(errors) == 1 and message in errors[0], (command, proc.stderr)


def test_a_file_larger_than_the_memory_is_a_run_time_failure_in_one_line(probed_plate, tmp_path):
    """A mesh larger than the machine's memory (here: the address space limited) ended in "internal
    error: MemoryError", exit 1. (Compressed: an uncompressed one larger than the file is damaged.)"""
    path = tmp_path / "plate.h5"
    path.write_bytes(probed_plate.read_bytes())
    with h5py.File(path, "r+") as f:
        del f["mesh/geometry"]
        f.create_dataset("mesh/geometry", shape=(2_000_000_000, 2), dtype=float, chunks=(1 << 16, 2),
                         compression="gzip")

    def small_memory():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    for command in (["info"], ["probe", "--at", "0.1,0.05"]):
        proc = subprocess.run([sys.executable, "-m", "solver", command[0], str(path), *command[1:]], text=True,
                              capture_output=True, timeout=120, env=mpi_env(), preexec_fn=small_memory)
        errors = proc.stderr.strip().splitlines()
        assert proc.returncode == 3 and len(errors) == 1, proc.stderr
        assert errors[0].startswith(f"error: {path}: not enough memory on this machine for {command[0]}"), proc.stderr


def test_progress_in_a_pipe_is_plain_periodic_lines(tmp_path):
    proc = run_solver(2, [PLATE, "--set", "mesh.nx=30", "--set", "mesh.ny=15", "--set", f"output.directory={tmp_path}"],
                      cwd=tmp_path)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("step ")]
    assert len(lines) >= 20 and all("ETA" in ln and "elapsed" in ln for ln in lines)
    assert "\r" not in proc.stdout and "\x1b" not in proc.stdout
    log = (tmp_path / "plate" / "plate.log").read_text()
    assert "step    360/360" in log and "heat balance" in log


def test_dry_run_reports_and_writes_nothing(tmp_path):
    proc = run_solver(3, [PLATE, "--dry-run", "--set", f"output.directory={tmp_path / 'out'}"], cwd=tmp_path)
    out = proc.stdout
    assert "7381 DOFs" in out and "MiB per rank" in out and "stable time step" in out and "MiB in" in out
    assert not (tmp_path / "out").exists()


def test_results_api(plate_runs):
    r = results.open(plate_runs[3])
    assert r.cell_type == "triangle" and r.points.shape == (861, 2) and r.cells.shape == (1600, 3)
    assert r.times.tolist() == [0.0, 60.0, 120.0] and r.steps.tolist() == [0, 12, 24]
    assert r.case["material"]["k"] == 45.0 and r.temperature(0).shape == (861,)
    r.close()


@pytest.mark.parametrize("call, message", [
    (lambda r: r.temperature(1.5), "index=1.5: a snapshot index is a whole number (negative counts from the end), "
                                   "not float"),
    (lambda r: r.temperature("2"), "index='2': a snapshot index is a whole number"),
    (lambda r: r.field(True), "index=True: a snapshot index is a whole number"),
    (lambda r: r.temperature(10_000), "index=10000: plate.h5 has "),
    (lambda r: r.field(-1, "porosity"), "name='porosity': plate.h5 has no such field (it holds: temperature)"),
    (lambda r: r.units("porosity"), "name='porosity': plate.h5 has no such field"),
    (lambda r: r.probe([[0.1, 0.05]], 99_999), "index=99999: plate.h5 has "),
    (lambda r: r.probe([[0.1, 0.05]], name="porosity"), "name='porosity'"),
    (lambda r: r.probe([[0.1, 0.05, 0.0]]), "points: the mesh of plate.h5 is 2D: give points of 2 coordinates each "
                                            "(got an array of shape (1, 3))"),
    (lambda r: r.probe([[np.nan, 0.05]]), "points: point 0 (nan, 0.05) has coordinates that are not finite"),
    (lambda r: r.probe([[0.1, 0.05], [0.1, np.inf]]), "points: point 1 (0.1, inf)"),
    (lambda r: r.probe([]), "points: the mesh of plate.h5 is 2D"),
    (lambda r: r.probe([["a", "b"]]), "points: expected a point or a list of points of 2 numbers each"),
])
def test_the_results_api_refuses_a_bad_argument_naming_it(probed_plate, call, message):
    """temperature(1.5) raised "Unknown format code 'd'", temperature("2") a TypeError, a probe of 3D
    points or of NaN scipy's errors, an index out of range named the command line's --step."""
    from solver.errors import CaseError

    with results.open(probed_plate) as r:
        with pytest.raises(CaseError) as refused:
            call(r)
        assert message in str(refused.value) and "--" not in str(refused.value), str(refused.value)
        assert r.temperature(np.int64(-1)).shape == (len(r.points),) and r.probe([0.1, 0.05], 0).shape == (1,)


@pytest.mark.parametrize("value, noise, colours", [
    (20.0, 1.2e-13, (18.0, 22.0)), (0.0, 5e-16, (-0.1, 0.1)), (20.0, 0.0, (18.0, 22.0)),
    (20.0, 1e-3, (20.0 - 1e-3, 20.0 + 1e-3)),  # a real spread: its own range
])
def test_a_uniform_field_is_plotted_flat_with_a_readable_colour_range(probed_plate, tmp_path, monkeypatch, value,
                                                                       noise, colours):
    """A field uniform up to round-off (20 +- 1e-13, 0 +- 5e-16) was coloured by its round-off (speckle),
    with a colour bar of one tick 20.0000000000000000; a spread that is not round-off keeps its own range."""
    from matplotlib.figure import Figure

    from solver.app.cli import main

    path = tmp_path / "uniform.h5"
    path.write_bytes(probed_plate.read_bytes())
    with h5py.File(path, "r+") as f:
        data = f["fields/temperature/000000"]
        data[...] = value + noise * np.cos(np.arange(data.shape[0]))
    drawn = []
    colorbar = Figure.colorbar
    monkeypatch.setattr(Figure, "colorbar", lambda self, im, **kw: drawn.append(im.norm) or colorbar(self, im, **kw))
    assert main(["plot", str(path), "--step", "0", "-o", str(tmp_path / "u.png")]) == 0
    assert (drawn[0].vmin, drawn[0].vmax) == pytest.approx(colours, abs=1e-6)


def test_plot_units_are_shown_as_written():
    """--units 'K $$' went to matplotlib's mathtext parser: an internal error."""
    from solver.post.plot import _label

    assert _label(None, "temperature", "K $$") == r"temperature (K \$\$)"


@pytest.mark.parametrize("options, message", [
    (dict(dt=True, series=True), "--dt and --series are two different plots"),
    (dict(series=True, step=3, mesh=True), "plot --series: --step, --mesh do not apply"),
    (dict(dt=True, field="liquid_fraction"), "plot --dt: --field does not apply"),
])
def test_plot_options_that_a_plot_would_not_use_are_refused(options, message):
    """--series --step 3 drew the series and dropped --step without a word."""
    from types import SimpleNamespace

    from solver.errors import CaseError
    from solver.post.plot import check_plot_options

    args = SimpleNamespace(**{**dict(dt=False, series=False, step=None, time=None, mesh=False, slice=None,
                                     field="temperature", units=None), **options})
    with pytest.raises(CaseError, match=message):
        check_plot_options(args)
    check_plot_options(SimpleNamespace(**{**vars(args), "dt": False, "series": False}))  # a snapshot takes them


@pytest.mark.parametrize("cell", ["quadrilateral"])
def test_info_s_mean_is_the_field_s_mean_over_the_body(tmp_path, cell):
    """A steady P2/Q2 field that is exactly T = 3x^2 + y^2 + xy on [0, 0.3] x [0, 0.2]: the mean
    info prints is its integral over the area, 0.101 (the mean over the nodes, 0.1037 on Q2 nodes,
    was printed)."""
    exact = "3*x*x + y*y + x*y"
    (tmp_path / "q.toml").write_text(f"""[mesh]
type = "rectangle"
cell = "{cell}"
lengths = [0.3, 0.2]
nx = 3
ny = 2
[element]
degree = 2
[material]
k = 2.0
rho = 1.0
c = 1.0
[source]
f = -16.0
[boundary.left]
type = "dirichlet"
value = "{exact}"
[boundary.right]
type = "dirichlet"
value = "{exact}"
[boundary.top]
type = "dirichlet"
value = "{exact}"
[boundary.bottom]
type = "dirichlet"
value = "{exact}"
[time]
scheme = "steady"
""")
    run_solver(1, ["q.toml", "--quiet"], cwd=tmp_path)
    info = json.loads(post("info", tmp_path / "outputs" / "q" / "q.h5", "--json").stdout)
    mean = (3 * 0.3**3 / 3 * 0.2 + 0.3 * 0.2**3 / 3 + 0.3**2 / 2 * 0.2**2 / 2) / (0.3 * 0.2)
    assert info["last"]["mean"] == pytest.approx(mean, rel=1e-12)
