"""``python -m solver bench --accuracy``: time to accuracy of linear and quadratic elements.

The steady manufactured solution of :mod:`solver.bench.verify` (anisotropic k, Dirichlet, Neumann
and Robin sides; no time error) on a series of structured meshes, P1 and P2, in 2D (triangles)
and 3D (tetrahedra). Each run is a whole process as a user starts it (``mpirun -n R python -m
solver case.toml``, the default solver ``auto`` to rtol 1e-12 from a zero first guess, results
written), timed from outside; its relative L2 error ``||u_h - u|| / ||u||`` is computed
afterwards from the results file by a degree-8 quadrature
(:func:`solver.bench.solvers.relative_l2_error`), so the error of quadratic cells is measured
as it is, not at the nodes.

The time at which a degree reaches an error is interpolated log-log between the two runs around
it. The figure is the ratio P1 / P2 at a target: a relative error of 1e-6 in 2D, and in 3D the
smallest error the P1 series reaches (``--p1`` sets how far that is; the default stops at
2.1M DOFs). A plot of error against wall time (``--plot``) shows both series and both targets.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import sys
from pathlib import Path

import tomli_w

from solver.bench.cases import scratch_beside
from solver.bench.solvers import run_case
from solver.parallel.launcher import mpirun_command

# cells per side of each series: P2 meshes are coarser (about as many DOFs as P1's at half of them)
SERIES = {(2, 1): (64, 128, 256, 512, 1024, 2048), (2, 2): (8, 16, 32, 64, 128, 256),
          (3, 1): (8, 16, 32, 64, 128), (3, 2): (4, 8, 16, 24, 32, 48)}
CELLS = {2: "triangle", 3: "tetrahedron"}
TARGET_2D = 1e-6  # the relative L2 error at which the 2D series are compared


def case_file(directory: Path, dim: int, degree: int) -> tuple[Path, str]:
    """The steady manufactured-solution case (its mesh sizes set per run) and its exact solution."""
    from solver.bench.verify import Manufactured, mms_values

    values = mms_values(CELLS[dim], 2, "steady", preconditioner="auto", degree=degree)
    values["initial"] = {"temperature": 0.0}  # the steady solve's first guess: nothing of the solution
    path = directory / f"mms{dim}d_p{degree}.toml"
    path.write_text(tomli_w.dumps(values))
    return path, Manufactured(dim, steady=True).u


def series(dim: int, degree: int, sizes: list[int], args, directory: Path, say) -> list[dict]:
    """One row per mesh: cells per side, DOFs, the relative L2 error and the whole process's wall
    time (median of ``args.repeat`` runs on ``args.ranks`` ranks, and their range)."""
    ranks, repeat, timeout = args.ranks, args.repeat, args.timeout
    case, exact = case_file(directory, dim, degree)
    axes = "xyz"[:dim]
    rows = []
    sets = lambda n: [arg for a in axes for arg in ("--set", f"mesh.n{a}={n}")]  # noqa: E731
    run_case(ranks, case, sets(2), "warm", directory, timeout)  # the kernels compiled (or loaded), untimed
    for n in sizes:
        runs = [run_case(ranks, case, sets(n), f"p{degree}_{dim}d_{n}", directory, timeout,
                         exact=exact if i == 0 else None) for i in range(repeat)]
        seconds = [r["whole_s"] for r in runs]
        rows.append({"n": n, "dofs": runs[0]["dofs"], "rel_l2_error": runs[0]["rel_l2_error"],
                     "whole_s": statistics.median(seconds), "range_s": [min(seconds), max(seconds)],
                     "solver_s": statistics.median(r["solver_total_s"] for r in runs),
                     "peak_rss_MB": max(r["peak_rss_MB"] for r in runs),
                     "iterations": runs[0]["iterations_per_step"], "preconditioner": runs[0]["preconditioner"]})
        say(f"  {dim}D P{degree} n = {n}: {rows[-1]['dofs']} DOFs, error {rows[-1]['rel_l2_error']:.3e}, "
            f"{rows[-1]['whole_s']:.2f} s")
    return rows


def time_at(rows: list[dict], error: float, key: str = "whole_s") -> float | None:
    """The time (``key``: whole process, or the run's own clock) at which a series reaches
    ``error``, interpolated log-log between the two runs around it (None: outside the series)."""
    for a, b in zip(rows, rows[1:]):
        ea, eb = a["rel_l2_error"], b["rel_l2_error"]
        if eb <= error <= ea and ea > eb:
            s = math.log(ea / error) / math.log(ea / eb)
            return math.exp(math.log(a[key]) + s * math.log(b[key] / a[key]))
    return None


def compare_at(p1: list[dict], p2: list[dict], dim: int) -> dict:
    """The target error of a dimension and each degree's time there, whole process and the run's
    own clock (P1's own run when the target is its smallest error)."""
    target = TARGET_2D if dim == 2 else min(r["rel_l2_error"] for r in p1)
    out = {"target_error": target}
    for key, prefix in (("whole_s", ""), ("solver_s", "own_clock_")):
        t1 = time_at(p1, target, key) if dim == 2 else min(p1, key=lambda r: r["rel_l2_error"])[key]
        t2 = time_at(p2, target, key)
        out.update({f"{prefix}p1_s": t1, f"{prefix}p2_s": t2,
                    f"{prefix}p1_over_p2": t1 / t2 if t1 is not None and t2 is not None else None})
    return out


def plot(r: dict, path: Path) -> None:
    """Error against whole-process wall time, one panel per dimension."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    dims = [d for d in (2, 3) if str(d) in r["series"]]
    fig, axes = plt.subplots(1, len(dims), figsize=(6.2 * len(dims), 4.6), squeeze=False)
    for ax, dim in zip(axes[0], dims):
        entry = r["series"][str(dim)]
        for degree, marker, color in ((1, "o", "C0"), (2, "s", "C1")):
            rows = entry[f"P{degree}"]
            errors = [x["rel_l2_error"] for x in rows]
            ax.loglog([x["whole_s"] for x in rows], errors, marker + "-", color=color,
                      label=f"P{degree}, whole process")
            ax.loglog([x["solver_s"] for x in rows], errors, marker + "--", color=color, alpha=0.45, markersize=4,
                      label=f"P{degree}, the run's own clock (no start-up)")
            for x in rows[-1:]:
                ax.annotate(f"{x['dofs'] / 1e6:.2g}M DOFs", (x["whole_s"], x["rel_l2_error"]), fontsize=8,
                            xytext=(4, 4), textcoords="offset points")
        cmp = entry["compare"]
        ax.axhline(cmp["target_error"], color="grey", ls=":", lw=1)
        if cmp["p1_over_p2"]:
            ax.set_title(f"{dim}D: P2 reaches {cmp['target_error']:.2g} {cmp['p1_over_p2']:.1f}x sooner than P1 "
                         f"({cmp['own_clock_p1_over_p2']:.0f}x on the runs' own clocks)", fontsize=9)
        ax.set_xlabel(f"wall time (s), {r['ranks']} rank(s)")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_ylabel("relative L2 error")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Time to accuracy: steady manufactured solution, default solver", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(r: dict) -> str:
    lines = [f"time to accuracy, {r['ranks']} rank(s), whole processes (median of {r['repeat']})"]
    for dim, entry in r["series"].items():
        for degree in (1, 2):
            lines.append(f"  {dim}D P{degree}: {'n':>5} {'DOFs':>9} {'rel. L2 error':>13} {'wall (s)':>9} "
                         f"{'own clock (s)':>13}")
            for x in entry[f"P{degree}"]:
                lines.append(f"        {x['n']:5d} {x['dofs']:9d} {x['rel_l2_error']:13.3e} {x['whole_s']:9.2f} "
                             f"{x['solver_s']:13.2f}")
        c = entry["compare"]
        fmt = lambda s: "not reached" if s is None else f"{s:.2f} s"  # noqa: E731
        ratio = "n/a" if c["p1_over_p2"] is None else f"{c['p1_over_p2']:.1f}x"
        own = "n/a" if c["own_clock_p1_over_p2"] is None else f"{c['own_clock_p1_over_p2']:.1f}x"
        lines.append(f"  {dim}D at a relative error of {c['target_error']:.3g}: P1 {fmt(c['p1_s'])}, "
                     f"P2 {fmt(c['p2_s'])}: P2 {ratio} sooner (>= 5x); on the runs' own clocks "
                     f"{fmt(c['own_clock_p1_s'])} and {fmt(c['own_clock_p2_s'])}: {own}")
    return "\n".join(lines)


def accuracy_command(args) -> int:
    """``bench --accuracy`` (the arguments: :func:`solver.bench.arguments.bench_arguments`)."""
    if mpirun_command(1) is None:
        print("bench --accuracy: mpirun not found", file=sys.stderr)
        return 2
    ranks = args.ranks

    def say(text):
        print(text, file=sys.stderr, flush=True)

    directory = scratch_beside(args.json, "bench-accuracy-")
    r = {"ranks": ranks, "repeat": args.repeat, "series": {}}
    try:
        for dim in ([args.dim] if args.dim else [2, 3]):
            entry = {}
            for degree, given in ((1, args.p1), (2, args.p2)):
                sizes = given or SERIES[(dim, degree)]
                entry[f"P{degree}"] = series(dim, degree, sizes, args, directory, say)
            entry["compare"] = compare_at(entry["P1"], entry["P2"], dim)
            r["series"][str(dim)] = entry
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(table(r))
    tmp = args.json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(r, indent=1))
    tmp.replace(args.json)
    plot(r, args.plot)
    print(f"\nfigures: {args.json}, plot: {args.plot}")
    return 0
