"""Reliability: a failure on one rank, a hang, a NaN, existing results, locks, read-only
directories, oversized meshes, and fuzzed input; at 1 and 3 ranks."""

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from conftest import ROOT, mpi_env, mpirun_command, run_script, run_solver

PLATE = str(ROOT / "inputs" / "plate.toml")
SMALL = ["--set", "mesh.nx=30", "--set", "mesh.ny=15", "--set", "time.t_end=100.0", "--set", "output.every=2"]


def solver_with_env(nprocs, args, cwd, env_extra, timeout=60):
    cmd = mpirun_command(nprocs) + [sys.executable, "-m", "solver", *map(str, args)]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env={**mpi_env(), **env_extra}, capture_output=True, text=True,
                          timeout=timeout)
    return proc, time.monotonic() - start


@pytest.mark.parametrize("nprocs", [1, 3])
def test_exception_on_one_rank_ends_the_run(tmp_path, nprocs):
    rank = nprocs - 1
    proc, seconds = solver_with_env(nprocs, [PLATE, *SMALL, "--set", f"output.directory={tmp_path}"], tmp_path,
                                    {"SOLVER_TEST_FAIL": f"{rank}:3"})
    assert proc.returncode != 0 and seconds < 20
    assert f"rank {rank}: internal error: RuntimeError: injected failure on rank {rank} at step 3" in proc.stderr
    assert proc.stderr.count("injected failure") == 1  # printed once


def test_watchdog_aborts_a_hang_with_stacks(tmp_path):
    proc, seconds = solver_with_env(3, [PLATE, *SMALL, "--set", f"output.directory={tmp_path}",
                                        "--set", "run.hang_timeout=3"], tmp_path, {"SOLVER_TEST_HANG": "1:2"})
    assert proc.returncode != 0 and seconds < 20
    assert "Timeout" in proc.stderr and "most recent call first" in proc.stderr and "heat/march.py" in proc.stderr


@pytest.mark.parametrize("nprocs", [1, 3])
def test_nan_is_reported_at_its_step_and_earlier_output_survives(tmp_path, nprocs):
    proc, _ = solver_with_env(nprocs, [PLATE, *SMALL, "--set", f"output.directory={tmp_path}",
                                       "--set", "checkpoint.every=2", "--set", "output.probes=[[0.1, 0.05]]"],
                              tmp_path, {"SOLVER_TEST_NAN": f"{nprocs - 1}:5"})
    assert proc.returncode == 3, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {PLATE}: step 5 (t = 25): temperature NaN at (")
    assert f"on rank {nprocs - 1}" in errors[0] and "likely cause" in errors[0]
    with h5py.File(tmp_path / "plate" / "plate.h5", "r") as f:  # snapshots 0, 2, 4 intact; step 5 never written
        assert f["step"][()].tolist() == [0, 2, 4] and not f.attrs["complete"]
        # nor its row of the time-step table (listed as an accepted step, t = 25), as the probes' rows stop at 20
        assert f["steps/time"][()].tolist() == [5.0, 10.0, 15.0, 20.0]
        assert f["probes/time"][()].tolist() == [0.0, 5.0, 10.0, 15.0, 20.0]
    with h5py.File(tmp_path / "plate" / "checkpoint.h5", "r") as f:  # the last good checkpoint
        assert f.attrs["step"] == 4


@pytest.mark.parametrize("nprocs", [1, 3])
def test_existing_results_are_never_overwritten_silently(tmp_path, nprocs):
    args = [PLATE, *SMALL, "--set", f"output.directory={tmp_path}"]
    run_solver(nprocs, args, cwd=tmp_path)
    h5 = tmp_path / "plate" / "plate.h5"
    digest = hashlib.sha256(h5.read_bytes()).hexdigest()
    proc = run_solver(nprocs, args, cwd=tmp_path, check=False, timeout=30)
    assert proc.returncode == 2 and "results of an earlier run exist; use --overwrite" in proc.stderr
    assert "--restart latest to continue" in proc.stderr  # it wrote checkpoints
    assert hashlib.sha256(h5.read_bytes()).hexdigest() == digest
    if nprocs == 1:  # without a checkpoint, --restart latest is not offered (it failed at once)
        shutil.move(tmp_path / "plate" / "checkpoints", tmp_path / "kept")
        proc = run_solver(nprocs, args, cwd=tmp_path, check=False, timeout=30)
        assert proc.returncode == 2 and "--restart" not in proc.stderr, proc.stderr
        shutil.move(tmp_path / "kept", tmp_path / "plate" / "checkpoints")
    run_solver(nprocs, args + ["--overwrite"], cwd=tmp_path)
    assert (tmp_path / "plate" / "plate.h5.bak").exists()
    assert hashlib.sha256((tmp_path / "plate" / "plate.h5.bak").read_bytes()).hexdigest() == digest
    # the backup's index opens the backup's data (it named plate.h5: the new run's fields, the old one's times)
    index = (tmp_path / "plate" / "plate.xdmf.bak").read_text()
    assert ">plate.h5.bak:/fields/temperature/" in index and ">plate.h5:" not in index
    assert ">plate.h5:/fields/temperature/" in (tmp_path / "plate" / "plate.xdmf").read_text()


def test_results_of_another_case_file_with_the_same_output_name_say_so(tmp_path):
    """"my case.toml" and "my_case.toml" give one output.name: the second was told that results of
    an earlier run exist, and offered --restart latest, as if they were its own."""
    for name in ("my case.toml", "my_case.toml"):
        shutil.copy(PLATE, tmp_path / name)
    run_solver(1, ["my case.toml", *SMALL], cwd=tmp_path)
    proc = run_solver(1, ["my_case.toml", *SMALL], cwd=tmp_path, check=False, timeout=30)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "results of an earlier run exist (written by another case file, my case.toml, with the same " \
        "output.name)" in errors[0] and "--restart" not in errors[0]
    proc = run_solver(1, ["my case.toml", *SMALL], cwd=tmp_path, check=False, timeout=30)
    assert proc.returncode == 2 and "another case file" not in proc.stderr and "--restart latest" in proc.stderr


def test_locked_directory_is_refused_and_a_stale_lock_replaced(tmp_path):
    folder = tmp_path / "plate"
    folder.mkdir()
    lock = folder / ".solver.lock"
    lock.write_text(f"{socket.gethostname()} {os.getpid()}\n")  # a live process holds it
    args = [PLATE, *SMALL, "--set", f"output.directory={tmp_path}"]
    proc = run_solver(3, args, cwd=tmp_path, check=False, timeout=30)
    assert proc.returncode == 2 and "in use by another run" in proc.stderr and str(os.getpid()) in proc.stderr
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock.write_text(f"{socket.gethostname()} {dead.pid}\n")  # its process is gone: stale
    proc = run_solver(3, args, cwd=tmp_path)
    assert "removing a stale lock" in proc.stdout and not lock.exists()


def test_a_stale_lock_whose_pid_another_process_took_is_replaced(tmp_path):
    """The run that wrote the lock was killed, and its pid went to another process (a long-lived
    node): the lock was held for ever ("in use by another run"). The lock keeps when its process
    started; a process of that pid with another start is not its owner. A lock a live run wrote
    is kept."""
    folder = tmp_path / "plate"
    folder.mkdir()
    lock = folder / ".solver.lock"
    args = [PLATE, *SMALL, "--set", f"output.directory={tmp_path}"]
    other = subprocess.Popen(["sleep", "60"])
    try:
        start = Path(f"/proc/{other.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        lock.write_text(f"{socket.gethostname()} {other.pid} {start}\n")  # its own start: a live lock
        proc = run_solver(1, args, cwd=tmp_path, check=False, timeout=60)
        assert proc.returncode == 2 and "in use by another run" in proc.stderr, proc.stderr
        lock.write_text(f"{socket.gethostname()} {other.pid} {int(start) - 1}\n")  # another process's start
        proc = run_solver(1, args, cwd=tmp_path, check=False, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "removing a stale lock" in proc.stdout and "its pid is another process's now" in proc.stdout
        assert not lock.exists()
    finally:
        other.kill()
        other.wait()


def _stale_lock(lock: Path, kind: str) -> None:
    if kind == "stale":
        dead = subprocess.Popen(["true"])
        dead.wait()
        lock.write_text(f"{socket.gethostname()} {dead.pid}\n")
    else:
        lock.write_text("\x00garbage")
        old = time.time() - 60
        os.utime(lock, (old, old))


@pytest.mark.parametrize("kind, step", [("stale", "read_lock"), ("stale", "pid_alive"), ("garbage", "read_lock"),
                                        ("garbage", "_age")])
def test_a_stale_lock_taken_over_by_two_runs_has_one_owner(tmp_path, monkeypatch, kind, step):
    """Another run takes the stale (or unreadable) lock over between this run's look at it and its
    removal: this run removed the other's fresh lock, and both went on as owners."""
    import solver.app.preflight as pf
    import solver.io.folder as folder
    from solver.errors import CaseError

    lock = tmp_path / ".solver.lock"
    _stale_lock(lock, kind)
    other = pf.OutputGuard(tmp_path, "plate")
    module = folder if step == "pid_alive" else pf  # (where the step is looked up)
    real, hooked = getattr(module, step), []

    def step_then_other_run(*args):
        result = real(*args)
        if not hooked:
            hooked.append(True)
            other._lock()
        return result
    monkeypatch.setattr(module, step, step_then_other_run)
    this = pf.OutputGuard(tmp_path, "plate")
    with pytest.raises(CaseError, match="in use by another run"):
        this._lock()
    assert hooked and other.owned and not this.owned
    assert lock.read_text().split()[:2] == [socket.gethostname(), str(os.getpid())]  # (then the process's start)
    assert os.listdir(tmp_path) == [lock.name]


def test_without_flock_a_lock_renamed_aside_that_is_not_the_stale_one_is_put_back(tmp_path, monkeypatch):
    """No flock (a file system without it): another run replaces the stale lock just before this
    run renames it aside; the renamed lock is the other's, and goes back in place."""
    import solver.app.preflight as pf
    from solver.errors import CaseError

    lock = tmp_path / ".solver.lock"
    _stale_lock(lock, "stale")
    monkeypatch.setattr(pf, "fcntl", None)
    other, this = pf.OutputGuard(tmp_path, "plate"), pf.OutputGuard(tmp_path, "plate")
    rename, hooked = os.rename, []

    def other_run_then_rename(src, dst):
        if not hooked:
            hooked.append(True)
            other._lock()
        rename(src, dst)
    monkeypatch.setattr(pf.os, "rename", other_run_then_rename)
    with pytest.raises(CaseError, match="in use by another run"):
        this._lock()
    assert hooked and other.owned and not this.owned
    assert lock.read_text().split()[:2] == [socket.gethostname(), str(os.getpid())]  # (then the process's start)
    assert os.listdir(tmp_path) == [lock.name]


RACER = """
import sys, time
from pathlib import Path
import solver.app.preflight as pf
folder, how, sync = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
(sync / how).touch()  # imported: ready
end = time.monotonic() + 60
while not (sync / "go").exists() and time.monotonic() < end:
    time.sleep(0.01)
if how == "slow":  # a process preempted between reading the stale lock and removing it
    read = pf.read_lock
    pf.read_lock = lambda path: (read(path), time.sleep(1.0))[0]
else:
    time.sleep(0.3)
guard = pf.OutputGuard(folder, "plate")
try:
    guard._lock()
except Exception as exc:
    print("refused:", exc, flush=True)
else:
    print("owner", flush=True)
while not (sync / "done").exists() and time.monotonic() < end:  # alive: its lock is not stale
    time.sleep(0.05)
"""


def test_two_processes_taking_over_a_stale_lock_leave_one_owner(tmp_path):
    """Both start together from a barrier (a loaded machine starts Python at its own pace) and
    stay alive until both have answered: one takes the stale lock, the other is refused."""
    folder, sync = tmp_path / "out", tmp_path / "sync"
    folder.mkdir()
    sync.mkdir()
    _stale_lock(folder / ".solver.lock", "stale")
    env = {**mpi_env(), "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(folder), how, str(sync)], stdout=subprocess.PIPE,
                              text=True, env=env) for how in ("slow", "quick")]
    try:
        end = time.monotonic() + 60
        while not ((sync / "slow").exists() and (sync / "quick").exists()) and time.monotonic() < end:
            time.sleep(0.01)
        (sync / "go").touch()
        out = [p.stdout.readline() for p in procs]
    finally:
        (sync / "done").touch()
        for p in procs:
            p.communicate(timeout=60)
    assert sum(o.strip() == "owner" for o in out) == 1, out
    assert any("in use by another run" in o for o in out), out


def test_read_only_output_directory_is_refused_before_any_work(tmp_path):
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="solver-ro-", dir="/tmp"))  # reachable by an unprivileged user
    (shared / "out").mkdir(parents=True)
    try:
        os.chmod(shared, 0o755)
        os.chmod(shared / "out", 0o555)
        cmd = [sys.executable, "-m", "solver", PLATE, "--set", f"output.directory={shared / 'out'}"]
        if os.geteuid() == 0:  # root ignores permissions: run as nobody
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv")
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
        proc = subprocess.run(cmd, cwd=shared, capture_output=True, text=True, timeout=60, env=mpi_env())
        assert proc.returncode == 2 and "cannot create the output directory (Permission denied)" in proc.stderr
        assert "mesh:" not in proc.stdout  # refused before the mesh was built
    finally:
        shutil.rmtree(shared, ignore_errors=True)


@pytest.mark.parametrize("nprocs", [1, 3])
def test_too_large_mesh_is_refused_with_the_estimate(tmp_path, nprocs):
    proc = run_solver(nprocs, [PLATE, "--set", "mesh.nx=200000", "--set", "mesh.ny=100000",
                               "--set", f"output.directory={tmp_path}"], cwd=tmp_path, check=False, timeout=30)
    assert proc.returncode == 2 and "needs about" in proc.stderr and "GiB available" in proc.stderr
    assert not (tmp_path / "plate").exists()


@pytest.mark.parametrize("nprocs", [1, 3])
def test_fuzzed_case_files_run_or_are_refused_in_one_line(tmp_path, nprocs):
    start = time.monotonic()
    result = run_script(nprocs, "fuzz.py", tmp_path, 300, timeout=180)
    assert result["examples"] >= 300 and result["refused"] > 0 and result["ran"] > 0
    assert time.monotonic() - start < 180


def test_mpi4py_not_matching_the_launcher_is_explained(monkeypatch):
    from types import SimpleNamespace

    from solver.errors import CaseError
    from solver.parallel.launcher import check_launch

    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    with pytest.raises(CaseError, match="launched as 4 processes .* but mpi4py sees 1 rank"):
        check_launch(SimpleNamespace(size=1))
    check_launch(SimpleNamespace(size=4))  # consistent: fine


def test_local_launches_get_one_blas_thread_per_rank_unless_set(monkeypatch):
    from solver.parallel.launcher import mpirun_environment

    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(key, raising=False)
    env = mpirun_environment(2)
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the user's choice stands
    assert mpirun_environment(2)["OMP_NUM_THREADS"] == "4"


def test_probe_rows_reach_the_results_file_before_they_fill_the_memory():
    """Many probes and many steps between snapshots: the rows are written once MAX_PENDING values
    wait, none lost or repeated, instead of piling up in memory until the next snapshot."""
    from contextlib import nullcontext
    from types import SimpleNamespace

    import numpy as np
    from mpi4py import MPI

    from solver.app.observers import ResultsObserver
    from solver.heat.march import StepEvent
    from solver.io.probe_series import MAX_PENDING, ProbeSeries

    mesh = SimpleNamespace(comm=MPI.COMM_SELF, cell_type="triangle", coords=np.array([[0.0, 0], [1, 0], [0, 1]]),
                           owned_cells=np.array([[0, 1, 2]]))
    probes = ProbeSeries(mesh, [[0.2, 0.3]] * 4096)
    written = []
    observer = ResultsObserver(SimpleNamespace(write_probes=lambda t, v: written.append(t)), probes, resumed=False)
    sim = SimpleNamespace(u=np.array([1.0, 2.0, 3.0]), timers=lambda name: nullcontext())
    steps = 3 * MAX_PENDING // 4096
    for step in range(1, steps + 1):
        observer.after_step(sim, StepEvent(step, step * 0.5, None, snapshot=False, checkpoint=False, last=False))
        assert len(probes.rows) * 4096 <= MAX_PENDING
    times = np.concatenate(written + [probes.take()[0]])
    assert len(written) >= 2 and np.array_equal(times, 0.5 * np.arange(1, steps + 1))
