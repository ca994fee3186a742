"""Rank-aware logging through the standard :mod:`logging` module, and the progress display.

* The ``solver`` logger: modules log to ``logging.getLogger(__name__)``. Messages that every rank
  logs alike are printed once, by rank 0: INFO to stdout (silenced by ``--quiet``), WARNING and
  above to stderr.
* A warning that only some ranks see is logged with ``extra=LOCAL``: it reaches stderr from
  whichever rank logs it, prefixed with its rank.
* :func:`attach_file`: the run's log file (rank 0), every message with a timestamp and its level,
  progress lines included.
* :class:`Progress`: on a terminal a bar redrawn in place, otherwise a plain line every few
  percent (batch jobs, pipes).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from solver.parallel.launcher import launched_by_mpi

LOGGER = "solver"
LOCAL = {"local": True}  # extra= for a warning of this rank only
PROGRESS = {"progress": True}  # extra= for a progress line (log file only)
def say(text: str = "", stream=None, end: str = "\n") -> None:
    """Print to ``stream`` (stdout) and flush; a reader that went away (``| head``, a dead ``tee``)
    sends the rest to /dev/null: the run goes on, its log file keeps everything. So does a console
    that cannot be written (a file on a full disk) while a run's log file is open, with one
    warning; without a log file (a study, verify, bench) the error is raised."""
    stream = stream or sys.stdout
    try:
        stream.write(text + end)
        stream.flush()
    except OSError as exc:
        if not isinstance(exc, BrokenPipeError) and _file is None:
            raise  # (the command line ends the command with 74)
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        except (OSError, ValueError):
            pass
        if not isinstance(exc, BrokenPipeError):
            which = "standard error" if stream is sys.stderr else "the console output"
            warning = f"warning: cannot write {which} ({exc.strerror or exc}); the log file goes on"
            to_file(logging.WARNING, warning)
            if stream is not sys.stderr:
                say(warning, sys.stderr)


class _Console(logging.Handler):
    """Rank 0: INFO to ``stream`` (unless quiet), WARNING and above to stderr; other ranks: their
    local warnings only. Ends a progress bar's line before printing."""

    def __init__(self, rank: int, quiet: bool, stream):
        super().__init__(logging.DEBUG)
        self.rank, self.quiet, self.stream = rank, quiet, stream
        self.bar_drawn = False

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "progress", False):
            return
        local = getattr(record, "local", False)
        if self.rank != 0 and not (local and record.levelno >= logging.WARNING):
            return
        warning = record.levelno >= logging.WARNING
        if self.quiet and not warning:
            return
        if self.bar_drawn:
            say(stream=self.stream)
            self.bar_drawn = False
        message = record.getMessage()
        if self.rank != 0:
            message = f"rank {self.rank}: {message}"
        say(message, sys.stderr if warning else self.stream)


_console: _Console | None = None
_file: logging.Handler | None = None


def setup(comm, quiet: bool = False, stream=None) -> logging.Logger:
    """(Re)configure the ``solver`` logger for this rank; returns it."""
    global _console
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if _console is not None:
        logger.removeHandler(_console)
    _console = _Console(comm.rank, quiet, stream or sys.stdout)
    logger.addHandler(_console)
    return logger


class _LogFile(logging.FileHandler):
    """The run's log file; a write that fails (a full disk) stops the file logging with one
    warning on the console instead of a traceback per message. Its close never raises: the lines
    a full disk refused stay in the stream's buffer, and closing flushes them again."""

    failed = False

    def handleError(self, record: logging.LogRecord | None) -> None:  # noqa: N802 - logging's name
        logger = logging.getLogger(LOGGER)
        logger.removeHandler(self)
        if not self.failed:
            self.failed = True
            logger.warning(f"warning: cannot write the log file {self.baseFilename}; logging to the console only")

    def close(self) -> None:
        try:
            super().close()  # (the stream is dropped, and its descriptor closed, even when the flush fails)
        except OSError:
            self.handleError(None)


def attach_file(path: Path, rank: int) -> None:
    """Log to ``path`` too (rank 0; appended: a restarted run continues its log)."""
    global _file
    detach_file()
    if rank == 0:
        try:
            _file = _LogFile(path, mode="a", encoding="utf-8")
        except OSError as exc:  # a full disk (or inode table): the run goes on, its writes say what is wrong
            logging.getLogger(LOGGER).warning(f"warning: cannot create the log file {path} ({exc.strerror}); "
                                              f"logging to the console only")
            return
        _file.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%d %H:%M:%S"))
        logging.getLogger(LOGGER).addHandler(_file)


def to_file(level: int, message: str) -> None:
    """A line for the log file only (the console has it otherwise: a run's error line, printed
    by the command line once the run has ended)."""
    if _file is not None:
        _file.handle(logging.LogRecord(LOGGER, level, __file__, 0, message, None, None))


def detach_file() -> None:
    global _file
    if _file is not None:
        logging.getLogger(LOGGER).removeHandler(_file)
        _file.close()
        _file = None


def _is_terminal(stream) -> bool:
    """True when progress should be drawn in place. Under mpirun the ranks' stdout is a
    pseudo-terminal even when mpirun's own output goes to a file or pipe, so ask what the
    launcher's stdout is (Linux /proc); when unknown, assume not a terminal."""
    if not (hasattr(stream, "isatty") and stream.isatty()):
        return False
    if not launched_by_mpi():
        return True
    try:
        target = os.readlink(f"/proc/{os.getppid()}/fd/1")
    except OSError:
        return False
    return target.startswith(("/dev/pts/", "/dev/tty"))


def hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass(frozen=True)
class ProgressPoint:
    """Where a run stands after a step (steps counted since its start or restart)."""

    step: int
    n_steps: int | None  # None: adaptive steps
    t: float
    iterations: int
    residual: float
    imbalance: float  # the heat balance's relative imbalance
    elapsed: float  # seconds
    fraction: float | None = None  # of the simulated time (adaptive steps), else of the steps


class Progress:
    """Progress of a time loop on rank 0: a bar with ETA on a terminal, else a plain line when
    ``periodic``; periodic lines also go to the log file."""

    def __init__(self, comm, quiet: bool = False):
        self.root, self.quiet = comm.rank == 0, quiet
        self.stream = _console.stream if _console is not None else sys.stdout
        self.tty = self.root and _is_terminal(self.stream)
        self.log = logging.getLogger(LOGGER)

    def __call__(self, p: ProgressPoint, periodic: bool) -> None:
        """Show where a run stands (a plain line when ``periodic``, or the bar on a terminal)."""
        if not self.root:
            return
        step, n_steps, t, iterations, elapsed = p.step, p.n_steps, p.t, p.iterations, p.elapsed
        fraction = p.fraction
        if fraction is None:
            fraction = step / max(n_steps or 1, 1)
        eta = elapsed / max(fraction, 1e-12) * (1.0 - fraction) if fraction > 0 else 0.0
        of = f"/{n_steps}" if n_steps is not None else ""
        line = (f"step {step:6d}{of}  t = {t:.6g}  iterations {iterations:4d}  residual {p.residual:.2e}  "
                f"heat imbalance {p.imbalance:.1e}  elapsed {hms(elapsed)}  ETA {hms(eta)}")
        if periodic:
            self.log.info(line, extra=PROGRESS)
        if self.quiet:
            return
        finished = fraction >= 1.0 - 1e-12
        if self.tty:
            width = 30
            done = int(width * fraction)
            bar = "#" * done + "-" * (width - done)
            say(f"\r[{bar}] {100 * fraction:5.1f}%  t = {t:.4g}  it {iterations:3d}  "
                f"elapsed {hms(elapsed)}  ETA {hms(eta)} ", self.stream, end="")
            if _console is not None:
                _console.bar_drawn = not finished
            if finished:
                say(stream=self.stream)
        elif periodic:
            say(line, self.stream)
