"""Hostile files and arguments are refused in one line with exit 2, never read forever, never an
internal error: FIFOs and devices as case files, too many probes, garbage locks, points that are
not finite or far away, outputs that cannot be written, checkpoints with out-of-range attributes."""

import os
import re
import shutil
import socket
import time

import h5py
import numpy as np
import pytest
from conftest import ROOT, run_solver

from solver.case.load import load_case
from solver.errors import CaseError
from solver.io import checkpoint

PLATE = str(ROOT / "inputs" / "plate.toml")
SMALL = ["--set", "mesh.nx=8", "--set", "mesh.ny=8", "--set", "time.t_end=20.0", "--quiet"]


@pytest.mark.parametrize("nprocs", [1, 3])
def test_fifo_and_device_case_files_are_refused(tmp_path, nprocs):
    fifo = tmp_path / "case.toml"
    os.mkfifo(fifo)
    for path, what in ((fifo, "is a FIFO, not a regular file"), ("/dev/zero", "is a device or special file")):
        proc = run_solver(nprocs, [str(path)], cwd=tmp_path, check=False, timeout=60)
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1 and what in errors[0], proc.stderr


@pytest.mark.parametrize("nprocs, kernel_file", [(1, "/proc/kmsg"), (3, "/proc/self/status"), (1, "/sys/power/state")])
def test_a_table_file_the_kernel_makes_is_refused_before_it_is_read(tmp_path, nprocs, kernel_file):
    """/proc and /sys files claim size 0 and pass as regular files: k = { file = "/proc/kmsg" } blocked
    in its read for ever (a SIGTERM deferred behind it). Refused by their file system, unread, as
    every input file (case, mesh, checkpoint, results) is."""
    from solver.case.inputfiles import file_problem

    if not os.path.exists(kernel_file):
        pytest.skip(f"no {kernel_file} here")
    assert "a file the kernel makes" in file_problem(kernel_file) and file_problem(PLATE) is None
    proc = run_solver(nprocs, [PLATE, "--set", f'material.k={{ file = "{kernel_file}" }}', *SMALL], cwd=tmp_path,
                      check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "a file the kernel makes" in errors[0], proc.stderr


def test_too_many_probes_are_refused():
    text = (ROOT / "inputs" / "plate.toml").read_text()
    points = "[" + ", ".join(["[0.01, 0.01]"] * 10_001) + "]"
    with pytest.raises(CaseError, match=r"output.probes: 10001 points, more than the 10000 allowed"):
        load_case(text, "plate.toml", [f"output.probes={points}"])


def test_garbage_and_impossible_locks_are_replaced(tmp_path):
    folder = tmp_path / "plate"
    folder.mkdir()
    lock = folder / ".solver.lock"
    args = [PLATE, *SMALL, "--set", f"output.directory={tmp_path}"]
    for content in (f"{socket.gethostname()} 99999999999999999999\n", "", "\x00garbage"):
        lock.write_text(content)
        old = time.time() - 60
        os.utime(lock, (old, old))  # not a lock being written this instant
        proc = run_solver(1, args + ["--overwrite"], cwd=tmp_path, check=False, timeout=60)
        assert proc.returncode == 0, (content, proc.stderr)
        assert not lock.exists()


@pytest.mark.parametrize("nprocs, pid", [(1, "0"), (3, "-5"), (1, "abc")])
def test_a_fresh_lock_with_a_pid_no_process_can_have_is_shown_as_it_is(tmp_path, nprocs, pid):
    """A lock of this host with pid 0, -5 or abc (written a moment ago): refused in one line that
    quotes what it holds, not one that says it holds no host."""
    folder = tmp_path / "plate"
    folder.mkdir()
    (folder / ".solver.lock").write_text(f"{socket.gethostname()} {pid}\n")
    proc = run_solver(nprocs, [PLATE, *SMALL, "--set", f"output.directory={tmp_path}"], cwd=tmp_path, check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert f"holds no host and process id a run can have ('{socket.gethostname()} {pid}': a run writing it" \
        in errors[0], errors[0]


def test_a_lock_of_a_long_text_is_shown_in_a_short_line(tmp_path):
    """A lock holding 3 kB of text (of another host: not judged stale) was echoed whole."""
    folder = tmp_path / "plate"
    folder.mkdir()
    (folder / ".solver.lock").write_text("otherhost " + "Q" * 3000 + "\n")
    proc = run_solver(1, [PLATE, *SMALL, "--set", f"output.directory={tmp_path}"], cwd=tmp_path, check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "holds no host and process id" in errors[0], proc.stderr
    assert len(errors[0]) < 400 and "QQQ..." in errors[0], errors
    (folder / ".solver.lock").write_text("otherhost 12345\n")
    proc = run_solver(1, [PLATE, *SMALL, "--set", f"output.directory={tmp_path}"], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "in use by another run (lock" in proc.stderr and "process 12345 on otherhost" \
        in proc.stderr, proc.stderr


def test_a_lock_written_pid_first_is_read_as_host_and_pid(tmp_path):
    """"999999 vm" was read as process vm on host 999999."""
    from solver.app.preflight import read_lock

    lock = tmp_path / ".solver.lock"
    lock.write_text("999999 vm\n")
    assert read_lock(lock) == ("vm", "999999")
    lock.write_text("vm 999999\n")
    assert read_lock(lock) == ("vm", "999999")


@pytest.fixture(scope="module")
def plate_results(tmp_path_factory):
    d = tmp_path_factory.mktemp("plate")
    run_solver(1, [PLATE, *SMALL, "--set", f"output.directory={d}"], cwd=d)
    return d / "plate" / "plate.h5"


@pytest.mark.parametrize("args, message", [
    (["probe", "{h5}", "--at", "nan,nan"], "--at nan,nan: coordinates must be finite numbers"),
    (["probe", "{h5}", "--at", "inf,0"], "--at inf,0: coordinates must be finite numbers"),
    (["probe", "{h5}", "--at", "1e308,1e308"], "point is outside the mesh"),
    (["probe", "{h5}", "--at", "0.01," + "9" * 300], "error: --at 0.01,1e+300: point is outside the mesh"),
    (["probe", "{h5}", "--at", "0.01,x" + "9" * 300], "error: --at 0.01,x9999"),
    (["plot", "{h5}", "--step", "-" + "9" * 300], "error: --step -1e+300: plate.h5 has"),
    (["export", "{h5}", "--format", "vtu", "--step", "9" * 300], "error: --step 1e+300: plate.h5 has"),
    (["plot", "{h5}", "-o", "/proc/cannot/x.png"], "-o /proc/cannot/x.png: folder /proc/cannot does not exist"),
    (["export", "{h5}", "--format", "csv", "-o", "/proc/cannot/x.csv"],
     "-o /proc/cannot/x.csv: folder /proc/cannot does not exist"),
])
def test_post_processing_refuses_bad_points_and_unwritable_outputs(tmp_path, plate_results, args, message):
    proc = run_solver(1, [a.format(h5=plate_results) for a in args], cwd=tmp_path, check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and message in errors[0], proc.stderr
    assert len(errors[0]) < 300, errors[0]  # (300 digits: in engineering form, or an excerpt)


def checkpoint_copy(plate_results, tmp_path):
    """A copy of the plate run's last checkpoint, to spoil."""
    source = sorted((plate_results.parent / "checkpoints").glob("step_*.h5"))[-1]
    path = tmp_path / "bad.h5"
    path.write_bytes(source.read_bytes())
    return path


@pytest.mark.parametrize("change, message", [
    ({"step": -1}, "attribute step = -1 is out of range"),
    ({"t": float("nan")}, "attribute t = nan is out of range"),
    ({"step": 2**62}, "is out of range"),
    ({"dt": "fast"}, "attributes are missing or malformed"),
    ({"step": 3.5}, "attribute step = '3.5' is not a whole number"),
    ({"step": "abc"}, "attribute step = 'abc' is not a whole number"),
    ({"snapshots": np.array([1, 2])}, "attribute snapshots = '[1 2]' is not a whole number"),
    ({"t": 1.0}, "does not agree with step"),
    ({"step": 1}, "does not agree with step 1"),
    ({"dt": 1e-3}, "is not the time.dt of the case it stores"),
    ({"t": 1e12}, "is beyond the end time of the case it stores"),
    ({"stepper_state": '{"fixed_origin": "x"}'}, "malformed fixed_origin"),
    ({"balance_energy_start": float("nan")}, "attribute balance_energy_start = nan is not finite"),
    ({"balance_inflow": np.zeros(7)}, "balance_inflow holds 7 values for"),
    ({"stepper_state": "[1, 2]"}, "attribute stepper_state is not a JSON object"),
    ({"run_id": ""}, "attribute run_id is empty"),
])
def test_checkpoints_with_out_of_range_attributes_are_refused(plate_results, tmp_path, change, message):
    path = checkpoint_copy(plate_results, tmp_path)
    with h5py.File(path, "a") as f:
        n = f["temperature"].shape[0]
        for key, value in change.items():
            f.attrs[key] = value
    with pytest.raises(CaseError, match=re.escape(message)):
        checkpoint.inspect(path, n)


def test_checkpoint_whose_stored_case_is_not_toml_is_refused(plate_results, tmp_path):
    path = checkpoint_copy(plate_results, tmp_path)
    with h5py.File(path, "a") as f:
        n = f["temperature"].shape[0]
        f.attrs["case"] = "[mesh\nnx = = 3"
    attrs = checkpoint.inspect(path, n)
    with pytest.raises(CaseError, match="the case stored in the checkpoint is not valid TOML"):
        checkpoint.check_compatible(path, attrs, {}, force=False)


def test_checkpoint_dataset_of_the_wrong_type_is_refused(plate_results, tmp_path):
    path = checkpoint_copy(plate_results, tmp_path)
    with h5py.File(path, "a") as f:
        n = f["temperature"].shape[0]
        f["previous"] = np.array([b"x"] * n)
    with pytest.raises(CaseError, match="checkpoint dataset previous is not a vector"):
        checkpoint.inspect(path, n)


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero", "directory"])
def test_a_lock_file_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    """A FIFO (the run blocked forever, deaf to SIGTERM), a link to /dev/zero (it read without end)
    or a directory in place of the lock file: exit 2 and one line naming it."""
    folder = tmp_path / "plate"
    folder.mkdir()
    lock = folder / ".solver.lock"
    if kind == "fifo":
        os.mkfifo(lock)
    elif kind == "directory":
        lock.mkdir()
    else:
        lock.symlink_to("/dev/zero")
    proc = run_solver(1, [str(ROOT / "inputs" / "plate.toml"), "--set", f"output.directory={tmp_path}"], cwd=tmp_path,
                      check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "the lock file of this results directory is" in errors[0]


@pytest.mark.parametrize("name", ["plate.log", ".plate.h5.reserve"])
def test_a_fifo_among_the_run_s_own_files_never_blocks_it(tmp_path, name):
    """A FIFO where the run appends its log or sets disk space aside: opening it waited for a
    reader, deaf to SIGTERM. The log is refused in one line (exit 2), as a directory at the
    results or a file at the checkpoints' folder; the reserve is done without (the FIFO, not the
    run's, is left alone)."""
    folder = tmp_path / "plate"
    folder.mkdir()
    os.mkfifo(folder / name)
    proc = run_solver(1, [str(ROOT / "inputs" / "plate.toml"), "--set", "mesh.nx=8", "--set", "mesh.ny=4",
                          "--set", f"output.directory={tmp_path}", "--quiet"], cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    if name == "plate.log":
        assert proc.returncode == 2 and len(errors) == 1
        assert "plate.log: there but not a regular file, which the run writes there" in errors[0]
    else:
        assert proc.returncode == 0 and not errors and (folder / name).is_fifo(), proc.stderr


def test_a_fifo_or_folder_named_like_a_checkpoint_never_blocks_the_run(tmp_path):
    """A FIFO at the name of the checkpoint a run writes (step 360), and one named like a newer
    checkpoint: the run opened each to read its run id and blocked for ever, deaf to SIGTERM;
    the same at --restart latest. A folder at the checkpoint's temporary name ended a complete
    run with MPI's "bad file" (exit 2). They are not checkpoints: passed over, or moved aside."""
    folder = tmp_path / "plate" / "checkpoints"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "step_00000360.h5")
    os.mkfifo(folder / "step_00000999.h5")
    (folder / "step_00000180.h5.tmp").mkdir()
    os.mkfifo(folder / "step_00000360.h5.tmp")
    (folder / "step_00000360.not-a-checkpoint").mkdir()  # the name it would be moved to: taken
    args = [str(ROOT / "inputs" / "plate.toml"), "--set", "mesh.nx=8", "--set", "mesh.ny=4", "--set",
            f"output.directory={tmp_path}", "--set", "checkpoint.every=180", "--quiet"]
    proc = run_solver(1, args, cwd=tmp_path, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "step_00000360.h5 was not a checkpoint of this solver" in proc.stderr
    assert (folder / "step_00000360.not-a-checkpoint.1").is_fifo() and (folder / "step_00000999.h5").is_fifo()
    assert (folder / "step_00000180.not-a-checkpoint.tmp").is_dir()
    assert (folder / "step_00000360.not-a-checkpoint.tmp").is_fifo()
    os.mkfifo(folder / "step_00001000.h5")
    proc = run_solver(1, [*args[:-1], "--restart", "latest", "--set", "time.t_end=1810"], cwd=tmp_path,
                      check=False, timeout=60)
    assert proc.returncode == 0 and "restarted from" in proc.stdout and "step_00000360.h5" in proc.stdout, \
        proc.stdout + proc.stderr
    assert re.search(r"\d+ steps of \S+ \(\d+ since the restart\), restarted from", proc.stdout), proc.stdout


@pytest.mark.parametrize("name, make", [("plate.xdmf", "dir"), ("plate.h5", "dir"), ("checkpoints", "file"),
                                        ("checkpoint.h5", "dir")])
def test_a_results_path_of_the_wrong_kind_is_refused_before_the_run(tmp_path, name, make):
    """A directory where the run writes its results or index, or a file where its checkpoints go:
    refused up front in one line (were exit 74 with "free space" advice, or a bare "File exists"
    at the first checkpoint)."""
    folder = tmp_path / "plate"
    folder.mkdir()
    (folder / name).mkdir() if make == "dir" else (folder / name).write_text("")
    proc = run_solver(1, [str(ROOT / "inputs" / "plate.toml"), "--set", "mesh.nx=8", "--set", "mesh.ny=4",
                          "--set", f"output.directory={tmp_path}", "--quiet"], cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and f"{name}: there but not a" in errors[0], proc.stderr
    assert not (folder / ".solver.lock").exists()


@pytest.mark.parametrize("command", [["export", "{h5}", "--format", "csv", "-o", "{link}.csv"],
                                     ["export", "{h5}", "--format", "vtu", "-o", "{link}.vtu"],
                                     ["plot", "{h5}", "-o", "{link}.png"],
                                     ["{case}", "--set", "output.directory={out}"]])
def test_nothing_is_written_through_a_link_onto_an_hdf5_file(tmp_path, plate_results, command):
    """An -o target, or a run's log, that is a link to a results file: exit 0 and the results
    file destroyed (or the log appended to it); now refused in one line, the file untouched."""
    victim = tmp_path / "victim.h5"
    victim.write_bytes(plate_results.read_bytes())
    link = tmp_path / "link"
    if command[0] == "{case}":
        (tmp_path / "out" / "plate").mkdir(parents=True)
        link = tmp_path / "out" / "plate" / "plate.log"
        link.symlink_to(victim)
        args = [PLATE, *SMALL, "--set", f"output.directory={tmp_path / 'out'}"]
    else:
        link.with_suffix(command[-1][-4:]).symlink_to(victim)
        args = [a.format(h5=plate_results, link=link) for a in command]
    before = victim.read_bytes()
    proc = run_solver(1, args, cwd=tmp_path, check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "is an HDF5 file (through the link to" in errors[0]
    assert victim.read_bytes() == before



@pytest.mark.parametrize("snapshots", [1, 100])
def test_a_checkpoint_whose_snapshot_count_does_not_fit_its_results_is_refused(plate_results, tmp_path, snapshots):
    """An edited ``snapshots`` attribute was trusted: the restart cut the results back to it (12
    snapshots gone, a gap in /time, exit 0). The checkpoint as written fits."""
    good = checkpoint_copy(plate_results, tmp_path)
    with h5py.File(good, "r") as f:
        n = f["temperature"].shape[0]
    checkpoint.check_snapshots(good, checkpoint.inspect(good, n), plate_results)
    with h5py.File(good, "a") as f:
        f.attrs["snapshots"] = snapshots
    with pytest.raises(CaseError, match=f"checkpoint attribute snapshots = {snapshots} does not fit plate.h5"):
        checkpoint.check_snapshots(good, checkpoint.inspect(good, n), plate_results)


@pytest.mark.parametrize("name, make", [("checkpoints.bak", "file"), ("plate.xdmf.bak", "dir")])
def test_an_overwrite_whose_backup_place_is_taken_moves_nothing(tmp_path, name, make):
    """A file where the checkpoints' backup goes (or a folder at the index's): --overwrite moved
    the results to .bak, then stopped on a raw errno with the checkpoints left behind."""
    args = [PLATE, *SMALL, "--set", f"output.directory={tmp_path}"]
    run_solver(1, args, cwd=tmp_path)
    folder = tmp_path / "plate"
    (folder / name).mkdir() if make == "dir" else (folder / name).write_text("")
    before = sorted(p.name for p in folder.iterdir())
    proc = run_solver(1, [*args, "--overwrite"], cwd=tmp_path, check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and f"{name}: there but not a" in errors[0], proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == before


def test_links_left_at_temporary_names_are_replaced_not_written_through(tmp_path, plate_results):
    """A link at a checkpoint's or the index's temporary name, to another run's results: the run
    wrote its checkpoint (or index) into that file (exit 0, the other results destroyed)."""
    victim = tmp_path / "victim.h5"
    victim.write_bytes(plate_results.read_bytes())
    folder = tmp_path / "out" / "plate"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "step_00000004.h5.tmp").symlink_to(victim)
    (folder / "plate.xdmf.tmp").symlink_to(victim)
    before = victim.read_bytes()
    run_solver(3, [PLATE, *SMALL, "--set", f"output.directory={tmp_path / 'out'}"], cwd=tmp_path)
    assert victim.read_bytes() == before
    assert (folder / "checkpoints" / "step_00000004.h5").is_file() and not (folder / "plate.xdmf.tmp").exists()


@pytest.mark.parametrize("run_locking", [None, "TRUE"])
def test_a_reader_holding_the_results_open_does_not_fail_the_run(tmp_path, monkeypatch, run_locking):
    """A notebook's h5py holding the results file open took HDF5's file lock: the run's next write
    of it failed (exit 74 at a complete run's end record, blaming the disk; exit 2 at a restart).
    Runs open their files without HDF5's lock (their own lock file keeps other runs away), also
    where HDF5_USE_FILE_LOCKING=TRUE is exported to them (a site's module file)."""
    import subprocess
    import sys

    if run_locking is not None:
        monkeypatch.setenv("HDF5_USE_FILE_LOCKING", run_locking)
    args = [str(ROOT / "inputs" / "plate.toml"), "--set", "mesh.nx=8", "--set", "mesh.ny=4", "--set",
            f"output.directory={tmp_path}", "--quiet"]
    run_solver(1, [*args, "--set", "time.t_end=60.0"], cwd=tmp_path)
    h5 = tmp_path / "plate" / "plate.h5"
    reader = subprocess.Popen([sys.executable, "-c", f"import h5py, sys, time\nf = h5py.File({str(h5)!r}, 'r')\n"
                               "print('open', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True,
                              env={k: v for k, v in os.environ.items() if k != "HDF5_USE_FILE_LOCKING"})
    try:
        assert reader.stdout.readline().strip() == "open"
        proc = run_solver(2, [*args, "--restart", "latest", "--set", "time.t_end=120.0"], cwd=tmp_path, check=False,
                          timeout=60)
        assert proc.returncode == 0, proc.stderr
    finally:
        reader.kill()
        reader.wait()


def test_a_file_of_the_index_s_name_that_is_not_an_index_is_never_written_over(tmp_path):
    """A user's notes saved as plate/plate.xdmf were replaced by the run's index (exit 0, no
    backup): refused; the index a run left behind (its results deleted) is written over."""
    folder = tmp_path / "plate"
    folder.mkdir()
    (folder / "plate.xdmf").write_text("my notes\n")
    args = [str(ROOT / "inputs" / "plate.toml"), "--set", "mesh.nx=8", "--set", "mesh.ny=4", "--set",
            f"output.directory={tmp_path}", "--quiet"]
    proc = run_solver(1, args, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "plate.xdmf: a file that is not the index of this case's results" in proc.stderr
    assert (folder / "plate.xdmf").read_text() == "my notes\n"
    (folder / "plate.xdmf").unlink()
    run_solver(1, [*args, "--set", "time.t_end=60.0"], cwd=tmp_path)
    (folder / "plate.h5").unlink()
    shutil.rmtree(folder / "checkpoints")
    assert run_solver(1, args, cwd=tmp_path, check=False).returncode == 0


def results_contents(path):
    """The root attributes and every dataset (shape, type, chunks, bytes) of a results file."""
    datasets = {}
    with h5py.File(path, "r") as f:
        attrs = {k: repr(v) for k, v in f.attrs.items()}
        f.visititems(lambda name, obj: datasets.__setitem__(name, (obj.shape, obj.dtype.str, obj.chunks,
                                                                   obj[()].tobytes(), repr(dict(obj.attrs))))
                     if isinstance(obj, h5py.Dataset) else None)
    return attrs, datasets


def test_a_restart_refused_for_its_probes_leaves_the_results_as_they_were(tmp_path):
    """Other probes on a restart are refused (exit 2), but the refusal wrote its end record into
    the complete results: status failed, exit_status 2, an error line, the refused command's case,
    overrides and ranks. Now the file keeps its attributes and datasets, and ``info`` says the
    same; a restart that goes on clears an earlier failure's error line."""
    base = [PLATE, "--set", "mesh.nx=12", "--set", "mesh.ny=6", "--set", "output.every=2", "--quiet",
            "--set", f"output.directory={tmp_path}"]
    one = ["--set", "output.probes=[[0.1, 0.05]]"]
    run_solver(3, [*base, *one, "--set", "time.t_end=60"], cwd=tmp_path)
    h5 = tmp_path / "plate" / "plate.h5"
    before, info = results_contents(h5), run_solver(1, ["info", h5], cwd=tmp_path).stdout
    proc = run_solver(1, [*base, "--set", "time.t_end=80", "--restart", "latest", "--force",
                          "--set", "output.probes=[[0.1, 0.05], [0.05, 0.05]]"], cwd=tmp_path, check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "its probe table has 1 probes at other points" in errors[0]
    assert results_contents(h5) == before
    assert run_solver(1, ["info", h5], cwd=tmp_path).stdout == info and "complete" in info
    with h5py.File(h5, "r+") as f:  # as the refusal left it before
        f.attrs.update({"status": "failed", "complete": False, "exit_status": 2, "error": "an earlier failure"})
    run_solver(2, [*base, *one, "--set", "time.t_end=80", "--restart", "latest"], cwd=tmp_path)
    with h5py.File(h5, "r") as f:
        assert f.attrs["status"] == "complete" and f.attrs["complete"] and "error" not in f.attrs
        assert f.attrs["ranks"] == 2 and f["probes/values"].shape == (17, 1)


@pytest.mark.parametrize("name", ["steps/dt", "time"])
def test_a_restart_of_results_whose_table_cannot_grow_is_refused_before_it_writes(plate_results, tmp_path, name):
    """A table of the results stored unchunked (a damaged or rewritten file): the restart extended
    /time, then failed with an internal error (TypeError: Only chunked datasets can be resized,
    exit 1). Now it is refused in one line, exit 2, with the file as it was."""
    shutil.copytree(plate_results.parent, tmp_path / "plate", symlinks=True)
    h5 = tmp_path / "plate" / "plate.h5"
    with h5py.File(h5, "r+") as f:
        values = f[name][()]
        del f[name]
        f[name] = values
    before = results_contents(h5)
    proc = run_solver(1, [PLATE, *SMALL, "--set", f"output.directory={tmp_path}", "--set", "time.t_end=40.0",
                          "--restart", "latest"], cwd=tmp_path, check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert f"damaged file: /{name} cannot grow (a dataset of fixed size, not chunked)" in errors[0]
    assert results_contents(h5) == before


UNWRITABLE_NAMES = [("a\nb", r"does not print (\n)"), ("a\x01b", r"does not print (\x01)"),
                    ("a" * 300, "a part of its name is 300 bytes, more than the 255"),
                    ("/".join(["b" * 200] * 25), "more than the 4096 a path may have")]


@pytest.mark.parametrize("name, message", UNWRITABLE_NAMES)
def test_outputs_named_as_no_file_may_be_are_refused_on_one_line(tmp_path, plate_results, name, message):
    """-o, --json and output.directory named with a newline or a control character, or too long, are
    refused before anything is written or measured; the message shows the name on one line."""
    target = str(tmp_path / name)
    for args in (["plot", str(plate_results), "-o", target],
                 ["export", str(plate_results), "--format", "csv", "-o", target],
                 ["bench", "--json", target, "--quick"],
                 [PLATE, *SMALL, "--set", f"output.directory={target}"]):
        proc = run_solver(1, args, cwd=tmp_path, check=False, timeout=60)
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1 and message in errors[0], (args[0], proc.stderr)
        assert "\n" not in name or r"a\nb" in errors[0], proc.stderr  # the name escaped, on the error's line
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "nothing is written"


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_missing_input_named_with_a_newline_is_refused_on_one_line(tmp_path, nprocs):
    proc = run_solver(nprocs, [str(tmp_path / "case\n.toml")], cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and r"case\n.toml: cannot read case file" in errors[0], \
        proc.stderr


def test_a_bench_report_that_is_a_link_loop_is_refused(tmp_path):
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)
    proc = run_solver(1, ["bench", "--json", str(loop), "--quick"], cwd=tmp_path, check=False, timeout=60)
    assert proc.returncode == 2 and "--json" in proc.stderr and "Too many levels of symbolic links" in proc.stderr \
        and "internal error" not in proc.stderr, proc.stderr
