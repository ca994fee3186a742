"""Arguments the post-processing commands share."""

from __future__ import annotations

from solver.case.arguments import ArgumentParser


def results_parser(prog: str, description: str) -> ArgumentParser:
    """A command's parser whose first argument is a results file."""
    p = ArgumentParser(prog=f"python -m solver {prog}", description=description)
    p.add_argument("results", help="a results file (outputs/<case>/<case>.h5)")
    return p


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
