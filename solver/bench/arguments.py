"""The arguments of ``python -m solver bench`` and ``python -m solver verify``. Light: the command
line is parsed before anything heavy is imported or MPI is started.

``bench`` has five forms on one parser: the machine figures (the default, :mod:`.machine`),
``--solvers`` (:mod:`.solvers`), ``--study`` (:mod:`.study`), ``--accuracy``
(:mod:`.accuracy`) and ``--model`` (:mod:`.model`). Some options are shared with other meanings and
defaults (``--ranks`` is one number of the machine figures, ``--study`` and ``--accuracy``, a list
with ``--solvers``), so every option is parsed without a default and :func:`complete_bench` then
refuses the options of another form and fills in the defaults of the one chosen (:data:`FORMS`),
before any of them runs.
"""

from __future__ import annotations

import math
from pathlib import Path

QUICK = {"stream": 2 ** 24, "dofs_2d": 250_000, "dofs_3d": 60_000, "cells": 250_000, "steps": 3, "repeat": 3}
FULL = {"stream": 2 ** 25, "dofs_2d": 1_000_000, "dofs_3d": 1_000_000, "cells": 1_000_000, "steps": 5, "repeat": 5}
PARTS = ("steps", "stream", "linalg", "assembly", "hdf5")  # what the machine figures measure (--only)

FORMS = {  # each form's options and their defaults (None: none, or chosen by the form's code)
    "the machine figures": {
        "--quick": False, "--dofs-2d": None, "--dofs-3d": None, "--cells": None, "--cells-3d": None,
        "--meshes": None, "--only": None, "--dolfinx": "auto", "--dolfinx-script": None, "--dolfinx-repeat": 1,
        "--dolfinx-json": [], "--stream": None, "--steps": None, "--repeat": None, "--ranks": None,
        "--json": Path("outputs/bench/bench.json")},
    "--solvers": {
        "--dim": 2, "--n": None, "--ranks": [1, 2], "--repeat": 3, "--no-peer": False, "--peer-script": None,
        "--iteration-ranks": [], "--iteration-sizes": [], "--crossover": [], "--block3d": [], "--block3d-steps": 50,
        "--nonlinear": False, "--no-reference": False, "--set": [], "--timeout": 3600.0, "--degree": 1,
        "--theta": 1.0, "--json": Path("outputs/bench/solvers.json")},
    "--study": {"--ranks": [2], "--repeat": 3, "--n": 80, "--steps": 80, "--json": Path("outputs/bench/study.json")},
    "--accuracy": {"--dim": None, "--ranks": [1], "--repeat": 3, "--p1": None, "--p2": None, "--timeout": 3600.0,
                   "--json": Path("outputs/bench/accuracy.json"), "--plot": Path("outputs/bench/accuracy.png")},
    "--model": {"--timeout": 3600.0, "--remeasure": False, "--json": Path("outputs/bench/model_profiles.json"),
                "--plot": Path("outputs/bench/scaling_model.png")},
}


def bench_arguments(p) -> None:
    """The five forms' options, grouped by form; :func:`complete_bench` completes them."""
    p.description = "How close the solver runs to what the machine can do (the default), the linear solvers " \
                    "against DOLFINx (--solvers), the throughput of studies (--study), the time to reach an " \
                    "accuracy with linear and quadratic elements (--accuracy), or a model of a time step's cost " \
                    "at large rank counts (--model)."
    p.epilog = "--solvers, --study and --accuracy launch whole processes side by side and start no MPI themselves."
    p.complete = complete_bench
    form = p.add_mutually_exclusive_group()
    form.add_argument("--solvers", action="store_true", help="the linear solvers on the reference problem, "
                      "whole processes, beside DOLFINx/PETSc when it is installed")
    form.add_argument("--study", action="store_true", help="the throughput of studies, whole processes")
    form.add_argument("--accuracy", action="store_true", help="time to accuracy of P1 and P2 on a steady "
                      "manufactured solution, whole processes, and its plot")
    form.add_argument("--model", action="store_true", help="the scaling model of a time step: the multigrid's "
                      "profile measured on 1-16 ranks, checked against the 16-core table, projected to many nodes")
    shared = p.add_argument_group("every form")
    shared.add_argument("--ranks", type=int, nargs="+", metavar="N",
                        help="the machine figures: ranks to launch when started without mpirun (default: the "
                             "cores of this machine); --solvers: each rank count to run on (default 1 2); "
                             "--study: ranks of the side-by-side runs (default 2); --accuracy: ranks of "
                             "each run (default 1)")
    shared.add_argument("--repeat", type=int, help="repetitions: the best is kept (the machine figures), or "
                        "alternated runs (--solvers, --study, --accuracy: default 3)")
    shared.add_argument("--json", type=Path, help="where to write the figures (default outputs/bench/bench.json; "
                        "solvers.json with --solvers, study.json with --study, accuracy.json with --accuracy)")
    machine_arguments(p.add_argument_group("the machine figures (the default)"))
    solvers_arguments(p.add_argument_group("--solvers"))
    accuracy_arguments(p.add_argument_group("--accuracy"))


def machine_arguments(g) -> None:
    quick = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in QUICK.items())
    g.add_argument("--quick", action="store_true", help=f"small sizes (about 30 s on 2 cores): {quick}")
    g.add_argument("--dofs-2d", type=float, help=f"DOFs of the 2D P1 problems (default {FULL['dofs_2d']:g})")
    g.add_argument("--dofs-3d", type=float, help=f"DOFs of the 3D P1 problem (default {FULL['dofs_3d']:g})")
    g.add_argument("--cells", type=float, help=f"cells of the assembly meshes (default {FULL['cells']:g})")
    g.add_argument("--cells-3d", type=float, help="cells of the 3D assembly meshes (default: --cells)")
    g.add_argument("--meshes", help="comma-separated assembly meshes, of P1-2D,Q1-2D,P1-3D,Q1-3D,P2-2D,P2-3D "
                   "(default: all)")
    g.add_argument("--only", help=f"comma-separated parts to measure, of {','.join(PARTS)} (default: all)")
    g.add_argument("--dolfinx", choices=("auto", "yes", "no"),
                   help="run DOLFINx (dolfinx_heat.py with /usr/bin/python3) on the P1 and P2 assembly meshes, 1 and N "
                        "ranks, and show its figures beside ours: auto (the default) = when it is installed")
    g.add_argument("--dolfinx-script", help="the peer script dolfinx_heat.py (default: shared/peers/ beside the "
                   "project)")
    g.add_argument("--dolfinx-repeat", type=int, help="DOLFINx runs per mesh and rank count (medians; default 1)")
    g.add_argument("--dolfinx-json", action="append",
                   help="a file of dolfinx_heat.py JSON lines to compare with instead of (or besides) running it "
                        "(read with the command line)")
    g.add_argument("--stream", type=float, help=f"elements per triad array (default {FULL['stream']:,})")
    g.add_argument("--steps", type=int, help="time steps timed per case; --study: time steps of a sample "
                   "(default 80)")


def solvers_arguments(g) -> None:
    g.add_argument("--dim", type=int, choices=(2, 3), help="the reference problem in 2D (default) or 3D; "
                   "--accuracy: only 2D or only 3D (default both)")
    g.add_argument("--n", type=int, help="cells per side (default 1024 in 2D, 100 in 3D); --study: cells per "
                   "side of each sample's mesh (default 80)")
    g.add_argument("--degree", type=int, choices=(1, 2), help="Lagrange degree of both solvers' elements "
                   "(default 1; 2: P2)")
    g.add_argument("--theta", type=float, choices=(1.0, 0.5), help="1: backward Euler (default), 0.5: "
                   "Crank-Nicolson, for both")
    g.add_argument("--no-peer", action="store_true", help="do not run DOLFINx even when it is installed")
    g.add_argument("--peer-script", type=Path, help="the peer script (default: shared/peers/dolfinx_heat.py "
                   "beside the project)")
    g.add_argument("--iteration-ranks", type=int, nargs="*", help="e.g. 1 2 3 4 8 16")
    g.add_argument("--iteration-sizes", type=int, nargs="*", help="cells per side, e.g. 512 1024 2048")
    g.add_argument("--crossover", type=int, nargs="*", metavar="N",
                   help="2D sizes (cells per side) at which to time the exact LU against AMG on one rank, "
                        "e.g. 128 256 512 1024")
    g.add_argument("--block3d", type=int, nargs="*", metavar="N",
                   help="run inputs/block3d.toml at N^3 hexahedra on each of --ranks, e.g. 64 128")
    g.add_argument("--block3d-steps", type=int, help="BDF2 steps of the block3d runs (default 50)")
    g.add_argument("--nonlinear", action="store_true",
                   help="one Newton iteration of the radiating heat sink against one linear step of its mesh")
    g.add_argument("--no-reference", action="store_true", help="skip the reference problem (only the extra series)")
    g.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="extra case overrides of our runs, e.g. --set solver.preconditioner=jacobi")
    g.add_argument("--timeout", type=float, help="seconds per process (default 3600)")


def accuracy_arguments(g) -> None:
    g.add_argument("--p1", type=int, nargs="+", metavar="N", help="cells per side of the P1 series (with one --dim; "
                   "default: 64 to 2048 in 2D, 8 to 128 in 3D)")
    g.add_argument("--p2", type=int, nargs="+", metavar="N", help="cells per side of the P2 series (with one --dim; "
                   "default: 8 to 256 in 2D, 4 to 48 in 3D)")
    g.add_argument("--plot", type=Path, help="the plot of error against wall time (default "
                   "outputs/bench/accuracy.png), or of the scaling model (--model, default "
                   "outputs/bench/scaling_model.png)")
    g.add_argument("--remeasure", action="store_true", help="--model: measure the profiles again even when "
                   "--json holds them")


def complete_bench(parser, args) -> None:
    """Refuse the options of the forms not chosen and fill in the chosen form's defaults;
    ``--ranks`` is one number but with --solvers."""
    form = "--solvers" if args.solvers else "--study" if args.study else "--accuracy" if args.accuracy else \
        "--model" if args.model else "the machine figures"
    for option in sorted(set().union(*FORMS.values()) - set(FORMS[form])):
        if given(args, option):
            owners = " or ".join(name for name, options in FORMS.items() if option in options)
            parser.error(f"{option}: only with {owners}, not with {form}")
    if form != "--solvers" and args.ranks is not None:
        if len(args.ranks) > 1:
            parser.error(f"--ranks {_listed(args.ranks)}: one number of ranks (a list with --solvers)")
    for option, default in FORMS[form].items():
        if getattr(args, dest(option)) is None:
            setattr(args, dest(option), list(default) if isinstance(default, list) else default)
    if form != "--solvers" and args.ranks is not None:
        args.ranks = args.ranks[0]
    if form == "--accuracy" and (args.p1 or args.p2) and not args.dim:
        parser.error("--p1/--p2: with one --dim (the series are of one dimension)")
    unknown = set(args.only.split(",")) - set(PARTS) if args.only is not None else set()
    if unknown:
        parser.error(f"--only {args.only}: unknown parts {sorted(unknown)}; choose among {', '.join(PARTS)}")
    check_ranges(parser, args)


MESH_NAMES = ("P1-2D", "Q1-2D", "P1-3D", "Q1-3D", "P2-2D", "P2-3D")  # --meshes
SIZE_LIMITS = {"--dofs-2d": (100, 1e9), "--dofs-3d": (100, 1e9), "--cells": (1, 1e9), "--cells-3d": (1, 1e9),
               "--stream": (1000, 1e9), "--timeout": (1, 1e6), "--steps": (1, 1e6), "--n": (2, 1e5),
               "--repeat": (1, 1000), "--dolfinx-repeat": (1, 1000), "--block3d-steps": (1, 1e6)}


SIDE_LIMITS = {"--iteration-sizes": (2, 16384), "--crossover": (2, 16384), "--block3d": (2, 1000),
               "--p1": (2, 16384), "--p2": (2, 16384)}  # cells per side (3D: --block3d's limit)


def check_ranges(parser, args) -> None:
    """Sizes and counts within what a machine can hold and a run can mean (each its own range),
    rank counts of at least one, the assembly meshes by name, a --json that is a file to write, and the
    runs of the --dolfinx-json files."""
    for option, (low, high) in SIZE_LIMITS.items():
        value = getattr(args, dest(option), None)
        if value is None or isinstance(value, bool):
            continue
        if not (math.isfinite(value) and low <= value <= high):
            parser.error(f"{option} {value:g}: from {low:g} to {high:g}")
    ranks = args.ranks if isinstance(args.ranks, list) else [] if args.ranks is None else [args.ranks]
    for option, counts in (("--ranks", ranks), ("--iteration-ranks", args.iteration_ranks or [])):
        if any(r < 1 or r > 4096 for r in counts):
            parser.error(f"{option} {_listed(counts)}: from 1 to 4096 ranks")
    for option, (low, high) in SIDE_LIMITS.items():  # cells per side: each run's mesh, checked before any starts
        sides = getattr(args, dest(option), None) or []
        if option in ("--p1", "--p2") and args.dim == 3:
            high = SIDE_LIMITS["--block3d"][1]
        if any(not low <= n <= high for n in sides):
            parser.error(f"{option} {_listed(sides)}: cells per side from {low} to {high}")
        if option in ("--p1", "--p2") and sides and (len(sides) < 2 or any(b <= a for a, b in zip(sides, sides[1:]))):
            parser.error(f"{option} {_listed(sides)}: at least two increasing sizes (a series)")
    if args.meshes:
        unknown = sorted(set(args.meshes.split(",")) - set(MESH_NAMES))
        if unknown:
            parser.error(f"--meshes {args.meshes}: unknown meshes {unknown}; choose among {', '.join(MESH_NAMES)}")
    import os
    import stat

    from solver.case.inputfiles import holds_hdf5, name_problem

    for option in ("--json", "--plot"):
        target = getattr(args, dest(option), None)
        if target is None:
            continue
        problem = name_problem(target)
        if problem:
            parser.error(f"{option} {target}: {problem}")
        try:
            mode = os.stat(target).st_mode
        except FileNotFoundError:
            mode = None
        except OSError as exc:  # a link loop, a folder on the way that is a file
            parser.error(f"{option} {target}: cannot write into its folder {Path(target).parent} ({exc.strerror})")
        if mode is not None and not stat.S_ISREG(mode):
            parser.error(f"{option} {target}: not a regular file (a directory, a device or a FIFO); give a file name")
        if option == "--json" and args.model and not getattr(args, "remeasure", False):
            continue  # --model reads its profiles back from --json
        if mode is not None and holds_hdf5(target):
            parser.error(f"{option} {target}: is an HDF5 file (results, a study or a checkpoint?), which this "
                         f"would overwrite; give another name")
        if option == "--plot":  # its format by its extension (.png added to none), before any measurement
            from solver.post.targets import PLOT_SUFFIXES

            plot = Path(target) if Path(target).suffix else Path(target).with_name(Path(target).name + ".png")
            if plot.suffix.lower() not in PLOT_SUFFIXES:
                parser.error(f"--plot {target}: unknown extension {plot.suffix!r}; allowed: {', '.join(PLOT_SUFFIXES)}")
            args.plot = plot
    for path in getattr(args, "dolfinx_json", None) or []:  # read now: its runs are compared after the measurements
        from solver.bench.peers import read_dolfinx_json

        try:
            read_dolfinx_json(path)
        except ValueError as exc:
            parser.error(f"--dolfinx-json {path}: {exc}")


def _listed(values) -> str:
    """The values of a list option as given, or their first ones and their number when many."""
    values = list(values)
    shown = " ".join(map(str, values[:8]))
    return shown if len(values) <= 8 else f"{shown} ... ({len(values)} values)"


def dest(option: str) -> str:
    """The attribute of an option (``--dofs-2d``: ``dofs_2d``)."""
    return option[2:].replace("-", "_")


def given(args, option: str) -> bool:
    """Whether the command line gave ``option`` (every bench option is parsed without a default)."""
    value = getattr(args, dest(option))
    return value is not None and value is not False


def verify_arguments(p) -> None:
    p.description = "Manufactured-solution convergence study: prints L2/H1 errors and observed orders in " \
                    "space and time, for linear and quadratic elements and on a curved boundary; exits 1 when an " \
                    "order misses its theory by more than 0.2 (linear) or 0.15 (quadratic elements)."
    p.add_argument("--dim", type=int, choices=(2, 3), help="only 2D or only 3D (default: both)")
    p.add_argument("--element", action="append", choices=("triangle", "quadrilateral", "tetrahedron", "hexahedron"),
                   help="only this cell type (repeatable)")
    p.add_argument("--degree", type=int, action="append", choices=(1, 2),
                   help="only elements of this degree (repeatable; default 1 and 2)")
    p.add_argument("--levels", type=int, nargs="+", metavar="N", help="cells per side of the meshes, at least "
                   f"two, increasing, from 1 to {MAX_LEVEL} (default 8 16 32 in 2D, 4 8 16 in 3D; quadratic "
                   "elements 4 8 16), for the space studies; the time studies and the curved ring keep their meshes")
    p.complete = complete_verify


MAX_LEVEL = 1024  # cells per side of a 2D verify mesh at most
MAX_LEVEL_3D = 96  # of a 3D one: 96^3 hexahedra of degree 2 hold 7.1M DOFs (1024^3 would not fit anywhere)


def complete_verify(parser, args) -> None:
    """Refuse --levels that cannot give an order: fewer than two, not increasing, out of range
    (3D meshes hold the cube of the level); refuse --element of another dimension than --dim.
    A repeated --element or --degree is one (their first order kept): each study runs once."""
    args.element, args.degree = (list(dict.fromkeys(v)) if v else v for v in (args.element, args.degree))
    dims = {"triangle": 2, "quadrilateral": 2, "tetrahedron": 3, "hexahedron": 3}
    wrong = [e for e in (args.element or []) if args.dim and dims[e] != args.dim]
    if wrong:
        parser.error(f"--element {wrong[0]}: a {dims[wrong[0]]}D cell, not with --dim {args.dim}")
    if args.element and not args.dim and len({dims[e] for e in args.element}) == 1:
        args.dim = dims[args.element[0]]
    levels = args.levels
    if levels is None:
        return
    if len(levels) < 2:
        parser.error(f"--levels {_listed(levels)}: at least two mesh sizes (an order compares two)")
    high = MAX_LEVEL if args.dim == 2 else MAX_LEVEL_3D
    if any(n < 1 or n > high for n in levels):
        where = "" if args.dim == 2 else " (3D meshes; with --dim 2, up to {MAX_LEVEL})".format(MAX_LEVEL=MAX_LEVEL)
        parser.error(f"--levels {_listed(levels)}: cells per side from 1 to {high}{where}")
    if any(b <= a for a, b in zip(levels, levels[1:])):
        parser.error(f"--levels {_listed(levels)}: increasing sizes")
    for dim in ([args.dim] if args.dim else [2, 3]):
        for degree in sorted(set(args.degree or (1, 2))):
            work = verify_work(levels[-1], dim, degree)
            if work > MAX_VERIFY_WORK and (dim == 2 or levels[-1] <= MAX_LEVEL_3D):
                hint = "" if args.degree else " (or --degree 1: quadratic elements take n^1.5 steps)"
                parser.error(f"--levels {levels[-1]}: {dim}D elements of degree {degree} would take {work:.1e} "
                             f"DOF-steps on the finest mesh (hours on one core), above {MAX_VERIFY_WORK:.0e}; give "
                             f"smaller levels{hint}")


MAX_VERIFY_WORK = 2e9  # DOFs x time steps of a verify mesh: about 20 minutes on one core


def verify_work(n: int, dim: int, degree: int) -> float:
    """DOFs times time steps of the space study's mesh of n cells per side (its time steps: n,
    or n^1.5 for quadratic elements, so that the time error stays below the space error)."""
    steps = n if degree == 1 else math.ceil(n ** 1.5)
    return float((degree * n + 1) ** dim) * steps
