"""Command-line arguments are input too: a parser whose errors are :class:`CaseError` (exit
status 2, one line), shared by every command. An option of one value given twice with two values
is refused (argparse would keep the last one without a word); the same value twice is one (a
requeued job adds its own ``--restart latest`` to the user's)."""

from __future__ import annotations

import argparse

from solver.errors import CaseError

_GIVEN = "_options_given"  # the namespace's record of the options seen, removed after parsing
# arguments whose empty value is one ("--units ''": no unit), or whose command says more of it (--restart:
# an unset $CHECKPOINT)
MAY_BE_EMPTY = ("units", "restart")


class _StoreOnce(argparse._StoreAction):
    def __call__(self, parser, namespace, values, option_string=None):
        if option_string is not None:
            given = namespace.__dict__.setdefault(_GIVEN, {})
            if self.dest in given and given[self.dest] != values:
                parser.error(f"{option_string} given twice, with two values; give it once")
            given[self.dest] = values
        super().__call__(parser, namespace, values, option_string)


class ArgumentParser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register("action", None, _StoreOnce)
        self.register("action", "store", _StoreOnce)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        namespace.__dict__.pop(_GIVEN, None)
        for dest, value in vars(namespace).items():  # (an empty path would read as ".", the current directory)
            if dest in MAY_BE_EMPTY:
                continue
            if value == "" or (isinstance(value, list) and "" in value):
                action = next((a for a in _all_actions(self) if a.dest == dest), None)
                named = action.option_strings[-1] if action is not None and action.option_strings else dest
                self.error(f"an empty argument for {named}")
        return namespace, extras

    def error(self, message):
        raise CaseError(f"command line: {message} (see {self.prog or 'python -m solver'} --help)")


def _all_actions(parser):
    """The actions of ``parser`` and of its commands' parsers."""
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_actions(sub)
