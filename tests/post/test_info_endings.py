"""``info`` says how a run ended (complete, stopped, failed, killed) and where the file came from."""

import json

from conftest import ROOT, mpi_env, mpirun_command

import subprocess
import sys

import h5py
import pytest

PLATE = ROOT / "inputs" / "plate.toml"
SMALL = ["--set", "mesh.nx=10", "--set", "mesh.ny=5", "--set", "time.t_end=300.0"]


def run(tmp_path, nprocs, extra, env=None):
    cmd = mpirun_command(nprocs) + [sys.executable, "-m", "solver", str(PLATE), *SMALL,
                                    "--set", f"output.directory={tmp_path}", *extra]
    # mpirun's grace: a killed run's ranks hold the results file until they are gone
    return subprocess.run(cmd, cwd=tmp_path, env={**mpi_env(grace=True), **(env or {})}, capture_output=True,
                          text=True, timeout=120)


def info(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "solver", "info", str(tmp_path / "plate" / "plate.h5"), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("nprocs", [1, 3])
@pytest.mark.parametrize("how, extra, env, exit_status, status", [
    ("complete", [], {}, 0, "complete"),
    ("stopped", ["--set", "run.wall_limit=5.5"], {"SOLVER_TEST_STEP_DELAY": "0.3"}, 75, "stopped"),
    ("failed", [], {"SOLVER_TEST_NAN": "0:4"}, 3, "failed"),
    ("killed", [], {"SOLVER_TEST_FAIL": "0:4"}, None, "killed"),
])
def test_info_tells_how_the_run_ended(tmp_path, nprocs, how, extra, env, exit_status, status):
    proc = run(tmp_path, nprocs, extra, env)
    assert exit_status is None and proc.returncode != 0 or proc.returncode == exit_status, proc.stderr
    s = info(tmp_path)
    assert s["ending"]["status"] == status and s["complete"] == (status == "complete")
    if status == "stopped":
        assert "checkpoint" in s["ending"]["detail"] and "step_" in s["ending"]["detail"]
    if status == "failed":
        assert "exit status 3" in s["ending"]["detail"] and "NaN" in s["ending"]["detail"]
    text = subprocess.run([sys.executable, "-m", "solver", "info", str(tmp_path / "plate" / "plate.h5")],
                          capture_output=True, text=True, timeout=60).stdout
    ranks = f"{nprocs} rank" + ("s" if nprocs > 1 else "")
    assert f"run         {ranks}, crank-nicolson, {status}" in text
    if status in ("killed", "failed"):  # (a failed run printed "0 CG iterations ...; heat imbalance nan")
        assert "0 CG iterations" not in text and "imbalance nan" not in text and f"no totals (a {status} run)" in text
        assert s["solver"]["linear_iterations"] is None and s["heat_balance_relative_imbalance"] is None


def test_results_files_record_their_provenance(tmp_path):
    assert run(tmp_path, 2, []).returncode == 0
    p = info(tmp_path)["provenance"]
    assert p["format_version"] == 1 and p["host"] and "solver" in p["command_line"]
    assert all(p[k] for k in ("numpy_version", "scipy_version", "h5py_version", "hdf5_version", "mpi4py_version",
                              "mpi_library", "created"))
    with h5py.File(tmp_path / "plate" / "plate.h5", "r") as f:
        assert f["fields/temperature/000001"].attrs["units"] == "degC"


def test_a_file_without_an_end_record_is_not_called_complete():
    """Neither status nor complete (an older file has the second): "complete" was assumed."""
    from solver.post.info import ending

    assert ending({})["status"] == "unknown" and "no end record" in ending({})["detail"]
    assert ending({"complete": True})["status"] == "complete"
    assert ending({"complete": False})["status"] == "stopped or failed"
    assert ending({"status": "running"})["status"] == "killed"


def test_the_xdmf_index_named_instead_of_its_results_points_to_them(tmp_path):
    assert run(tmp_path, 1, []).returncode == 0
    proc = subprocess.run([sys.executable, "-m", "solver", "info", str(tmp_path / "plate" / "plate.xdmf")],
                          capture_output=True, text=True, timeout=60)
    beside = tmp_path / "plate" / "plate.h5"
    assert proc.returncode == 2 and proc.stderr.strip().endswith(f"the results are in {beside}")
    for name in ("plate.h5", "plate.xdmf"):  # the pair --overwrite sets aside
        (tmp_path / "plate" / name).rename(tmp_path / "plate" / f"{name}.bak")
    proc = subprocess.run([sys.executable, "-m", "solver", "info", str(tmp_path / "plate" / "plate.xdmf.bak")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().endswith(f"the results are in {beside}.bak"), proc.stderr


def test_a_run_s_folder_named_instead_of_its_results_points_to_them(tmp_path):
    """``info out/plate`` said only "is a directory": the folder a run writes holds its results
    under its own name, and a study's folder its study file."""
    folder = tmp_path / "plate"
    folder.mkdir()
    proc = subprocess.run([sys.executable, "-m", "solver", "info", str(folder)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().endswith("is a directory, expected a results .h5 file")
    (folder / "plate.h5").write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "solver", "info", str(folder)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().endswith(f"its results are {folder / 'plate.h5'})")
    study = tmp_path / "s"  # a study's folder: its study file, for info and plot alike
    study.mkdir()
    (study / "s.study.h5").write_bytes(b"")
    for command in ("info", "plot"):
        proc = subprocess.run([sys.executable, "-m", "solver", command, str(study)], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 2 and proc.stderr.strip().endswith(f"its study file is {study / 's.study.h5'})")


def test_provenance_asks_git_once_per_process(monkeypatch):
    """Every results or study file's write ran ``git rev-parse`` and ``git status`` (a study's
    groups write theirs every few seconds); the commit is the process's: asked once."""
    import subprocess

    from solver.io import provenance

    calls = []
    real = subprocess.run

    def counted(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)
    provenance.git_commit.cache_clear()
    monkeypatch.setattr(provenance.subprocess, "run", counted)
    first = [provenance.provenance()["git_commit"] for _ in range(3)]
    assert len(set(first)) == 1 and len(calls) <= 2, calls
