"""Files whose writes failed, kept open until the process ends (light: no MPI, no h5py), for the
runs' writers (:mod:`solver.io.blockfile`) and the commands that write HDF5 files (``export``)."""

from __future__ import annotations

_PARKED: list = []  # files whose writes failed, kept open to the end (see park)


def park(file) -> None:
    """Keep a file whose writes failed open until the process ends: closing it would make HDF5
    retry them, print errors, and crash at exit (the command line then ends the process with
    :func:`os._exit`, see :func:`parked`)."""
    _PARKED.append(file)


def parked() -> bool:
    """True when some file could not be written and was kept open (see :func:`park`)."""
    return bool(_PARKED)
