"""The arguments of the post-processing commands ``info``, ``plot``, ``probe`` and ``export``, added
to the parsers of :mod:`solver.app.commands`. Light: nothing here reads a file or imports the
numerics until a command line is parsed.

``plot`` takes other options for a study file than for a results file (``--output`` names a scalar
output of the samples there, the figure's file here), so its parser has two forms: the first
word that names a study file picks the study's (:func:`plot_form`).
"""

from __future__ import annotations

from solver.case.arguments import ArgumentParser


def results_argument(p) -> None:
    p.add_argument("results", help="a results file (outputs/<case>/<case>.h5)")


def when_arguments(p) -> None:
    """--step or --time: which snapshot."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--step", type=int, default=None, help="snapshot index (default -1: the last)")
    g.add_argument("--time", type=float, default=None, help="the snapshot nearest to this time")


def field_argument(p, default: str | None = "temperature", repeat: bool = False) -> None:
    """--field NAME: which nodal field (``temperature``, ``liquid_fraction`` with phase change, ...)."""
    if repeat:
        p.add_argument("--field", action="append", default=None, metavar="NAME",
                       help="a nodal field to include (repeatable; default: every field the file holds)")
    else:
        p.add_argument("--field", default=default, metavar="NAME",
                       help=f"nodal field (default {default}; with phase change also liquid_fraction; "
                            "python -m solver info lists a file's fields)")


def picture_arguments(p) -> None:
    """--size, --mesh, --slice: the picture of a field on the mesh."""
    p.add_argument("--size", default="1000x700", help="image size in pixels, WxH (default 1000x700)")
    p.add_argument("--mesh", action="store_true", help="draw the mesh edges (2D)")
    p.add_argument("--slice", metavar="AXIS=VALUE", help="3D: the plane to show, e.g. z=0.5 (default: mid-z)")


def info_arguments(p) -> None:
    p.description = "What a results file (or a study file) holds."
    results_argument(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def plot_arguments(p) -> None:
    """A results file's plot; a study file's: :func:`plot_form`."""
    p.description = "Plot a field (2D: filled plot; 3D: a slice) or the time series of min/max/mean."
    p.epilog = ("A study file (NAME.study.h5, written by study) takes other options (--output, --cdf, --against, "
                "--bins): python -m solver plot NAME.study.h5 --help lists them, and docs/reference/commands.md.")
    p.form = plot_form
    results_argument(p)
    when_arguments(p)
    field_argument(p)
    p.add_argument("-o", "--output", help="PNG file (default: beside the results file)")
    picture_arguments(p)
    p.add_argument("--series", action="store_true", help="min/max/mean (and recorded probes) against time")
    p.add_argument("--dt", action="store_true", help="the time step against time (every accepted step, from /steps)")
    p.add_argument("--units", default=None,
                   help="units for the colour bar (default: the field's, from the file: °C, K, none for a fraction)")


def plot_form(words) -> ArgumentParser | None:
    """The parser of a study's plot when one of ``words`` names a study file (else None)."""
    from solver.post.study_info import find_study

    return None if find_study(words or []) is None else study_plot_parser()


def study_plot_parser() -> ArgumentParser:
    """The parser of ``plot`` for a study file (``docs/reference/commands.md`` shows it)."""
    p = ArgumentParser(prog="python -m solver plot", description="Plot a study: a scalar output over the samples "
                       "(histogram, CDF, or against a varied key), or a statistics field on the mesh.")
    p.add_argument("study", help="a study file (outputs/<name>/<name>.study.h5)")
    p.add_argument("--output", metavar="NAME", help="a scalar output, e.g. max_temperature (info lists them)")
    p.add_argument("--cdf", action="store_true", help="with --output: the empirical CDF instead of a histogram")
    p.add_argument("--against", metavar="KEY", help="with --output: the output against this varied key "
                   "(default for a grid or list study of one key)")
    p.add_argument("--bins", type=int, default=None, help="with --output: histogram bins (default: automatic)")
    p.add_argument("--field", metavar="NAME", default=None,
                   help="statistics field: mean (default), std, min, max, above_<k> (probability T > threshold k)")
    when_arguments(p)
    p.add_argument("-o", dest="file", metavar="FILE", help="PNG file (default: beside the study file)")
    picture_arguments(p)
    return p


def probe_arguments(p) -> None:
    p.description = "Temperature (or another nodal field) at points over time (finite-element interpolation)."
    results_argument(p)
    p.add_argument("--at", action="append", required=True, metavar="X,Y[,Z]", help="a point (repeatable)")
    p.add_argument("--csv", action="store_true", help="CSV instead of a table")
    field_argument(p)


def export_arguments(p) -> None:
    p.description = "Convert a results file with meshio (vtu, xdmf) or to CSV."
    results_argument(p)
    p.add_argument("--format", required=True, choices=("vtu", "xdmf", "csv"),
                   help="vtu (ParaView, one file per snapshot), xdmf (with an HDF5 file beside it) or csv (one row "
                   "per node)")
    p.add_argument("-o", "--output", help="output file (default: beside the results file; - : one snapshot as CSV "
                   "to standard output)")
    p.add_argument("--all", action="store_true",
                   help="every snapshot (vtu: one file each and a .pvd of them; xdmf: a time series)")
    when_arguments(p)
    field_argument(p, repeat=True)
