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
