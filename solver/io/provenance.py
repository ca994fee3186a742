"""Where a results file comes from: the format version, when and where it was made, the command
line, and the versions of the solver, its libraries, HDF5 and the MPI library (rank 0)."""

from __future__ import annotations

import datetime
import functools
import socket
import subprocess
import sys
from pathlib import Path

FORMAT_VERSION = 1  # of the results file's layout


@functools.lru_cache(maxsize=None)
def git_commit(path: Path = Path(__file__).resolve().parents[2]) -> str:
    """The commit of the solver's checkout, with "-dirty" for local changes; "" outside git. Once
    per process (the code it runs was loaded at its start): a study writes its group files every
    few seconds, and each write ran ``git`` twice."""
    if not (path / ".git").exists():
        return ""
    try:
        commit = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return commit + ("-dirty" if commit and dirty else "")


def provenance() -> dict:
    import h5py
    import mpi4py
    import numpy
    import scipy
    from mpi4py import MPI

    from solver import __version__

    return {"format_version": FORMAT_VERSION,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": socket.gethostname(), "command_line": " ".join(sys.argv),
            "solver_version": __version__, "git_commit": git_commit(),
            "python_version": sys.version.split()[0], "numpy_version": numpy.__version__,
            "scipy_version": scipy.__version__, "h5py_version": h5py.__version__,
            "hdf5_version": h5py.version.hdf5_version, "mpi4py_version": mpi4py.__version__,
            "mpi_library": MPI.Get_library_version().replace("\x00", "").strip().splitlines()[0]}
