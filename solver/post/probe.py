"""``python -m solver probe RESULTS --at X,Y[,Z] [--field NAME] [--csv]``: a field (default the
temperature) at points over time."""

from __future__ import annotations

import numpy as np

from solver.case.shown import cut
from solver.errors import CaseError
from solver.io.results_reader import Results


SHOWN_UNITS = {"degC": "C", "1": ""}  # a field's units attribute as the table shows it


def parse_points(values, dim, option="--at"):
    """The points of ``option``'s values ("x,y[,z]") on a mesh of ``dim`` dimensions; a refusal
    shows a value as read (1e+300, not its 300 digits) or, unreadable, as an excerpt."""
    pts = []
    for v in values:
        try:
            p = [float(c) for c in v.split(",")]
        except ValueError:
            raise CaseError(f"{option} {cut(v)}: expected comma-separated coordinates, e.g. {option} 0.5,0.25") \
                from None
        if len(p) != dim:
            raise CaseError(f"{option} {point_text(v, p)}: the mesh is {dim}D, give {dim} coordinates")
        if not all(np.isfinite(p)):
            raise CaseError(f"{option} {point_text(v, p)}: coordinates must be finite numbers")
        pts.append(p)
    return np.array(pts)


def point_text(text: str, point) -> str:
    """A point given as ``text`` as a message shows it: as written, or, written in more than 60
    characters, its coordinates as read (0.5,1e+300, not 300 digits)."""
    return text if len(text) <= 60 else ",".join(repr(float(c)) for c in point)


def probe_command(args) -> int:
    """A field at points over time (the arguments: :func:`solver.post.arguments.probe_arguments`)."""
    with Results(args.results) as r:
        name = r.check_field(args.field)
        r.require_snapshots()
        pts = parse_points(args.at, r.dim)
        cell, xi = r.locator.locate(pts)  # -1: outside (a far point has no candidate cells at all)
        bad = np.flatnonzero(cell < 0)
        if len(bad):
            raise CaseError(f"--at {point_text(args.at[bad[0]], pts[bad[0]])}: point is outside the mesh of "
                            f"{r.path.name}")
        rows = [(t, *r.interpolate(i, name, cell, xi)) for i, t in enumerate(r.times)]
        unit = SHOWN_UNITS.get(r.units(name), r.units(name))
    symbol = "T" if name == "temperature" else name
    names = [f"{symbol}({a})" for a in args.at]
    if args.csv:  # (the column names a script reads: without units)
        print(",".join(["time"] + [f'"{n}"' for n in names]))
        for row in rows:
            print(",".join(repr(float(v)) for v in row))
    else:
        names = [f"{n} [{unit}]" if unit else n for n in names]
        widths = [max(18, len(n)) for n in names]
        print(f"{'time [s]':>12} " + " ".join(f"{n:>{w}}" for n, w in zip(names, widths)))
        for t, *vals in rows:
            print(f"{t:12.6g} " + " ".join(f"{v:{w}.10g}" for v, w in zip(vals, widths)))
    return 0
