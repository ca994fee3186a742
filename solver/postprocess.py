"""Post-processing commands: ``info``, ``plot``, ``probe`` and ``export`` of a results file.

    python -m solver info outputs/plate/plate.h5 [--json]
    python -m solver plot outputs/plate/plate.h5 [--step -1 | --time T] [--slice z=0.5] [--series] [-o fig.png]
    python -m solver probe outputs/plate/plate.h5 --at 0.1,0.05 [--at ...] [--csv]
    python -m solver export outputs/plate/plate.h5 --format vtu|xdmf|csv [--step -1] [-o out]

They run on one process (serial h5py) and refuse bad requests with exit status 2.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np

from solver.errors import CaseError
from solver.results import Results


def _parser(prog, description):
    from solver.cli import _Parser

    p = _Parser(prog=f"python -m solver {prog}", description=description)
    p.add_argument("results", help="a results file (outputs/<case>/<case>.h5)")
    return p


def _when(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--step", type=int, default=None, help="snapshot index (default -1: the last)")
    g.add_argument("--time", type=float, default=None, help="the snapshot nearest to this time")


# ---------------------------------------------------------------------------------- info
def summary(r: Results) -> dict:
    a = r.attrs
    last = r.temperature(-1)
    times = r.times
    return {
        "file": str(r.path), "case": r.case.get("output", {}).get("name", r.path.stem),
        "case_source": a.get("case_source", ""), "solver_version": a.get("solver_version", ""),
        "mesh": {"nodes": int(len(r.points)), "cells": int(len(r.cells)), "cell_type": r.cell_type, "dim": r.dim},
        "ranks": int(a.get("ranks", 0)), "complete": bool(a.get("complete", True)),
        "snapshots": int(len(times)), "steps": [int(s) for s in r.steps],
        "time_range": [float(times[0]), float(times[-1])] if len(times) else [],
        "scheme": r.case.get("time", {}).get("scheme", ""),
        "last": {"time": float(times[-1]), "min": float(last.min()), "max": float(last.max()),
                 "mean": float(last.mean())},
        "solver": {"preconditioner": r.case.get("solver", {}).get("preconditioner", ""),
                   "linear_iterations": int(a.get("linear_iterations", 0)), "steps": int(a.get("steps", 0))},
        "heat_balance_relative_imbalance": float(a.get("balance_relative_imbalance", float("nan"))),
        "wall_time": {k[len("wall_time_"):]: float(v) for k, v in a.items() if k.startswith("wall_time_")},
    }


def info_command(argv, comm=None) -> int:
    p = _parser("info", "What a results file holds.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    args = p.parse_args(argv)
    with Results(args.results) as r:
        s = summary(r)
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    m, last, sol = s["mesh"], s["last"], s["solver"]
    steps = s["steps"]
    lines = [
        f"file        {s['file']}",
        f"case        {s['case']} ({s['case_source']}), solver {s['solver_version']}",
        f"mesh        {m['nodes']} nodes, {m['cells']} {m['cell_type']} cells, {m['dim']}D",
        f"run         {s['ranks']} ranks, {s['scheme']}, {'complete' if s['complete'] else 'INCOMPLETE (stopped or failed)'}",
        f"snapshots   {s['snapshots']} (steps {steps[0]}..{steps[-1]}, t = {s['time_range'][0]:g}..{s['time_range'][1]:g})",
        f"last field  t = {last['time']:g}: min {last['min']:.6g}, max {last['max']:.6g}, mean {last['mean']:.6g}",
        f"solver      {sol['linear_iterations']} CG iterations over {sol['steps']} steps "
        f"(preconditioner {sol['preconditioner']}); heat imbalance {s['heat_balance_relative_imbalance']:.1e}",
        "wall time   " + ", ".join(f"{k} {v:.3f} s" for k, v in sorted(s["wall_time"].items())),
    ]
    print("\n".join(lines))
    return 0


# ---------------------------------------------------------------------------------- probe
def parse_points(values, dim, option="--at"):
    pts = []
    for v in values:
        try:
            p = [float(c) for c in v.split(",")]
        except ValueError:
            raise CaseError(f"{option} {v}: expected comma-separated coordinates, e.g. {option} 0.5,0.25") from None
        if len(p) != dim:
            raise CaseError(f"{option} {v}: the mesh is {dim}D, give {dim} coordinates")
        pts.append(p)
    return np.array(pts)


def probe_command(argv, comm=None) -> int:
    p = _parser("probe", "Temperature at points over time (finite-element interpolation).")
    p.add_argument("--at", action="append", required=True, metavar="X,Y[,Z]", help="a point (repeatable)")
    p.add_argument("--csv", action="store_true", help="CSV instead of a table")
    args = p.parse_args(argv)
    with Results(args.results) as r:
        pts = parse_points(args.at, r.dim)
        cell, xi = r.locator.locate(pts)
        bad = np.flatnonzero(cell < 0)
        if len(bad):
            raise CaseError(f"--at {args.at[bad[0]]}: point is outside the mesh of {r.path.name}")
        rows = [(t, *r.locator.interpolate(r.temperature(i), cell, xi)) for i, t in enumerate(r.times)]
    names = [f"T({a})" for a in args.at]
    if args.csv:
        print(",".join(["time"] + [f'"{n}"' for n in names]))
        for row in rows:
            print(",".join(repr(float(v)) for v in row))
    else:
        print(f"{'time':>12} " + " ".join(f"{n:>18}" for n in names))
        for t, *vals in rows:
            print(f"{t:12.6g} " + " ".join(f"{v:18.10g}" for v in vals))
    return 0


# ---------------------------------------------------------------------------------- export
def export_command(argv, comm=None) -> int:
    import meshio

    p = _parser("export", "Convert a results file with meshio (vtu, xdmf) or to CSV.")
    p.add_argument("--format", required=True, choices=("vtu", "xdmf", "csv"))
    p.add_argument("-o", "--output", help="output file (default: beside the results file)")
    p.add_argument("--all", action="store_true", help="every snapshot (vtu: one file each; xdmf: a time series)")
    _when(p)
    args = p.parse_args(argv)
    with Results(args.results) as r:
        meshio_type = {"triangle": "triangle", "quadrilateral": "quad", "tetrahedron": "tetra",
                       "hexahedron": "hexahedron"}[r.cell_type]
        indices = range(len(r.times)) if args.all else [r.index(args.step, args.time)]
        stem = Path(args.output) if args.output else r.path.with_suffix("")
        written = []
        if args.format == "xdmf":
            out = (stem.with_suffix(".xdmf") if not args.output else Path(args.output)).resolve()
            with contextlib.chdir(out.parent):  # meshio writes its .h5 into the working directory
                with meshio.xdmf.TimeSeriesWriter(out.name) as w:
                    w.write_points_cells(r.points, [(meshio_type, r.cells)])
                    for i in indices:
                        w.write_data(float(r.times[i]), point_data={"temperature": r.temperature(i)})
            written.append(out)
        for i in indices if args.format != "xdmf" else []:
            suffix = f"_{i:06d}" if args.all else ""
            out = Path(f"{stem}{suffix}.{args.format}") if (args.all or not args.output) else Path(args.output)
            if args.format == "vtu":
                meshio.write(out, meshio.Mesh(r.points, [(meshio_type, r.cells)],
                                              point_data={"temperature": r.temperature(i)}))
            else:
                cols = ["x", "y", "z"][: r.dim] + ["temperature"]
                data = np.column_stack([r.points, r.temperature(i)])
                np.savetxt(out, data, delimiter=",", header=",".join(cols), comments="",
                           fmt="%.17g")
            written.append(out)
    for w in written:
        print(w)
    return 0


# ---------------------------------------------------------------------------------- plot
def plot_command(argv, comm=None) -> int:
    p = _parser("plot", "Plot a field (2D: filled plot; 3D: a slice) or the time series of min/max/mean.")
    _when(p)
    p.add_argument("-o", "--output", help="PNG file (default: beside the results file)")
    p.add_argument("--size", default="1000x700", help="image size in pixels, WxH (default 1000x700)")
    p.add_argument("--mesh", action="store_true", help="draw the mesh edges (2D)")
    p.add_argument("--slice", metavar="AXIS=VALUE", help="3D: the plane to show, e.g. z=0.5 (default: mid-z)")
    p.add_argument("--series", action="store_true", help="min/max/mean (and recorded probes) against time")
    p.add_argument("--units", default="°C", help="temperature units for the colour bar (default °C)")
    args = p.parse_args(argv)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.tri import Triangulation
    except ImportError:
        raise CaseError("plot needs matplotlib: pip install matplotlib (or pip install .[plot])") from None
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
        assert w > 0 and h > 0
    except (ValueError, AssertionError):
        raise CaseError(f"--size {args.size}: expected WIDTHxHEIGHT in pixels, e.g. 1000x700") from None
    with Results(args.results) as r:
        fig = plt.figure(figsize=(w / 100, h / 100), dpi=100)
        ax = fig.add_subplot()
        if args.series:
            out = Path(args.output) if args.output else r.path.with_name(r.path.stem + "_series.png")
            stats = np.array([(T.min(), T.max(), T.mean()) for T in (r.temperature(i) for i in range(len(r.times)))])
            for k, label in enumerate(("min", "max", "mean")):
                ax.plot(r.times, stats[:, k], label=label)
            if "probes/values" in r.file:
                pts = r.file["probes/points"][()]
                for j, v in enumerate(r.file["probes/values"][()].T):
                    ax.plot(r.file["probes/time"][()], v, "--", label="probe (" + ", ".join(f"{c:g}" for c in pts[j]) + ")")
            ax.set_xlabel("time (s)")
            ax.set_ylabel(f"temperature ({args.units})")
            ax.legend()
            ax.set_title(f"{r.path.stem}: temperature over time")
        else:
            i = r.index(args.step, args.time)
            T = r.temperature(i)
            out = Path(args.output) if args.output else r.path.with_name(f"{r.path.stem}_{i:06d}.png")
            if r.dim == 2:
                tris = r.cells if r.cell_type == "triangle" else np.concatenate([r.cells[:, [0, 1, 2]], r.cells[:, [0, 2, 3]]])
                tri = Triangulation(r.points[:, 0], r.points[:, 1], tris)
                im = ax.tripcolor(tri, T, shading="gouraud", cmap="inferno")
                if args.mesh:
                    ax.triplot(tri, lw=0.2, color="white", alpha=0.5)
                ax.set_xlabel("x (m)")
                ax.set_ylabel("y (m)")
            else:
                im = _slice(ax, r, T, args.slice)
            ax.set_aspect("equal")
            fig.colorbar(im, ax=ax, label=f"temperature ({args.units})")
            ax.set_title(f"{r.path.stem}: t = {r.times[i]:g} s (step {int(r.steps[i])})")
        fig.savefig(out, dpi=100)
        plt.close(fig)
    print(out)
    return 0


def _slice(ax, r: Results, T, spec):
    lo, hi = r.points.min(axis=0), r.points.max(axis=0)
    axis, value = 2, 0.5 * (lo[2] + hi[2])
    if spec:
        try:
            name, v = spec.split("=")
            axis, value = "xyz".index(name.strip()), float(v)
        except ValueError:
            raise CaseError(f"--slice {spec}: expected x=VALUE, y=VALUE or z=VALUE") from None
    if not lo[axis] <= value <= hi[axis]:
        raise CaseError(f"--slice {spec}: outside the mesh ({'xyz'[axis]} from {lo[axis]:g} to {hi[axis]:g})")
    a, b = [d for d in range(3) if d != axis]
    n = 240
    ga, gb = np.linspace(lo[a], hi[a], n), np.linspace(lo[b], hi[b], n)
    A, B = np.meshgrid(ga, gb)
    pts = np.zeros((A.size, 3))
    pts[:, a], pts[:, b], pts[:, axis] = A.ravel(), B.ravel(), value
    cell, xi = r.locator.locate(pts)
    vals = np.full(len(pts), np.nan)
    inside = cell >= 0
    vals[inside] = r.locator.interpolate(T, cell[inside], xi[inside])
    im = ax.pcolormesh(A, B, vals.reshape(A.shape), shading="auto", cmap="inferno")
    ax.set_xlabel(f"{'xyz'[a]} (m)")
    ax.set_ylabel(f"{'xyz'[b]} (m)")
    return im


COMMANDS = {"info": info_command, "plot": plot_command, "probe": probe_command, "export": export_command}
