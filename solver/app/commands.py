"""The commands of ``python -m solver``: one registry, and one argparse parser with a subparser each.

A command is one :class:`Command` in :data:`COMMANDS`: its name, its line in ``--help``, the
function that adds its arguments to its parser, and its plan: a function of the parsed arguments
that says which handler runs them (``module:function``, imported only then) and where
(:class:`Launch`):

* ``MPI``: on the ranks of the current launch, ``handler(args, comm)``: run, study, verify, and
  bench's machine figures; a plan for more ranks than one, started without a launcher, is
  relaunched under ``mpirun`` (bench, on the cores of this machine by default);
* ``SERIAL``: in this process, which never imports mpi4py, ``handler(args)``: info, plot, probe
  and export read files, on login nodes without MPI too;
* ``PROCESSES``: ``handler(args)`` launches whole processes itself (bench --solvers, bench --study).

Building the parser imports only the arguments modules (no MPI, SciPy or numba), so that
``--version``, ``--help`` and bad command lines cost a fraction of a second, and every command
line is parsed before MPI starts. The default command is decided in one place,
:func:`command_line`: when the first word names no command, the words are ``run``'s, so that
``python -m solver [case.toml] [options]`` is ``python -m solver run [case.toml] [options]``.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable
from enum import Enum

from solver import __version__
from solver.bench.arguments import bench_arguments, verify_arguments
from solver.case.arguments import ArgumentParser
from solver.case.shown import cut
from solver.errors import CaseError
from solver.post.arguments import export_arguments, info_arguments, plot_arguments, probe_arguments

TOP_LEVEL = ("-h", "--help", "--version")  # the options of python -m solver itself, before any command
# words of a command line at most: argparse's time grows with the square of its options (30,000
# --set took 27 s); 4,096 words parse in half a second and hold 2,000 probe points or --set keys
MAX_WORDS = 4096


class Launch(Enum):
    """Where a command runs."""

    MPI = "on the ranks of the current launch"
    SERIAL = "in this process, without MPI"
    PROCESSES = "in the whole processes it launches"


class Plan:
    """How a parsed command line runs: its handler, ``module:function`` (imported by :meth:`load`),
    and where (``launch``); under MPI on ``ranks`` ranks (more than one, and no launcher started
    this process: relaunched under mpirun) and with a log of warnings and errors only (``quiet``)."""

    def __init__(self, handler: str, launch: Launch, ranks: int = 1, quiet: bool = False):
        self.handler, self.launch, self.ranks, self.quiet = handler, launch, ranks, quiet

    def load(self) -> Callable:
        """The handler, its module imported now."""
        module, _, name = self.handler.partition(":")
        return getattr(importlib.import_module(module), name)


class Command:
    """A command: ``arguments(parser)`` adds its arguments, ``plan(args)`` chooses how the parsed
    ones run. ``records_status``: its exit status goes to $SOLVER_STATUS_FILE (runs and studies:
    the job scripts read it). ``graceful_stop``: SIGTERM and SIGUSR1 stay deferred for its time
    loop, which stops cleanly on them (a run, a study); other commands get the default actions back."""

    def __init__(self, name: str, summary: str, arguments: Callable, plan: Callable, records_status: bool = False,
                 graceful_stop: bool = False):
        self.name, self.summary, self.arguments, self.plan = name, summary, arguments, plan
        self.records_status, self.graceful_stop = records_status, graceful_stop


class CommandParser(ArgumentParser):
    """A command's parser, with two hooks its arguments function may set where argparse alone
    cannot describe the command line: ``form(words)``, another parser for these words or None
    (plot of a study file takes other options); ``complete(parser, args)``, checks across the
    parsed arguments and the defaults that depend on them, reporting through ``parser.error``
    (the three forms of bench share one parser)."""

    form = None
    complete = None

    def parse_known_args(self, args=None, namespace=None):
        other = self.form(args) if self.form is not None else None
        if other is not None:
            return other.parse_known_args(args, namespace)
        parsed, extras = super().parse_known_args(args, namespace)
        if self.complete is not None:
            self.complete(self, parsed)
        return parsed, extras


def version_argument(p) -> None:
    """--version: of python -m solver, and of run (the default command)."""
    p.add_argument("--version", action="version", version=f"solver {__version__}")


def run_arguments(p) -> None:
    p.description = "Run a case under MPI: mpirun -n 4 python -m solver inputs/plate.toml (the default " \
                    "command: the word run may be left out)."
    p.add_argument("case", nargs="?", help="TOML case file (default: a small built-in 2D plate)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a case-file key, e.g. --set mesh.nx=64 (repeatable)")
    p.add_argument("--restart", metavar="CHECKPOINT",
                   help="continue from a checkpoint file, or 'latest' (this case's newest), on any number of ranks")
    p.add_argument("--force", action="store_true", help="restart even from a checkpoint of a different case")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results of an earlier run of this case (kept as .bak); with --restart it has "
                        "no effect (a restart continues the results), so that a requeued job may keep it")
    p.add_argument("--dry-run", action="store_true",
                   help="resolve the case and print DOFs, memory per rank, the stable explicit dt and the output "
                        "size, then stop (nothing is solved or written)")
    p.add_argument("--quiet", action="store_true", help="print only warnings and errors")
    p.add_argument("--verbose", action="store_true", help="print tracebacks of internal errors")
    version_argument(p)


def positive_seconds(text: str) -> float:
    """A number of seconds, or a duration as run.wall_limit takes it ([D-]HH:MM:SS, MM:SS), finite
    and > 0 (argparse type)."""
    import argparse
    import math

    from solver.case.load import parse_duration

    try:
        value = float(text)
    except ValueError:
        value = parse_duration(text)
        if value is None:
            raise argparse.ArgumentTypeError(f"not a number of seconds or [D-]HH:MM:SS: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text}")
    return value


def study_arguments(p) -> None:
    p.description = "Run a parameter study or a Monte Carlo ensemble of a case: groups of ranks run samples " \
                    "side by side."
    p.add_argument("study", help="study file (TOML): base case, varied keys, outputs")
    p.add_argument("--ranks-per-case", type=int, default=1, metavar="R",
                   help="ranks per sample (must divide the number of ranks; default 1)")
    p.add_argument("--restart", metavar="latest", help="continue a stopped study (skips the samples done)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier study file (kept as .bak)")
    p.add_argument("--schedule", choices=("dynamic", "static"), default="dynamic",
                   help="hand samples out as groups finish (default), or in a fixed round-robin")
    p.add_argument("--wall-limit", type=positive_seconds, metavar="SECONDS|HH:MM:SS",
                   help="stop (and write the study file) before this much wall time (default: the SLURM job's)")
    p.add_argument("--quiet", action="store_true", help="no line per sample")


def run_plan(args) -> Plan:
    """A run, on the current launch; --quiet quiets its log."""
    return Plan("solver.app.cli:run_command", Launch.MPI, quiet=args.quiet)


def bench_plan(args) -> Plan:
    """--solvers, --study, --accuracy and --model launch whole processes; the machine figures run on the current
    launch, or on --ranks N (default: the cores of this machine) under an mpirun of their own."""
    if args.solvers:
        return Plan("solver.bench.solvers:solvers_command", Launch.PROCESSES)
    if args.study:
        return Plan("solver.bench.study:throughput_command", Launch.PROCESSES)
    if args.accuracy:
        return Plan("solver.bench.accuracy:accuracy_command", Launch.PROCESSES)
    if args.model:
        return Plan("solver.bench.model:main", Launch.PROCESSES)
    return Plan("solver.bench.machine:bench_command", Launch.MPI, ranks=args.ranks or os.cpu_count() or 1)


def always(handler: str, launch: Launch) -> Callable:
    """The plan of a command that runs one way whatever its arguments."""
    plan = Plan(handler, launch)
    return lambda args: plan


COMMANDS = {command.name: command for command in (
    Command("run", "run a case (the default command)", run_arguments, run_plan, records_status=True,
            graceful_stop=True),
    Command("study", "a parameter study or a Monte Carlo ensemble of a case", study_arguments,
            always("solver.app.study.driver:study_command", Launch.MPI), records_status=True, graceful_stop=True),
    Command("verify", "manufactured-solution convergence orders in space and time", verify_arguments,
            always("solver.bench.verify:verify_command", Launch.MPI)),
    Command("bench", "performance figures of this machine, of the linear solvers (--solvers) or of studies "
            "(--study)", bench_arguments, bench_plan),
    Command("info", "what a results file or a study file holds", info_arguments,
            always("solver.post.info:info_command", Launch.SERIAL)),
    Command("plot", "a field, the time series or a study's outputs as PNG", plot_arguments,
            always("solver.post.plot:plot_command", Launch.SERIAL)),
    Command("probe", "a field at points over time", probe_arguments,
            always("solver.post.probe:probe_command", Launch.SERIAL)),
    Command("export", "a results file as vtu, xdmf or CSV", export_arguments,
            always("solver.post.export:export_command", Launch.SERIAL)),
)}


NUMBER_OPTIONS = ("--at", "--time", "--slice")  # options whose value may start with a minus sign


def joined_negative_values(argv: list[str]) -> list[str]:
    """``--at -0.05,0`` as ``--at=-0.05,0``: argparse takes a word that starts with "-" and is not a
    plain negative number (a point, a plane, -inf) for an option, and says "expected one argument"."""
    out = []
    for word in argv:
        if out and out[-1] in NUMBER_OPTIONS and re.match(r"-([\d.]|inf|nan)", word, re.IGNORECASE):
            out[-1] = f"{out[-1]}={word}"
        else:
            out.append(word)
    return out


def command_line(argv) -> list[str]:
    """The words to parse, with the default command: words whose first names no command (and is
    none of -h, --help, --version) are ``run``'s, so a case file or a run option may come first."""
    if len(argv) > MAX_WORDS:
        raise CaseError(f"command line: {len(argv):,} words, more than the {MAX_WORDS:,} allowed (more probe "
                        f"points: output.probes of a case, up to 10,000; many keys: a case file)")
    argv = joined_negative_values(list(argv))
    for word in argv:
        if not word.isascii() and not _is_utf8(word):
            shown = word.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
            raise CaseError(f"{cut(shown)}: not UTF-8 text (the command line is recorded in the results and the log); "
                            f"rename the file, or give its name in UTF-8")
    if argv[:1] and (argv[0] in COMMANDS or argv[0] in TOP_LEVEL):
        return argv
    if argv[:1] and not argv[0].startswith("-") and not os.path.lexists(argv[0]):
        import difflib

        near = difflib.get_close_matches(argv[0], COMMANDS, n=1, cutoff=0.75)
        if near:  # a mistyped command, not a case file
            raise CaseError(f"{argv[0]}: not a command, nor a case file; did you mean {near[0]}? (commands: "
                            f"{', '.join(COMMANDS)})")
    return ["run", *argv]


def _is_utf8(word: str) -> bool:
    """A word of the command line that is text: no byte that UTF-8 cannot decode (Python keeps such
    bytes as lone surrogates)."""
    try:
        word.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def build_parser() -> ArgumentParser:
    """The parser of ``python -m solver``: a subparser per command of :data:`COMMANDS`."""
    p = ArgumentParser(prog="python -m solver",
                       description="Parallel finite-element heat diffusion. Run under MPI: mpirun -n 4 python -m "
                                   "solver inputs/plate.toml.",
                       epilog="Without a command the words are run's: python -m solver [case.toml] [--set "
                              "SECTION.KEY=VALUE ...] [options]. python -m solver COMMAND --help lists a "
                              "command's options. Documentation (make docs builds it as a site): "
                              "docs/getting_started.md; case-file keys: docs/reference/case_keys.md; "
                              "commands: docs/reference/commands.md; exit statuses: docs/guide/errors.md.")
    version_argument(p)
    commands = p.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND",
                                parser_class=CommandParser)
    for command in COMMANDS.values():
        command.arguments(commands.add_parser(command.name, help=command.summary))
    return p
