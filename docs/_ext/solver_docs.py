"""Sphinx directives of the solver documentation.

``case-keys``
    The case-file reference, generated from :mod:`solver.case.schema`: one table per section with
    every key's type, default, allowed values and description, so that it cannot drift from the
    validation that reads the same records.

``command``
    Shell commands a reader can type, shown as a console block. The documentation tests
    (``tests/docs/test_commands.py``, ``tests/docs/doc_commands.py``) extract these blocks and run them, page by page, in a scratch
    directory holding ``inputs/`` and ``jobs/``; ``:small:`` gives words the test appends to each
    ``python -m solver`` run of the block to keep it small (``--set mesh.nx=8``), and is not shown.
"""

from __future__ import annotations

import math

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList

from solver.case import schema

KINDS = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "choice": "one of the allowed values",
    "expr": "number or expression",
    "floats": "array of numbers",
    "name": "string (a file name)",
    "conductivity": "number, expression, table, or array of those",
    "property": "number, expression of T, or table",
    "dt": "number, \"auto\" or \"adaptive\"",
    "tolerance": "number or table {relative, absolute}",
    "duration": "string or number",
    "points": "array of points",
}


def toml_value(value) -> str:
    """A default as it would be written in a case file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def default_text(key: schema.Key) -> str:
    if key.default is schema.REQUIRED:
        return "required"
    if key.default is None:
        return "(see description)"
    return f"``{toml_value(key.default)}``"


def allowed_text(key: schema.Key) -> str:
    if key.choices:
        return ", ".join(f"``{toml_value(c)}``" for c in key.choices)
    bounds = []
    if key.positive:
        bounds.append("> 0")
    if key.low is not None:
        bounds.append(f">= {key.low:g}")
    if key.high is not None and math.isfinite(key.high):
        bounds.append(f"<= {key.high:g}")
    return ", ".join(bounds) or "any"


def key_table(title: str, keys: dict[str, schema.Key]) -> list[str]:
    """reStructuredText lines of one section's table."""
    lines = [f".. list-table:: {title}", "   :header-rows: 1", "   :widths: 18 18 14 16 34", "",
             "   * - key", "     - type", "     - default", "     - allowed", "     - description"]
    for name, key in keys.items():
        lines += [f"   * - ``{name}``", f"     - {KINDS.get(key.kind, key.kind)}", f"     - {default_text(key)}",
                  f"     - {allowed_text(key)}", f"     - {escape(key.doc)}"]
    return lines + [""]


def escape(text: str) -> str:
    """A description as reStructuredText text: its markup characters taken literally."""
    for char in "\\*`|_":
        text = text.replace(char, "\\" + char)
    return text


def case_sections() -> list[tuple[str, str, dict[str, schema.Key]]]:
    """(heading, table title, keys) of every part of a case file, in the reference's order."""
    parts = [("Top level", "keys before any section", schema.ROOT_SCHEMA)]
    parts += [(f"[{name}]", f"[{name}]", keys) for name, keys in schema.SCHEMA.items()]
    parts += [("[boundary.NAME]", "[boundary.NAME], one table per boundary", schema.BOUNDARY_SCHEMA),
              ("[region.NAME]", "[region.NAME], one table per region", schema.REGION_SCHEMA)]
    return parts


class CaseKeys(Directive):
    """Every case-file key, one table per section."""

    has_content = False

    def run(self):
        found = []
        for heading, title, keys in case_sections():
            section = nodes.section(ids=[nodes.make_id("keys " + heading)])
            section += nodes.title(heading, heading)
            body = nodes.container()
            self.state.nested_parse(StringList(key_table(title, keys), "case-keys"), self.content_offset, body)
            section += body.children
            found.append(section)
        return found


class Command(Directive):
    """Commands to type, shown as a console block; ``:small:`` is read by the tests only."""

    has_content = True
    option_spec = {"small": directives.unchanged}

    def run(self):
        text = "\n".join(line if line.startswith("#") else f"$ {line}" for line in self.content if line.strip())
        block = nodes.literal_block(text, text, language="console")
        self.add_name(block)
        return [block]


def setup(app):
    app.add_directive("case-keys", CaseKeys)
    app.add_directive("command", Command)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
