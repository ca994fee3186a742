"""The program around the numerics: the command line and its error handling, rank-aware logging
and progress, signals and run control (graceful stops, wall limits, checkpoints cadence, hang
watchdog), pre-flight checks, test fault injection, and the run itself
(:mod:`.run`: pre-flight, simulation, time loop, output, summary).

Importing this package loads nothing else, so that :mod:`.signals` can defer stop signals
before the heavy imports and MPI start-up.
"""

__all__ = ["main"]


def __getattr__(name):
    if name == "main":
        from solver.app.cli import main
        return main
    raise AttributeError(name)
