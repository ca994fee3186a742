"""The dry run reports what the run will do."""

import re

import h5py
import pytest
from conftest import ROOT, run_solver

HEATER = ROOT / "inputs" / "heater_ramp.toml"


def test_dry_run_step_count_equals_the_runs_with_auto_dt(tmp_path):
    """time.dt = "auto" rounds the step count up (t_end / (0.9 limit) = 3092.4 here: 3093 steps)."""
    args = [HEATER, "--set", "mesh.nx=20", "--set", "time.scheme=explicit-euler", "--set", 'time.dt="auto"',
            "--set", f"output.directory={tmp_path}"]
    dry = run_solver(1, args + ["--dry-run"], cwd=tmp_path)
    planned = int(re.search(r"this case: dt = auto, (\d+) steps", dry.stdout).group(1))
    run_solver(1, args + ["--quiet"], cwd=tmp_path, timeout=180)
    with h5py.File(tmp_path / "heater_ramp" / "heater_ramp.h5", "r") as f:
        assert planned == int(f.attrs["steps"]) == 3093


def test_a_dry_run_of_one_step_says_one_step(tmp_path):
    dry = run_solver(1, [HEATER, "--set", "mesh.nx=4", "--set", "time.dt=2.0", "--set", "time.t_end=2.0",
                         "--set", f"output.directory={tmp_path}", "--dry-run"], cwd=tmp_path)
    assert "dt = 2.0, 1 step" in dry.stdout and "1 steps" not in dry.stdout, dry.stdout


def test_a_dry_run_with_a_restart_says_it_does_not_check_it(tmp_path):
    """--dry-run --restart latest reported the steps from t = 0 as if it had looked at the checkpoint."""
    dry = run_solver(1, [HEATER, "--set", "mesh.nx=20", "--set", f"output.directory={tmp_path}", "--dry-run",
                         "--restart", "latest"], cwd=tmp_path)
    assert "restart: --restart latest is not checked by a dry run" in dry.stdout + dry.stderr
    assert not (tmp_path / "heater_ramp").exists()


@pytest.mark.parametrize("nprocs, dry", [(1, True), (3, True), (3, False)])
def test_snapshots_of_auto_dt_are_bounded_as_those_of_a_fixed_dt(tmp_path, nprocs, dry):
    """output.every (default 1) over time.dt = "auto" steps wrote 1.3e7 snapshots (4.5 GiB): refused
    once the steps are known, as over a fixed dt's, before anything is written (exit 2, one line)."""
    args = [ROOT / "inputs" / "plate.toml", "--set", "mesh.nx=8", "--set", "mesh.ny=4", "--set", "output.every=1",
            "--set", "time.scheme=explicit-euler", "--set", 'time.dt="auto"', "--set", "time.t_end=1e8",
            "--set", f"output.directory={tmp_path}", "--quiet"] + (["--dry-run"] if dry else [])
    proc = run_solver(nprocs, args, cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "output.every = 1 writes 1.33e+07 snapshots over the 1.33e+07 steps of time.dt = \"auto\"" in errors[0]
    assert "at most 1,000,000" in errors[0] and not (tmp_path / "plate").exists()
