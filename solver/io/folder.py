"""Names in a run's folder that its writers and its readers share, importable without MPI (the
readers never start it)."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

RUN_LOCK = ".solver.lock"  # a run's lock file ("host pid"): present while the run holds its folder


def run_holds(folder: Path) -> bool:
    """Whether a run may hold ``folder`` now: its lock is a regular file, and not one whose process,
    on this host, is gone (a run killed by SIGKILL leaves its lock)."""
    lock = Path(folder) / RUN_LOCK
    try:
        if not stat.S_ISREG(os.lstat(lock).st_mode):
            return False
        fd = os.open(lock, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        try:
            words = os.read(fd, 256).decode(errors="replace").split()
        finally:
            os.close(fd)
    except OSError:
        return False
    if len(words) < 2 or not words[1].isdigit() or words[0] != socket.gethostname():
        return True  # (another host's run, or a lock this reader cannot judge: it may hold the folder)
    try:
        os.kill(int(words[1]), 0)
    except (ProcessLookupError, OverflowError, ValueError):  # gone, or a pid no process can have
        return False
    except PermissionError:  # (another user's process)
        return True
    return True
