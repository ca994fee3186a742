"""``info`` and ``plot`` of a study file (``python -m solver study``): summary, figures, bad requests."""

import errno
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import ROOT, run_solver

from solver.app.cli import main

MONTE_CARLO = """
[study]
case = "wall.toml"
method = "monte-carlo"
samples = 16
seed = 7
[parameters]
"region.insulation.k" = { distribution = "uniform", low = 0.02, high = 0.08 }
"boundary.right.h" = { distribution = "uniform", low = 10.0, high = 40.0 }
[outputs]
thresholds = [16.0]
"""

GRID = """
[study]
case = "wall.toml"
method = "grid"
[parameters]
"region.insulation.k" = { values = [-0.01, 0.02, 0.04, 0.06, 0.08] }   # -0.01: two samples fail (status 2)
"boundary.right.h" = { values = [10.0, 25.0] }
[outputs]
thresholds = [16.0, 18.0]
"""


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """A 16-sample Monte Carlo study and a 5 x 2 grid of the steady layered wall (2 ranks each)."""
    d = tmp_path_factory.mktemp("studies")
    case = (ROOT / "inputs" / "layered_wall.toml").read_text()
    (d / "wall.toml").write_text(case.replace("[output]\n", f"[output]\ndirectory = {json.dumps(str(d))}\n"))
    files = {}
    for name, text in (("mc", MONTE_CARLO), ("grid", GRID)):
        (d / f"{name}.toml").write_text(text)
        run_solver(2, ["study", d / f"{name}.toml", "--quiet"], cwd=d)
        files[name] = d / name / f"{name}.study.h5"
    return files


def cli(capsys, *args):
    """Run ``python -m solver ARGS`` in this process: (exit status, stdout, stderr)."""
    status = main([str(a) for a in args])
    out = capsys.readouterr()
    return status, out.out, out.err


def info_json(capsys, path) -> dict:
    status, out, err = cli(capsys, "info", path, "--json")
    assert status == 0, err
    return json.loads(out)


def test_info_json_counts_ranges_and_output_means(studies, capsys):
    for name, (total, done, failed) in {"mc": (16, 16, 0), "grid": (10, 8, 2)}.items():
        s = info_json(capsys, studies[name])
        assert s["samples"] == {"total": total, "done": done, "failed": failed, "pending": 0, "status": "complete",
                                "exit_status": 0}
        assert s["study"]["name"] == name and s["study"]["method"] == ("monte-carlo" if name == "mc" else "grid")
        assert (s["ranks"], s["ranks_per_case"]) == (2, 1) and s["statistics"]["count"] == done
        with h5py.File(studies[name], "r") as f:
            values, outputs = f["samples/values"][()], {k: f["outputs"][k][()] for k in f["outputs"]}
        keys = ["region.insulation.k", "boundary.right.h"]
        assert list(s["parameters"]) == keys
        for j, key in enumerate(keys):
            assert s["parameters"][key] == {"min": values[:, j].min(), "max": values[:, j].max()}
        assert set(s["outputs"]) == set(outputs) and "max_temperature" in outputs
        for key, v in outputs.items():
            assert s["outputs"][key]["count"] == done
            assert s["outputs"][key]["mean"] == pytest.approx(np.nanmean(v), rel=1e-12, abs=1e-300)
            assert s["outputs"][key]["max"] == np.nanmax(v)
        assert s["outputs"]["max_temperature"]["std"] == pytest.approx(np.nanstd(outputs["max_temperature"], ddof=1))
    grid = info_json(capsys, studies["grid"])
    assert grid["statistics"]["thresholds"] == [16.0, 18.0] and grid["statistics"]["times"] == 1
    assert grid["statistics"]["fields"] == ["mean", "std", "min", "max", "above_0", "above_1"]
    assert [f["sample"] for f in grid["failures"]] == [0, 1]
    assert all(f["status"] == 2 and "region.insulation.k must be > 0" in f["message"] for f in grid["failures"])


def test_info_text(studies, capsys):
    status, out, _ = cli(capsys, "info", studies["grid"])
    assert status == 0
    assert "samples     10: 8 done, 2 failed, 0 pending; complete" in out
    assert "run         2 ranks, 1 per case" in out and "155 nodes, 120 quadrilateral cells, 2D" in out
    assert "  region.insulation.k  min -0.01" in out and "  max_temperature" in out
    assert "above_1: T > 18" in out and "sample 0 (status 2): " in out
    status, out, _ = cli(capsys, "info", studies["mc"])
    assert "monte-carlo, seed 7" in out and "failures" not in out


def test_info_of_a_stopped_study_counts_the_pending_samples(studies, capsys, tmp_path):
    path = shutil.copy(studies["grid"], tmp_path / "stopped.study.h5")
    with h5py.File(path, "r+") as f:
        f["samples/status"][7:] = -1
        f.attrs["status"], f.attrs["exit_status"] = "stopped", 75
    s = info_json(capsys, path)
    assert s["samples"] == {"total": 10, "done": 5, "failed": 2, "pending": 3, "status": "stopped", "exit_status": 75}
    out = cli(capsys, "info", path)[1]
    assert "3 pending; stopped (exit status 75" in out and "--restart latest" in out


def test_the_xdmf_index_names_every_statistics_field(studies):
    """The index beside the study file left out the threshold fields (above_<k>) that info lists."""
    import xml.etree.ElementTree as ET

    for name, thresholds in (("mc", 1), ("grid", 2)):
        path = studies[name]
        grids = ET.parse(path.with_name(f"{name}.study.xdmf")).getroot().iter("Grid")
        snapshots = [g for g in grids if g.get("GridType") == "Uniform"]
        wanted = ["mean", "std", "min", "max", *(f"above_{k}" for k in range(thresholds))]
        with h5py.File(path, "r") as f:
            for grid in snapshots:
                attributes = grid.findall("Attribute")
                assert [a.get("Name") for a in attributes] == wanted
                for a in attributes:
                    file, _, dataset = a.find("DataItem").text.partition(":")
                    assert file == path.name and dataset in f


def png_shape(path):
    import matplotlib.image

    img = matplotlib.image.imread(path)
    assert np.std(img[..., :3]) > 0.01  # not blank
    return img.shape[:2]


@pytest.mark.parametrize("study, args", [
    ("mc", ["--output", "max_temperature"]),
    ("mc", ["--output", "heat_in.left", "--cdf"]),
    ("mc", ["--output", "max_temperature", "--against", "region.insulation.k"]),
    ("grid", ["--output", "max_temperature", "--against", "region.insulation.k"]),
    ("mc", ["--field", "std"]),
    ("grid", ["--field", "above_1", "--step", "0", "--mesh"]),
])
def test_plot_writes_a_png(studies, capsys, tmp_path, study, args):
    out = tmp_path / "fig.png"
    status, stdout, err = cli(capsys, "plot", "-o", out, studies[study], *args, "--size", "600x400")
    assert status == 0, err
    assert stdout.strip() == str(out) and png_shape(out) == (400, 600)


def test_plot_default_file_is_beside_the_study(studies, capsys):
    status, stdout, err = cli(capsys, "plot", studies["mc"])
    assert status == 0, err
    assert stdout.strip() == str(studies["mc"].with_name("mc_mean_000000.png"))
    assert png_shape(stdout.strip()) == (700, 1000)


@pytest.mark.parametrize("args", [["--output", "max_temperature"], ["--field", "above_0"]])
def test_a_plot_without_room_leaves_the_picture_there_as_it_was(studies, capsys, tmp_path, monkeypatch, args):
    """plot wrote onto its target: a full disk left the picture there cut short (exit 74 now)."""
    from matplotlib.figure import Figure

    out = tmp_path / "keep.svg"
    assert cli(capsys, "plot", studies["mc"], *args, "-o", out)[0] == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full(self, path, **kwargs):  # a part written, then the disk is full
        Path(path).write_bytes(b"<svg")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    status, _, err = cli(capsys, "plot", studies["mc"], *args, "-o", out)
    assert status == 74 and err == f"error: -o {out}: cannot write it (No space left on device); the files there " \
        "are as they were\n", err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("args, words", [
    (["--output", "nope"], ["no such scalar output", "max_temperature", "heat_in.left"]),
    (["--output", "fig.png"], ["-o FILE"]),
    (["--output", "max_temperature", "--against", "nope"], ["not a varied key", "boundary.right.h"]),
    (["--output", "max_temperature", "--cdf", "--against", "boundary.right.h"], ["choose one"]),
    (["--output", "max_temperature", "--field", "std"], ["--field: not with --output"]),
    (["--cdf"], ["needs --output"]),
    (["--field", "nope"], ["no such statistics field", "above_1"]),
    (["--step", "4"], ["1 output times"]),
    (["--output", "max_temperature", "--bins", "1000000000"], ["--bins 1000000000: expected a number of bins from 1"]),
    (["--field", "mean", "--slice", "z=0.5"], ["holds a 2D field (a slice is of a 3D one)"]),
])
def test_bad_plot_requests_get_one_line_and_status_2(studies, capsys, tmp_path, args, words):
    status, _, err = cli(capsys, "plot", studies["grid"], *args, "-o", tmp_path / "x.png")
    assert status == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert all(w in err for w in words), err
    assert not (tmp_path / "x.png").exists()


def test_plot_without_done_samples_is_refused(studies, capsys, tmp_path):
    path = shutil.copy(studies["grid"], tmp_path / "failed.study.h5")
    with h5py.File(path, "r+") as f:
        f["samples/status"][...] = 3
        f["outputs/max_temperature"][...] = np.nan
    status, _, err = cli(capsys, "plot", path, "--output", "max_temperature", "-o", tmp_path / "x.png")
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "no sample of failed.study.h5 is done (10 failed, 0 pending)" in err
    assert info_json(capsys, path)["outputs"]["max_temperature"] == {"count": 0, "mean": None, "std": None,
                                                                     "min": None, "max": None}


@pytest.mark.parametrize("command", [("probe", "--at", "0.1,0.05"), ("export", "--format", "csv")])
def test_probe_and_export_of_a_study_file_say_what_reads_it(studies, capsys, tmp_path, command):
    """They said "no /mesh and /fields/temperature" of a file that has /mesh."""
    status, _, err = cli(capsys, command[0], studies["grid"], *command[1:])
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert "a study file, not a run's results: its statistics are read with info and plot" in err
