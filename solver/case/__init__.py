"""Input: case files (TOML) and their schema, ``--set`` overrides, validation with one clear
line per mistake, the safe expression evaluator, and the typed records (:mod:`.records`) that
the rest of the package receives instead of raw keys.
"""

from solver.case.arguments import ArgumentParser
from solver.case.expressions import Expression, ExpressionError
from solver.case.load import Case, check_against_mesh, load_case, parse_duration, read_text
from solver.case.schema import BOUNDARY_SCHEMA, REGION_SCHEMA, SCHEMA

__all__ = ["ArgumentParser", "BOUNDARY_SCHEMA", "Case", "Expression", "ExpressionError", "REGION_SCHEMA", "SCHEMA",
           "check_against_mesh", "load_case", "parse_duration", "read_text"]
