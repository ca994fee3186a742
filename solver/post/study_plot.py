"""``python -m solver plot STUDY.study.h5``: a scalar output over the samples (histogram, CDF, or
against a varied key) or a statistics field on the mesh (2D: filled plot; 3D: a slice), as PNG.

    plot STUDY --output max_temperature [--cdf | --against region.insulation.k] [-o fig.png]
    plot STUDY [--field mean|std|min|max|above_0] [--step -1 | --time T] [--slice z=0.5] [-o fig.png]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from solver.errors import CaseError
from solver.post.slices import check_view_options, colour_limits, draw_slice
from solver.post.triangles import triangles
from solver.post.study_info import StudyFile
from solver.post.targets import PLOT_SUFFIXES, output_target, plot_size, save_figure

MAX_CURVES = 8  # a grid response: one curve per combination of the other keys, up to this many
CMAPS = {"std": "magma", "mean": "inferno", "min": "inferno", "max": "inferno"}


def study_plot_command(args) -> int:
    """A study's plot (the arguments: :func:`solver.post.arguments.plot_form`)."""
    _check_options(args)
    w, h = plot_size(args.size)
    plt = _pyplot()
    with StudyFile(args.study) as s:
        fig = plt.figure(figsize=(w / 100, h / 100), dpi=100)
        try:
            ax = fig.add_subplot()
            suffix = _scalar(fig, ax, s, args) if args.output else _field(fig, ax, s, args)
            out = Path(args.file) if args.file else s.path.with_name(f"{_stem(s.path)}_{suffix}.png")
            out = output_target(out, PLOT_SUFFIXES, "-o")
            save_figure(fig, out)
        finally:
            plt.close(fig)
    print(out)
    return 0


MAX_BINS = 10_000  # a histogram's bars (a plot is at most 10,000 pixels wide)


def _check_options(args) -> None:
    """Options of the other kind of plot are refused rather than ignored."""
    scalar = {"--cdf": args.cdf, "--against": args.against, "--bins": args.bins is not None}
    field = {"--field": args.field, "--step": args.step is not None, "--time": args.time is not None,
             "--slice": args.slice, "--mesh": args.mesh}
    if args.output:
        given = next((k for k, v in field.items() if v), None)
        if given:
            raise CaseError(f"{given}: not with --output (a scalar output is one number per sample)")
        if args.cdf and args.against:
            raise CaseError("--cdf and --against: choose one (a distribution, or a response to a key)")
    elif given := next((k for k, v in scalar.items() if v), None):
        raise CaseError(f"{given}: needs --output NAME (a scalar output; python -m solver info lists them)")
    if args.bins is not None and not 1 <= args.bins <= MAX_BINS:
        raise CaseError(f"--bins {args.bins}: expected a number of bins from 1 to {MAX_BINS}")


def _scalar(fig, ax, s: StudyFile, args) -> str:
    """Histogram, CDF or response curve of a scalar output over the done samples; the file suffix."""
    name = args.output
    y = s.output(name)
    ok = s.done & np.isfinite(y)
    if not ok.any():
        raise CaseError(f"--output {name}: no sample of {s.path.name} is done "
                        f"({int(np.sum(s.status > 0))} failed, {int(np.sum(s.status < 0))} pending)")
    key = args.against
    if key is None and s.attrs.get("method") in ("grid", "list") and len(s.keys) == 1:
        key = s.keys[0]
    label = _output_label(s, name)
    left_out = int(len(y) - ok.sum())
    note = f" ({left_out} samples failed or not run, left out)" if left_out else ""
    if key is not None:
        _response(fig, ax, s, s.key_index(key), y, ok, label)
        ax.set_title(f"{_stem(s.path)}: {name} against {key}, {int(ok.sum())} samples{note}")
        return f"{name}_vs_{key}"
    v = y[ok]
    if args.cdf:
        xs = np.sort(v)
        ax.step(np.r_[xs[0], xs], np.arange(len(v) + 1) / len(v), where="post")
        ax.set_ylim(0.0, 1.0)
        ax.set_ylabel("fraction of samples ≤ value")
    else:
        ax.hist(v, bins=args.bins or "auto", edgecolor="white")
        ax.axvline(v.mean(), color="k", ls="--", label=f"mean {v.mean():.6g}")
        ax.legend()
        ax.set_ylabel("samples")
    ax.set_xlabel(label)
    std = f", std {v.std(ddof=1):.3g}" if len(v) > 1 else ""
    ax.set_title(f"{_stem(s.path)}: {name} over {len(v)} samples (mean {v.mean():.6g}{std}){note}")
    return f"{name}_{'cdf' if args.cdf else 'histogram'}"


def _response(fig, ax, s: StudyFile, j: int, y, ok, label: str) -> None:
    """``y`` against key ``j``: one line per combination of the other keys of a grid or list study
    (up to MAX_CURVES), else a scatter coloured by the first other key."""
    x, others = s.values[:, j], [i for i in range(len(s.keys)) if i != j]
    combos, which = (np.unique(s.values[:, others], axis=0, return_inverse=True) if others
                     else (np.zeros((1, 0)), np.zeros(len(x), dtype=int)))
    which = which.ravel()
    if s.attrs.get("method") in ("grid", "list") and len(combos) <= MAX_CURVES:
        for c, combo in enumerate(combos):
            m = ok & (which == c)
            if not m.any():
                continue
            order = np.argsort(x[m])
            tag = ", ".join(f"{s.keys[i]} = {v:g}" for i, v in zip(others, combo))
            ax.plot(x[m][order], y[m][order], "o-", label=tag or None)
        if others:
            ax.legend()
    elif others:
        sc = ax.scatter(x[ok], y[ok], c=s.values[ok, others[0]], s=16, cmap="viridis")
        fig.colorbar(sc, ax=ax, label=s.keys[others[0]])
    else:
        ax.scatter(x[ok], y[ok], s=16)
    ax.set_xlabel(s.keys[j])
    ax.set_ylabel(label)


def _field(fig, ax, s: StudyFile, args) -> str:
    """A statistics field at one output time on the mesh; the file suffix."""
    name = args.field or "mean"
    check_view_options(s.dim, s.path.name, args.slice, args.mesh)
    i = s.index(args.step, args.time)
    T = s.statistic(name, i)
    if not np.isfinite(T).any():
        raise CaseError(f"--field {name}: undefined in {s.path.name} (std needs at least 2 done samples; "
                        f"{int(s.attrs.get('count', 0))} in the statistics)")
    label, cmap, limits = _field_style(s, name)
    limits = colour_limits(T, *limits)
    if s.dim == 2:
        from matplotlib.tri import Triangulation

        tri = Triangulation(s.points[:, 0], s.points[:, 1], triangles(s.cell_type, s.cells))
        im = ax.tripcolor(tri, T, shading="gouraud", cmap=cmap, vmin=limits[0], vmax=limits[1])
        if args.mesh:
            ax.triplot(tri, lw=0.2, color="white", alpha=0.5)
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
    else:
        im = draw_slice(ax, s, T, args.slice, cmap, *limits)
    ax.set_aspect("equal")
    fig.colorbar(im, ax=ax, label=label)
    steady = s.case.get("time", {}).get("scheme") == "steady"
    when = "steady state" if steady else f"t = {s.times[i]:g} s"
    ax.set_title(f"{_stem(s.path)}: {label}, {when}, {int(s.attrs.get('count', 0))} samples")
    return f"{name}_{i:06d}"


def _field_style(s: StudyFile, name: str) -> tuple[str, str, tuple]:
    """Colour-bar label, colour map and fixed limits of a statistics field."""
    if name.startswith("above_"):
        k = int(name.split("_")[1])
        threshold = f"{s.thresholds[k]:g}" if k < len(s.thresholds) else f"threshold {k}"
        return f"P(T > {threshold} {s.temperature_unit})", "viridis", (0.0, 1.0)
    return f"{name} of the temperature ({s.temperature_unit})", CMAPS.get(name, "viridis"), (None, None)


def _output_label(s: StudyFile, name: str) -> str:
    unit = f" ({s.temperature_unit})" if "temperature" in name else ""
    return name.replace("_", " ") + unit


def _stem(path: Path) -> str:
    return path.name.removesuffix(".h5").removesuffix(".study")


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CaseError("plot needs matplotlib: pip install matplotlib (or pip install .[plot])") from None
    return plt
