"""Names in a run's folder that its writers and its readers share, importable without MPI (the
readers never start it)."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

from solver.errors import CaseError

RUN_LOCK = ".solver.lock"  # a run's lock file ("host pid"): present while the run holds its folder


def run_holds(folder: Path) -> bool:
    """Whether a run may hold ``folder`` now: its lock is a regular file, and not one whose process,
    on this host, is gone (a run killed by SIGKILL leaves its lock), judged as a starting run judges
    it (:func:`stale_lock`). A lock without "host pid" may be one a run is writing: it holds."""
    lock = Path(folder) / RUN_LOCK
    try:
        host, pid = read_lock(lock)
    except CaseError:  # (not a regular file)
        return False
    if not os.path.lexists(lock):
        return False
    return (host, pid) == ("?", "?") or stale_lock(host, pid, lock_start(lock)) is None


def stale_lock(host: str, pid: str, start: str | None) -> str | None:
    """Why the lock of process ``pid`` on ``host`` (started at ``start``: :func:`lock_start`) is
    stale -- its process, on this host, is gone, or its pid is another process's now -- or None
    where it may still be held (another host's run, or a lock that does not name a process)."""
    if host != socket.gethostname() or not (pid.isascii() and pid.isdigit()):
        return None  # (a pid no process can have, 0 or beyond 2^31, is gone: :func:`pid_alive`)
    if not pid_alive(int(pid)):
        return "no longer running"
    if start is not None and process_start(int(pid)) not in (None, start):
        return "gone: its pid is another process's now"
    return None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs on this host (a zombie left unreaped by a container's init counts as gone)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):  # gone, or a pid no process can have
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def process_start(pid: int) -> str | None:
    """When process ``pid`` of this host started, in clock ticks since the boot (/proc/PID/stat), as
    written in a lock beside its pid; None where /proc does not tell. A pid given to another process
    has another start: unlike the wall clock's times, these never move."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def read_lock(path: Path) -> tuple[str, str]:
    """(host, pid) written in a lock file ("?" where unreadable). Only a regular file is read, and
    only its first bytes: a FIFO would block, a link to /dev/zero would never end."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "?", "?"
    if not stat.S_ISREG(mode):
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "a directory" if stat.S_ISDIR(mode) else \
            "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise CaseError(f"{path}: the lock file of this results directory is {kind}; remove it (a run writes "
                        f"its own)")
    words = _lock_words(path)
    if len(words) < 2:
        return "?", "?"
    if words[0].isdigit() and not words[1].isdigit():  # "pid host", written by hand: the same lock
        return words[1], words[0]
    return words[0], words[1]


def _lock_words(path: Path) -> list[str]:
    """The words of a lock file's first bytes (none where it cannot be read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        try:
            return os.read(fd, 256).decode(errors="replace").split()
        finally:
            os.close(fd)
    except OSError:
        return []


def lock_start(path: Path) -> str | None:
    """The start of the process that wrote the lock (:func:`process_start`), its third word "host pid
    start"; None in a lock without it (written by hand, or by an earlier version)."""
    words = _lock_words(path)
    return words[2] if len(words) == 3 and words[1].isdigit() and words[2].isdigit() else None
