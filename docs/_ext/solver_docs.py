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

from solver.case import schema

KINDS = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "choice": "choice",
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


def default_cell(key: schema.Key) -> nodes.Node:
    if key.default is schema.REQUIRED:
        return nodes.emphasis("required", "required")
    if key.default is None:
        return nodes.Text("(see description)")
    return nodes.literal(text=toml_value(key.default))


def allowed_cell(key: schema.Key) -> list[nodes.Node]:
    if key.choices:
        cells = []
        for i, choice in enumerate(key.choices):
            cells += ([nodes.Text(", ")] if i else []) + [nodes.literal(text=toml_value(choice))]
        return cells
    bounds = []
    if key.positive:
        bounds.append("> 0")
    if key.low is not None:
        bounds.append(f">= {key.low:g}")
    if key.high is not None and math.isfinite(key.high):
        bounds.append(f"<= {key.high:g}")
    return [nodes.Text(", ".join(bounds) or "any")]


def table(title: str, header: list[str], widths: list[int], rows: list[list]) -> nodes.table:
    """A docutils table: ``rows`` of cells, each a node or a list of inline nodes."""
    group = nodes.tgroup(cols=len(header))
    group += [nodes.colspec(colwidth=w) for w in widths]

    def row(cells) -> nodes.row:
        line = nodes.row()
        for cell in cells:
            paragraph = nodes.paragraph()
            paragraph += cell if isinstance(cell, list) else [cell]
            entry = nodes.entry()
            entry += paragraph
            line += entry
        return line
    head, body = nodes.thead(), nodes.tbody()
    head += row([nodes.Text(h) for h in header])
    body += [row(cells) for cells in rows]
    group += [head, body]
    out = nodes.table(classes=["case-keys"])
    out += nodes.title(text=title)
    out += group
    return out


def key_table(title: str, keys: dict[str, schema.Key]) -> nodes.table:
    """One section's keys: name, type, default, allowed values and description."""
    rows = [[nodes.literal(text=name), nodes.Text(KINDS.get(key.kind, key.kind)), default_cell(key),
             allowed_cell(key), nodes.Text(key.doc)] for name, key in keys.items()]
    return table(title, ["key", "type", "default", "allowed", "description"], [16, 16, 12, 18, 38], rows)


def case_sections() -> list[tuple[str, str, dict[str, schema.Key]]]:
    """(heading, table title, keys) of every part of a case file, in the reference's order."""
    parts = [("Top level", "keys before any section", schema.ROOT_SCHEMA)]
    parts += [(f"[{name}]", f"[{name}]", keys) for name, keys in schema.SCHEMA.items()]
    parts += [("[boundary.NAME]", "[boundary.NAME], one table per boundary", schema.BOUNDARY_SCHEMA),
              ("[region.NAME]", "[region.NAME], one table per region", schema.REGION_SCHEMA)]
    return parts


class CaseKeys(Directive):
    """Every case-file key, one section and table per part of a case file."""

    has_content = False

    def run(self):
        found = []
        for heading, title, keys in case_sections():
            section = nodes.section(ids=[nodes.make_id("keys " + heading)])
            section += nodes.title(heading, heading)
            section += key_table(title, keys)
            found.append(section)
        return found


class Command(Directive):
    """Commands to type, shown as a console block; ``:small:`` and ``:status:`` are read by the tests only."""

    has_content = True
    option_spec = {"small": directives.unchanged, "status": directives.nonnegative_int}

    def run(self):
        text = "\n".join(line if line.startswith("#") else f"$ {line}" for line in self.content if line.strip())
        block = nodes.literal_block(text, text, language="console")
        self.add_name(block)
        return [block]


def setup(app):
    app.add_directive("case-keys", CaseKeys)
    app.add_directive("command", Command)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
