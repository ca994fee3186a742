"""A full disk or a failed write during a run: an orderly error with exit status 74, the results
file listing only complete snapshots (the unlisted one dropped on restart), the XDMF index whole,
the last checkpoint intact and the run restartable; a refused --overwrite moves nothing.

The disk is a small tmpfs when this process may mount one (root), else the writer's fault hook."""

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import ROOT, mpi_env, mpirun_command, run_solver

PLATE = str(ROOT / "inputs" / "plate.toml")
SMALL = ["--set", "mesh.nx=30", "--set", "mesh.ny=15", "--set", "time.t_end=100.0", "--set", "output.every=2",
         "--set", "checkpoint.every=4"]


def mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a 4 MiB tmpfs, or None where none can be mounted."""
    disk = tmp_path / "disk"
    mounted = mount_tmpfs(disk, "4m")
    yield disk if mounted else None
    if mounted:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def solve(nprocs, args, cwd, env=None):
    cmd = mpirun_command(nprocs) + [sys.executable, "-m", "solver", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env={**mpi_env(), **(env or {})}, capture_output=True, text=True, timeout=90)


def check_failed_write(proc, folder: Path, snapshots: int, unlisted: bool):
    """Exit 74 with one line; the file lists ``snapshots`` complete snapshots and says it failed."""
    assert proc.returncode == 74, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"plate.h5: cannot write snapshot {snapshots} (step {2 * snapshots}" in errors[0]
    assert f"the results keep {snapshots} complete snapshots" in errors[0]
    assert "--restart latest" in errors[0] and "step_00000008.h5" in errors[0]
    with h5py.File(folder / "plate.h5", "r") as f:
        assert f["step"][()].tolist() == list(range(0, 2 * snapshots, 2))
        assert f.attrs["status"] == "failed" and f.attrs["exit_status"] == 74
        assert (f"{snapshots:06d}" in f["fields/temperature"]) == unlisted
        assert np.all(f["fields/temperature"][f"{snapshots - 1:06d}"][()] >= 20.0 - 1e-9)  # a real field, no zeros
    grids = ET.parse(folder / "plate.xdmf").getroot().findall(".//Grid[@GridType='Uniform']")
    assert len(grids) == snapshots
    assert not list(folder.glob("*.tmp")) and not list((folder / "checkpoints").glob("*.tmp"))
    with h5py.File(folder / "checkpoint.h5", "r") as f:
        assert f.attrs["step"] == 8


def check_restart(nprocs, args, cwd, folder: Path, reference: np.ndarray):
    proc = solve(nprocs, [*args, "--restart", "latest"], cwd)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(folder / "plate.h5", "r") as f:
        assert f["step"][()].tolist() == list(range(0, 21, 2)) and f.attrs["status"] == "complete"
        assert sorted(f["fields/temperature"]) == [f"{i:06d}" for i in range(11)]
        assert np.abs(f["fields/temperature/000010"][()] - reference).max() < 1e-7
    assert len(ET.parse(folder / "plate.xdmf").getroot().findall(".//Grid[@GridType='Uniform']")) == 11


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    run_solver(1, [PLATE, *SMALL, "--set", f"output.directory={out}"], cwd=out)
    with h5py.File(out / "plate" / "plate.h5", "r") as f:
        return f["fields/temperature/000010"][()]


def test_a_disk_that_fills_up_ends_the_run_in_order(tmp_path, small_disk, reference):
    """The disk fills before snapshot 5: nothing of it is written, the run stops with 74 and
    continues on another number of ranks once there is space again."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here; test_a_failed_write_* covers the writer's fault hook")
    args = [PLATE, *SMALL, "--set", f"output.directory={small_disk}"]
    folder = small_disk / "plate"
    proc = solve(3, args, tmp_path, {"SOLVER_TEST_FILL_DISK": "5"})
    assert "no room on its disk" in proc.stderr
    check_failed_write(proc, folder, 5, unlisted=False)
    (folder / ".filler").unlink()
    check_restart(2, args, tmp_path, folder, reference)


@pytest.mark.parametrize("driver", ["mpio", "gathered"])
def test_a_failed_write_on_one_rank_leaves_the_file_as_last_listed(tmp_path, driver, reference):
    """One rank's writer fails after the fields of snapshot 5 are written: every rank stops with
    74, the snapshot stays unlisted, and the restart drops it instead of tripping over it."""
    args = [PLATE, *SMALL, "--set", f"output.directory={tmp_path}", "--set", f'output.driver="{driver}"']
    proc = solve(3, args, tmp_path, {"SOLVER_TEST_WRITE_ERROR": "1:5"})
    assert "injected write error" in proc.stderr
    check_failed_write(proc, tmp_path / "plate", 5, unlisted=True)
    check_restart(3, args, tmp_path, tmp_path / "plate", reference)


def test_an_overwrite_without_room_moves_nothing(tmp_path):
    """--overwrite refused for lack of space leaves the earlier results where they were."""
    disk = tmp_path / "disk"
    if not mount_tmpfs(disk, "3m"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        args = [PLATE, *SMALL, "--set", f"output.directory={disk}"]
        assert solve(1, args, tmp_path).returncode == 0
        before = sorted(p.name for p in (disk / "plate").iterdir())
        proc = solve(2, [*args, "--set", "mesh.nx=300", "--set", "mesh.ny=150", "--overwrite"], tmp_path)
        assert proc.returncode == 2 and "MiB free on that disk" in proc.stderr, proc.stderr
        assert sorted(p.name for p in (disk / "plate").iterdir()) == before
        assert "plate.h5" in before and "plate.h5.bak" not in before
        assert solve(1, [*args, "--restart", "latest", "--set", "time.t_end=110.0"], tmp_path).returncode == 0
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
