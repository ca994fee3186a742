"""When to checkpoint and when to stop: signals, a wall-time limit, and a checkpoint cadence,
agreed on by all ranks with one small Allreduce per step (the march's vote,
:class:`solver.heat.march.StepVote`, which carries the ranks' health in the same reduction).

SIGTERM, SIGINT, SIGUSR1 and SIGHUP ask for a graceful stop: at the next step boundary every rank
writes the checkpoint, the results file is closed and the run exits with EXIT_STOPPED. A second
SIGINT stops at once. ``run.wall_limit`` (default: the SLURM job's end time) stops the same way
when the next step and a checkpoint might not fit in the time left.
"""

from __future__ import annotations

import faulthandler
import math
import os
import signal
import sys
import subprocess
import time

import numpy as np
from mpi4py import MPI

from solver.app import signals as early_signals
from solver.heat.march import StepVote, Votes

SAFETY = 5.0  # seconds kept in hand before a wall limit


def slurm_time_left() -> float | None:
    """Seconds until the SLURM job's end time, if running under SLURM and it is known."""
    if "SLURM_JOB_ID" not in os.environ:
        return None
    end = os.environ.get("SLURM_JOB_END_TIME")
    if end is None:
        try:
            out = subprocess.run(["squeue", "-h", "-j", os.environ["SLURM_JOB_ID"], "-o", "%e"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
            end = time.mktime(time.strptime(out, "%Y-%m-%dT%H:%M:%S")) if out else None
        except (OSError, ValueError, subprocess.SubprocessError):
            return None
    try:
        left = float(end) - time.time() if end is not None else None
    except ValueError:
        return None
    # an end that is not a time to come (-inf, 0, a past one: the job's variables of another job)
    return left if left is not None and math.isfinite(left) and left > 0 else None


class RunControl(StepVote):
    """Signals, the wall limit, the checkpoint cadence and the hang watchdog of a run."""

    def __init__(self, comm, wall_limit: float | None, every: int, wall_interval: float,
                 hang_timeout: float = 0.0):
        super().__init__(comm)
        self.hang_timeout = hang_timeout
        self.start = time.monotonic()
        if wall_limit is None and comm.rank == 0:
            wall_limit = slurm_time_left()
        self.wall_limit = comm.bcast(wall_limit, root=0)
        self.every, self.wall_interval = every, wall_interval
        self.signal_name: str | None = None
        self.reason = ""
        self.last_checkpoint = time.monotonic()
        self.longest_step = 0.0
        self.checkpoint_seconds = 0.0
        self._previous = {}

    def begin(self) -> None:
        """Install the stop signals' handlers and arm the watchdog."""
        for sig in early_signals.stop_signals():
            self._previous[sig] = signal.signal(sig, self._handle)
        if early_signals.pending:  # a stop asked for during start-up: honour it at the first step
            self.signal_name = early_signals.pending[-1]
            early_signals.pending.clear()
        self._arm_watchdog()

    def end(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        if self.hang_timeout:
            faulthandler.cancel_dump_traceback_later()

    def _arm_watchdog(self) -> None:
        """(Re)start the hang watchdog: faulthandler's C thread dumps this rank's stack and exits
        the process if the next step does not complete in time, even when Python is stuck
        inside MPI; the launcher then ends the other ranks."""
        if self.hang_timeout:
            sys.stderr.flush()
            try:  # faulthandler writes to a file descriptor: the process's own stderr if sys.stderr has none
                sys.stderr.fileno()
                stream = sys.stderr
            except (AttributeError, OSError, ValueError):
                stream = sys.__stderr__
            faulthandler.dump_traceback_later(self.hang_timeout, repeat=False, file=stream, exit=True)

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.signal_name == "SIGINT" and signum == signal.SIGINT:
            raise KeyboardInterrupt("second SIGINT: stopping at once")
        self.signal_name = name

    def vote(self, step: int, step_seconds: float, unhealthy: bool = False) -> Votes:
        """Stop, checkpoint and health for this step boundary, the same on every rank."""
        self._arm_watchdog()
        now = time.monotonic()
        self.longest_step = max(self.longest_step, step_seconds)
        flags = np.zeros(4, dtype=np.int64)
        flags[3] = unhealthy
        flags[0] = self.signal_name is not None
        if self.wall_limit is not None:
            needed = 2 * self.longest_step + 2 * self.checkpoint_seconds + SAFETY
            flags[1] = (now - self.start) + needed > self.wall_limit
        flags[2] = bool(self.every and step % self.every == 0) or \
            bool(self.wall_interval and now - self.last_checkpoint >= self.wall_interval)
        self.comm.Allreduce(MPI.IN_PLACE, flags, op=MPI.MAX)
        if flags[0]:
            self.reason = f"signal {self.signal_name or 'received on another rank'}"
        elif flags[1]:
            self.reason = f"wall-time limit of {self.wall_limit:.0f} s"
        stop = bool(flags[0] or flags[1])
        return Votes(unhealthy=bool(flags[3]), stop=stop, checkpoint=stop or bool(flags[2]), reason=self.reason)

    def checkpoint_written(self, seconds: float) -> None:
        self.last_checkpoint = time.monotonic()
        self.checkpoint_seconds = max(self.checkpoint_seconds, seconds)
