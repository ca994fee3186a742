"""How this process was started: under an MPI launcher (mpirun, mpiexec, srun) or not, and
whether mpi4py agrees with the launcher. One list of the launchers' environment variables."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from solver.errors import CaseError

SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")  # number of processes
RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def launched_by_mpi() -> bool:
    """True when an MPI launcher started this process (before MPI is initialised)."""
    return any(v in os.environ for v in SIZE_VARIABLES + RANK_VARIABLES)


def launcher_rank() -> int | None:
    """This process's rank as the launcher numbered it (None when not launched by one); known
    before MPI starts."""
    for var in RANK_VARIABLES:
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return None


def check_launch(comm) -> None:
    """An mpirun of N processes whose mpi4py sees 1 rank: mpi4py built for another MPI."""
    for var in SIZE_VARIABLES:
        value = os.environ.get(var)
        if value and value.isdigit() and int(value) > 1 and comm.size == 1:
            raise CaseError(f"launched as {value} processes ({var}) but mpi4py sees 1 rank: mpi4py was built "
                            f"for another MPI than this mpirun; reinstall it (pip install --no-binary=mpi4py "
                            f"mpi4py) or use the mpirun that matches it")


def mpirun_command(ranks: int) -> list[str] | None:
    """``[mpirun, -n, ranks]``, or None when no launcher is on the PATH."""
    launcher = shutil.which("mpirun") or shutil.which("mpiexec")
    return None if launcher is None else [launcher, "-n", str(ranks)]


def mpirun_environment(ranks: int | None = None) -> dict:
    """This process's environment for a local mpirun of ``ranks`` processes: more ranks than
    cores allowed (they then yield when idle), and Open MPI's consent to run as root where we are
    root; one BLAS/OpenMP thread per rank unless this environment sets one (as the job scripts
    do: threaded BLAS in every rank would oversubscribe the cores); no launcher variables. With
    no more ranks than cores nothing is relaxed: Open MPI
    then binds each rank to a core (allowing oversubscription unbinds them, which costs about 8%
    of a time step on 2 ranks here)."""
    env = {k: v for k, v in os.environ.items() if k not in SIZE_VARIABLES + RANK_VARIABLES}
    relax = {"OMPI_MCA_rmaps_base_oversubscribe": "1", "OMPI_MCA_mpi_yield_when_idle": "1"}
    if ranks is None or ranks > (os.cpu_count() or 1):
        env.update(relax)
    else:  # (make exports them for its oversubscribed tests)
        for key in relax:
            env.pop(key, None)
    if os.geteuid() == 0:
        env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"})
    for key in THREAD_VARIABLES:  # one BLAS/OpenMP thread per rank (unless set): the ranks use the cores
        env.setdefault(key, "1")
    return env


def relaunch(argv, ranks: int) -> int:
    """Run ``python -m solver argv`` under ``mpirun -n ranks`` (before MPI is initialised in this
    process); returns its exit status."""
    launcher = mpirun_command(ranks)
    if launcher is None:
        print(f"{argv[0]}: mpirun not found; use --ranks 1, or start it with your launcher", file=sys.stderr)
        return 2
    return subprocess.run(launcher + [sys.executable, "-m", "solver", *argv], env=mpirun_environment(ranks)).returncode
