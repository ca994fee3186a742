"""Stop requests that arrive before the time loop is ready for them.

A batch system may signal a job while its ranks are still importing, reading the mesh or
factorising (SLURM's ``--signal`` lead, a ``scancel --signal``). By default SIGUSR1 and SIGTERM
kill a Python process; :func:`defer` makes them wait instead, and the time loop's control
(:class:`solver.app.control.RunControl`) takes them over as a graceful stop at its first step.
Kept free of heavy imports so that it can run first thing.
"""

import signal

DEFERRED = (signal.SIGTERM, signal.SIGUSR1)
pending: list[str] = []


def _remember(signum, frame) -> None:
    pending.append(signal.Signals(signum).name)


def defer() -> None:
    for sig in DEFERRED:
        signal.signal(sig, _remember)


def release() -> None:
    """Back to the default actions (for commands other than a run), delivering what came meanwhile."""
    import os

    for sig in DEFERRED:
        signal.signal(sig, signal.SIG_DFL)
    for name in pending:
        os.kill(os.getpid(), signal.Signals[name])
