"""Input: case files (TOML) and their schema, ``--set`` overrides, validation with one clear
line per mistake, the safe expression evaluator, and the typed records (:mod:`.records`) that
the rest of the package receives instead of raw keys.
"""

from solver.lazy import exports

WHERE = {
    "ArgumentParser": "arguments",
    "BOUNDARY_SCHEMA": "schema",
    "Case": "records",
    "Expression": "expressions",
    "ExpressionError": "expressions",
    "load_case": "load",
    "parse_duration": "load",
    "read_text": "load",
    "REGION_SCHEMA": "schema",
    "SCHEMA": "schema",
}
__all__ = sorted(WHERE)
__getattr__ = exports(__name__, WHERE)
