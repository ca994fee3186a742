"""The run's exit status for the job scripts: one line, ``STATUS WORD [message]``, in the file
``$SOLVER_STATUS_FILE`` names, written by rank 0. A launcher may report another status for the
same run (Open MPI's mpirun returns 1 after a SIGTERM even when every rank stopped cleanly with
75), and the batch scripts in ``jobs/`` trust this file.

Kept free of heavy imports: a stop signal during start-up records its status from here before
MPI has started (:mod:`solver.app.signals`), so that a launcher that kills the ranks soon after
(mpirun: 2 x ``odls_base_sigkill_timeout``) still leaves the status behind.
"""

import contextlib
import os
import stat
import sys

STATUS_FILE = "SOLVER_STATUS_FILE"
STOPPED = 75  # solver.errors.EXIT_STOPPED


def launch_rank() -> int:
    """This process's rank as its launcher tells it, before MPI starts (0 when not launched): the
    MPI launcher's variables (:func:`solver.parallel.launcher.launcher_rank`), else srun's
    SLURM_PROCID (every process that mpirun starts inside a batch step inherits it as 0)."""
    from solver.parallel.launcher import launcher_rank

    rank = launcher_rank()
    if rank is None:
        value = os.environ.get("SLURM_PROCID", "")
        rank = int(value) if value.isdigit() else 0
    return rank


def _own_descriptor(path: str) -> int | None:
    """The descriptor of this process that ``path`` names (/dev/stdout, /dev/fd/2,
    /proc/self/fd/1), else None. Reopening it would write at an offset of its own, under what the
    job's shell writes next to the same log."""
    path = os.path.abspath(path)
    named = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}.get(path)
    for prefix in ("/dev/fd/", "/proc/self/fd/"):
        if path.startswith(prefix) and path[len(prefix):].isdigit():
            named = int(path[len(prefix):])
    return named


def record(status: int, message: str = "") -> None:
    """Write ``status`` (with ``complete``, ``stopped`` or ``failed`` and the first line of
    ``message``) to $SOLVER_STATUS_FILE, when it is set; call on rank 0 only. A regular file (or a
    new one) is replaced atomically, through a symbolic link its target; a stream named under /dev
    or /proc (/dev/stdout, /dev/fd/2: a terminal, or a job's log they are redirected to) and a
    character device are appended to in place; any other kind of file is left alone, with a
    warning."""
    path = os.environ.get(STATUS_FILE)
    if not path:
        return
    words = {0: "complete", STOPPED: "stopped"}.get(status, "failed")
    line = f"{status} {words} {message.splitlines()[0] if message else ''}".rstrip() + "\n"
    from solver.case.inputfiles import holds_hdf5  # light: os and stat

    target, problem = os.path.realpath(path), "not a regular file"
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = stat.S_IFREG
    except OSError as exc:
        mode, problem = None, exc.strerror
    stream = os.path.abspath(path).startswith(("/dev/", "/proc/"))  # never replaced: a redirected log with it
    descriptor = _own_descriptor(path)
    try:
        if descriptor is not None:  # through the descriptor: its offset is the shell's too
            os.write(descriptor, line.encode())
        elif mode is not None and (stat.S_ISCHR(mode) or stream):
            with open(path, "a") as f:
                f.write(line)
        elif mode is not None and stat.S_ISREG(mode) and holds_hdf5(target):
            raise OSError(0, "an HDF5 file (results?), which a status would replace")
        elif mode is not None and stat.S_ISREG(mode):
            tmp = f"{target}.tmp{os.getpid()}"
            try:
                with open(tmp, "w") as f:
                    f.write(line)
                os.replace(tmp, target)
            except OSError as exc:
                with contextlib.suppress(OSError):  # a full disk: no empty file left behind
                    os.unlink(tmp)
                with contextlib.suppress(OSError):  # nor an earlier status (75 at start-up) read as this one's
                    if os.path.isfile(target):
                        os.unlink(target)
                        exc.strerror = f"{exc.strerror}; the earlier status in it is removed"
                raise
        else:
            raise OSError(0, problem)
    except OSError as exc:
        print(f"warning: cannot write the status file {path} ({exc.strerror})", file=sys.stderr, flush=True)

