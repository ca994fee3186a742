"""Checkpoint/restart: exact continuation on the same ranks, restart on other rank counts,
graceful stop on signals and wall limit, crash during a checkpoint write, bad checkpoints."""

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from conftest import ROOT, mpi_env, mpirun_command, run_script, run_solver

from solver.io.folder import pid_alive

CASE = str(ROOT / "inputs" / "heater_ramp.toml")
BASE = ["--set", "mesh.nx=40", "--set", "time.dt=2.0", "--set", "output.every=3", "--set", "solver.rtol=1e-12",
        "--set", "checkpoint.every=4"]
SCHEMES = ["backward-euler", "crank-nicolson", "bdf2"]


def args_for(directory, scheme, t_end, *extra):
    return [CASE, *BASE, "--set", f"output.directory={directory}", "--set", f"time.scheme={scheme}",
            "--set", f"time.t_end={t_end}", "--quiet", *extra]


def read(directory):
    with h5py.File(directory / "heater_ramp" / "heater_ramp.h5", "r") as f:
        names = sorted(f["fields/temperature"])
        return (np.array([f["fields/temperature"][n][()] for n in names]), f["time"][()], f["step"][()],
                f["balance/relative_imbalance"][()], dict(f.attrs))


def test_restart_continues_exactly_on_the_same_ranks(tmp_path, nprocs):
    runs, first = [], []
    for s in SCHEMES:
        runs.append(args_for(tmp_path / "whole" / s, s, 40.0))
        first.append(args_for(tmp_path / "split" / s, s, 18.0))
    status = run_script(nprocs, "solver_runs.py", json.dumps(runs + first))["status"]
    assert status == [0] * 6
    second = [args_for(tmp_path / "split" / s, s, 40.0, "--restart", "latest") for s in SCHEMES]
    assert run_script(nprocs, "solver_runs.py", json.dumps(second))["status"] == [0] * 3
    for s in SCHEMES:
        whole, split = read(tmp_path / "whole" / s), read(tmp_path / "split" / s)
        assert np.array_equal(whole[0], split[0]), s  # bitwise: every snapshot
        assert np.array_equal(whole[1], split[1]) and np.array_equal(whole[2], split[2])
        assert whole[2].tolist() == [0, 3, 6, 9, 12, 15, 18, 20]  # no duplicated or missing snapshot
        assert split[4]["complete"] and split[4]["balance_relative_imbalance"] == pytest.approx(
            whole[4]["balance_relative_imbalance"], rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("scheme", ["bdf2"])  # a two-step history (one-step schemes: bitwise on the same ranks)
def test_checkpoint_from_3_ranks_restarts_on_1_2_4(tmp_path, scheme):
    whole = tmp_path / "whole"
    run_solver(3, args_for(whole, scheme, 40.0), cwd=tmp_path)
    run_solver(3, args_for(tmp_path / "first", scheme, 18.0), cwd=tmp_path)
    reference = read(whole)
    for n in (1, 2, 4):
        d = tmp_path / f"np{n}"
        shutil.copytree(tmp_path / "first", d)
        proc = run_solver(n, args_for(d, scheme, 40.0, "--restart", str(d / "heater_ramp" / "checkpoint.h5")),
                          cwd=tmp_path)
        assert "restarted from" in proc.stdout or proc.returncode == 0
        temps, times, steps, _, attrs = read(d)
        assert np.array_equal(times, reference[1]) and np.array_equal(steps, reference[2])
        assert np.max(np.abs(temps - reference[0])) <= 1e-9 * np.max(np.abs(reference[0]))
        assert attrs["ranks"] == n


def start_mpirun(nprocs, args, cwd, env_extra):
    env = {**mpi_env(grace=True), **env_extra}
    cmd = mpirun_command(nprocs) + [sys.executable, "-m", "solver", *args]
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


@contextlib.contextmanager
def killed_at_exit(proc):
    """The launched run, killed (with its ranks) if it is still going when the block ends."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def rank_pids(proc):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def snapshots(directory):
    try:
        with h5py.File(directory / "heater_ramp" / "heater_ramp.h5", "r", locking=False) as f:
            return len(f["time"])
    except (OSError, KeyError):
        return 0


@pytest.mark.parametrize("nprocs", [1, 3])
def test_sigterm_stops_cleanly_and_restart_completes(tmp_path, nprocs):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    run_solver(nprocs, args_for(whole, "bdf2", 60.0), cwd=tmp_path)
    with killed_at_exit(start_mpirun(nprocs, args_for(cut, "bdf2", 60.0), tmp_path,
                                     {"SOLVER_TEST_STEP_DELAY": "0.1"})) as proc:
        assert wait_for(lambda: snapshots(cut) >= 3, 60), "the run did not start writing"
        for pid in rank_pids(proc):
            os.kill(pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err
    assert "stopping at step" in err and "signal SIGTERM" in err and "--restart latest" in err
    temps, times, steps, _, attrs = read(cut)  # the results file is complete and readable
    assert not attrs["complete"] and 0 < steps[-1] < 30
    with h5py.File(cut / "heater_ramp" / "checkpoint.h5", "r") as f:
        assert f.attrs["step"] >= steps[-1]
    run_solver(nprocs, args_for(cut, "bdf2", 60.0, "--restart", "latest"), cwd=tmp_path)
    ref, got = read(whole), read(cut)
    assert np.array_equal(ref[0], got[0]) and np.array_equal(ref[2], got[2])


def test_stop_signal_during_start_up_stops_at_the_first_step(tmp_path):
    """SLURM may signal a job while its ranks still build the mesh: the request is kept and
    honoured at the first step (not the default action of SIGUSR1, which kills)."""
    args = args_for(tmp_path, "crank-nicolson", 60.0, "--set", "mesh.nx=1500", "--set", "mesh.ny=300")
    with killed_at_exit(start_mpirun(2, args, tmp_path, {})) as proc:
        assert wait_for(lambda: len(rank_pids(proc)) == 2, 30)
        time.sleep(1.5)  # the ranks are importing, building the mesh or factorising
        assert not (tmp_path / "heater_ramp" / "checkpoint.h5").exists()
        for pid in rank_pids(proc):
            os.kill(pid, signal.SIGUSR1)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err
    assert "stopping at step 1 " in err and "signal SIGUSR1" in err, err
    with h5py.File(tmp_path / "heater_ramp" / "checkpoint.h5", "r") as f:
        assert f.attrs["step"] == 1


def test_wall_limit_stops_with_a_checkpoint(tmp_path):
    start = time.monotonic()
    slow = run_mpi_env(2, args_for(tmp_path, "crank-nicolson", 200.0, "--set", "run.wall_limit=\"00:00:07\""),
                       tmp_path, {"SOLVER_TEST_STEP_DELAY": "0.05"})
    assert slow.returncode == 75 and "wall-time limit of 7 s" in slow.stderr, slow.stderr
    assert time.monotonic() - start < 20
    # the command to continue keeps the run's --set options (without them it named another run), but
    # for the wall limit (with it, the continuation would stop as this run did)
    hint = next(ln for ln in slow.stderr.splitlines() if "to continue:" in ln)
    assert "--set mesh.nx=40" in hint and "--set time.scheme=crank-nicolson" in hint and \
        hint.endswith("--restart latest") and "run.wall_limit" not in hint, hint
    with h5py.File(tmp_path / "heater_ramp" / "checkpoint.h5", "r") as f:
        assert 0 < f.attrs["step"] < 100


def run_mpi_env(nprocs, args, cwd, env_extra, timeout=60):
    env = {**mpi_env(grace=True), **env_extra}
    cmd = mpirun_command(nprocs) + [sys.executable, "-m", "solver", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_sigkill_during_checkpoint_keeps_the_previous_one(tmp_path):
    d = tmp_path / "run"
    folder = d / "heater_ramp" / "checkpoints"
    with killed_at_exit(start_mpirun(3, args_for(d, "crank-nicolson", 60.0), tmp_path,
                                     {"SOLVER_TEST_CHECKPOINT_DELAY": "1.0"})) as proc:
        # wait until one checkpoint is complete and the next one is being written
        assert wait_for(lambda: list(folder.glob("step_*.h5")) and list(folder.glob("*.h5.tmp")), 60)
        ranks = rank_pids(proc)
        os.kill(ranks[1], signal.SIGKILL)
        proc.communicate(timeout=60)
    assert proc.returncode != 0
    # mpirun may return before its other ranks are gone; a user restarts once they are
    assert wait_for(lambda: not any(pid_alive(pid) for pid in ranks), 60)
    with h5py.File(d / "heater_ramp" / "checkpoint.h5", "r") as f:  # the previous checkpoint is intact
        assert f.attrs["solver_checkpoint"] == 1 and np.all(np.isfinite(f["temperature"][()]))
        step = int(f.attrs["step"])
    assert step >= 4
    run_solver(3, args_for(d, "crank-nicolson", 60.0, "--restart", "latest"), cwd=tmp_path)
    whole = tmp_path / "whole"
    run_solver(3, args_for(whole, "crank-nicolson", 60.0), cwd=tmp_path)
    ref, got = read(whole), read(d)
    assert np.array_equal(ref[2], got[2]) and np.array_equal(ref[0], got[0])


@pytest.mark.parametrize("nprocs", [1, 3])
def test_bad_checkpoints_are_refused(tmp_path, nprocs):
    run_solver(1, args_for(tmp_path, "crank-nicolson", 10.0), cwd=tmp_path)
    good = tmp_path / "heater_ramp" / "checkpoint.h5"
    truncated = tmp_path / "truncated.h5"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    foreign = tmp_path / "heater_ramp" / "heater_ramp.h5"
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all" * 10)
    dangling = tmp_path / "checkpoint.h5"  # left pointing at a removed checkpoint (a full disk)
    dangling.symlink_to("heater_ramp/checkpoints/step_00000001.h5")
    cases = [(truncated, "truncated.h5: "), (foreign, "a run's results, not a checkpoint"),
             (garbage, "not a readable HDF5 checkpoint"), (tmp_path / "none.h5", "checkpoint not found"),
             (dangling, "which is gone (an older checkpoint, removed after a newer one was written)")]
    runs = [args_for(tmp_path, "crank-nicolson", 20.0, "--restart", str(path)) for path, _ in cases]
    # a checkpoint of another case is refused unless --force
    other = args_for(tmp_path, "crank-nicolson", 20.0, "--restart", str(good), "--set", "material.k=300.0")
    remeshed = args_for(tmp_path, "crank-nicolson", 20.0, "--restart", str(good), "--set", "mesh.nx=30")
    earlier_end = args_for(tmp_path, "crank-nicolson", 6.0, "--restart", str(good))  # at t = 20 after the --force run
    runs += [other, other + ["--force"], remeshed, earlier_end]
    result = run_script(nprocs, "solver_runs.py", json.dumps(runs))  # one launch for all of them
    for (path, message), status, err in zip(cases, result["status"], result["stderr"]):
        assert status == 2 and message in err and "Traceback" not in err, (path, err)
    assert result["status"][5] == 2 and "checkpoint of a different case (changed: material.k)" in result["stderr"][5]
    assert result["status"][6] == 0, result["stderr"][6]
    assert result["status"][7] == 2
    assert re.search(r"changed since: [^;]*mesh.nx[^;]*; restart with", result["stderr"][7])
    assert result["status"][8] == 2 and "time.t_end = 6 is before the checkpoint's t = 20" in result["stderr"][8]


@pytest.mark.parametrize("nprocs", [1, 3])
def test_sigterm_to_mpirun_leaves_the_true_status_for_the_job_scripts(tmp_path, nprocs):
    """SIGTERM to mpirun itself (as scancel may send it): whatever mpirun returns, rank 0 records
    75 in $SOLVER_STATUS_FILE, and the job scripts' run_status takes it over the launcher's."""
    cut, status_file = tmp_path / "cut", tmp_path / "status"
    with killed_at_exit(start_mpirun(nprocs, args_for(cut, "bdf2", 60.0), tmp_path,
                                     {"SOLVER_TEST_STEP_DELAY": "0.1", "SOLVER_STATUS_FILE": str(status_file)})) as proc:
        assert wait_for(lambda: snapshots(cut) >= 3, 60), "the run did not start writing"
        os.kill(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=60)
    assert status_file.read_text().split()[:2] == ["75", "stopped"]
    assert (cut / "heater_ramp" / "checkpoint.h5").exists()
    script = f'SLURM_SUBMIT_DIR={tmp_path} SOLVER_STATUS_FILE={status_file}; ' \
             f'cp {status_file} {status_file}.keep; set -- case.toml; PYTHON={sys.executable}; ' \
             f'source {ROOT / "jobs" / "common.sh"}; cp {status_file}.keep {status_file}; run_status {proc.returncode}'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env={**os.environ, "LAUNCHER": "mpirun"})
    assert out.stdout.strip() == "75", out.stderr


@pytest.mark.parametrize("ranks", [1, 3])
def test_overwrite_moves_the_checkpoints_and_a_restart_never_mixes_two_runs(tmp_path, ranks):
    """Run A; run B replaces it (--overwrite): A's checkpoints go to checkpoints.bak with its
    results. One of A's checkpoints put back (and newer on disk) is not taken by --restart latest,
    which continues B from B's own (the results equal a run straight to the end); a restart of B's
    results from A's checkpoint by its path is refused (exit 2), and so is an empty --restart
    (it started a new run over the results, without a backup)."""
    d = tmp_path / "run"
    results = d / "heater_ramp"
    a = args_for(d, "backward-euler", 40.0)
    b = args_for(d, "backward-euler", 12.0, "--overwrite")  # 6 steps: its end is a scheduled snapshot
    whole = args_for(tmp_path / "whole", "backward-euler", 20.0)
    first = run_script(ranks, "solver_runs.py", json.dumps([a]))["status"]
    bak_a = sorted(p.name for p in (results / "checkpoints").glob("step_*.h5"))
    assert first == [0] and bak_a[-1] == "step_00000020.h5"
    assert run_script(ranks, "solver_runs.py", json.dumps([b, whole]))["status"] == [0, 0]
    assert sorted(p.name for p in (results / "checkpoints.bak").glob("step_*.h5")) == bak_a
    assert (results / "heater_ramp.h5.bak").exists()
    own = sorted(p.name for p in (results / "checkpoints").glob("step_*.h5"))
    assert own and all(int(n[5:13]) <= 6 for n in own), own  # B's only
    leftover = results / "checkpoints" / "step_00000020.h5"
    shutil.copy(results / "checkpoints.bak" / "step_00000020.h5", leftover)
    out = run_script(ranks, "solver_runs.py", json.dumps([
        args_for(d, "backward-euler", 20.0, "--restart", "latest"),
        args_for(d, "backward-euler", 30.0, "--restart", str(leftover)),
        args_for(d, "backward-euler", 30.0, "--restart", "")]))  # an unset $CHECKPOINT: it replaced the results
    assert out["status"] == [0, 2, 2], out["stderr"]
    assert out["stderr"][2].strip().endswith("--restart: an empty name; give a checkpoint file, or latest (the case's "
                                             "newest)"), out["stderr"][2]
    assert "step_00000020" not in out["stderr"][0] and "checkpoint of another run" in out["stderr"][1]
    assert len(out["stderr"][1].strip().splitlines()) == 1 and "Traceback" not in out["stderr"][1]
    continued, straight = read(d), read(tmp_path / "whole")
    assert np.array_equal(continued[0], straight[0]) and np.array_equal(continued[1], straight[1])


@pytest.mark.parametrize("ranks", [1, 3])
def test_a_second_ctrl_c_stops_at_once_cleanly(tmp_path, ranks):
    """The first SIGINT asks for a graceful stop; a second one before it is honoured stops at once:
    exit 130 and one line, never a traceback; the results file stays readable."""
    cut = tmp_path / "cut"
    with killed_at_exit(start_mpirun(ranks, args_for(cut, "bdf2", 600.0, "--set", "checkpoint.every=0"), tmp_path,
                                     {"SOLVER_TEST_STEP_DELAY": "2.0"})) as proc:
        assert wait_for(lambda: snapshots(cut) >= 1, 60), "the run did not start writing"
        for _ in range(2):
            for pid in rank_pids(proc):
                os.kill(pid, signal.SIGINT)
            time.sleep(0.3)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped at once by Ctrl-C" in err and "Traceback" not in err and "internal error" not in err, err
    with h5py.File(cut / "heater_ramp" / "heater_ramp.h5", "r") as f:
        assert len(f["time"]) >= 1


def test_a_restart_from_an_earlier_checkpoint_that_stops_before_a_snapshot_ends_in_order(tmp_path):
    """3 ranks, MPI-IO: a restart from an earlier checkpoint (its results file cut back to it) that
    stops at its first step, before any snapshot: exit 75 in bounded time and a readable file.
    The cut was made by every rank through MPI-IO, whose views of the shrunk time-step table
    parted, and the next collective write hung."""
    d = tmp_path / "run"
    every = ["--set", 'output.driver="mpio"', "--set", "output.every=5"]
    run_solver(3, args_for(d, "backward-euler", 40.0, *every, "--set", "checkpoint.keep=10"), cwd=tmp_path)
    early = d / "heater_ramp" / "checkpoints" / "step_00000008.h5"
    assert early.exists()
    proc = run_mpi_env(3, args_for(d, "backward-euler", 80.0, *every, "--restart", str(early),
                                   "--set", "run.wall_limit=1"), tmp_path, {"SOLVER_TEST_STEP_DELAY": "1.5"})
    assert proc.returncode == 75, proc.stderr
    with h5py.File(d / "heater_ramp" / "heater_ramp.h5", "r") as f:
        assert f["steps/time"][()].tolist() == [2.0 * (i + 1) for i in range(9)]
        assert f["step"][()].tolist() == [0, 5]


def test_a_restart_leaves_no_gap_in_the_tables_and_latest_stays_within_the_results_file(tmp_path):
    """2 ranks. A run that fails between a checkpoint and the next snapshot continues with every
    row of its time-step table (they were written only at snapshots: the rows after the last one
    went missing). A restart from an earlier checkpoint that fails before its own first one cuts
    the file back; ``--restart latest`` then continues from that earlier checkpoint, not from the
    later ones of the first run (beyond the file's end: refused, or a gap). Both end equal to an
    uninterrupted run, bit for bit."""
    scheme, keep = "bdf2", ["--set", "checkpoint.keep=10"]
    run_solver(2, args_for(tmp_path / "whole", scheme, 40.0, *keep), cwd=tmp_path)
    d = tmp_path / "split"
    folder = d / "heater_ramp" / "checkpoints"
    failed = run_mpi_env(2, args_for(d, scheme, 40.0, *keep), tmp_path, {"SOLVER_TEST_FAIL": "0:5"})
    assert failed.returncode != 0 and sorted(p.name for p in folder.glob("step_*.h5")) == ["step_00000004.h5"]
    run_solver(2, args_for(d, scheme, 40.0, *keep, "--restart", "latest"), cwd=tmp_path)
    failed = run_mpi_env(2, args_for(d, scheme, 40.0, *keep, "--restart", str(folder / "step_00000008.h5")), tmp_path,
                         {"SOLVER_TEST_FAIL": "0:10"})
    assert failed.returncode != 0 and (folder / "step_00000020.h5").exists()
    run_solver(2, args_for(d, scheme, 40.0, *keep, "--restart", "latest"), cwd=tmp_path)
    log = (d / "heater_ramp" / "heater_ramp.log").read_text()
    assert f"restarting from {folder / 'step_00000008.h5'} (step 8," in log
    whole, split = read(tmp_path / "whole"), read(d)
    assert np.array_equal(whole[0], split[0]) and np.array_equal(whole[1], split[1]) and split[4]["complete"]
    with h5py.File(tmp_path / "whole" / "heater_ramp" / "heater_ramp.h5") as a, h5py.File(d / "heater_ramp" /
                                                                                       "heater_ramp.h5") as b:
        assert b["steps/time"][()].tolist() == [2.0 * (i + 1) for i in range(20)]
        assert np.array_equal(a["steps/iterations"][()], b["steps/iterations"][()])


def test_a_restart_from_an_earlier_checkpoint_removes_the_checkpoints_of_the_steps_it_replaced(tmp_path):
    """1 rank. A restart from step 8 of a run that reached step 20, failing after its own checkpoint
    of step 12: the first run's checkpoints of steps 16 and 20 (their snapshots cut from the results
    file) go with that checkpoint; they were kept beside this run's as if they were its future."""
    d = tmp_path / "run"
    keep = ["--set", "checkpoint.keep=10"]
    run_solver(1, args_for(d, "backward-euler", 40.0, *keep), cwd=tmp_path)
    folder = d / "heater_ramp" / "checkpoints"
    assert {"step_00000016.h5", "step_00000020.h5"} <= {p.name for p in folder.glob("step_*.h5")}
    failed = run_mpi_env(1, args_for(d, "backward-euler", 40.0, *keep, "--restart", str(folder / "step_00000008.h5")),
                         tmp_path, {"SOLVER_TEST_FAIL": "0:14"})
    assert failed.returncode != 0, failed.stderr
    assert sorted(p.name for p in folder.glob("step_*.h5")) == ["step_00000004.h5", "step_00000008.h5",
                                                                "step_00000012.h5"]


def test_a_restart_at_its_own_end_time_writes_the_final_snapshot(tmp_path):
    """A restart from the checkpoint of step 16 with time.t_end at that checkpoint's time takes no
    step: it cut the results back to the snapshot of step 15 and ended complete without the state
    at t_end, which every run writes last, leaving the checkpoints of the later steps."""
    d = tmp_path / "run"
    run_solver(1, args_for(d, "backward-euler", 40.0, "--set", "checkpoint.keep=10"), cwd=tmp_path)
    early = d / "heater_ramp" / "checkpoints" / "step_00000016.h5"
    run_solver(1, args_for(d, "backward-euler", 32.0, "--restart", str(early)), cwd=tmp_path)
    with h5py.File(d / "heater_ramp" / "heater_ramp.h5", "r") as f, h5py.File(early, "r") as c:
        assert f.attrs["status"] == "complete" and f["step"][()].tolist() == [0, 3, 6, 9, 12, 15, 16]
        assert f["time"][-1] == 32.0 and np.array_equal(f["fields/temperature/000006"][()], c["temperature"][()])
    # the checkpoints of the steps it replaced (17 to 20, whose snapshots were cut) go, as a checkpoint of its
    # own would have removed them
    assert sorted(p.name for p in early.parent.glob("step_*.h5"))[-1] == "step_00000016.h5"


def test_a_restart_with_other_probes_is_refused_before_it_writes(tmp_path):
    """Probes changed on a restart (even with --force): refused in one line before anything is
    written (the probe table of the old width took rows of the new one: an internal error and a
    results file half continued); the same probes then continue the table without a gap."""
    plate = str(ROOT / "inputs" / "plate.toml")
    base = [plate, "--set", "mesh.nx=12", "--set", "mesh.ny=6", "--set", f"output.directory={tmp_path}", "--quiet",
            "--set", "checkpoint.every=20"]
    two = ["--set", "output.probes=[[0.05, 0.05], [0.1, 0.05]]"]
    three = ["--set", "output.probes=[[0.05, 0.05], [0.1, 0.05], [0.19, 0.09]]"]
    run_solver(1, [*base, *two, "--set", "time.t_end=300"], cwd=tmp_path)
    proc = run_solver(1, [*base, *three, "--set", "time.t_end=600", "--restart", "latest", "--force"], cwd=tmp_path,
                      check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "its probe table has 2 probes at other points" in errors[0]
    run_solver(1, [*base, *two, "--set", "time.t_end=600", "--restart", "latest"], cwd=tmp_path)
    with h5py.File(tmp_path / "plate" / "plate.h5", "r") as f:
        assert f.attrs["status"] == "complete" and f["probes/values"].shape == (121, 2)
        assert np.allclose(np.diff(f["probes/time"][()]), 5.0) and np.allclose(np.diff(f["steps/time"][()]), 5.0)


def test_overwrite_never_replaces_a_complete_backup_by_an_unfinished_run(tmp_path):
    """Run A completes; B (--overwrite) fails mid-way, A in .bak; a second --overwrite put B's
    unfinished results in .bak, beside A's checkpoints.bak (A gone, the backup a mix of two runs).
    Now B's results and checkpoints go, A's stay in .bak; and checkpoints.bak always belongs to
    the results in .bak."""
    d = tmp_path / "run"
    results = d / "heater_ramp"
    args = args_for(d, "backward-euler", 40.0)
    run_solver(1, args, cwd=tmp_path)
    with h5py.File(results / "heater_ramp.h5", "r") as f:
        run_a = f.attrs["run_id"]
    failed = run_mpi_env(1, args + ["--overwrite"], tmp_path, {"SOLVER_TEST_FAIL": "0:6"})
    assert failed.returncode != 0 and (results / "checkpoints.bak").is_dir()
    run_solver(1, args + ["--overwrite"], cwd=tmp_path)
    with h5py.File(results / "heater_ramp.h5.bak", "r") as f:
        assert f.attrs["status"] == "complete" and f.attrs["run_id"] == run_a
    assert {checkpoint_run_id(p) for p in (results / "checkpoints.bak").glob("step_*.h5")} == {run_a}
    with h5py.File(results / "heater_ramp.h5", "r") as f:
        run_c = f.attrs["run_id"]
    run_solver(1, args + ["--overwrite"], cwd=tmp_path)  # C complete: it becomes the backup, with its checkpoints
    assert {checkpoint_run_id(p) for p in (results / "checkpoints.bak").glob("step_*.h5")} == {run_c}


def checkpoint_run_id(path):
    with h5py.File(path, "r") as f:
        value = f.attrs["run_id"]
    return value.decode() if isinstance(value, bytes) else value


def test_an_overwrite_refused_for_its_probes_moves_nothing(tmp_path):
    """A probe outside the mesh is an input error found once the mesh is built: --overwrite then
    moved the earlier results aside first (the older backup deleted, a dangling checkpoint link
    left, --restart latest finding nothing). Now nothing moves."""
    d = tmp_path / "run"
    results = d / "heater_ramp"
    args = args_for(d, "backward-euler", 40.0)
    run_solver(1, args, cwd=tmp_path)
    run_solver(1, args + ["--overwrite"], cwd=tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in results.iterdir() if p.suffix != ".log"}
    refused = run_solver(1, args + ["--overwrite", "--set", "output.probes=[[5.0, 5.0]]"], cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "outside the mesh" in refused.stderr, refused.stderr
    assert {p.name: p.stat().st_mtime_ns for p in results.iterdir() if p.suffix != ".log"} == before
    run_solver(1, args + ["--restart", "latest", "--set", "time.t_end=60.0"], cwd=tmp_path)


def test_a_checkpoint_of_another_run_is_never_replaced(tmp_path):
    """Another run's checkpoint of a step this run writes (copied into its folder): it was
    replaced by this run's and so lost; it is moved aside under its run's id instead. A newer
    checkpoint that cannot be read is passed over with a warning (it was passed over silently)."""
    args = args_for(tmp_path / "a", "backward-euler", 16.0)
    run_solver(1, args, cwd=tmp_path)
    run_solver(1, args_for(tmp_path / "b", "backward-euler", 32.0), cwd=tmp_path)
    folder = tmp_path / "a" / "heater_ramp" / "checkpoints"
    foreign = tmp_path / "b" / "heater_ramp" / "checkpoints" / "step_00000016.h5"
    (folder / foreign.name).write_bytes(foreign.read_bytes())
    other = checkpoint_run_id(foreign)
    (folder / "step_00000099.h5").write_bytes(b"junk")  # the newest, unreadable: passed over, with a warning
    proc = run_solver(1, args + ["--restart", "latest", "--set", "time.t_end=40.0"], cwd=tmp_path)
    assert "passes over 1 newer checkpoint that cannot be read (step_00000099.h5)" in proc.stdout + proc.stderr
    assert "continues from step_00000008.h5" in proc.stdout + proc.stderr
    kept = folder / f"step_00000016.{other[:8]}.h5"
    assert kept.read_bytes() == foreign.read_bytes()
    assert checkpoint_run_id(folder / "step_00000020.h5") != other


def test_files_of_the_users_where_checkpoints_go_are_moved_aside(tmp_path):
    """A file that is no checkpoint at a checkpoint's name (an HDF5 file of the user's too), and a
    file at the checkpoint link's: a fresh run replaced both, exit 0, without a word."""
    results = tmp_path / "heater_ramp"
    (results / "checkpoints").mkdir(parents=True)
    (results / "checkpoint.h5").write_text("my notes")
    with h5py.File(results / "checkpoints" / "step_00000008.h5", "w") as f:
        f["mydata"] = [1, 2, 3]
    proc = run_solver(1, args_for(tmp_path, "backward-euler", 16.0), cwd=tmp_path)
    assert "step_00000008.h5 was not a checkpoint of this solver" in proc.stderr + proc.stdout
    assert (results / "checkpoint.h5.not-a-link").read_text() == "my notes"
    with h5py.File(results / "checkpoints" / "step_00000008.not-a-checkpoint", "r") as f:
        assert f["mydata"][()].tolist() == [1, 2, 3]
    assert (results / "checkpoint.h5").is_symlink() and checkpoint_run_id(results / "checkpoint.h5")


def test_a_second_overwrite_keeps_the_users_files_in_the_checkpoints_backup(tmp_path):
    """A file of the user's in checkpoints/ went to checkpoints.bak with an --overwrite, and the
    next --overwrite deleted that backup with it (and a checkpoint of another name), without a
    word: the solver's own checkpoints go, the rest is kept in checkpoints.bak.kept."""
    args = args_for(tmp_path, "backward-euler", 16.0)
    results = tmp_path / "heater_ramp"
    run_solver(1, args, cwd=tmp_path)
    (results / "checkpoints" / "notes.txt").write_text("mine")
    (results / "checkpoints" / "sub").mkdir()
    run_solver(1, [*args, "--overwrite"], cwd=tmp_path)
    proc = run_solver(1, [*args, "--overwrite"], cwd=tmp_path)
    assert "held 2 entries the solver did not write (notes.txt, sub): kept in checkpoints.bak.kept" in proc.stderr
    kept = results / "checkpoints.bak.kept"
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt", "sub"] and (kept / "notes.txt").read_text() == "mine"
    assert list((results / "checkpoints.bak").glob("step_*.h5")) and not list(kept.glob("step_*"))
    proc = run_solver(1, [*args, "--overwrite"], cwd=tmp_path)  # a backup of the solver's own alone: no warning
    assert "did not write" not in proc.stderr and not (results / "checkpoints.bak.kept2").exists()


@pytest.mark.parametrize("change", ["mesh.cell=triangle", "mesh.lengths=[0.2, 0.01]"])
def test_a_forced_restart_on_another_mesh_of_as_many_nodes_is_refused(tmp_path, change):
    """--force took a checkpoint of quadrilaterals into a run of triangles with as many nodes: the
    index then described the old snapshots as triangles (exit 0, a file ParaView misreads)."""
    args = args_for(tmp_path, "backward-euler", 16.0)
    run_solver(1, args, cwd=tmp_path)
    before = (tmp_path / "heater_ramp" / "heater_ramp.h5").read_bytes()
    proc = run_solver(2, args + ["--restart", "latest", "--force", "--set", "time.t_end=24.0", "--set", change],
                      cwd=tmp_path, check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "its mesh (" in errors[0] and "is not this run's" in errors[0]
    assert (tmp_path / "heater_ramp" / "heater_ramp.h5").read_bytes() == before  # refused before it was cut back
    assert "Triangle" not in (tmp_path / "heater_ramp" / "heater_ramp.xdmf").read_text()


def test_a_forced_restart_into_a_steady_case_is_refused_before_the_results_are_touched(tmp_path):
    """--force with time.scheme = "steady" reopened the results file, then failed (exit 1) with the
    file marked as running and its case replaced by the steady one."""
    args = args_for(tmp_path, "backward-euler", 16.0)
    run_solver(1, args, cwd=tmp_path)
    before = (tmp_path / "heater_ramp" / "heater_ramp.h5").read_bytes()
    proc = run_solver(2, args + ["--restart", "latest", "--force", "--set", "time.scheme=steady"], cwd=tmp_path,
                      check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "does not continue from a checkpoint" in errors[0], proc.stderr
    assert (tmp_path / "heater_ramp" / "heater_ramp.h5").read_bytes() == before
    assert not (tmp_path / "heater_ramp" / ".heater_ramp.h5.reserve").exists()


def run_to_step_4(tmp_path, scheme: str, t_end: float, *extra):
    """A run of heater_ramp on 1 rank: its arguments, its results file and that file's bytes, and
    its checkpoint of step 4."""
    args = args_for(tmp_path, scheme, t_end, *extra)
    run_solver(1, args, cwd=tmp_path)
    results = tmp_path / "heater_ramp" / "heater_ramp.h5"
    return args, results, results.read_bytes(), tmp_path / "heater_ramp" / "checkpoints" / "step_00000004.h5"


def assert_refused_and_results_kept(proc, message: str, results, before: bytes):
    """A restart refused in one line holding ``message`` (exit 2), the results file as it was."""
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and message in errors[0], proc.stderr
    assert results.read_bytes() == before


@pytest.mark.parametrize("damage, message", [
    ("a value changed", "damaged checkpoint: /temperature sums to"),
    ("sum not a number", "damaged checkpoint: the attributes sum and abs_sum of /temperature are not numbers"),
    ("earlier_dt not numbers", "checkpoint attribute stepper_state is malformed"),
    ("previous missing", "damaged checkpoint: its stepper_state holds the step before it"),
    ("stepper_state nested deep", "checkpoint attributes are missing or malformed")])
def test_a_damaged_checkpoint_is_refused_before_the_results_are_cut_back(tmp_path, damage, message):
    """One value of a checkpoint's temperature changed by 16 K (a bit flipped on the disk): the
    restart continued from it to a wrong answer with exit 0; its sum is written with it. Such damage
    was found after the results had been cut back to the checkpoint (a complete run lost its last
    snapshots and was marked failed); a BDF2 checkpoint without its /previous restarted (exit 0) as
    from a first step, 0.04 K off; a stepper_state nested 100,000 deep was an internal error."""
    args, results, before, checkpoint = run_to_step_4(tmp_path, "bdf2", 16.0)
    with h5py.File(checkpoint, "r+") as f:
        state = json.loads(f.attrs["stepper_state"])
        if damage == "a value changed":
            f["temperature"][5] += 16.0
        elif damage == "sum not a number":
            f["temperature"].attrs["sum"] = "x"
        elif damage == "earlier_dt not numbers":
            state["stepper"]["earlier_dt"] = ["x"]
            f.attrs["stepper_state"] = json.dumps(state)
        elif damage == "previous missing":
            assert state["stepper"]["earlier_dt"]
            del f["previous"]
        else:
            f.attrs["stepper_state"] = "[" * 100000 + "]" * 100000
    proc = run_solver(2, args + ["--restart", str(checkpoint)], cwd=tmp_path, check=False)
    assert_refused_and_results_kept(proc, message, results, before)


@pytest.mark.parametrize("damage, message", [
    ("earlier_dt off dt", "checkpoint attribute stepper_state.earlier_dt = [1.5] does not agree with its fixed steps "
                          "of dt = 2 s"),
    ("earlier_dt negative", "checkpoint attribute stepper_state.earlier_dt = [-2.0] is not the sizes of steps taken"),
    ("ranks 0", "checkpoint attribute ranks = 0 is out of range"),
    ("earlier_dt before the fixed steps", None)])
def test_earlier_step_sizes_and_ranks_that_the_run_could_not_have_written_are_refused(tmp_path, damage, message):
    """A BDF2 checkpoint of fixed steps of 2 s whose earlier_dt was changed to 1.5 restarted with
    exit 0 to another answer (BDF2 weighs the previous solution by the ratio of the steps), and
    one written on 0 ranks was taken. The step that ended at the origin of the fixed steps (a
    restart from an adaptive run or with another dt, forced) may have had a size of its own."""
    args, results, before, checkpoint = run_to_step_4(tmp_path, "bdf2", 16.0)
    with h5py.File(checkpoint, "r+") as f:
        state = json.loads(f.attrs["stepper_state"])
        assert state["stepper"]["earlier_dt"] == [2.0]
        if damage == "ranks 0":
            f.attrs["ranks"] = 0
        else:
            state["stepper"]["earlier_dt"] = [-2.0] if damage == "earlier_dt negative" else [1.5]
            if damage == "earlier_dt before the fixed steps":
                state["fixed_origin"] = [4, 8.0]
            f.attrs["stepper_state"] = json.dumps(state)
    proc = run_solver(1, args + ["--restart", str(checkpoint)], cwd=tmp_path, check=False)
    if message is None:
        assert proc.returncode == 0, proc.stderr
        return
    assert_refused_and_results_kept(proc, message, results, before)


@pytest.mark.parametrize("damage, message", [
    ({"step": 8, "dt": 1.0}, "checkpoint attribute dt = 1 s is not the time.dt of the case it stores (2 s)"),
    ({"scheme": "steady", "step": 3}, "checkpoint attribute scheme = 'steady' is not the time.scheme of the case it "
                                      "stores ('backward-euler')")])
def test_a_step_dt_or_scheme_that_disagrees_with_the_stored_case_is_refused(tmp_path, damage, message):
    """Step 4 at t = 8 of dt = 2 s changed to step 8 of dt = 1 s (t = step x dt still holds)
    restarted with exit 0, counting steps and times off the run's; a scheme changed to "steady"
    skipped the check of t against the step. Both are refused against the case the checkpoint stores."""
    args, results, before, checkpoint = run_to_step_4(tmp_path, "backward-euler", 8.0)
    with h5py.File(checkpoint, "r+") as f:
        for key, value in damage.items():
            f.attrs[key] = value
    proc = run_solver(1, args_for(tmp_path, "backward-euler", 16.0, "--restart", str(checkpoint)), cwd=tmp_path,
                      check=False)
    assert_refused_and_results_kept(proc, message, results, before)


@pytest.mark.parametrize("force", [False, True])
def test_a_stored_case_that_does_not_give_its_hash_is_refused_unless_forced(tmp_path, force):
    """The case a checkpoint stores, edited to the conductivity of the restart (k = 200 for the
    run's 400), hid the change: the restart took the checkpoint with exit 0 as of the same case."""
    args, results, before, checkpoint = run_to_step_4(tmp_path, "backward-euler", 8.0)
    with h5py.File(checkpoint, "r+") as f:
        assert "k = 400.0" in f.attrs["case"]
        f.attrs["case"] = f.attrs["case"].replace("k = 400.0", "k = 200.0")
    extra = ["--restart", str(checkpoint), "--set", "material.k=200"] + (["--force"] if force else [])
    proc = run_solver(1, args_for(tmp_path, "backward-euler", 16.0, *extra), cwd=tmp_path, check=False)
    if force:
        assert proc.returncode == 0, proc.stderr
        return
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "damaged checkpoint: the case it stores does not give its case_hash" in errors[0], errors
    assert results.read_bytes() == before


def test_a_restart_with_another_dt_must_land_on_t_end(tmp_path):
    """dt changed with --force: t_end was checked as a whole number of steps from 0, not from the
    checkpoint, and the run stopped short of it, reported complete. Only the count from the
    checkpoint matters now: a t_end on the steps from 0 but not from the checkpoint is refused
    with t_end values that are (the sentence was cut short), and one on the steps from the
    checkpoint only (refused as t_end/dt = 8.33 from 0) runs to it."""
    args = args_for(tmp_path, "backward-euler", 16.0)
    run_solver(1, args, cwd=tmp_path)
    proc = run_solver(1, args + ["--restart", "latest", "--force", "--set", "time.dt=3.0", "--set", "time.t_end=24.0"],
                      cwd=tmp_path, check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "is not a whole number of steps of time.dt = 3" in errors[0]
    assert "after the checkpoint's t = 16" in errors[0] and errors[0].endswith("such as 22 or 25"), errors
    proc = run_solver(1, args + ["--restart", "latest", "--force", "--set", "time.dt=3.0", "--set", "time.t_end=25.0"],
                      cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    _, times, steps, _, attrs = read(tmp_path)
    assert times.tolist()[-3:] == [16.0, 19.0, 25.0] and steps.tolist()[-3:] == [8, 9, 11]
    assert attrs["status"] == "complete"


def test_output_times_off_the_automatic_step_are_refused_before_anything_is_moved_or_cut(tmp_path):
    """Explicit Euler's dt = "auto" is known once the mesh is assembled, and output times off its
    steps were refused only when the time loop began: after --overwrite had moved the complete
    results aside, or after a restart had cut them back to its checkpoint (4 snapshots of a
    complete run lost, for an input error). Both are refused first now, nothing touched."""
    plate = tmp_path / "plate.toml"
    plate.write_text("\n".join(line for line in (ROOT / "inputs" / "plate.toml").read_text().splitlines()
                               if not line.startswith("every =")))
    common = [str(plate), "--set", "mesh.nx=8", "--set", "mesh.ny=4", "--set", "time.scheme=explicit-euler", "--set",
              'time.dt="auto"', "--set", "time.t_end=150.0", "--set", f"output.directory={tmp_path}", "--quiet"]
    run_solver(1, [*common, "--set", "checkpoint.every=5"], cwd=tmp_path)
    h5 = tmp_path / "plate" / "plate.h5"
    with h5py.File(h5, "r") as f:
        before = (f["time"][()].tolist(), bool(f.attrs["complete"]))
    first = sorted((tmp_path / "plate" / "checkpoints").glob("step_*.h5"))[0]
    for extra in (["--overwrite"], ["--restart", str(first)]):
        args = [a for a in common if a != "--quiet"]
        proc = run_solver(1, [*args, "--set", "output.times=[7.0, 150.0]", *extra], cwd=tmp_path, check=False)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1 and "output.times: t = 7 s is not a whole number" in errors[0]
        with h5py.File(h5, "r") as f:
            assert (f["time"][()].tolist(), bool(f.attrs["complete"])) == before
        assert not list((tmp_path / "plate").glob("*.bak"))


def _square_mesh(path, names):
    """A unit square of 8 x 8 x 2 triangles with its left and right sides as boundary groups of
    the given names (Gmsh 2.2, ASCII)."""
    import meshio

    n = 8
    x, y = np.meshgrid(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1))
    points = np.c_[x.ravel(), y.ravel(), np.zeros(x.size)]
    at = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = at[:-1, :-1].ravel(), at[:-1, 1:].ravel(), at[1:, 1:].ravel(), at[1:, :-1].ravel()
    triangles = np.r_[np.c_[a, b, c], np.c_[a, c, d]]
    left, right = np.c_[at[:-1, 0], at[1:, 0]], np.c_[at[:-1, -1], at[1:, -1]]
    lines = np.r_[left, right]
    tags = np.r_[np.full(n, 2), np.full(n, 3)]
    meshio.write(path, meshio.Mesh(points, [("triangle", triangles), ("line", lines)],
                                   cell_data={"gmsh:physical": [np.ones(len(triangles), int), tags],
                                              "gmsh:geometrical": [np.ones(len(triangles), int), tags]},
                                   field_data={names[0]: np.array([2, 1]), names[1]: np.array([3, 1]),
                                               "body": np.array([1, 2])}),
                 file_format="gmsh22", binary=False)


def test_a_restart_on_a_mesh_file_whose_groups_changed_is_refused(tmp_path):
    """The groups of the mesh file were swapped between a run and its restart: the restart went on
    with the conditions on the other sides (exit 0). A checkpoint keeps a digest of the file's
    mesh; --force restarts anyway and names the change."""
    mesh = tmp_path / "square.msh"
    _square_mesh(mesh, ("left", "right"))
    case = tmp_path / "case.toml"
    case.write_text(f'[mesh]\nfile = "{mesh}"\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n[initial]\ntemperature = 0.0\n'
                    f'[boundary.left]\ntype = "dirichlet"\nvalue = 1.0\n[boundary.right]\ntype = "robin"\nh = 2.0\n'
                    f'T_inf = 0.0\n[time]\ndt = 0.01\nt_end = 0.05\n[output]\ndirectory = "{tmp_path}"\n')
    run_solver(2, [case], cwd=tmp_path)
    run_solver(1, [case, "--restart", "latest", "--set", "time.t_end=0.06"], cwd=tmp_path)  # the same file: goes on
    _square_mesh(mesh, ("right", "left"))
    proc = run_solver(1, [case, "--restart", "latest", "--set", "time.t_end=0.08"], cwd=tmp_path, check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "checkpoint of another mesh: the contents of mesh.file" \
        in errors[0], proc.stderr
    proc = run_solver(1, [case, "--restart", "latest", "--force", "--set", "time.t_end=0.08"], cwd=tmp_path)
    assert f"changed since the checkpoint: time.t_end, mesh.file = {mesh} (its contents)" in proc.stdout, proc.stdout


@pytest.mark.parametrize("where", ["outside SLURM", "requeue refused"])
def test_requeue_slurm_that_cannot_requeue_says_so_and_exits_75(tmp_path, where):
    """A segment stopped with a checkpoint: without SLURM_JOB_ID the script failed on an unbound
    variable (exit 1); where scontrol requeue failed it exited 0, the job done to all appearances."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (fake / "scontrol").chmod(0o755)
    env = {**mpi_env(), "LAUNCHER": "mpirun", "SLURM_NTASKS": "1", "SLURM_SUBMIT_DIR": str(ROOT),
           "PYTHON": sys.executable, "PATH": f"{fake}:{os.environ['PATH']}", "SOLVER_TEST_STEP_DELAY": "0.2"}
    if where == "requeue refused":
        env["SLURM_JOB_ID"] = "7"
    else:
        env.pop("SLURM_JOB_ID", None)
    args = [*args_for(tmp_path / "out (1)", "backward-euler", 400.0), "--set", "run.wall_limit=3"]
    proc = subprocess.run(["bash", str(ROOT / "jobs" / "requeue.slurm"), *args], capture_output=True, text=True,
                          env=env, timeout=120)
    said = "not a SLURM job, so nothing is requeued" if where == "outside SLURM" else "scontrol requeue 7 failed"
    assert proc.returncode == 75 and said in proc.stderr and "--restart latest" in proc.stderr, proc.stderr
    # the command to go on, quoted for the shell (a folder with blanks and parentheses was a syntax error)
    hint = [ln for ln in proc.stderr.splitlines() if "--restart latest" in ln and ("bash jobs" in ln or "sbatch" in ln)]
    words = shlex.split(hint[-1].split("bash " if where == "outside SLURM" else "sbatch ")[-1])
    assert words == ["jobs/requeue.slurm", *args, "--restart", "latest"], hint


def fake_job_segment(tmp_path, srun: str):
    """A segment of job 7 run by a jobs/ script outside SLURM, with ``srun`` (a shell script's body)
    for srun and an scontrol that logs its arguments to tmp_path/scontrol.log: a function of the
    script and the restart count, returning the finished process."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text(f"#!/bin/sh\n{srun}\n")
    (fake / "scontrol").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'scontrol.log'}\nexit 0\n")
    for tool in fake.iterdir():
        tool.chmod(0o755)
    env = {**mpi_env(), "LAUNCHER": "srun", "SLURM_NTASKS": "2", "SLURM_SUBMIT_DIR": str(tmp_path),
           "JOBS": str(ROOT / "jobs"), "PYTHON": sys.executable, "PATH": f"{fake}:{os.environ['PATH']}",
           "SLURM_JOB_ID": "7"}
    env.pop("SOLVER_STATUS_FILE", None)
    args = args_for(tmp_path / "out", "backward-euler", 1.0)

    def segment(script, restarts):
        return subprocess.run(["bash", str(ROOT / "jobs" / script), *args], capture_output=True, text=True,
                              env={**env, "SLURM_RESTART_COUNT": str(restarts)}, timeout=60)
    return segment


def test_a_step_that_did_not_launch_is_run_again_once_and_never_reported_complete(tmp_path):
    """srun printed "task launch failed" and returned 0 before the solver ran: the job ended
    "COMPLETED" with status 0 and no results. A launcher's 0 with no status from the solver is a
    failure (1); jobs/requeue.slurm runs such a segment again once, as it was started."""
    segment = fake_job_segment(tmp_path, "echo 'srun: error: task 0 launch failed: Unspecified error' >&2\nexit 0")
    first = segment("requeue.slurm", 0)
    assert first.returncode == 0 and "requeueing job 7 to run this segment again" in first.stdout, first
    assert (tmp_path / "scontrol.log").read_text() == "requeue 7\n"
    again = segment("requeue.slurm", 1)  # as the first was started (no --restart latest), and not a third time
    launched = [ln for ln in again.stdout.splitlines() if " -m solver " in ln]
    assert launched and "--restart" not in launched[0] and "--overwrite" not in launched[0], again.stdout
    assert again.returncode == 1 and "segment 2 ended with status 1" in again.stdout, again
    assert "the launcher returned 0, but the solver recorded no status" in again.stderr, again.stderr
    assert (tmp_path / "scontrol.log").read_text() == "requeue 7\n"
    assert not list(tmp_path.glob(".solver-*")), list(tmp_path.glob(".solver-*"))
    once = segment("run.slurm", 0)
    assert once.returncode == 1 and "recorded no status" in once.stderr, once


def test_a_second_stop_before_the_first_step_in_a_row_is_not_requeued(tmp_path):
    """A rank killed during every start-up (the out-of-memory killer, on a mesh too large) left
    "75 stopped ... before the first step" from the others' SIGTERM each time: the job went round
    MAX_SEGMENTS (50) times. The second such stop in a row ends the chain with the command to go on."""
    line = "75 stopped stopped by SIGTERM during start-up, before the first step"
    segment = fake_job_segment(tmp_path, f'echo "{line}" > "$SOLVER_STATUS_FILE"\nexit 137')
    first = segment("requeue.slurm", 0)
    assert first.returncode == 0 and "requeueing job 7 to start again" in first.stdout, first
    second = segment("requeue.slurm", 1)
    assert "--overwrite" in second.stdout.splitlines()[1], second.stdout
    assert second.returncode == 75 and "as the segment before it did: not requeued again" in second.stderr, second
    assert second.stderr.rstrip().endswith("--overwrite"), second.stderr
    assert (tmp_path / "scontrol.log").read_text() == "requeue 7\n"
    assert not list(tmp_path.glob(".solver-*")), list(tmp_path.glob(".solver-*"))


def test_study_slurm_without_a_study_file_gives_its_usage(tmp_path):
    """It launched MPI, to fail 20 s later on a command line without a study file."""
    proc = subprocess.run(["bash", str(ROOT / "jobs" / "study.slurm")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=30, env={**os.environ, "JOBS": str(ROOT / "jobs")})
    assert proc.returncode == 2 and "usage: sbatch jobs/study.slurm STUDY.toml" in proc.stderr, proc.stderr


@pytest.mark.parametrize("script", ["run.slurm", "requeue.slurm", "study.slurm"])
def test_a_job_script_run_from_another_directory_finds_the_scripts_beside_it(tmp_path, script):
    """Run from outside the project directory, run.slurm ended on a shell error (exit 1), study.slurm
    with 127 and requeue.slurm ran the case without its launcher, then failed (exit 1): the scripts
    take jobs/ beside them. Under SLURM (a copy of the script is run) without jobs/ in the submit
    directory: one line, exit 2."""
    env = {**mpi_env(), "LAUNCHER": "mpirun", "SLURM_NTASKS": "1", "PYTHON": sys.executable}
    for name in ("JOBS", "SLURM_SUBMIT_DIR", "SLURM_JOB_ID", "SOLVER_STATUS_FILE"):
        env.pop(name, None)
    args = [str(ROOT / "inputs" / "layered_wall.toml"), "--quiet"]
    if script == "study.slurm":  # (a study file that is not there: the solver's own error)
        args = ["missing.toml"]
    proc = subprocess.run(["bash", str(ROOT / "jobs" / script), *args], cwd=tmp_path, capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == (2 if script == "study.slurm" else 0) and ".slurm: " not in proc.stderr, proc
    if script != "study.slurm":
        assert (tmp_path / "outputs" / "layered_wall" / "layered_wall.h5").is_file()
        assert not list(tmp_path.glob(".solver-*")), list(tmp_path.glob(".solver-*"))
    spool = tmp_path / "spool"
    spool.mkdir()
    shutil.copy(ROOT / "jobs" / script, spool / "slurm_script")
    proc = subprocess.run(["bash", str(spool / "slurm_script"), *args], cwd=tmp_path, capture_output=True, text=True,
                          env={**env, "SLURM_SUBMIT_DIR": str(tmp_path), "SLURM_JOB_ID": "7"}, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"jobs: no jobs/{'requeue.slurm' if script == 'study.slurm' else 'common.sh'} in {tmp_path}: submit from the "
        "project directory, or set JOBS to its jobs/ folder"], proc


def test_the_scaling_script_checks_its_arguments_before_it_submits(tmp_path):
    """collect of a folder without a series and weak rank counts that are not multiples gave
    tracebacks or orphaned the jobs already submitted; a bare word in --set (as the solver takes
    it) was a TOML error."""
    sys.path.insert(0, str(ROOT / "jobs"))
    try:
        import scaling
    finally:
        sys.path.remove(str(ROOT / "jobs"))
    script = [sys.executable, str(ROOT / "jobs" / "scaling.py")]
    env = {**os.environ, "SLURM_CONF": "/nonexistent"}  # past the login-node check: nothing reaches sbatch
    proc = subprocess.run([*script, "collect", "/nonexistent"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "cannot read the series' job list" in proc.stderr, proc.stderr
    proc = subprocess.run([*script, "submit", CASE, "--ranks", "2", "3", "--out", tmp_path / "s"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2 and "needs multiples of the smallest count 2, got 3" in proc.stderr, proc.stderr
    assert not (tmp_path / "s").exists()
    assert scaling.weak_overrides(ROOT / "inputs" / "plate.toml", 2, ["mesh.cell=tetrahedron"])[0] == "mesh.nx=240"
    # a case without mesh.lengths (the unit square): the x length grows with nx too, the cells keep their shape
    assert scaling.weak_overrides(ROOT / "inputs" / "reference.toml", 4, []) == ["mesh.nx=1024",
                                                                                 "mesh.lengths=[4.0, 1.0]"]


def _explicit_plate(tmp_path, directory):
    return [str(ROOT / "inputs" / "plate.toml"), "--set", "mesh.nx=8", "--set", "mesh.ny=4", "--set",
            "time.scheme=explicit-euler", "--set", 'time.dt="auto"', "--set", "output.every=4", "--set",
            "checkpoint.every=5", "--set", f"output.directory={directory}", "--quiet"]


def _end(directory):
    with h5py.File(directory / "plate" / "plate.h5", "r") as f:
        return f["time"][-1], f["step"][-1], f["fields/temperature"][sorted(f["fields/temperature"])[-1]][()], \
            f.attrs["status"]


@pytest.mark.parametrize("ranks", [1, 3])
def test_an_automatic_dt_extended_by_a_restart_ends_at_the_new_t_end(tmp_path, ranks):
    """Explicit Euler's dt = "auto" is t_end / n from t = 0: a run extended from its end
    checkpoint took steps of the new t_end's dt from there, and ended short of the new t_end
    (or past it) with exit 0, complete. Its steps are chosen from the checkpoint now; a restart
    of the first run, and of the extension from one of its checkpoints, still continues bit for
    bit."""
    case = _explicit_plate(tmp_path, tmp_path)
    run_solver(ranks, [*case, "--set", "time.t_end=600.0"], cwd=tmp_path)
    reference = _end(tmp_path)
    first = sorted((tmp_path / "plate" / "checkpoints").glob("step_*.h5"))[0]
    run_solver(ranks, [*case, "--set", "time.t_end=600.0", "--restart", str(first)], cwd=tmp_path)
    again = _end(tmp_path)
    assert again[0] == reference[0] == 600.0 and again[1] == reference[1]
    assert np.array_equal(again[2], reference[2])  # the same t_end: the steps from t = 0, bit for bit
    for repeat in range(2):  # the second: at its end already, no step
        args = [a for a in case if a != "--quiet"] + ["--set", "time.t_end=1000.0", "--restart", "latest"]
        proc = run_solver(ranks, args, cwd=tmp_path)
        t, step, field, status = _end(tmp_path)
        assert t == pytest.approx(1000.0, rel=1e-12, abs=0) and status == "complete", (t, proc.stdout)
        if not repeat:
            assert "dt = \"auto\" divides the rest" in proc.stdout and "steps from t = 600" in proc.stdout
    middle = max(c for c in (tmp_path / "plate" / "checkpoints").glob("step_*.h5") if int(c.stem[5:]) < step)
    run_solver(ranks, [*case, "--set", "time.t_end=1000.0", "--restart", str(middle)], cwd=tmp_path)
    t2, step2, field2, status2 = _end(tmp_path)
    assert (t2, step2, status2) == (t, step, "complete") and np.array_equal(field2, field)


@pytest.mark.parametrize("damage, message", [
    ("controller dt not a number", "checkpoint attribute stepper_state.adaptive = "),
    ("controller dt negative", "checkpoint attribute stepper_state.adaptive = "),
    ("controller history too long", "checkpoint attribute stepper_state.adaptive = "),
    ("adaptive_level1 missing", "its stepper_state names the vectors /adaptive_level1, which are missing")])
def test_a_damaged_adaptive_controller_is_refused(tmp_path, damage, message):
    """An adaptive P2 run's checkpoint whose controller dt was changed to "x" ended with exit 1 (an
    internal error), to -1 with exit 3 (a step to a negative time); one without the predictor's
    /adaptive_level1 restarted (exit 0) predicting from the older solution alone."""
    args, results, before, checkpoint = run_to_step_4(tmp_path, "bdf2", 16.0, "--set", "time.dt=adaptive", "--set",
                                                      "element.degree=2", "--set", "mesh.nx=10", "--set",
                                                      "checkpoint.keep=100")
    with h5py.File(checkpoint, "r+") as f:
        state = json.loads(f.attrs["stepper_state"])
        assert len(state["adaptive"]["history_dt"]) == 2 and "adaptive_level2" in f
        if damage == "adaptive_level1 missing":
            del f["adaptive_level1"]
        else:
            state["adaptive"]["dt"] = {"controller dt not a number": "x", "controller dt negative": -1.0}.get(
                damage, state["adaptive"]["dt"])
            if damage == "controller history too long":
                state["adaptive"]["history_dt"] *= 2
            f.attrs["stepper_state"] = json.dumps(state)
    proc = run_solver(2, args + ["--restart", str(checkpoint)], cwd=tmp_path, check=False)
    assert_refused_and_results_kept(proc, message, results, before)


def test_a_restart_names_the_output_times_it_has_passed(tmp_path):
    """output.times given on a restart: a time after the results' last snapshot and not after the
    checkpoint (here the checkpoint's own t = 16 s) was silently never written."""
    case = tmp_path / "ramp.toml"
    case.write_text(re.sub(r"(?m)^every = .*$", "", (ROOT / "inputs" / "heater_ramp.toml").read_text()))
    common = [case, "--set", "mesh.nx=10", "--set", "time.dt=2.0", "--set", "checkpoint.every=4", "--set",
              f"output.directory={tmp_path}", "--set", "time.t_end=40.0", "--quiet"]
    failed = run_mpi_env(1, [*common, "--set", "output.every=3"], tmp_path, {"SOLVER_TEST_FAIL": "0:9"})
    assert failed.returncode != 0, failed.stderr
    proc = run_solver(1, [*common, "--set", "output.times=[16.0, 30.0]", "--restart", "latest"], cwd=tmp_path)
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "the output time t = 16 s, after the results' last snapshot (t = 12 s) and not " \
        "after the checkpoint's t = 16 s this restart continues from, is not written" in warnings[0], proc.stderr
    with h5py.File(tmp_path / "ramp" / "ramp.h5", "r") as f:
        assert f["time"][()].tolist() == [0.0, 6.0, 12.0, 30.0, 40.0]
