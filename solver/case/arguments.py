"""Command-line arguments are input too: a parser whose errors are :class:`CaseError` (exit
status 2, one line), shared by every command."""

from __future__ import annotations

import argparse

from solver.errors import CaseError


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise CaseError(f"command line: {message} (see python -m solver --help)")
