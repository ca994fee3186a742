"""Exceptions that end a run with a documented exit status.

Exit statuses (``docs/guide/errors.md``):

===  =====================================================================================
0    success
1    unexpected internal error (any rank)
2    bad input: case file, command line, mesh file
3    numerical failure: the linear or nonlinear solver did not converge, NaN/Inf or an
     insane temperature, a property or boundary parameter given as an expression left
     its range during the run, or a heat balance lost in round-off
74   output could not be written (a full disk, a quota, an I/O error): the results keep
     their last complete snapshot; free space and continue with ``--restart latest``
     (``plot``, ``export``: the files there as they were; run it again) (``EX_IOERR``)
75   stopped cleanly before the end (signal or wall-time limit) after writing a checkpoint:
     continue with ``--restart latest`` (75 is ``EX_TEMPFAIL``: "try again later")
130  stopped at once by a second Ctrl-C (128 + SIGINT)
141  a reading command whose output pipe closed (``| head``; 128 + SIGPIPE)
===  =====================================================================================
"""

EXIT_INTERNAL = 1
EXIT_INPUT = 2
EXIT_NUMERICAL = 3
EXIT_OUTPUT = 74
EXIT_STOPPED = 75
EXIT_INTERRUPTED = 130  # stopped at once by a second Ctrl-C (128 + SIGINT)
EXIT_BROKEN_PIPE = 141  # a reading command whose output pipe closed (128 + SIGPIPE)


class SolverExit(Exception):
    """An error every rank knows about at the same time (raised collectively).

    Such errors end the run cleanly with one message from rank 0 and ``exit_status``
    on every rank; errors raised on some ranks only go through ``comm.Abort`` instead.
    """

    exit_status = EXIT_INTERNAL
    iterations = 0  # linear iterations spent before the failure (0: none counted)


class ProcessFailed(SolverExit):
    """A process a command launched (a bench's run of a case, a peer's run) failed: its status
    and its own error line."""

    def __init__(self, what: str, status: int, stderr: str):
        errors = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
        said = errors[0][len("error:"):].strip() if errors else (stderr.strip().splitlines() or ["no message"])[-1]
        super().__init__(f"{what} failed with exit status {status}: {said[:400]}")
        self.exit_status = status if status in (EXIT_INPUT, EXIT_NUMERICAL, EXIT_OUTPUT) else EXIT_INTERNAL


class CaseError(SolverExit):
    """Invalid input: the message names the file, the key and what is allowed."""

    exit_status = EXIT_INPUT


class ConvergenceError(SolverExit):
    """The linear solver did not reach its tolerance."""

    exit_status = EXIT_NUMERICAL


class NumericalError(SolverExit):
    """NaN, Inf or an insane temperature appeared in the solution."""

    exit_status = EXIT_NUMERICAL


class RangeError(SolverExit):
    """An expression of a property or boundary parameter evaluated out of its key's range during the
    run (raised collectively). Not a NumericalError: a smaller time step does not help."""

    exit_status = EXIT_NUMERICAL


class NonFiniteError(CaseError):
    """A system to solve holds inf or NaN: some input value overflows (raised collectively; the
    run names the key when it can)."""


class OutputError(SolverExit):
    """Results, a checkpoint or the file of ``plot`` or ``export`` could not be written (a run's:
    raised collectively); what was written before stays readable. ``broken``: a write failed
    (rather than being refused for lack of space beforehand), so the file may hold unwritable state."""

    exit_status = EXIT_OUTPUT

    def __init__(self, message: str, broken: bool = False):
        super().__init__(message)
        self.broken = broken
