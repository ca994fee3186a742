"""Every case-file key and every command-line option carries a description for the references."""

from __future__ import annotations

import argparse

import pytest

from solver.app.commands import build_parser
from solver.case.schema import BOUNDARY_SCHEMA, REGION_SCHEMA, ROOT_SCHEMA, SCHEMA
from solver.post.arguments import study_plot_parser

PARTS = {"": ROOT_SCHEMA, **{f"[{s}]": keys for s, keys in SCHEMA.items()}, "[boundary.NAME]": BOUNDARY_SCHEMA,
         "[region.NAME]": REGION_SCHEMA}


@pytest.mark.parametrize("part", PARTS)
def test_every_key_has_a_description(part):
    bare = [name for name, key in PARTS[part].items() if len(key.doc.strip()) < 10]
    assert not bare, f"keys of {part or 'the top level'} without a description: {bare}"


def parsers():
    """(name, parser) of the program, each command, and the other form of plot."""
    top = build_parser()
    found = [("python -m solver", top)]
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += [(f"python -m solver {name}", sub) for name, sub in action.choices.items()]
            helps = {a.dest: a.help for a in action._choices_actions}
            bare = [name for name in action.choices if not (helps.get(name) or "").strip()]
            assert not bare, f"commands without a summary: {bare}"
    return found + [("python -m solver plot (a study file)", study_plot_parser())]


@pytest.mark.parametrize("name, parser", parsers(), ids=[name for name, _ in parsers()])
def test_every_option_has_a_description(name, parser):
    assert parser is not None and (parser.description or "").strip(), f"{name} has no description"
    bare = [a.option_strings or a.dest for a in parser._actions
            if not isinstance(a, argparse._SubParsersAction) and a.help != argparse.SUPPRESS
            and not (a.help or "").strip()]
    assert not bare, f"{name}: options without a description: {bare}"
