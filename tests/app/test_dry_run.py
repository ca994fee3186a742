"""The dry run reports what the run will do."""

import re

import h5py
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


def test_a_dry_run_with_a_restart_says_it_does_not_check_it(tmp_path):
    """--dry-run --restart latest reported the steps from t = 0 as if it had looked at the checkpoint."""
    dry = run_solver(1, [HEATER, "--set", "mesh.nx=20", "--set", f"output.directory={tmp_path}", "--dry-run",
                         "--restart", "latest"], cwd=tmp_path)
    assert "restart: --restart latest is not checked by a dry run" in dry.stdout + dry.stderr
    assert not (tmp_path / "heater_ramp").exists()
