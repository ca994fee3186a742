"""Command line: ``mpirun -n N python -m solver [COMMAND] [arguments]`` (the commands, their
arguments and how each runs: :mod:`solver.app.commands`).

Errors are handled here, once, for every rank:

* A bad command line is refused before MPI starts with one line from rank 0 (or the only
  process) and exit status 2; the other ranks of a launch leave quietly.
* :class:`SolverExit` errors (bad input, no convergence) are raised on every rank at the
  same point; rank 0 prints one line and every rank exits with the documented status.
  If the other ranks do not arrive within a few seconds, the run is aborted instead.
* Any other exception is a failure of this rank alone: it prints its rank and message
  and aborts the communicator, so the other ranks never hang.

Commands that read files run in one process without MPI and print their one line themselves.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import signal
import sys

from solver.app import statusfile
from solver.app.commands import COMMANDS, Launch, build_parser, command_line
from solver.app.dependencies import missing_library
from solver.errors import (EXIT_BROKEN_PIPE, EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_NUMERICAL, EXIT_OUTPUT,
                           EXIT_STOPPED, CaseError, SolverExit)

AGREE_TIMEOUT = 10.0  # seconds to wait for the other ranks to report the same error
# what reading a results file changed beyond its checked structure raises (an attribute of inf made
# an int, a JSON text nested 100,000 deep)
DAMAGED_FILE_ERRORS = (KeyError, IndexError, ValueError, TypeError, AttributeError, OverflowError, RecursionError)


def main(argv=None) -> int:
    """Parse the command line (before MPI starts) and run the command where its plan says: in
    this process, in processes it launches, under an mpirun of its own, or on this launch."""
    sys.unraisablehook, sys.excepthook = _quiet_failed_closes, _quiet_failed_close_tracebacks
    # HDF5's file locks: a reader of a results file (probe, a notebook) holds a lock that makes the
    # run's next write of it fail (exit 74 at a complete run's end record); a run is the only
    # writer of its files (its own lock file says so), and readers take snapshots as listed. Set
    # whatever the environment says: a TRUE exported by a site's module file fails runs the same way
    os.environ["HDF5_USE_FILE_LOCKING"] = "FALSE"
    _escaping_console()
    try:
        _check_environment()
        words = command_line(sys.argv[1:] if argv is None else argv)
        with _quiet_unless_first_rank():  # --help and --version once, not once per rank
            args = build_parser().parse_args(words)
        command = COMMANDS[args.command]
        plan = command.plan(args)
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    except CaseError as exc:
        return refused(exc)
    if plan.launch is Launch.SERIAL:
        return serial_command(plan, args)
    if plan.launch is Launch.PROCESSES:
        from solver.app import signals

        signals.release()  # (a bench: SIGTERM and SIGHUP end it, and the process it waits for, at once)
        signals.stoppable()
        try:
            return plan.load()(args)
        except SolverExit as exc:  # an input of the processes it launches, checked before them
            print(f"error: {excerpt(exc)}", file=sys.stderr, flush=True)
            return exc.exit_status
        except KeyboardInterrupt:
            print("stopped by Ctrl-C (SIGINT)", file=sys.stderr, flush=True)
            return EXIT_INTERRUPTED
        except signals.Stopped as exc:
            print(f"stopped by {exc}", file=sys.stderr, flush=True)
            return 128 + exc.signum
    from solver.parallel.launcher import launched_by_mpi, relaunch

    if plan.ranks > 1 and not launched_by_mpi():
        return relaunch(words, plan.ranks)
    return mpi_command(command, plan, args)


def _escaping_console() -> None:
    """Standard output and error show what their encoding cannot (a case file named in UTF-8 on a
    console set to ASCII or Latin-1: PYTHONIOENCODING, the locale) as escapes (\\xe4), instead of
    failing the command on its first line."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            if stream.errors == "strict":
                stream.reconfigure(errors="backslashreplace")


def _check_environment() -> None:
    """The solver's own environment variables that change a run's path hold values it knows."""
    value = os.environ.get("SOLVER_NUMBA", "")
    if value not in ("", "0", "1"):
        from solver.case.shown import shown

        raise CaseError(f"environment variable SOLVER_NUMBA: got {shown(value)}; allowed: 0 (the NumPy path), "
                        "1 (the compiled kernels at any size) or unset (the run chooses)")


@contextlib.contextmanager
def _quiet_unless_first_rank():
    """Standard output dropped on the ranks of a launch other than the first (before MPI starts:
    from the launcher's variables)."""
    from solver.parallel.launcher import launcher_rank

    if launcher_rank() in (None, 0):
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def refused(exc: CaseError) -> int:
    """A bad command line, before MPI starts: rank 0 (or the only process) gives the line and the
    status; the others leave first and quietly, so that a launcher that stops every process at
    the first failure cannot cut rank 0 short."""
    from solver.parallel.launcher import launcher_rank

    if launcher_rank() in (None, 0):
        print(f"error: {excerpt(exc)}", file=sys.stderr, flush=True)
        return exc.exit_status
    return 0


def mpi_command(command, plan, args) -> int:
    """Run ``plan``'s handler on the ranks of this launch, errors handled once for every rank."""
    from mpi4py import MPI

    from solver.app import log as logs

    comm = MPI.COMM_WORLD
    records_status = command.records_status
    try:
        if not command.graceful_stop:
            from solver.app import signals

            signals.release()  # only runs and studies turn SIGTERM/SIGUSR1 into a graceful stop
        logs.setup(comm, quiet=plan.quiet)
        status = plan.load()(args, comm)
        if records_status:
            write_status(comm, status)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # recorded: a later Ctrl-C changes nothing
        return _together(comm, status)
    except SolverExit as exc:
        from solver.parallel.collective import all_arrived

        if not all_arrived(comm, AGREE_TIMEOUT):
            _print_error(comm.rank, f"error: {excerpt(exc)}", per_rank=True)
            write_status(comm, exc.exit_status, str(exc))
            comm.Abort(exc.exit_status)
        if comm.rank == 0:
            print(f"error: {excerpt(exc)}", file=sys.stderr, flush=True)
        return _together(comm, write_status(comm, exc.exit_status, str(exc)) if records_status else exc.exit_status)
    except KeyboardInterrupt:  # a second Ctrl-C (the first asks for a graceful stop), or one outside a run
        kept = ("the study keeps the samples its groups recorded, if any, for --restart latest"
                if command.name == "study" else
                "the results keep their last complete snapshot; a checkpoint, if any, is the last one written")
        _print_error(comm.rank, f"stopped at once by Ctrl-C (SIGINT): {kept}", per_rank=True)
        if records_status:
            write_status(comm, EXIT_INTERRUPTED, "stopped at once by SIGINT")
        if comm.size > 1:
            comm.Abort(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except BaseException as exc:  # noqa: BLE001 - one rank failed: never let the others hang
        if _output_lost(exc):  # standard output on a full disk (verify, bench, a study): as a reading command's
            status, message = EXIT_OUTPUT, f"error: cannot write the output ({exc.strerror or exc})"
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        else:
            status, message = EXIT_INTERNAL, f"internal error: {_detail(exc, args)}"
        _print_error(comm.rank, message, per_rank=comm.size > 1 or status == EXIT_INTERNAL)
        if records_status:
            write_status(comm, status, message.removeprefix("error: ") if status == EXIT_OUTPUT else
                         f"internal error: {type(exc).__name__}")
        if comm.size > 1:
            comm.Abort(status)
        return status


def run_command(args, comm) -> int:
    """The run of a case (the arguments: :func:`solver.app.commands.run_arguments`)."""
    from solver.parallel.launcher import check_launch
    from solver.app.run import dry_run, run
    from solver.case.load import load_case

    check_launch(comm)
    text, source, stem = read_case_text(comm, args.case)
    case = load_case(text, source, args.set, default_name=stem, restart=args.restart is not None)
    if args.dry_run:
        dry_run(case, comm, restart=args.restart)
        return 0
    result = run(case, comm, quiet=args.quiet, restart=args.restart, force=args.force, overwrite=args.overwrite)
    return EXIT_STOPPED if result.stopped else 0


def read_case_text(comm, path: str | None) -> tuple[str, str, str]:
    """(text, source name for messages, default case name); rank 0 reads, all ranks receive."""
    from importlib import resources
    from pathlib import Path

    from solver.case.load import read_text
    from solver.parallel.collective import on_root

    if path is None:
        text = resources.files("solver").joinpath("default_case.toml").read_text()
        return text, "<built-in default case>", "default"
    text = on_root(comm, lambda: read_text(path), CaseError)
    return text, path, Path(path).stem


def write_status(comm, status: int, message: str = "") -> int:
    """Record the run's exit status for the job scripts (:mod:`solver.app.statusfile`; rank 0)."""
    if comm.rank == 0:
        statusfile.record(status, message)
    return status


def _together(comm, status: int) -> int:
    """A failed or stopped run's ranks leave only once rank 0 has given its line and recorded the
    status: a launcher that ends a run at its first non-zero exit (srun; mpirun after its grace)
    then cuts nothing short. MPI_Finalize does not wait for the other ranks."""
    if status and comm.size > 1:
        from solver.parallel.collective import all_arrived

        all_arrived(comm, AGREE_TIMEOUT)
    return status


# errors of writing (a full disk, a closed output), told from HDF5's of reading a file, which carry none
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF)


def _output_lost(exc: BaseException) -> bool:
    """A write of the console's (no file named) refused by its disk; the results' writes name their file."""
    return isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError) and exc.filename is None and \
        exc.errno in WRITE_ERRNOS


def serial_command(plan, args) -> int:
    """``info``, ``plot``, ``probe``, ``export``: one process reading files; MPI is never started
    (login nodes and notebooks may have none). Under a launcher of several processes (mpirun -n 3
    python -m solver export ...), the first reads and writes; the others leave at once: one writer
    of each output, one report."""
    from solver.app import signals
    from solver.parallel.launcher import launcher_rank

    if launcher_rank() not in (None, 0):
        return 0
    signals.release()
    signals.stoppable()
    try:
        return _reading_again(plan.load(), args)
    except SolverExit as exc:
        print(f"error: {excerpt(exc)}", file=sys.stderr, flush=True)
        return exc.exit_status
    except KeyboardInterrupt:
        print("stopped by Ctrl-C (SIGINT)", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except signals.Stopped as exc:  # its staged files removed on the way here: the targets as they were
        print(f"stopped by {exc}", file=sys.stderr, flush=True)
        return 128 + exc.signum
    except BrokenPipeError:  # the reader of the output went away (| head): stop quietly, as a pipe's writer does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return EXIT_BROKEN_PIPE
    except MemoryError as exc:  # a file larger than this machine's memory (a login node): a run-time failure
        named = getattr(args, "results", None) or getattr(args, "study", None)
        why = str(exc)[:120] or "MemoryError"
        print(f"error: {named + ': ' if named else ''}not enough memory on this machine for "
              f"{getattr(args, 'command', 'this command')} ({why}); use one with more", file=sys.stderr, flush=True)
        return EXIT_NUMERICAL
    except OSError as exc:  # a file named on the command line that cannot be written or read
        if exc.filename is None and exc.errno in WRITE_ERRNOS:  # (standard output or a target: not the file read)
            print(f"error: cannot write the output ({exc.strerror or exc})", file=sys.stderr, flush=True)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
            return EXIT_OUTPUT  # (an I/O error, as a run's full disk: not the input's)
        named = exc.filename or getattr(args, "results", None)  # (HDF5's errors name no file, nor an errno)
        where = f"{named}: " if named else ""
        print(f"error: {where}cannot read or write it ({exc.strerror or exc})", file=sys.stderr, flush=True)
        return EXIT_INPUT
    except (*DAMAGED_FILE_ERRORS, RuntimeError) as exc:  # a file not as the solver writes it (its structure is
        named = getattr(args, "results", None) or getattr(args, "study", None)  # checked as it opens; these are
        if getattr(args, "verbose", False) or not named or not _from_reading(exc):  # what was changed beyond that)
            _print_error(0, f"internal error: {_detail(exc, args)}", per_rank=False)
            return EXIT_INTERNAL
        print(f"error: {named}: cannot be read as this solver writes its files: damaged, or changed after it was "
              f"written ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})",
              file=sys.stderr, flush=True)
        return EXIT_INPUT
    except ModuleNotFoundError as exc:  # (a command's libraries are imported as it starts)
        line = missing_library(exc)
        if line is None:
            _print_error(0, f"internal error: {_detail(exc, args)}", per_rank=False)
        else:
            print(line, file=sys.stderr, flush=True)
        return EXIT_INTERNAL
    except Exception as exc:  # noqa: BLE001
        _print_error(0, f"internal error: {_detail(exc, args)}", per_rank=False)
        return EXIT_INTERNAL


REREADS = 4  # tries of a command that only reads (info, probe, plot) on the results of a run that writes them
REREAD_PAUSE = 0.25  # seconds between them


def _reading_again(handler, args) -> int:
    """``handler(args)``, tried again (up to :data:`REREADS` times) where it failed on a results file
    that a run is writing: HDF5 files are read without the writer's coordination, and a read that
    meets a snapshot half-written (a group listed before its dataset, an address past the end)
    succeeds once the writer has flushed it. ``export``, which writes files as it reads, is not."""
    import time

    for _ in range(REREADS - 1):
        try:
            return handler(args)
        except (SolverExit, OSError, RuntimeError, *DAMAGED_FILE_ERRORS) as exc:
            if isinstance(exc, SolverExit) and exc.exit_status != EXIT_INPUT \
                    or getattr(args, "command", None) not in ("info", "probe", "plot") or not _being_written(args):
                raise
            time.sleep(REREAD_PAUSE)
    return handler(args)


def _being_written(args) -> bool:
    """Whether the results file the command reads says that a run is writing it."""
    path = getattr(args, "results", None)
    if not path or not os.path.isfile(path):  # (a FIFO, which an open would wait on for ever: not ours)
        return False
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return f.attrs.get("status") in ("running", b"running")
    except Exception:  # noqa: BLE001 - unreadable now: not known to be written
        return False


def _from_reading(exc: BaseException) -> bool:
    """Whether ``exc`` may come of a damaged file: one of :data:`DAMAGED_FILE_ERRORS`, or a
    RuntimeError that h5py raised (HDF5 meeting a damaged link heap: "Unable to get link info")."""
    if not isinstance(exc, RuntimeError) or isinstance(exc, DAMAGED_FILE_ERRORS):  # (RecursionError is one)
        return True
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and "h5py" in tb.tb_frame.f_code.co_filename


def _detail(exc: BaseException, args) -> str:
    """An internal error's traceback with --verbose, else its type and message."""
    import traceback

    detail = traceback.format_exc() if getattr(args, "verbose", False) else f"{type(exc).__name__}: {exc}"
    return detail.rstrip()


MESSAGE_LIMIT = 1500  # characters of an error line at most


def excerpt(exc: BaseException) -> str:
    """An error's message on one line, with every word of over 400 characters (no path is so long)
    cut to an excerpt: a 20,000-character name the user gave, which messages quote; a character
    that does not print (a newline in a file's name) escaped, as bash's $'...' writes it."""
    import re

    from solver.case.shown import printable

    text = re.sub(r"\S{401,}", lambda m: f"{m.group()[:100]}... ({len(m.group())} characters)", printable(str(exc)))
    if len(text) > MESSAGE_LIMIT:  # a list of thousands of values quoted in it: its start and its end
        text = f"{text[:MESSAGE_LIMIT - 400]} ... ({len(text)} characters) ... {text[-300:]}"
    return text


def _print_error(rank: int, message: str, per_rank: bool) -> None:
    prefix = f"rank {rank}: " if per_rank else ""
    print(prefix + message, file=sys.stderr, flush=True)
    if os.environ.get("SOLVER_DEBUG"):
        import traceback

        traceback.print_exc()


def finish(status: int) -> None:
    """End the process with ``status``; never returns. When a file could not be written and was
    kept open (:func:`solver.io.parking.park`), the process ends at once, without MPI_Finalize:
    parallel HDF5 closes its files when MPI is finalised (and at exit), would retry the failed
    writes and crash. The launchers report the status all the same. A stop signal from here on is
    ignored (:func:`solver.app.signals.settle`): the status is decided."""
    parking = sys.modules.get("solver.io.parking")
    if parking is not None and parking.parked():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    if status == EXIT_INTERRUPTED:
        exit_interrupted()
    from solver.app import signals

    signals.settle()
    sys.exit(status)


def exit_interrupted() -> None:
    """End the process with status 130 after a Ctrl-C; never returns. CPython (3.11) marks a
    KeyboardInterrupt that left an ``exec`` of source text (a dataclass being created, in an
    import) as unhandled even when it was caught, and then ends the process by SIGINT at exit
    (status -2 to a parent) instead of the status given: the process ends here, MPI finalised."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        mpi.Finalize()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def _failed_close(exc) -> bool:
    """h5py could not release an object because its file could not be written (a full disk)."""
    return isinstance(exc, RuntimeError) and "Can't decrement id ref count" in str(exc)


def _quiet_failed_closes(unraisable) -> None:
    """h5py reports an object it could not close, because its file could not be written, as an
    ignored exception with a traceback; the run's own error line says what happened, so these
    are not printed. Anything else is, as usual."""
    if not _failed_close(unraisable.exc_value):
        sys.__unraisablehook__(unraisable)


def _quiet_failed_close_tracebacks(kind, value, tb) -> None:
    """The traceback h5py's object release prints first (through sys.excepthook) for the same."""
    if not _failed_close(value):
        sys.__excepthook__(kind, value, tb)


def main_exit() -> None:
    """Console-script entry point (``heat-solver``)."""
    from solver.app import signals

    signals.defer()
    finish(main())
