"""Shared fixtures: launching the solver and test scripts under mpirun, with a timeout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MPI_SCRIPTS = Path(__file__).resolve().parent / "mpi"
RANKS = [1, 2, 3, 4]


def mpi_env(grace: bool = False) -> dict:
    """The environment of MPI runs in the tests. Open MPI's mpirun waits a second or two before
    it ends a run in which a process failed, even when every process has already left; without
    ``grace`` it ends at once (about 2 s less for each run that tests bad input). Runs whose
    processes are sent signals keep the grace (mpirun forwards SIGTERM and needs it before
    SIGKILL), and so do runs whose ranks die holding the results file (killed, or a full disk
    leaving it open on purpose) when a test reads it next: without it, mpirun returns while a
    killed rank still holds the file's lock."""
    env = dict(os.environ)
    if not grace:
        env["OMPI_MCA_odls_base_sigkill_timeout"] = "0"
    env.update({
        "OMPI_MCA_rmaps_base_oversubscribe": "1",  # 4 ranks on 2 cores
        "OMPI_MCA_btl": "self,vader",  # shared memory only, never the network
        "OMPI_MCA_btl_vader_single_copy_mechanism": "none",  # containers forbid CMA
        "OMPI_MCA_oob_tcp_if_include": "lo",
        "OMPI_MCA_mpi_yield_when_idle": "1",  # oversubscribed ranks yield instead of spinning (srun too)
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",  # one BLAS thread per rank: threaded BLAS stalls oversubscribed ranks
        "OPENBLAS_NUM_THREADS": "1",
    })
    if os.geteuid() == 0:
        env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"})
    return env


def mpirun_command(nprocs: int) -> list[str]:
    launcher = shutil.which("mpirun") or shutil.which("mpiexec")
    if launcher is None:
        pytest.fail("mpirun not found: run `make test` (it installs MPI) or load your MPI module")
    return [launcher, "-n", str(nprocs)]


def run_mpi(nprocs: int, args: list[str], cwd: Path | None = None, timeout: float = 120,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python args...`` on ``nprocs`` ranks; fail the test on timeout (a hang)."""
    cmd = mpirun_command(nprocs) + [sys.executable] + [str(a) for a in args]
    try:
        proc = subprocess.run(cmd, cwd=cwd or ROOT, env=mpi_env(), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"timed out after {timeout} s (hang?): {' '.join(cmd)}\n{exc.stdout}\n{exc.stderr}")
    if check and proc.returncode != 0:
        pytest.fail(f"exit {proc.returncode}: {' '.join(cmd)}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def run_solver(nprocs: int, args: list[str], cwd: Path, timeout: float = 120, check: bool = True):
    return run_mpi(nprocs, ["-m", "solver", *args], cwd=cwd, timeout=timeout, check=check)


def one_error(proc: subprocess.CompletedProcess, status: int) -> str:
    """The one ``error:`` line of a run that ended with ``status`` (else the test fails)."""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == status and len(errors) == 1, proc.stderr
    return errors[0]


def run_script(nprocs: int, name: str, *args, timeout: float = 300) -> dict:
    """Run tests/mpi/<name> under MPI; it prints one JSON line (rank 0) with its findings."""
    proc = run_mpi(nprocs, [MPI_SCRIPTS / name, *args], timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no result from {name}:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1])


@pytest.fixture(params=RANKS, ids=lambda n: f"np{n}")
def nprocs(request) -> int:
    return request.param


@pytest.fixture(autouse=True)
def _kernels_on():
    """Each test starts with the compiled kernels enabled (a small problem built in process by an
    earlier test records the NumPy path for the linear algebra: solver.compiled.use_kernels)."""
    import solver.compiled

    solver.compiled.use_kernels(True)
    yield
