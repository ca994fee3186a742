"""Command-line arguments are input too: a parser whose errors are :class:`CaseError` (exit
status 2, one line), shared by every command. An option of one value given twice with two values
is refused (argparse would keep the last one without a word); the same value twice is one (a
requeued job adds its own ``--restart latest`` to the user's)."""

from __future__ import annotations

import argparse

from solver.errors import CaseError

_GIVEN = "_options_given"  # the namespace's record of the options seen, removed after parsing
OWN_EMPTY_MESSAGE = ("restart",)  # arguments whose command says more of an empty value (an unset $CHECKPOINT)


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
            if dest in OWN_EMPTY_MESSAGE:
                continue
            if value == "" or (isinstance(value, list) and "" in value):
                self.error(f"an empty argument for {dest.replace('_', '-')}")
        return namespace, extras

    def error(self, message):
        raise CaseError(f"command line: {message} (see python -m solver --help)")
