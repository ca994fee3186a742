"""A full disk or a failed write during a run: an orderly error with exit status 74 (one line, no
traceback, no crash), the results file listing only complete snapshots (the unlisted one dropped
on restart) and left untouched after the failure (no end record: ``info`` says so), the XDMF index
whole, the last checkpoint intact and the run restartable; a refused --overwrite moves nothing.

The disk is a small tmpfs when this process may mount one (root): it fills before a snapshot
(the writer's space check refuses it) or while HDF5 writes it. Without root, the writer's fault
hook fails one rank's write."""

import errno
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import ROOT, mpi_env, mpirun_command, run_script, run_solver

from solver.app.study.rows import read_rows, rows_path

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
    """A run whose write fails: its ranks leave the file open on purpose (see solver.io.blockfile),
    so mpirun keeps its grace and returns only once every rank is gone and the file's lock with it."""
    cmd = mpirun_command(nprocs) + [sys.executable, "-m", "solver", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env={**mpi_env(grace=True), **(env or {})}, capture_output=True, text=True,
                          timeout=90)


def check_failed_write(proc, folder: Path, snapshots, unlisted: bool | None, ended: tuple = ("running",)):
    """Exit 74 with one line; the file lists complete snapshots (``snapshots``: their number, or
    the numbers allowed) and keeps saying running, or (``ended``) says how the run failed."""
    assert proc.returncode == 74, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr and "Segmentation" not in proc.stderr, proc.stderr
    with h5py.File(folder / "plate.h5", "r") as f:
        listed = len(f["step"])
        assert listed in np.atleast_1d(snapshots) and f["step"][()].tolist() == list(range(0, 2 * listed, 2))
        assert f.attrs["status"] in ended  # running: not touched after a failed write, no end record
        if f.attrs["status"] == "failed":  # refused before anything was written: the end record says why
            assert f.attrs["exit_status"] == 74 and "cannot write" in f.attrs["error"]
        if unlisted is not None:
            assert (f"{listed:06d}" in f["fields/temperature"]) == unlisted
        assert np.all(f["fields/temperature"][f"{listed - 1:06d}"][()] >= 20.0 - 1e-9)  # a real field, no zeros
    assert f"the results keep {listed} complete snapshots" in errors[0] and "cannot write" in errors[0]
    assert "--restart latest" in errors[0] and "step_00000008.h5" in errors[0]
    grids = ET.parse(folder / "plate.xdmf").getroot().findall(".//Grid[@GridType='Uniform']")
    assert len(grids) in (listed - 1, listed)  # the index, whole, lists at most what the file lists
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


@pytest.mark.parametrize("when, driver", [("before", "mpio"), ("before", "gathered"), ("late", "gathered"),
                                          ("late", "mpio")])
def test_a_disk_that_fills_up_ends_the_run_in_order(tmp_path, small_disk, reference, when, driver):
    """The disk fills before snapshot 5 (its space check refuses it: nothing of it is written)
    or while it is written (HDF5's writes fail: the snapshot is listed only if all of it was);
    the run stops with 74 and continues on another number of ranks once there is space again.
    Filled by another program, the disk has only the room set aside for the end record once that
    is released: a refused write still ends the file with it (failed, 74: it was left running, and
    info called the run killed)."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here; test_a_failed_write_* covers the writer's fault hook")
    args = [PLATE, *SMALL, "--set", f"output.directory={small_disk}", "--set", f'output.driver="{driver}"']
    folder = small_disk / "plate"
    proc = solve(3, args, tmp_path, {"SOLVER_TEST_FILL_DISK": "5" if when == "before" else "5:late"})
    if when == "before":
        assert "no room on its disk" in proc.stderr
        check_failed_write(proc, folder, 5, unlisted=False, ended=("failed",))
    else:
        check_failed_write(proc, folder, (5, 6), unlisted=None, ended=("running", "failed"))
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


def failing_writes(when: int, launch: list, args: list, cwd: Path, grace: bool = False):
    """``launch`` + ``args`` (a solver run) with every pwrite64 failing with ENOSPC from the
    ``when``-th on (strace's fault injection, following the launched processes); skipped where
    strace is missing or cannot trace."""
    import shutil

    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    cmd = ["strace", "-f", "-o", "/dev/null", "-e", "trace=pwrite64", "-e",
           f"inject=pwrite64:error=ENOSPC:when={when}+", *launch, sys.executable, "-m", "solver", *map(str, args)]
    proc = subprocess.run(cmd, cwd=cwd, env=mpi_env(grace=grace), capture_output=True, text=True, timeout=90)
    if "ptrace" in proc.stderr and proc.returncode != 74:
        pytest.skip("strace cannot trace here")
    return proc


def test_a_write_that_fails_while_the_mesh_is_written_ends_in_order(tmp_path):
    """Every write of the process fails with ENOSPC (strace's fault injection) from the first, the
    mesh's: the line was printed, then HDF5 retried the writes as the file was closed at exit and
    the process died in MPI_Finalize (exit 139). The file is kept open until the end (74)."""
    proc = failing_writes(1, [], [PLATE, *SMALL, "--set", f"output.directory={tmp_path}"], tmp_path)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 74 and len(errors) == 1 and "cannot write the mesh" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and "Segmentation" not in proc.stderr


@pytest.mark.parametrize("ranks, when", [(1, 200), (3, 90)])
def test_a_restart_after_a_write_that_failed_inside_hdf5_s_metadata(tmp_path, reference, ranks, when):
    """Every write fails from the n-th on (strace's ENOSPC), part-way through HDF5's metadata:
    the restart's trim could not delete the unfinished snapshot's link ("bad object header
    version number", exit 1) and on 3 ranks took a listed snapshot with it. The file is copied
    (what the restart keeps) where its objects cannot be read; the restart on 2 ranks completes
    and agrees with an uninterrupted run."""
    args = [PLATE, *SMALL, "--set", f"output.directory={tmp_path}"]
    proc = failing_writes(when, mpirun_command(ranks), [*args, "--set", "output.write_timeout=5"], tmp_path,
                          grace=True)  # (3 ranks: a write of one rank hangs until the timeout)
    assert proc.returncode == 74 and "Traceback" not in proc.stderr, proc.stderr
    check_restart(2, args, tmp_path, tmp_path / "plate", reference)


def test_info_shows_the_listed_snapshots_of_a_file_whose_step_table_a_failed_write_damaged(tmp_path):
    """Writes fail from the 100th on (strace), while the time-step table grows: the run kept 2
    snapshots, and info refused the file ("cannot write or read it", naming no file, exit 2)."""
    proc = failing_writes(100, [], [PLATE, *SMALL, "--set", f"output.directory={tmp_path}"], tmp_path)
    assert proc.returncode == 74 and "the results keep 2 complete snapshots" in proc.stderr, proc.stderr
    info = subprocess.run([sys.executable, "-m", "solver", "info", str(tmp_path / "plate" / "plate.h5")],
                          capture_output=True, text=True, timeout=60)
    assert info.returncode == 0 and "snapshots   2 (steps 0..2" in info.stdout, info.stdout + info.stderr


def test_an_overwrite_without_room_moves_nothing(tmp_path):
    """--overwrite refused for lack of space (exit 74, as a disk that fills later) leaves the earlier
    results where they were."""
    disk = tmp_path / "disk"
    if not mount_tmpfs(disk, "3m"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        args = [PLATE, *SMALL, "--set", f"output.directory={disk}"]
        assert solve(1, args, tmp_path).returncode == 0
        before = sorted(p.name for p in (disk / "plate").iterdir())
        proc = solve(2, [*args, "--set", "mesh.nx=300", "--set", "mesh.ny=150", "--overwrite"], tmp_path)
        assert proc.returncode == 74 and "free on that disk" in proc.stderr, proc.stderr
        assert sorted(p.name for p in (disk / "plate").iterdir()) == before
        assert "plate.h5" in before and "plate.h5.bak" not in before
        assert solve(1, [*args, "--restart", "latest", "--set", "time.t_end=110.0"], tmp_path).returncode == 0
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_an_index_without_room_for_its_backup_is_removed_not_left_naming_the_new_data(small_disk, caplog):
    """--overwrite moves the earlier XDMF index to NAME.xdmf.bak, rewritten to name NAME.h5.bak. On
    a disk without room for that copy it was moved as it was: it named NAME.h5, and opened the new
    run's data under the earlier run's times. It is removed, with a warning (the data file keeps
    every snapshot)."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here")
    from solver.app.faults import fill_disk
    from solver.app.preflight import move_aside

    index = small_disk / "plate.xdmf"
    grid = '<DataItem Format="HDF">plate.h5:/fields/temperature/0</DataItem>\n'
    index.write_text("<Xdmf>\n" + grid * 4000 + "</Xdmf>\n")
    fill_disk(small_disk)
    move_aside(index)
    assert not index.exists() and not (small_disk / "plate.xdmf.bak").exists(), "the index names the new data"
    assert not list(small_disk.glob("*.tmp")) and "no room to rewrite this index" in caplog.text


@pytest.mark.parametrize("nprocs", [1, 3])
def test_probes_at_every_step_count_in_the_space_a_run_needs(tmp_path, small_disk, nprocs):
    """200 probes recorded at each of 10,000 steps take 16 MB: the estimate left them out, and the run
    computed until its probe table met the full disk (exit 74). Refused before anything is written,
    one line naming what it needs; with fewer steps the same run completes."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here")
    points = ",".join(f"[{0.01 + 0.18 * (i % 20) / 19:.4f},{0.01 + 0.08 * (i // 20) / 9:.4f}]" for i in range(200))
    args = [PLATE, "--set", "mesh.nx=10", "--set", "mesh.ny=5", "--set", "time.dt=1.0", "--set", "output.every=5000",
            "--set", "checkpoint.every=5000", "--set", f"output.probes=[{points}]",
            "--set", f"output.directory={small_disk}"]
    proc = solve(nprocs, [*args, "--set", "time.t_end=10000.0"], tmp_path)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 74 and len(errors) == 1 and "the results need about 15" in errors[0], proc.stderr
    assert "free on that disk" in errors[0] and not (small_disk / "plate" / "plate.h5").exists()
    assert solve(nprocs, [*args, "--set", "time.t_end=100.0"], tmp_path).returncode == 0


@pytest.mark.parametrize("nprocs", [1, 3])
def test_the_metadata_and_index_of_every_snapshot_count_in_the_space_a_run_needs(tmp_path, small_disk, nprocs):
    """3001 snapshots of a 15-node mesh: their values take 0.35 MiB, but HDF5's metadata of each
    and its grid in the XDMF index take 1.2 kB more. The estimate counted the values alone, and
    the run computed until snapshot 2256 met the full disk (exit 74 after a minute). Refused
    before anything is written, one line; with fewer snapshots the same run completes."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here")
    args = [PLATE, "--set", "mesh.nx=4", "--set", "mesh.ny=2", "--set", "time.dt=1.0", "--set", "output.every=1",
            "--set", "checkpoint.every=1000", "--set", f"output.directory={small_disk}"]
    proc = solve(nprocs, [*args, "--set", "time.t_end=3000.0"], tmp_path)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 74 and len(errors) == 1 and "the results need about" in errors[0], proc.stderr
    assert "free on that disk" in errors[0] and not (small_disk / "plate" / "plate.h5").exists()
    assert solve(nprocs, [*args, "--set", "time.t_end=300.0"], tmp_path).returncode == 0


def test_a_disk_that_runs_out_at_any_moment_on_3_ranks_restarts_on_4(tmp_path, small_disk, reference):
    """The disk runs out by itself (no fault hook) while the mesh, a snapshot or a checkpoint is
    written, on 3 ranks: each run ends in bounded time with exit 74 and one line, its file lists
    only complete snapshots, and where a checkpoint was written the restart on 4 ranks completes
    and agrees with an uninterrupted run."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here")
    args = [PLATE, *SMALL, "--set", f"output.directory={small_disk}", "--set", 'output.driver="mpio"']
    folder, stages = small_disk / "plate", set()
    for free_kib in (1224, 1244, 1284, 1312):  # measured: the mesh, snapshots 2 and 5, a checkpoint
        for old in small_disk.iterdir():
            subprocess.run(["rm", "-rf", str(old)])
        avail = int(subprocess.run(["df", "--output=avail", "-k", str(small_disk)], capture_output=True,
                                   text=True).stdout.split()[-1])
        filler = small_disk / ".filler"
        filler.write_bytes(b"\0" * max(avail - free_kib, 0) * 1024)
        proc = solve(3, args, tmp_path)
        assert proc.returncode == 74, (free_kib, proc.stderr)
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
        stage = "mesh" if "cannot write the mesh" in errors[0] else \
            "checkpoint" if "cannot write the checkpoint" in errors[0] else "snapshot"
        stages.add(stage)
        filler.unlink()
        assert not list(folder.glob(".*.reserve")), stage  # the room set aside for the end goes back
        if stage != "mesh":
            with h5py.File(folder / "plate.h5", "r") as f:
                listed = len(f["step"])
                assert all(f"{i:06d}" in f["fields/temperature"] for i in range(listed))
        if (folder / "checkpoint.h5").exists():
            check_restart(4, args, tmp_path, folder, reference)
    assert stages == {"mesh", "snapshot", "checkpoint"}, stages


@pytest.mark.parametrize("driver", ["mpio", "gathered"])
def test_a_disk_that_fills_before_the_end_record_still_ends_the_file(tmp_path, small_disk, driver):
    """The disk fills after the last snapshot and checkpoint, before the end record: the space set
    aside when the file was created takes the end record, and the file ends complete and readable
    (it was left unreadable, or the ranks hung in HDF5's collective close)."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here")
    args = [PLATE, *SMALL, "--set", f"output.directory={small_disk}", "--set", f'output.driver="{driver}"']
    proc = solve(3, args, tmp_path, {"SOLVER_TEST_FILL_DISK": "end"})
    assert proc.returncode == 0, proc.stderr
    with h5py.File(small_disk / "plate" / "plate.h5", "r") as f:
        assert f.attrs["status"] == "complete" and len(f["step"]) == 11
    assert not (small_disk / "plate" / ".plate.h5.reserve").exists()


@pytest.mark.parametrize("ranks, driver, set_aside", [(1, "mpio", False), (3, "gathered", False), (3, "mpio", True)])
def test_a_disk_that_fills_during_a_later_checkpoint_ends_the_run_in_order(tmp_path, small_disk, ranks, driver,
                                                                           set_aside):
    """The disk fills while the second checkpoint is written: exit 74 in one line naming the
    checkpoint to continue from, the lock released, the results readable and no unfinished
    checkpoint left (the advice opened the first checkpoint while the failed one was still open,
    and HDF5 crashed: a segmentation fault, no status). Where the file system sets room aside
    before each write (fallocate), the checkpoint completes in it and the next write finds no
    room; without, the checkpoint fails and the first one is named."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here")
    args = [PLATE, *SMALL, "--set", f"output.directory={small_disk}", "--set", f'output.driver="{driver}"',
            "--set", "checkpoint.every=3"]
    env = {"SOLVER_TEST_FILL_DISK": "checkpoint:2", **({} if set_aside else {"SOLVER_TEST_NO_SET_ASIDE": "1"})}
    proc = solve(ranks, args, tmp_path, env)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 74 and len(errors) == 1, proc.stderr
    if set_aside:
        assert "cannot write snapshot" in errors[0] and "no room" in errors[0], errors
        assert "step_00000006.h5 with --restart latest" in errors[0]
    else:
        assert "cannot write the checkpoint of step 6" in errors[0]
        assert "step_00000003.h5 with --restart latest" in errors[0]
    folder = small_disk / "plate"
    assert not (folder / ".solver.lock").exists() and not list((folder / "checkpoints").glob("*.tmp"))
    with h5py.File(folder / "plate.h5", "r") as f:
        assert len(f["step"]) >= 1


def test_a_full_disk_at_the_lock_leaves_no_empty_lock(tmp_path, small_disk):
    """No room even for the lock file: exit 74 in one line, and no empty lock left behind (it was
    exit 2 with a bare errno, and the empty lock refused the next runs once space was freed)."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here")
    from solver.app.faults import fill_disk

    args = [PLATE, *SMALL, "--set", f"output.directory={small_disk / 'full'}"]
    try:
        fill_disk(small_disk)
        proc = solve(1, args, tmp_path)
    finally:
        (small_disk / ".filler").unlink(missing_ok=True)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 74 and len(errors) == 1 and "cannot write the lock file" in errors[0], proc.stderr
    assert not (small_disk / "full").exists()
    proc = solve(1, [*args, "--restart", "latest"], tmp_path)  # (it said "no readable checkpoint" in no folder)
    assert proc.returncode == 2 and "no checkpoint in" in proc.stderr and "yet" in proc.stderr, proc.stderr
    assert "run again without --restart" in proc.stderr and not (small_disk / "full").exists(), proc.stderr
    assert solve(1, args, tmp_path).returncode == 0


def test_a_restart_needs_room_only_for_what_its_results_do_not_hold(tmp_path, small_disk):
    """A run whose results take half the disk stops with 74 when another program fills the rest;
    once that program's file is gone the restart was refused all the same: its estimate counted
    the whole run's results, those already written too ("need about 2.03 MiB, only 2.5 MiB free"
    with 1 MiB to spare). It counts what the results file does not hold yet, and completes."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here")
    args = [PLATE, "--set", "mesh.nx=120", "--set", "mesh.ny=60", "--set", "time.t_end=100.0", "--set",
            "output.every=1", "--set", "checkpoint.every=4", "--set", f"output.directory={small_disk}"]
    folder = small_disk / "plate"
    proc = solve(2, args, tmp_path, {"SOLVER_TEST_FILL_DISK": "15"})
    assert proc.returncode == 74 and "cannot write snapshot 15" in proc.stderr, proc.stderr
    (folder / ".filler").unlink()
    proc = solve(3, [*args, "--restart", "latest"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(folder / "plate.h5", "r") as f:
        assert f.attrs["status"] == "complete" and f["step"][()].tolist() == list(range(21))


def test_the_space_check_counts_every_field_of_a_snapshot(tmp_path):
    """A case with latent heat writes the liquid fraction beside the temperature in every
    snapshot; the check before the first step counted the temperature alone (the dry run counts
    both), so a run that could not fit started and failed part-way. It is refused up front."""
    disk = tmp_path / "disk"
    if not mount_tmpfs(disk, "1300k"):  # 1 MiB to spare, and room for the temperatures but not both fields
        pytest.skip("cannot mount a tmpfs here")
    try:
        proc = solve(1, [ROOT / "inputs" / "casting2d.toml", "--set", "mesh.nx=40", "--set", "mesh.ny=20",
                         "--set", f"output.directory={disk}"], tmp_path)
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert proc.returncode == 74 and len(errors) == 1 and "the results need about" in errors[0], proc.stderr
        assert not (disk / "casting2d" / "casting2d.h5").exists()
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_write_that_parts_the_ranks_ends_in_bounded_time(tmp_path, reference):
    """One rank stays inside a collective write while the others wait for it, as when a disk fills
    during an MPI-IO write and HDF5 fails on some ranks only: output.write_timeout ends the run
    with 74 and one line, the status recorded and the lock released, and the results restart."""
    import time

    args = [PLATE, *SMALL, "--set", f"output.directory={tmp_path}", "--set", "output.write_timeout=2"]
    status = tmp_path / "status"
    start = time.monotonic()
    proc = solve(3, args, tmp_path, {"SOLVER_TEST_WRITE_HANG": "1:5", "SOLVER_STATUS_FILE": str(status)})
    assert time.monotonic() - start < 40
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 74 and len(errors) == 1, proc.stderr
    assert "cannot write snapshot 5" in errors[0] and "did not finish on every rank within 2 s" in errors[0]
    assert status.read_text().startswith("74 failed")
    folder = tmp_path / "plate"
    assert not (folder / ".solver.lock").exists()
    with h5py.File(folder / "plate.h5", "r") as f:
        assert f["step"][()].tolist() == [0, 2, 4, 6, 8] and f.attrs["status"] == "running"
    check_restart(2, args, tmp_path, folder, reference)


@pytest.mark.parametrize("inodes, ranks, what", [(2, 1, ".solver.lock: cannot create the lock file"),
                                                  (4, 1, "big.h5: cannot create the file"),
                                                  (7, 1, "checkpoints: cannot create the checkpoints' folder"),
                                                  (9, 1, "step_00000008.h5.tmp: cannot create the file")])
def test_a_disk_out_of_inodes_ends_the_run_with_74(tmp_path, inodes, ranks, what):
    """No inode left for the log, the results file, the checkpoints' folder or a checkpoint (a disk
    with blocks to spare): exit 74 naming what could not be created and how to go on (were an
    internal error, or exit 2 with a bare errno), no reserve file left behind."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=4m,nr_inodes={inodes}", "tmpfs", str(disk)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        proc = solve(ranks, [PLATE, *SMALL, "--set", f"output.directory={disk}", "--set", "output.name=big"], tmp_path)
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert proc.returncode == 74 and len(errors) == 1 and what in errors[0], proc.stderr
        assert "Traceback" not in proc.stderr and not list((disk / "big").glob(".*.reserve"))
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def study_of_plates(tmp_path: Path, disk: Path, nx: int, key: str, values: list, outputs: str,
                    more: dict | None = None) -> Path:
    """A study (``s.toml`` in ``tmp_path``) of the plate with ``nx`` cells along x and results on
    ``disk``, listing ``values`` of ``key``; ``outputs``: its [outputs] table's lines."""
    case = tmp_path / "plate.toml"
    text = Path(PLATE).read_text().replace('directory = "outputs"', f'directory = "{disk}"')
    for name, value in {"nx": nx, **(more or {})}.items():
        text = re.sub(rf"(?m)^{name} = [0-9.]+", f"{name} = {value}", text)
    case.write_text(text)
    spec = tmp_path / "s.toml"
    spec.write_text(f'[study]\ncase = "{case}"\nname = "s"\nmethod = "list"\n[parameters]\n'
                    f'"{key}" = {{ values = [{", ".join(map(str, values))}] }}\n[outputs]\n{outputs}\n')
    return spec


def test_a_study_whose_saved_runs_fill_the_disk_stops_with_74_keeping_its_samples(tmp_path, small_disk):
    """Each sample that found no room for its saved run failed with 74 and left its reserve file,
    and the study went on with the next ones: the disk's failure is not the sample's. The study
    stops at the first, keeps the samples it finished, and the sample runs again on a restart.
    (The samples' meshes are finer than the base case's, from which the study's up-front estimate
    of the saved runs is made: it lets them start.)"""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here")
    # 16 saved runs of about 0.35 MiB: more than 4 MiB
    spec = study_of_plates(tmp_path, small_disk, 1, "mesh.nx", list(range(40, 56)), "save_runs = true\nfields = false")
    proc = solve(2, ["study", spec, "--quiet"], tmp_path)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 74 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "cannot write" in errors[0] and "the samples recorded before are kept" in errors[0]
    assert "Exception ignored" not in proc.stderr, proc.stderr
    with h5py.File(small_disk / "s" / "s.study.h5", "r") as f:
        status = f["samples/status"][()]
        assert f.attrs["status"] == "no room" and f.attrs["exit_status"] == 74  # not "stopped", 75
    assert 1 <= np.count_nonzero(status == 0) < 16 and set(status.tolist()) <= {0, -1}, status  # done or pending
    assert not list((small_disk / "s" / "samples").glob(".*.reserve"))


def test_a_study_whose_saved_runs_cannot_fit_is_refused_before_its_samples(tmp_path, small_disk):
    """16 saved runs of about 0.35 MiB on a 4 MiB disk: the up-front estimate left them out (about
    1 MiB), so the study ran until the disk was full. They are counted: exit 74 before any
    sample, naming them and how to go on."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here")
    spec = study_of_plates(tmp_path, small_disk, 40, "material.k", [float(k) for k in range(10, 26)],
                           "save_runs = true\nfields = false")
    proc = solve(2, ["study", spec, "--quiet"], tmp_path)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 74 and len(errors) == 1, proc.stderr
    assert "16 saved runs of" in errors[0] and "outputs.save_runs = false" in errors[0], errors
    assert not list((small_disk / "s").rglob("*.h5"))


def test_a_study_whose_file_finds_no_room_keeps_every_finished_sample(tmp_path, small_disk):
    """The disk fills after the samples, before the study file (the first sample recorded in the
    groups' files, the others not yet): exit 74, and every finished sample is in a group's file,
    so that the restart on another number of ranks only merges them (it ran all but two again)."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here")
    spec = study_of_plates(tmp_path, small_disk, 20, "material.k", [float(k) for k in range(10, 18)],
                           "fields = true\nthresholds = [50.0]", {"ny": 10, "t_end": 120.0})
    env = {"SOLVER_TEST_FILL_DISK": "study", "SOLVER_TEST_RECORD_SECONDS": "3600"}
    proc = solve(2, ["study", spec, "--quiet"], tmp_path, env)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 74 and len(errors) == 1 and "cannot write the study file" in errors[0], proc.stderr
    folder = small_disk / "s"
    recorded = []
    for path in sorted((folder / "study_groups").glob("s.group*.study.h5")):
        with h5py.File(path, "r") as f:
            rows = read_rows(rows_path(path), int(f.attrs["rows"])).table
        recorded += rows.index[rows.status == 0].tolist()
    assert sorted(recorded) == list(range(8)), recorded
    (folder / ".filler").unlink()
    info = subprocess.run([sys.executable, "-m", "solver", "info", str(folder)], capture_output=True, text=True,
                          timeout=60)  # (it said "results file not found")
    assert info.returncode == 2 and "no study file yet" in info.stderr, info.stderr
    assert f"study {spec} --restart latest" in info.stderr, info.stderr
    proc = solve(3, ["study", spec, "--quiet", "--restart", "latest"], tmp_path)
    assert proc.returncode == 0 and "8 samples of" in proc.stderr + proc.stdout, proc.stderr
    assert "0 to run" in proc.stderr + proc.stdout, proc.stdout + proc.stderr
    with h5py.File(folder / "s.study.h5", "r") as f:
        assert f.attrs["status"] == "complete" and f.attrs["count"] == 8


def test_a_study_file_without_room_is_refused_at_once_on_every_rank(small_disk):
    """A study file larger than its disk's room (the saved runs took it) failed inside HDF5 on
    rank 0 while rank 1 went on to the next collective call: the ranks waited for
    output.write_timeout (60 s), and a .tmp of 4 MiB stayed on the full disk. Its room is set
    aside first: every rank raises the same error at once, and the earlier study file stays."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here")
    found = run_script(2, "study_disk_checks.py", small_disk, timeout=60)
    assert found["seconds"] < 5 and found["kept"], found
    assert found["said"][0] is not None and found["said"][0] == found["said"][1] and "no room" in found["said"][0]
    assert found["left"] == ["s.study.h5", "s.study.xdmf"]
    assert 20000 * 20 * 6 * 8 < found["estimate"] < 1.2 * 20000 * 20 * 6 * 8 + 2**20, found["estimate"]


def test_room_set_aside_before_a_write_is_the_disk_s_and_leaves_the_size(small_disk):
    """The room a write needs is taken from the disk before it (fallocate, the file's size
    unchanged): writes into it succeed after the disk filled, and on a full disk the setting aside
    fails whole (ENOSPC) before anything is written."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here")
    from solver.app.faults import fill_disk
    from solver.io.blockfile import give_back, set_aside

    path = small_disk / "f.h5"
    path.write_bytes(b"x" * 1000)
    set_aside(path, 1 << 16)
    assert path.stat().st_size == 1000
    fill_disk(small_disk)
    with open(path, "r+b") as f:  # within the room set aside: the disk has given it
        f.seek(1000)
        f.write(b"y" * (1 << 16))
        f.flush()
        os.fsync(f.fileno())
    with pytest.raises(OSError) as full:
        set_aside(path, 1 << 20)
    assert full.value.errno == errno.ENOSPC and path.stat().st_size == 1000 + (1 << 16)
    (small_disk / ".filler").unlink()
    set_aside(path, 1 << 20)
    assert path.stat().st_blocks * 512 >= 1 << 20
    give_back(path, path.stat().st_size + (1 << 20))  # what the write did not use goes back to the disk
    assert path.stat().st_blocks * 512 < 1000 + (1 << 16) + 8192


def test_a_study_that_recorded_no_sample_says_how_to_run_again_past_its_saved_runs(tmp_path, small_disk):
    """The disk fails the first sample's saved run and then the study file: no sample recorded,
    and "run the study again" was refused (samples/ holds that sample's run). The line says to run
    it again with --overwrite, which then completes."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here")
    spec = study_of_plates(tmp_path, small_disk, 10, "material.k", [10.0, 11.0], "save_runs = true\nfields = false")
    env = {"SOLVER_TEST_WRITE_ERROR": "0:0", "SOLVER_TEST_FILL_DISK": "study", "SOLVER_TEST_RECORD_SECONDS": "3600"}
    proc = solve(1, ["study", spec, "--quiet"], tmp_path, env)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 74 and len(errors) == 1, proc.stderr
    assert "no sample was recorded yet" in errors[0] and errors[0].endswith("again with --overwrite (it sets the "
                                                                            "runs saved so far aside)"), errors
    (small_disk / "s" / ".filler").unlink()
    assert solve(1, ["study", spec, "--quiet"], tmp_path).returncode == 2
    proc = solve(1, ["study", spec, "--quiet", "--overwrite"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(small_disk / "s" / "s.study.h5", "r") as f:
        assert f.attrs["status"] == "complete" and f["samples/status"][()].tolist() == [0, 0]


@pytest.mark.parametrize("table", ["probes", "steps"])
def test_a_table_without_room_is_refused_before_its_series_grow(small_disk, table):
    """The probe and time-step tables are written after a snapshot, with the disk checked and the
    room set aside as for it: on a disk without room for their rows the write is refused whole.
    It was not checked: HDF5 grew /probes/time and /probes/values (or the step series) by rows
    whose values never reached the disk, and the file listed zeros, or a probe table whose times
    and values differ in length ('damaged' for plot --series)."""
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here")
    from mpi4py import MPI

    from solver.app.faults import fill_disk
    from solver.case.load import load_case
    from solver.errors import OutputError
    from solver.heat.simulation import Simulation
    from solver.heat.adaptive import StepRecord
    from solver.io.results_writer import ResultsWriter

    case = load_case(Path(PLATE).read_text(), PLATE, ["mesh.nx=4", "mesh.ny=2"])
    results = ResultsWriter(small_disk, "t", Simulation(case, MPI.COMM_SELF).mesh, driver="gathered")
    results.init_steps()
    results.init_probes(np.array([[0.1, 0.05]] * 200))
    (small_disk / ".ballast").write_bytes(b"\0" * (1 << 20))
    fill_disk(small_disk)
    (small_disk / ".ballast").unlink()  # 1 MiB free: the rows need more
    rows = 2000
    with pytest.raises(OutputError, match="no room on its disk"):
        if table == "probes":
            results.write_probes(np.arange(rows, dtype=float), np.full((rows, 200), 20.0))
        else:
            results.write_steps([StepRecord(float(i), 1.0, 0.0, 3) for i in range(rows * 30)])
    results.close()
    with h5py.File(small_disk / "t.h5", "r") as f:
        assert [len(f[name]) for name in ("probes/time", "probes/values", "steps/time", "steps/dt")] == [0] * 4
