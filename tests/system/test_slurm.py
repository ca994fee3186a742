"""The batch scripts in jobs/, submitted with sbatch to a real SLURM cluster of two nodes that
these tests start on the loopback interface (tests/slurm_cluster.py) and stop afterwards."""

from __future__ import annotations

import csv
import json
import sys
import warnings

import h5py
import numpy as np
import pytest
from conftest import ROOT, mpi_env, run_solver
from slurm_cluster import LocalSlurm, unavailable_reason

JOBS = ROOT / "jobs"
CASE = ROOT / "inputs" / "plate.toml"
SMALL = ["mesh.nx=40", "mesh.ny=20", "time.t_end=300.0"]


def sets(*pairs):
    return [a for kv in pairs for a in ("--set", kv)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        warnings.warn(f"SLURM TESTS SKIPPED: {reason}")
        pytest.skip(f"SLURM TESTS SKIPPED: {reason}")
    c = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    c.start()
    yield c
    c.stop()


def datasets(path) -> dict:
    """Every dataset of an HDF5 file by name (attributes such as wall times left out)."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same_results(a, b):
    da, db = datasets(a), datasets(b)
    assert sorted(da) == sorted(db)
    for name in da:
        floats = np.asarray(da[name]).dtype.kind == "f"  # /steps/error is NaN with a fixed dt
        assert np.array_equal(da[name], db[name], equal_nan=floats), name


def job_env(**extra):
    return {**mpi_env(grace=True), **extra}


def submit_and_wait(cluster, args, timeout, **env):
    job = cluster.sbatch(args, cwd=ROOT, env=job_env(**env))
    return job, cluster.wait(job, timeout)


@pytest.mark.parametrize("launcher, ntasks", [("srun", 2), ("srun", 4), ("mpirun", 4)])
def test_run_slurm_gives_the_results_of_a_direct_mpirun(cluster, tmp_path, launcher, ntasks):
    log = tmp_path / "job.out"
    job, info = submit_and_wait(cluster, [f"--ntasks={ntasks}", f"--output={log}", JOBS / "run.slurm", CASE,
                                          *sets(*SMALL, f"output.directory={tmp_path / 'job'}")],
                                120, LAUNCHER=launcher)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", log.read_text()
    text = log.read_text()
    assert f"on {ntasks} ranks" in text and ("srun --mpi=pmix" if launcher == "srun" else "mpirun -n") in text
    run_solver(ntasks, [CASE, *sets(*SMALL, f"output.directory={tmp_path / 'direct'}"), "--quiet"], cwd=tmp_path)
    assert_same_results(tmp_path / "job" / "plate" / "plate.h5", tmp_path / "direct" / "plate" / "plate.h5")


TWO_NODES = {"LAUNCHER": "mpirun", "OMPI_MCA_btl": "self,tcp", "OMPI_MCA_btl_tcp_if_include": "lo"}


def test_nodes_slurm_runs_over_two_nodes_into_a_shared_directory(cluster, tmp_path):
    """jobs/nodes.slurm on 2 nodes x 2 tasks, results under RESULTS: the results of a direct
    4-rank mpirun. The two nodes of the test cluster are one machine: Open MPI reaches the
    other node's ranks over TCP on the loopback, as it would reach another node, and mpirun is
    the launcher (srun's PMIx plugin keeps its directories in /tmp by job step, which two node
    daemons on one machine would share); it has no binding plugin either (BIND empty)."""
    log = tmp_path / "job.out"
    job, info = submit_and_wait(cluster, ["--nodes=2", "--ntasks-per-node=2", f"--output={log}",
                                          JOBS / "nodes.slurm", CASE, *sets(*SMALL)],
                                180, RESULTS=str(tmp_path / "shared"), BIND="", NUMBA_CACHE_DIR=str(tmp_path / "cache"),
                                **TWO_NODES)
    text = log.read_text()
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", text
    assert "2 nodes (node[1-2]), 4 ranks" in text, text
    assert "mpirun -n 4 --map-by core" in text
    run_solver(4, [CASE, *sets(*SMALL, f"output.directory={tmp_path / 'direct'}"), "--quiet"], cwd=tmp_path)
    assert_same_results(tmp_path / "shared" / "plate" / "plate.h5", tmp_path / "direct" / "plate" / "plate.h5")


def test_run_slurm_refuses_a_missing_case_argument(cluster, tmp_path):
    log = tmp_path / "job.out"
    job, info = submit_and_wait(cluster, ["--ntasks=1", f"--output={log}", JOBS / "run.slurm"], 60)
    assert info["JobState"] == "FAILED" and info["ExitCode"] == "2:0"
    assert "usage: sbatch jobs/run.slurm CASE.toml" in log.read_text()


def test_requeue_slurm_continues_past_the_time_limit(cluster, tmp_path):
    """A 1-minute limit with the signal 45 s ahead, and a case that needs about 50 s: the first
    segment stops with a checkpoint on SIGUSR1 (15-45 s in: SLURM checks every 30 s, so it may
    signal early, never late), the job requeues itself and the next segments finish from the
    checkpoint, bit for bit as an uninterrupted run."""
    log = tmp_path / "job.out"
    case = sets("mesh.nx=40", "mesh.ny=20", "time.t_end=840.0", "output.every=30")
    job, info = submit_and_wait(
        cluster, ["--ntasks=2", "--time=1", "--signal=B:USR1@45", f"--output={log}", JOBS / "requeue.slurm", CASE,
                  *case, "--set", f"output.directory={tmp_path / 'job'}", "--quiet"],
        420, SOLVER_TEST_STEP_DELAY="0.3")  # 168 steps of 0.3 s: little CPU
    text = log.read_text()
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", text
    assert int(info["Restarts"]) >= 1 and "segment 2" in text, text
    assert "SIGUSR1 from SLURM" in text and "stopping at step" in text and "--restart latest" in text, text
    # SLURM's own daemon may add a line after the script ends (a signal due as the job completed
    # finds no process to signal): the script's last line is the one judged.
    ours = [line for line in text.splitlines() if line.strip() and not line.startswith("slurmstepd")]
    assert "status 0" in ours[-1], text
    run_solver(2, [CASE, *case, "--set", f"output.directory={tmp_path / 'direct'}", "--quiet"], cwd=tmp_path)
    with h5py.File(tmp_path / "job" / "plate" / "plate.h5", "r") as a, \
            h5py.File(tmp_path / "direct" / "plate" / "plate.h5", "r") as b:
        assert a.attrs["complete"] and a.attrs["steps"] == b.attrs["steps"] == 168
        assert np.array_equal(a["time"][()], b["time"][()])
        last = sorted(b["fields/temperature"])[-1]
        assert np.array_equal(a["fields/temperature"][last][()], b["fields/temperature"][last][()])


def test_scaling_driver_writes_csv_and_plot(cluster, tmp_path):
    import subprocess

    out = tmp_path / "scaling"
    cmd = [sys.executable, JOBS / "scaling.py", "submit", CASE, "--ranks", "1", "2", "4", "--kind", "strong", "weak",
           "--out", out, "--wait", "--timeout", "300", *sets(*SMALL)]
    proc = subprocess.run([str(c) for c in cmd], cwd=ROOT, env={**job_env(), **cluster.env_overrides},
                          capture_output=True, text=True, timeout=360)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out / "scaling.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["kind"], int(r["ranks"])) for r in rows] == [(k, n) for k in ("strong", "weak") for n in (1, 2, 4)]
    strong = [r for r in rows if r["kind"] == "strong"]
    weak = [r for r in rows if r["kind"] == "weak"]
    assert len({r["dofs"] for r in strong}) == 1 and float(strong[0]["speedup"]) == 1.0
    cells = [int(r["cells"]) for r in weak]
    assert cells == [cells[0], 2 * cells[0], 4 * cells[0]]  # the same cells per rank
    for r in rows:
        assert float(r["wall_total"]) > 0 and 0 < float(r["efficiency"]) < 2 and int(r["steps"]) == 60
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "speed-up" in proc.stdout


def test_scaling_driver_sweeps_nodes(cluster, tmp_path):
    """--nodes 1 2 --ntasks-per-node 2: jobs of 2 and 4 ranks, on one node and on two."""
    import subprocess

    out = tmp_path / "nodes"
    cmd = [sys.executable, JOBS / "scaling.py", "submit", CASE, "--nodes", "1", "2", "--ntasks-per-node", "2",
           "--kind", "strong", "--out", out, "--wait", "--timeout", "300", *sets(*SMALL)]
    proc = subprocess.run([str(c) for c in cmd], cwd=ROOT, env={**job_env(**TWO_NODES), **cluster.env_overrides},
                          capture_output=True, text=True, timeout=360)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out / "scaling.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["ranks"]) for r in rows] == [2, 4] and float(rows[0]["speedup"]) == 2.0
    jobs = json.loads((out / "jobs.json").read_text())["jobs"]
    nodes = [cluster.job(j["job"])["NodeList"] for j in jobs]
    assert nodes[0] in ("node1", "node2") and nodes[1] == "node[1-2]", nodes


@pytest.mark.parametrize("launcher, targets", [("mpirun", ["--full"]), ("srun", [])])
def test_requeue_slurm_continues_after_a_sigterm(cluster, tmp_path, launcher, targets):
    """SIGTERM from scancel: with mpirun (inside the batch step) to every process of the job
    (--full), after which mpirun returns 1 although the ranks stopped with a checkpoint and
    recorded 75; with srun to the step's tasks (srun itself would cancel the step on SIGTERM).
    Either way the script requeues on the recorded status and the next segment finishes."""
    import time

    log = tmp_path / "job.out"
    out = tmp_path / "job"
    case = sets("mesh.nx=40", "mesh.ny=20", "time.t_end=150.0", "output.every=4")
    job = cluster.sbatch(["--ntasks=2", f"--output={log}", JOBS / "requeue.slurm", CASE, *case,
                          "--set", f"output.directory={out}", "--quiet"], cwd=ROOT,
                         env=job_env(LAUNCHER=launcher, SOLVER_TEST_STEP_DELAY="0.2"))  # 30 steps of 0.2 s
    results = out / "plate" / "plate.h5"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with h5py.File(results, "r", locking=False) as f:
                if len(f["time"]) >= 3:
                    break
        except (OSError, KeyError):
            pass
        time.sleep(0.5)
    cluster.run(["scancel", "--signal=TERM", *targets, str(job)])
    info = cluster.wait(job, 300)
    text = log.read_text()
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", text
    assert int(info["Restarts"]) >= 1 and "segment 2" in text, text
    with h5py.File(results, "r") as f:
        assert f.attrs["complete"] and f.attrs["steps"] == 30
    assert not list(ROOT.glob(f".solver-status.{job}")), "the status file was left behind"


def test_requeue_slurm_starts_again_after_a_sigterm_during_start_up(cluster, tmp_path):
    """SIGTERM to every process of a job (scancel --full) while the first segment's ranks start up
    (a start-up longer than mpirun's grace, which the script sets to a third of the cluster's
    KillWait of 10 s): mpirun kills the ranks before their first step, but rank 0 has recorded
    status 75 "before the first step" at once; the script requeues the job and the next segment
    starts again from the beginning (there is no checkpoint) and finishes."""
    import time

    log = tmp_path / "job.out"
    out = tmp_path / "job"
    case = sets("mesh.nx=40", "mesh.ny=20", "time.t_end=60.0", "output.every=4")
    job = cluster.sbatch(["--ntasks=2", f"--output={log}", JOBS / "requeue.slurm", CASE, *case,
                          "--set", f"output.directory={out}", "--quiet"], cwd=ROOT,
                         env=job_env(LAUNCHER="mpirun", SOLVER_TEST_START_DELAY="8"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "segment 1 on" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.3)
    time.sleep(2.0)  # the ranks are in their (lengthened) start-up
    cluster.run(["scancel", "--signal=TERM", "--full", str(job)])
    info = cluster.wait(job, 300)
    text = log.read_text()
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", text
    assert "the solver recorded status 75" in text and "stopped before its first step" in text, text
    assert "segment 2" in text and "--overwrite" in text.split("segment 2", 1)[1], text
    with h5py.File(out / "plate" / "plate.h5", "r") as f:
        assert f.attrs["complete"] and f.attrs["steps"] == 12
    assert not list(ROOT.glob(f".solver-again.{job}")) and not list(ROOT.glob(f".solver-status.{job}"))


def test_study_slurm_continues_a_stopped_study_after_a_sigterm(cluster, tmp_path):
    """jobs/study.slurm: scancel's SIGTERM stops the study at a sample boundary (exit 75 recorded),
    the job requeues itself, and the next segment runs only the samples left."""
    import time

    log = tmp_path / "job.out"
    base = (ROOT / "inputs" / "plate.toml").read_text()  # 40 x 20 cells, 30 steps of 5 s
    for key, value in (("nx = 120", "nx = 40"), ("ny = 60", "ny = 20"), ("t_end = 1800.0", "t_end = 150.0"),
                       ('directory = "outputs"', f'directory = "{tmp_path / "out"}"')):
        assert key in base
        base = base.replace(key, value)
    (tmp_path / "base.toml").write_text(base)
    study = tmp_path / "mc.toml"
    study.write_text('[study]\ncase = "base.toml"\nsamples = 8\nseed = 3\n[parameters]\n'
                     '"boundary.right.h" = { distribution = "uniform", low = 10.0, high = 40.0 }\n')
    # samples of about 2 s: mpirun passes scancel's SIGTERM on after odls_base_sigkill_timeout (a third
    # of the cluster's KillWait: 3 s), which a study of shorter samples would outrun
    job = cluster.sbatch(["--ntasks=2", f"--output={log}", JOBS / "study.slurm", study, "--ranks-per-case", "1"],
                         cwd=ROOT, env=job_env(LAUNCHER="mpirun", SOLVER_TEST_STEP_DELAY="0.06"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "sample " not in (log.read_text() if log.exists() else ""):
        time.sleep(0.3)
    cluster.run(["scancel", "--signal=TERM", "--full", str(job)])
    info = cluster.wait(job, 300)
    text = log.read_text()
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", text
    assert int(info["Restarts"]) >= 1 and "segment 2" in text and "recorded status 75" in text, text
    with h5py.File(tmp_path / "out" / "mc" / "mc.study.h5", "r") as f:
        assert f.attrs["status"] == "complete" and np.all(f["samples/status"][()] == 0)
    assert "to run on 2 groups of 1 rank (restart from" in text  # segment 2 ran only the samples left
