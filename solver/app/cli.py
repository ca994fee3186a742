"""Command line: ``mpirun -n N python -m solver [case.toml] [--set section.key=value ...]``.

Errors are handled here, once, for every rank:

* :class:`SolverExit` errors (bad input, no convergence) are raised on every rank at the
  same point; rank 0 prints one line and every rank exits with the documented status.
  If the other ranks do not arrive within a few seconds, the run is aborted instead.
* Any other exception is a failure of this rank alone: it prints its rank and message
  and aborts the communicator, so the other ranks never hang.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import NoReturn
from importlib import resources
from pathlib import Path

from solver import __version__
from solver.parallel.launcher import launched_by_mpi, launcher_rank, relaunch
from solver.case.arguments import ArgumentParser
from solver.errors import EXIT_INPUT, EXIT_INTERNAL, EXIT_STOPPED, CaseError, SolverExit

AGREE_TIMEOUT = 10.0  # seconds to wait for the other ranks to report the same error


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m solver",
                description="Parallel finite-element heat diffusion. Run under MPI: "
                            "mpirun -n 4 python -m solver inputs/plate.toml. "
                            "Other commands: study, verify, bench, info, plot, probe, export "
                            "(python -m solver COMMAND --help)")
    p.add_argument("case", nargs="?", help="TOML case file (default: a small built-in 2D plate)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a case-file key, e.g. --set mesh.nx=64 (repeatable)")
    p.add_argument("--restart", metavar="CHECKPOINT",
                   help="continue from a checkpoint file, or 'latest' (this case's newest), on any number of ranks")
    p.add_argument("--force", action="store_true", help="restart even from a checkpoint of a different case")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results of an earlier run of this case (kept as .bak)")
    p.add_argument("--dry-run", action="store_true",
                   help="resolve the case and print DOFs, memory per rank, the stable explicit dt and the output "
                        "size, then stop (nothing is solved or written)")
    p.add_argument("--quiet", action="store_true", help="print only warnings and errors")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of internal errors")
    p.add_argument("--version", action="version", version=f"solver {__version__}")
    return p


def read_case_text(comm, path: str | None) -> tuple[str, str, str]:
    """(text, source name for messages, default case name); rank 0 reads, all ranks receive."""
    from solver.case.load import read_text
    from solver.parallel.collective import on_root

    if path is None:
        text = resources.files("solver").joinpath("default_case.toml").read_text()
        return text, "<built-in default case>", "default"
    text = on_root(comm, lambda: read_text(path), CaseError)
    return text, path, Path(path).stem


def build_verify_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m solver verify",
                description="Manufactured-solution convergence study: prints L2/H1 errors and observed "
                            "orders in space and time; exits 1 when an order misses its theory by > 0.2.")
    p.add_argument("--dim", type=int, choices=(2, 3), help="only 2D or only 3D (default: both)")
    p.add_argument("--element", action="append", choices=("triangle", "quadrilateral", "tetrahedron", "hexahedron"),
                   help="only this cell type (repeatable)")
    p.add_argument("--levels", type=int, nargs="+", metavar="N", help="cells per side of the meshes (default "
                   "8 16 32 in 2D, 4 8 16 in 3D)")
    return p


def verify(argv, comm) -> int:
    from solver.post.verify import verify_command

    return verify_command(build_verify_parser().parse_args(argv), comm)


def bench(argv, comm) -> int:
    from solver.post.bench import bench_command

    return bench_command(argv, comm)


def study(argv, comm) -> int:
    from solver.app.study.run import study_command

    return study_command(argv, comm)


SERIAL = ("info", "plot", "probe", "export")  # post-processing of files: one process, no MPI
COMMANDS = {"verify": verify, "bench": bench, "study": study}
RECORD_STATUS = ("study",)  # commands that record their exit status in $SOLVER_STATUS_FILE, as runs do


def run_command(args, comm) -> int:
    from solver.parallel.launcher import check_launch
    from solver.app.run import dry_run, run
    from solver.case.load import load_case

    check_launch(comm)
    text, source, stem = read_case_text(comm, args.case)
    case = load_case(text, source, args.set, default_name=stem)
    if args.dry_run:
        dry_run(case, comm)
        return 0
    result = run(case, comm, quiet=args.quiet, restart=args.restart, force=args.force, overwrite=args.overwrite)
    return EXIT_STOPPED if result.stopped else 0


STATUS_FILE = "SOLVER_STATUS_FILE"  # where rank 0 records a run's exit status (the job scripts read it)


def write_status(comm, status: int, message: str = "") -> int:
    """Record the run's exit status in the file $SOLVER_STATUS_FILE names (rank 0, atomically):
    a launcher may report another status for the same run (Open MPI's mpirun returns 1 after a
    SIGTERM even when every rank stopped cleanly with 75), and the batch scripts trust this file."""
    path = os.environ.get(STATUS_FILE)
    if path and comm.rank == 0:
        words = {0: "complete", EXIT_STOPPED: "stopped"}.get(status, "failed")
        tmp = f"{path}.tmp{os.getpid()}"
        try:
            with open(tmp, "w") as f:
                f.write(f"{status} {words} {message.splitlines()[0] if message else ''}".rstrip() + "\n")
            os.replace(tmp, path)
        except OSError as exc:
            print(f"warning: cannot write the status file {path} ({exc.strerror})", file=sys.stderr, flush=True)
    return status


def bench_ranks(argv) -> int:
    """``--ranks N`` of the bench command, else the cores of this machine."""
    for i, arg in enumerate(argv):
        if arg == "--ranks" and i + 1 < len(argv) and argv[i + 1].isdigit():
            return int(argv[i + 1])
        if arg.startswith("--ranks=") and arg[8:].isdigit():
            return int(arg[8:])
    return os.cpu_count() or 1


def main(argv=None) -> int:
    sys.unraisablehook, sys.excepthook = _quiet_failed_closes, _quiet_failed_close_tracebacks
    verbose = "--verbose" in (argv if argv is not None else sys.argv[1:])
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in SERIAL:
        return serial_command(argv, verbose)
    if argv[:1] == ["bench"] and "--study" in argv:  # whole processes side by side: no MPI in this one
        from solver.post.bench_study import main as bench_study

        return bench_study(argv[1:])
    if argv[:1] == ["bench"] and "--solvers" in argv:  # whole processes side by side: no MPI in this one
        from solver.post.bench_solvers import main as bench_solvers

        return bench_solvers(argv[1:])
    if argv[:1] == ["bench"] and bench_ranks(argv) > 1 and not launched_by_mpi():
        return relaunch(argv, bench_ranks(argv))
    args = None
    if not (argv and argv[0] in COMMANDS):  # --help, --version and bad options need no MPI
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:
            return int(exc.code or 0)
        except CaseError as exc:
            if launcher_rank() in (None, 0):
                print(f"error: {exc}", file=sys.stderr, flush=True)
                return exc.exit_status
            # rank 0 gives the line and the status; the others leave first and quietly, so that
            # a launcher that stops every process at the first failure cannot cut rank 0 short
            return 0

    from mpi4py import MPI

    from solver.app import log as logs

    comm = MPI.COMM_WORLD
    records_status = args is not None or argv[0] in RECORD_STATUS  # runs and studies: the job scripts read it
    try:
        if args is None:
            from solver.app import signals

            signals.release()  # only a run turns SIGTERM/SIGUSR1 into a graceful stop
            logs.setup(comm)
            status = COMMANDS[argv[0]](argv[1:], comm)
            return _together(comm, write_status(comm, status) if records_status else status)
        logs.setup(comm, quiet=args.quiet)
        return _together(comm, write_status(comm, run_command(args, comm)))
    except SolverExit as exc:
        from solver.parallel.collective import all_arrived

        if not all_arrived(comm, AGREE_TIMEOUT):
            _print_error(comm.rank, f"error: {exc}", per_rank=True)
            write_status(comm, exc.exit_status, str(exc))
            comm.Abort(exc.exit_status)
        if comm.rank == 0:
            print(f"error: {exc}", file=sys.stderr, flush=True)
        return _together(comm, write_status(comm, exc.exit_status, str(exc)) if records_status else exc.exit_status)
    except SystemExit as exc:  # --help of a command
        return int(exc.code or 0)
    except BaseException as exc:  # noqa: BLE001 - one rank failed: never let the others hang
        detail = traceback.format_exc() if verbose else f"{type(exc).__name__}: {exc}"
        _print_error(comm.rank, f"internal error: {detail.rstrip()}", per_rank=True)
        if records_status:
            write_status(comm, EXIT_INTERNAL, f"internal error: {type(exc).__name__}")
        if comm.size > 1:
            comm.Abort(EXIT_INTERNAL)
        return EXIT_INTERNAL


def _together(comm, status: int) -> int:
    """A failed or stopped run's ranks leave only once rank 0 has given its line and recorded the
    status: a launcher that ends a run at its first non-zero exit (srun; mpirun after its grace)
    then cuts nothing short. MPI_Finalize does not wait for the other ranks."""
    if status and comm.size > 1:
        from solver.parallel.collective import all_arrived

        all_arrived(comm, AGREE_TIMEOUT)
    return status


def serial_command(argv, verbose: bool = False) -> int:
    """``info``, ``plot``, ``probe``, ``export``: one process reading files; MPI is never started
    (login nodes and notebooks may have none)."""
    from solver.app import signals
    from solver.post import commands

    signals.release()
    try:
        return commands.COMMANDS[argv[0]](argv[1:])
    except SolverExit as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_status
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except OSError as exc:  # a file named on the command line that cannot be written or read
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}cannot write or read it ({exc.strerror or exc})", file=sys.stderr, flush=True)
        return EXIT_INPUT
    except Exception as exc:  # noqa: BLE001
        detail = traceback.format_exc() if verbose else f"{type(exc).__name__}: {exc}"
        _print_error(0, f"internal error: {detail.rstrip()}", per_rank=False)
        return EXIT_INTERNAL


def _print_error(rank: int, message: str, per_rank: bool) -> None:
    prefix = f"rank {rank}: " if per_rank else ""
    print(prefix + message, file=sys.stderr, flush=True)
    if os.environ.get("SOLVER_DEBUG"):
        traceback.print_exc()


def finish(status: int) -> NoReturn:
    """End the process with ``status``. When a file could not be written and was kept open
    (:func:`solver.io.blockfile.park`), the process ends at once, without MPI_Finalize: parallel
    HDF5 closes its files when MPI is finalised (and at exit), would retry the failed writes and
    crash. The launchers report the status all the same."""
    blockfile = sys.modules.get("solver.io.blockfile")
    if blockfile is not None and blockfile.parked():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


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
