"""``python -m solver plot RESULTS``: a field (2D filled plot, 3D slice) or the time series, as PNG
(a study file: :mod:`solver.post.study_plot`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from solver.errors import CaseError
from solver.io.results_reader import Results
from solver.post.slices import check_view_options, colour_limits, draw_slice
from solver.post.targets import PLOT_SUFFIXES, output_target, plot_size, save_figure
from solver.post.triangles import triangles

UNITS = {"degC": "°C", "K": "K", "1": ""}  # the units attribute of a field -> its colour-bar unit
CMAPS = {"temperature": "inferno", "liquid_fraction": "viridis"}
LIMITS = {"liquid_fraction": (0.0, 1.0)}  # fixed colour range: a solid snapshot still reads as 0


MAX_PROBE_LINES = 20  # probes drawn as lines of their own in --series; more: their envelope


def plot_command(args) -> int:
    """A results file's field or time series as PNG, or a study file's plot when the command line
    took the study's form (the arguments: :func:`solver.post.arguments.plot_form`)."""
    if "study" in vars(args):
        from solver.post.study_plot import study_plot_command

        return study_plot_command(args)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.tri import Triangulation
    except ImportError:
        raise CaseError("plot needs matplotlib: pip install matplotlib (or pip install .[plot])") from None
    check_plot_options(args)
    w, h = plot_size(args.size)
    with Results(args.results) as r:
        name = r.check_field(args.field)
        label = _label(r, name, args.units)
        tag = "" if name == "temperature" else f"_{name}"
        fig = plt.figure(figsize=(w / 100, h / 100), dpi=100)
        ax = fig.add_subplot()
        if args.dt:
            if r.case.get("time", {}).get("scheme") == "steady":
                raise CaseError(f"{r.path}: a steady run has no time steps to plot (--dt); info and probe show its "
                                f"state")
            if "steps/dt" not in r.file:
                raise CaseError(f"{r.path}: has no time-step table (/steps; written since adaptive time steps)")
            out = Path(args.output) if args.output else r.path.with_name(f"{r.path.stem}_dt.png")
            t, dt = r.file["steps/time"][()], r.file["steps/dt"][()]
            ax.step(t, dt, where="post")
            ax.set_xlabel("time (s)")
            ax.set_ylabel("time step (s)")
            if len(dt) and dt.min() > 0 and dt.max() > 20 * dt.min():
                ax.set_yscale("log")
                ax.set_xscale("symlog", linthresh=max(float(dt.min()), 1e-12) * 10)
                ax.set_xlim(left=0.0)
            ax.set_title(f"{r.path.stem}: time step over time ({len(dt)} steps)")
        elif args.series:
            r.require_snapshots()
            out = Path(args.output) if args.output else r.path.with_name(f"{r.path.stem}{tag}_series.png")
            stats = np.array([(v.min(), v.max(), r.mean(v)) for v in (r.field(i, name) for i in range(len(r.times)))])
            marker = "o" if len(r.times) < 3 else None  # (one snapshot, a steady run's: no line to draw)
            for k, stat in enumerate(("min", "max", "mean")):
                ax.plot(r.times, stats[:, k], label=stat, marker=marker)
            if "probes/values" in r.file and name == "temperature":  # probes record the temperature
                pts, values = r.file["probes/points"][()], r.file["probes/values"][()]
                if len(pts) <= MAX_PROBE_LINES:  # one labelled line each
                    for j, v in enumerate(values.T):
                        ax.plot(r.file["probes/time"][()], v, "--",
                                label="probe (" + ", ".join(f"{c:g}" for c in pts[j]) + ")")
                else:  # their envelope: thousands of lines and labels would take minutes to draw
                    ax.fill_between(r.file["probes/time"][()], values.min(axis=1), values.max(axis=1), alpha=0.3,
                                    label=f"{len(pts)} probes (min to max)")
            ax.set_xlabel("time (s)")
            ax.set_ylabel(label)
            ax.legend()
            ax.set_title(f"{r.path.stem}: {name.replace('_', ' ')} over time")
        else:
            i = r.index(args.step, args.time)
            check_view_options(r.dim, r.path.name, args.slice, args.mesh)
            T = r.field(i, name)
            out = Path(args.output) if args.output else r.path.with_name(f"{r.path.stem}{tag}_{i:06d}.png")
            vmin, vmax = colour_limits(T, *LIMITS.get(name, (None, None)))
            cmap = CMAPS.get(name, "viridis")
            if r.dim == 2:
                tri = Triangulation(r.points[:, 0], r.points[:, 1], triangles(r.cell_type, r.cells))
                im = ax.tripcolor(tri, T, shading="gouraud", cmap=cmap, vmin=vmin, vmax=vmax)
                if args.mesh:
                    ax.triplot(tri, lw=0.2, color="white", alpha=0.5)
                ax.set_xlabel("x (m)")
                ax.set_ylabel("y (m)")
            else:
                im = draw_slice(ax, r, T, args.slice, cmap, vmin, vmax)
            ax.set_aspect("equal")
            fig.colorbar(im, ax=ax, label=label)
            steady = r.case.get("time", {}).get("scheme") == "steady"
            when = "steady state" if steady else f"t = {r.times[i]:g} s (step {int(r.steps[i])})"
            ax.set_title(f"{r.path.stem}: {name.replace('_', ' ')}, {when}")
        out = output_target(out, PLOT_SUFFIXES)
        save_figure(fig, out)
        plt.close(fig)
    print(out)
    return 0


def check_plot_options(args) -> None:
    """Refuse options that the chosen plot would not use (a time series has no snapshot, mesh or
    slice; a time-step plot no field either), rather than ignore them."""
    if args.dt and args.series:
        raise CaseError("plot: --dt and --series are two different plots; give one of them")
    mode = "--dt" if args.dt else "--series" if args.series else None
    if mode is None:
        return
    unused = [opt for opt, given in (("--step", args.step is not None), ("--time", args.time is not None),
                                     ("--mesh", args.mesh), ("--slice", args.slice is not None))
              if given]
    if args.dt:
        unused += [opt for opt, given in (("--field", args.field != "temperature"),
                                          ("--units", args.units is not None)) if given]
    if unused:
        verb = "does" if len(unused) == 1 else "do"
        why = "they choose a snapshot's picture" if args.series else "the time-step plot shows no field"
        raise CaseError(f"plot {mode}: {', '.join(unused)} {verb} not apply to this plot ({why})")


def _label(r: Results, name: str, units: str | None) -> str:
    """Colour-bar (or axis) label: the field's name and units (``--units``, else the file's)."""
    if units is None:
        recorded = r.units(name)
        units = UNITS.get(recorded, recorded) if recorded or name != "temperature" else "°C"
    units = units.replace("$", r"\$") if units else units  # literal text: matplotlib reads $...$ as mathtext
    return name.replace("_", " ") + (f" ({units})" if units else "")
