"""Stop requests that arrive before the time loop is ready for them.

A batch system may signal a job while its ranks are still importing, reading the mesh or
factorising (SLURM's ``--signal`` lead, a ``scancel --signal``, the time limit), and a user may
press Ctrl-C or close the terminal (SIGHUP) then. By default SIGUSR1, SIGTERM and SIGHUP kill a
Python process and SIGINT raises KeyboardInterrupt wherever it lands; :func:`defer` makes them wait
instead (a second SIGINT still stops at once; a SIGHUP ignored from the start, ``nohup``, stays
ignored), and the time loop's
control (:class:`solver.app.control.RunControl`) takes them over as a graceful stop at its first
step. A run records status 75 at once, on the launcher's rank 0
(:mod:`solver.app.statusfile`): a launcher that kills the ranks soon after the signal (Open MPI's
mpirun after 2 x ``odls_base_sigkill_timeout``) leaves that status for the job scripts, which
then continue from the last checkpoint, where there is one, or run again from the start. If
the run reaches its first step, its own status replaces this one.
Kept free of heavy imports so that it can run first thing.
"""

import signal
import sys

statusfile = None  # solver.app.statusfile, imported once the handlers are in (:func:`defer`)
DEFERRED = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT, signal.SIGHUP)
OTHER_COMMANDS = ("verify", "bench", "info", "plot", "probe", "export")  # without a graceful start-up stop
pending: list[str] = []
records_status = False
first_rank = False  # the launcher's rank 0 (known before the handlers: a handler must not import)


def stop_signals() -> tuple:
    """The signals that ask a run or a study for a graceful stop: :data:`DEFERRED`, less a SIGHUP
    that the process ignores (``nohup`` set it so before Python started)."""
    return tuple(sig for sig in DEFERRED if sig != signal.SIGHUP or signal.getsignal(sig) != signal.SIG_IGN)


def _remember(signum, frame) -> None:
    name = signal.Signals(signum).name
    if name == "SIGINT" and "SIGINT" in pending:  # a second Ctrl-C: at once (exit 130)
        raise KeyboardInterrupt("second SIGINT: stopping at once")
    if records_status and not pending and first_rank:
        statusfile.record(statusfile.STOPPED, f"stopped by {name} during start-up, before the first step")
    pending.append(name)


def defer(argv: list[str] | None = None) -> None:
    """Keep SIGTERM and SIGUSR1 for the time loop; ``argv``: the command line (default sys.argv),
    whose first word tells whether the command is a run (the others get the default actions back)."""
    global records_status, first_rank, statusfile
    for sig in stop_signals():  # first: a signal in the next milliseconds is kept too
        signal.signal(sig, _remember)
    from solver.app import statusfile
    words = [w for w in (sys.argv if argv is None else argv)[1:] if not w.startswith("-")]
    records_status = not (words and words[0] in OTHER_COMMANDS)
    first_rank = statusfile.launch_rank() == 0
    if pending and records_status and first_rank:  # one that came while the rank was looked up
        statusfile.record(statusfile.STOPPED, f"stopped by {pending[0]} during start-up, before the first step")


def release() -> None:
    """Back to the default actions (for commands other than a run), delivering what came meanwhile."""
    import os

    global records_status
    records_status = False
    for sig in DEFERRED:
        if signal.getsignal(sig) is _remember:  # (an ignored SIGHUP stays ignored)
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    for name in pending:
        os.kill(os.getpid(), signal.Signals[name])


STOPPING = (signal.SIGTERM, signal.SIGHUP)  # a reading command stops at once on these, cleaning up first


class Stopped(BaseException):
    """SIGTERM or SIGHUP to a command that only reads results and writes its own files (``plot``,
    ``export``): raised where it comes, so that its clean-up runs (:func:`stoppable`)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum, frame) -> None:
    raise Stopped(signum)


def stoppable() -> None:
    """SIGTERM and SIGHUP raise :class:`Stopped` instead of killing the process where it stands: a
    file half-written into a staging folder is removed on the way out (a signal its parent ignores,
    ``nohup``'s SIGHUP, stays ignored)."""
    for sig in STOPPING:
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, _stop)


def settle() -> None:
    """The exit status is decided: a stop signal that comes now is ignored. The interpreter puts
    the default actions back while it ends (after its exit functions, before it frees the modules),
    and a SIGTERM then ended a complete run by the signal (143) instead of its status. Commands
    whose signals were given back (:func:`release`) keep the default actions."""
    for sig in DEFERRED:
        handler = signal.getsignal(sig)
        if callable(handler) and handler is not signal.default_int_handler:
            signal.signal(sig, signal.SIG_IGN)
