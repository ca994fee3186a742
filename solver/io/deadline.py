"""A time bound on every collective write, so that a write that parts the ranks ends the run
instead of hanging it.

The writers keep the ranks in step around HDF5's collective operations (see
:func:`solver.io.blockfile.write_or_fail`), but inside one of them the MPI-IO driver may fail on
some ranks only: a disk that another program fills while the ranks write, or a file system that
stalls. HDF5 then leaves those ranks on one collective call and the others on another, and no
Python code runs on the main thread again. A timer thread still runs there (h5py and mpi4py
release the interpreter while they wait), so each write is bounded: past
``output.write_timeout`` seconds, plus one second for every :data:`BYTES_PER_SECOND` the write
takes, rank 0 prints one line, records the exit status, releases the results' lock and ends the
process with :data:`solver.errors.EXIT_OUTPUT`; the launcher then ends the others. The other
ranks end themselves :data:`GRACE` seconds later should the launcher not. What the results file
lists stays valid (snapshots are listed only once written), an unfinished checkpoint is a
``.tmp`` file that a restart ignores, and ``--restart latest`` goes on from the last checkpoint.

Costs a timer thread per write (tens of microseconds): nothing beside a write of a field.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from solver.errors import EXIT_OUTPUT

DEFAULT_SECONDS = 60.0
BYTES_PER_SECOND = 20e6  # a slow shared file system's rate per write: a large write gets more time
GRACE = 5.0  # seconds the other ranks leave rank 0 to give its line first

_state = {"seconds": DEFAULT_SECONDS, "rank": 0}
_at_expiry: list[Callable[[str], None]] = []


def configure(seconds: float, rank: int) -> None:
    """Bound every later write by ``seconds`` (0: unbounded) plus its size's share; ``rank``: this
    process's rank (rank 0 speaks)."""
    _state["seconds"], _state["rank"] = float(seconds), rank


def at_expiry(action: Callable[[str], None]) -> Callable[[], None]:
    """Run ``action(message)`` on rank 0 when a write expires, before the process ends (the exit
    status record, the lock's release); returns the function that withdraws it."""
    _at_expiry.append(action)
    return lambda: _at_expiry.remove(action) if action in _at_expiry else None


def limit(nbytes: int) -> float:
    """Seconds a write of ``nbytes`` may take (0: unbounded)."""
    seconds = _state["seconds"]
    return seconds + max(nbytes, 0) / BYTES_PER_SECOND if seconds else 0.0


@contextmanager
def bounded(path: Path, what: str, nbytes: int = 0):
    """The body (a collective write of ``what`` to ``path``) ends the process if it has not
    finished within :func:`limit` seconds."""
    seconds = limit(nbytes)
    if not seconds:
        yield
        return
    late = 0.0 if _state["rank"] == 0 else GRACE
    timer = threading.Timer(seconds + late, _expire, args=(path, what, seconds))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _what_is_kept(path: Path, what: str) -> str:
    """The advice after a write that expired: what stays, and how to go on."""
    if what == "the mesh":
        return "no snapshot was written: free space, then run again (with --overwrite if a results file is left)"
    if Path(path).name.endswith((".study.h5", ".study.h5.tmp")) or "study" in what or "group" in what:
        return "the samples recorded before are kept: free space, then continue the study with --restart latest"
    folder = Path(path).parent if Path(path).parent.name == "checkpoints" else Path(path).parent / "checkpoints"
    try:  # (a checkpoint left by the run: one to continue from)
        checkpoint = any(c.is_file() for c in folder.glob("step_*.h5"))
    except OSError:
        checkpoint = True
    if not checkpoint:
        return "the results keep their listed snapshots; no checkpoint was written yet: free space, then run again " \
            "with --overwrite"
    return "the results keep their listed snapshots; free space, then continue with --restart latest"


def _expire(path: Path, what: str, seconds: float) -> None:
    """The write did not finish in time: rank 0 says so and records it; every rank ends."""
    if _state["rank"] == 0:
        message = (f"{path}: cannot write {what}: the write did not finish on every rank within {seconds:.0f} s "
                   f"(output.write_timeout; a disk that filled during it, or a stalled file system); "
                   f"{_what_is_kept(path, what)}")
        try:
            print(f"error: {message}", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass
        for action in list(_at_expiry):
            try:
                action(message)
            except Exception:  # noqa: BLE001 - the process ends whatever fails here
                pass
    os._exit(EXIT_OUTPUT)
