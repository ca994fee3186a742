"""Case files: TOML loading, ``--set`` overrides and validation against one schema.

Every accepted key is declared once in :data:`SCHEMA` with its type, range, default and
a one-line description (docs/reference/case_keys.md is generated from it). Validation runs
before any work and raises :class:`CaseError` with one line naming the file, the key
and what is allowed, e.g. ``inputs/plate.toml: mesh.nx must be a positive integer, got -3``.
"""

from __future__ import annotations

import datetime
import difflib
import math
import re
import sys
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np

from solver.case import records
from solver.case.expressions import Expression, ExpressionError
from solver.case.inputfiles import DIRECTORY, MAX_CASE_BYTES, MISSING, file_problem, name_problem, not_utf8, utf16
from solver.case.schema import (BC_KEYS, BOUNDARIES, BOUNDARY_SCHEMA, PROPERTY_FORMS, REGION_SCHEMA, REQUIRED,
                                ROOT_SCHEMA, SCHEMA, STRUCTURED_CELLS, STRUCTURED_KEYS, Key, absolute_zero,
                                below_absolute_zero, default_temperature_range)
from solver.case.shown import cut, derived_name, printable, shell_word, shown
from solver.case.tables import MAX_CASE_TABLE_ROWS, TableError, check_pairs, is_table, read_pairs, rows_at_most
from solver.errors import CaseError

MAX_PROBES = 10_000
TINY = sys.float_info.min  # the smallest normal double: a positive number below it underflows in products
KEY_REFERENCE = "docs/reference/case_keys.md"  # the page an unknown key's message sends the reader to
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


def valid_name(name) -> bool:
    """A name of results (output.name, study.name): 1 to 100 letters, digits, '_', '-' or '.', not
    starting with '-' or '.' (".", ".." and hidden names would write elsewhere or out of sight)."""
    return isinstance(name, str) and bool(_NAME.match(name))


def near(word: str, choices) -> str:
    """" (did you mean NAME?)" for a choice that ``word`` looks like a misspelling of, else ""."""
    by_lower = {str(c).lower(): c for c in choices}  # (NX is nx in another case: a slip too)
    match = difflib.get_close_matches(str(word).lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[match[0]]}?)" if match else ""


def read_text(path: str | Path) -> str:
    """The case file's text, or a CaseError naming the file."""
    path = Path(path)
    problem = file_problem(path, MAX_CASE_BYTES)
    if problem == DIRECTORY:
        raise CaseError(f"{path}: is a directory, expected a TOML case file")
    if problem not in (None, MISSING):  # a missing file: read_bytes says so below
        raise CaseError(f"{path}: {problem} (a case file is a TOML text file)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CaseError(f"{path}: cannot read case file ({exc.strerror})") from None
    if utf16(data):
        raise CaseError(f"{path}: UTF-16 text; TOML case files are UTF-8: save it as UTF-8, or convert it "
                        f"(iconv -f utf-16 -t utf-8 {shell_word(path.name)} > new.toml)")
    try:
        return data.decode("utf-8-sig")  # a byte-order mark, as some Windows editors write, is not TOML's
    except UnicodeDecodeError as exc:
        where = not_utf8(exc)
        if not where:
            raise CaseError(f"{path}: not a text file (TOML case files are UTF-8)") from None
        raise CaseError(f"{path}: not UTF-8 text ({where}); TOML case files are UTF-8: save it as UTF-8, or "
                        f"convert it (from Latin-1: iconv -f latin1 -t utf-8 {shell_word(path.name)} > new.toml)"
                        ) from None


def parse_override(item: str, source: str) -> tuple[list[str], Any]:
    """``section.key=value`` -> (["section", "key"], value), and a top-level key (``temperature_unit=K``)
    alike; values are TOML, or bare strings. The key is a TOML dotted key: a part in quotes (a TOML
    basic or literal string: ``boundary."cold.side".value=5``, ``boundary.'3'.value=5``) is taken
    whole, dots and ``=`` in it included; the other parts are taken as written, between the dots."""
    if "=" not in item:
        raise CaseError(f"{source}: --set expects section.key=value, got {shown(item)}")
    expects = CaseError(f"{source}: --set expects section.key=value (or {', '.join(ROOT_SCHEMA)}=value), "
                        f"got {shown(item)}")
    # the key's parts: split at the dots outside quotes, up to the first "=" outside quotes; as in
    # TOML, a quote opens a quoted part only at the part's start (an apostrophe inside is a letter),
    # and only blanks may follow its closing quote
    parts, start, at, end, quoted, closed, blank = [], 0, 0, None, False, None, True
    while at < len(item):
        if item[at] in "\"'" and blank:
            close = at + 1
            while close < len(item) and item[close] != item[at]:
                close += 2 if item[at] == '"' and item[close] == "\\" else 1
            if close >= len(item):  # a quote never closed: the key is taken as written
                quoted = False
                break
            at, quoted, closed, blank = close + 1, True, (at, close + 1), False
            continue
        if item[at] in ".=":
            if closed and item[closed[1]:at].strip():
                raise expects
            parts.append(item[closed[0]:closed[1]] if closed else item[start:at])
            start, closed, blank = at + 1, None, True
            if item[at] == "=":
                end = at
                break
        elif not item[at].isspace():
            blank = False
        at += 1
    if quoted and end is None:  # every "=" inside the quotes: no value
        raise expects
    if not quoted:
        end = item.index("=")
        parts = item[:end].split(".")
    path, raw = item[:end], item[end + 1:]
    parts[0], parts[-1] = parts[0].lstrip(), parts[-1].rstrip()  # (path.strip(), one part or more)
    keys = []
    for part in parts:
        if not quoted or part.strip()[:1] not in ("\"", "'"):
            keys.append(part.strip())  # (TOML allows blanks about the dots)
            continue
        part = part.strip()
        try:  # a TOML basic or literal string on one line (its escapes, no control characters)
            key = tomllib.loads(f"k = {part}")
        except tomllib.TOMLDecodeError:
            raise expects from None
        if part[:3] in ('"""', "'''") or list(key) != ["k"]:
            raise expects
        keys.append(key["k"])
    if not all(keys) or (len(keys) < 2 and keys[0] not in ROOT_SCHEMA):
        raise expects
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except ValueError:  # Python's limit on the digits of an integer read from text
        raise CaseError(f"{source}: --set {cut(printable(path.strip()))}: {HUGE_INTEGER}") from None
    except RecursionError:  # lists or tables in hundreds of levels, as a case file's
        raise CaseError(f"{source}: --set {cut(printable(path.strip()))}: invalid TOML: nested too deeply") from None
    read_as = unquoted_kind(value)
    if read_as and _takes_text(keys):  # a bare word is taken as text, but 2024 or 2024-01-01 is TOML's
        word, quoted = cut(printable(raw.strip())), cut(shell_word(path.strip() + '="' + raw.strip() + '"'))
        raise CaseError(f"{source}: --set {cut(printable(path.strip()))}={word}: TOML reads {word} as {read_as}, and "
                        f"{cut(printable('.'.join(keys)))} takes a string: quote it, --set {quoted}")
    return keys, value


def unquoted_kind(value) -> str | None:
    """What TOML made of an unquoted value that is not text: "a number", "a date", ... (None for text,
    lists and tables)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, datetime.datetime):
        return "a date and time"
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, datetime.time):
        return "a time of day"
    return None


def _takes_text(keys: list[str]) -> bool:
    """Whether the key at ``keys`` takes a string (a file or folder name, a case name, a group)."""
    if len(keys) == 3 and keys[0] == "region":
        spec = REGION_SCHEMA.get(keys[2])
    elif len(keys) == 2:
        spec = SCHEMA.get(keys[0], {}).get(keys[1])
    else:
        spec = None
    return spec is not None and spec.kind in ("str", "name")


HUGE_INTEGER = "an integer of more than 4300 digits, beyond any number a case takes"
MAX_KEY_PARTS = 32  # parts of a dotted TOML key (a case's deepest is region.NAME.k)
_PART = r"""(?:[A-Za-z0-9_-]++|"(?:[^"\\\n]|\\.)*+"|'[^'\n]*+')"""
_DEEP_KEY = re.compile(rf"(?<![\w.\-\"'])(?>{_PART}(?:[ \t]*\.[ \t]*{_PART}){{{MAX_KEY_PARTS}}})")


def deep_key(text: str, source: str) -> None:
    """Refuse (CaseError) a dotted key of more than MAX_KEY_PARTS parts before Python's TOML reader
    meets it: its time and memory grow with the square of a key's parts (a 40 kB line of 20,000
    parts took 96 s and 1.7 GB on every rank, and a case file may hold 4 MiB)."""
    found = _DEEP_KEY.search(text)
    if found:
        line = text.count("\n", 0, found.start()) + 1
        raise CaseError(f"{source}:{line}: a dotted key of more than {MAX_KEY_PARTS} parts "
                        f"({cut(printable(found.group()))}); the keys of a case have at most 3 (region.NAME.k)")


def load_case(text: str, source: str, overrides=(), default_name: str = "case", restart: bool = False
              ) -> records.Case:
    """Parse, override and validate a case; raise CaseError on the first problem. ``restart``: the
    case of a restart, whose fixed steps to time.t_end and to the output times are counted from its
    checkpoint (the run checks them there), not from t = 0."""
    deep_key(text, source)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(f"{source}: invalid TOML: {exc}") from None
    except RecursionError:
        raise CaseError(f"{source}: invalid TOML: nested too deeply") from None
    except ValueError:  # Python's limit on the digits of an integer read from text
        raise CaseError(f"{source}: {HUGE_INTEGER}") from None
    if not raw and not overrides:  # (an empty file, or one of comments: not a case missing one key)
        raise CaseError(f"{source}: the case file holds no keys (it is empty, or holds only comments); a case "
                        f"needs at least [material] k, rho and c: start from inputs/plate.toml, and see "
                        f"{KEY_REFERENCE}")
    applied = []
    file_dt = raw.get("time", {}).get("dt") if isinstance(raw.get("time"), dict) else None
    for item in overrides:
        keys, value = parse_override(item, source)
        node = raw
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise CaseError(f"{source}: --set {cut(printable(item))}: {cut(printable(k))} is not a table")
        node[keys[-1]] = value
        applied.append((keys, item))
    _fixed_steps_over_adaptive(raw, [keys for keys, _ in applied], file_dt)
    applied = [item for _, item in applied]
    values = validate(raw, source, restart)
    name = values["output"]["name"] or derived_name(default_name)
    if not valid_name(name):
        raise CaseError(f"{source}: output.name must be 1 to 100 letters, digits, '_', '-' or '.', not starting "
                        f"with '-' or '.', got {shown(name)}")
    values["output"]["name"] = name
    problem = name_problem(values["output"]["directory"])
    if problem:
        raise CaseError(f"{source}: output.directory {cut(values['output']['directory'])}: {problem}")
    case = records.Case(source=source, name=name, text=text, values=values, overrides=applied,
                        **records.sections(values))
    if case.time.scheme == "explicit-euler" and case.physics.nonlinear:
        raise CaseError(f"{source}: {explicit_refusal(case.physics)}")
    return case


def explicit_refusal(physics: records.Physics) -> str:
    """Why explicit Euler cannot take a case whose equations are solved by Newton's method."""
    key = cut(physics.nonlinear_key)
    why = (f"{key} is set" if key.endswith(".latent_heat") else f"{key.removesuffix('.epsilon')} radiates"
           if key.endswith(".epsilon") else f"{key} is not a number")
    return (f"time.scheme = \"explicit-euler\" needs k, rho and c given as numbers (of the material and of each "
            f"region), no latent heat and no radiation, but {why}; use backward-euler, crank-nicolson or bdf2 "
            f"(or time.dt = \"adaptive\"), which take properties given as expressions or tables")


ADAPTIVE_KEYS = ("tolerance", "dt_initial", "dt_min", "dt_max")


def _fixed_steps_over_adaptive(raw: dict, overridden: list, file_dt) -> None:
    """``--set time.dt=5`` (or ``"auto"``) over an adaptive case (``file_dt``: the case file's
    time.dt): the case file's keys of adaptive steps (time.tolerance, ...) no longer apply, and
    ``--set`` cannot remove them, so they are dropped, as a steady run ignores its stepping keys.
    Keys given with ``--set`` themselves stay and are judged, as are a fixed-step file's."""
    time = raw.get("time")
    if file_dt != "adaptive" or ["time", "dt"] not in overridden or not isinstance(time, dict) \
            or time.get("dt") == "adaptive":
        return
    for key in ADAPTIVE_KEYS:
        if ["time", key] not in overridden:
            time.pop(key, None)


_TABLE_FILES: ContextVar[dict | None] = ContextVar("table_files", default=None)  # read_pairs's files


def validate(raw: dict, source: str, restart: bool = False) -> dict:
    """The resolved case of ``raw``; a CSV file that several keys name is read once, its points
    shared by them."""
    token = _TABLE_FILES.set({})
    try:
        return _validate(raw, source, restart)
    finally:
        _TABLE_FILES.reset(token)


def _validate(raw: dict, source: str, restart: bool = False) -> dict:
    def fail(msg):
        raise CaseError(f"{source}: {printable(msg)}")

    def unknown(msg):
        fail(f"{msg}; every key: {KEY_REFERENCE}")

    allowed = sorted(SCHEMA) + ["boundary", "region"]
    for section, body in raw.items():
        if section in ROOT_SCHEMA:
            continue
        if section == "study" and "case" in (body if isinstance(body, dict) else {}):
            fail("a study file ([study] with its base case), not a case: run it with python -m solver study FILE")
        if section not in allowed:
            what = f"section [{cut(section)}]" if isinstance(body, dict) else f"top-level key {cut(section)}"
            unknown(f"unknown {what}{near(section, [*allowed, *ROOT_SCHEMA])} (sections: {', '.join(allowed)}; "
                    f"top-level keys: {', '.join(ROOT_SCHEMA)})")
        if not isinstance(body, dict):
            fail(f"{cut(section)} must be a table ([{cut(section)}]), got {shown(body)}")
    _check_files_beside(raw, source, fail)
    _check_table_rows(raw, fail)
    values: dict = {key: _check(key, spec, raw.get(key, spec.default), fail) for key, spec in ROOT_SCHEMA.items()}
    mesh_raw = raw.get("mesh", {})
    if isinstance(mesh_raw, dict) and "file" in mesh_raw:
        extra = [k for k in STRUCTURED_KEYS if k in mesh_raw]
        if extra:
            fail(f"mesh.{extra[0]} is not used with mesh.file (the file defines the mesh); remove it")
    elif isinstance(mesh_raw, dict) and "nz" in mesh_raw and mesh_raw.get("type", "rectangle") == "rectangle":
        fail("mesh.nz is not used by a rectangle (2D: nx and ny); remove it, or make the mesh a box "
             "(mesh.type = \"box\")")
    if isinstance(mesh_raw, dict) and "partitioner" in mesh_raw and "file" not in mesh_raw \
            and mesh_raw.get("type") != "file":
        shape = mesh_raw.get("type", "rectangle")
        fail(f"mesh.partitioner is not used by a {shape if isinstance(shape, str) else 'structured mesh'} (it "
             f"is split in blocks of its grid; the partitioner splits a mesh file); remove it")
    for section, keys in SCHEMA.items():
        body = raw.get(section, {})
        for key in body:
            if key not in keys:
                above = f"; {key} is a top-level key: write it above the first [section]" if key in ROOT_SCHEMA else ""
                if key in SCHEMA and key != section and isinstance(body[key], dict) and body[key]:
                    first = f"{key}.{cut(next(iter(body[key])))}"  # (a dotted key under another table)
                    above = f"; {first} belongs to [{key}]: write it under [{key}], not under [{section}]"
                unknown(f"unknown key {section}.{cut(key)}{'' if above else near(key, keys)} "
                        f"(allowed: {', '.join(keys)})"
                        f"{above}")
        values[section] = {k: _check(f"{section}.{k}", spec, body.get(k, spec.default), fail)
                           for k, spec in keys.items()}
    _check_mesh(values["mesh"], fail)
    _check_time(values["time"], fail, restart)
    _check_output_times(values["output"], raw.get("output", {}), values["time"], fail, restart)
    values["boundary"] = _check_boundaries(raw.get("boundary", {}), values["mesh"]["type"], values["time"], fail)
    dim = {"rectangle": 2, "box": 3}.get(values["mesh"]["type"])
    values["region"] = _check_regions(raw.get("region", {}), dim, values["mesh"]["type"] == "file", fail)
    if dim:
        _check_conductivity("material.k", values["material"]["k"], dim, fail)
    if values["run"]["temperature_range"] is None:
        values["run"]["temperature_range"] = default_temperature_range(values["temperature_unit"] or "C")
    hang = values["run"]["hang_timeout"]
    if 0 < hang < 1:
        fail(f"run.hang_timeout must be 0 (off) or at least 1 second, got {shown(hang)} (a step has to fit in it)")
    write = values["output"]["write_timeout"]
    if 0 < write < 1:
        fail(f"output.write_timeout must be 0 (off) or at least 1 second, got {shown(write)}")
    r = values["run"]["temperature_range"]
    if len(r) != 2 or not r[0] < r[1]:
        fail(f"run.temperature_range must be [min, max] with min < max, got {shown(r)}")
    _check_phase_change("material", values["material"], fail)
    for name, region in values["region"].items():
        merged = {k: region[k] if region.get(k) is not None else values["material"][k]
                  for k in ("latent_heat", "solidus", "liquidus", "c")}
        _check_phase_change(f"region.{cut(name)}", merged, fail)
    radiating = [name for name, b in values["boundary"].items() if "epsilon" in b]
    if radiating and values["temperature_unit"] is None:
        fail(f"boundary.{radiating[0]} radiates: declare temperature_unit = \"C\" or \"K\" at the top of the case "
             f"file (sigma T^4 needs kelvin, so the unit of T_inf and of every temperature must be known)")
    _check_absolute_zero(values, fail)
    return values


def _tables(raw: dict):
    """(key, table) of every table of the raw case: ``{table = [...]}`` or ``{file = "x.csv"}``,
    one per axis of an anisotropic k."""
    for section, keys in (("material", ("k", "rho", "c")), ("region", ("k", "rho", "c")), ("boundary", ("epsilon",))):
        body = raw.get(section)
        groups = {None: body} if section == "material" else body
        for group, table in (groups.items() if isinstance(groups, dict) else ()):
            prefix = section if group is None else f"{section}.{cut(group)}"
            for key in keys:
                if isinstance(table, dict) and key in table:
                    value = table[key]
                    for v in value if isinstance(value, list) else [value]:
                        if isinstance(v, dict) and v and set(v) <= {"table", "file"}:
                            yield f"{prefix}.{key}", v


def _check_table_rows(raw: dict, fail) -> None:
    """The tables of the case hold at most MAX_CASE_TABLE_ROWS points together, counted before any
    is read (each rank holds every table: one file named by a thousand regions is a thousand)."""
    lines_of: dict = {}
    found = [(name, rows_at_most(v, lines_of)) for name, v in _tables(raw)]  # (key, points at most)
    total = sum(n for _, n in found)
    if total > MAX_CASE_TABLE_ROWS:
        largest = max(found, key=lambda f: f[1])
        fail(f"the tables of the case hold up to {total:,} points in all ({len(found):,} tables; {largest[0]}: "
             f"{largest[1]:,}): at most {MAX_CASE_TABLE_ROWS:,} (every rank holds every table; a property needs far "
             f"fewer points)")


def _check_files_beside(raw: dict, source: str, fail) -> None:
    """A relative mesh or table file missing from the current directory (where such paths are
    taken from) but present beside the case file: say so, with the path that names it from here."""
    mesh = raw.get("mesh")
    named = [("mesh.file", mesh.get("file"))] if isinstance(mesh, dict) else []
    named += [(key, v.get("file")) for key, v in _tables(raw)]
    folder = Path(source).parent
    for key, name in named:
        if not isinstance(name, str) or not name or "\0" in name or Path(name).is_absolute():
            continue
        beside = folder / name
        if folder != Path(".") and file_problem(name) == MISSING and file_problem(beside) != MISSING:
            fail(f"{key}: {cut(name)} is not in the current directory ({cut(str(Path.cwd()))}), from which a relative "
                 f"path is taken; the file of that name beside the case is {cut(str(beside))}: give that path")


def _check(name: str, spec: Key, value, fail):
    if value is REQUIRED:
        doc = spec.doc  # (inside the message's parentheses: its own, at its end, as a colon)
        if doc.endswith(")") and doc.count("(") == 1:
            doc = doc[:-1].replace(" (", ": ")
        fail(f"{name} is required ({doc})")
    if value is None:
        return None
    kind = spec.kind
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or (spec.low is not None and value < spec.low) \
                or abs(value) >= 2**63:
            what = "a positive integer" if spec.low == 1 else f"an integer >= {spec.low}"
            huge = isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63
            fail(f"{name} must be {what}{' below 2^63' if huge else ''}, got {shown(value)}")
        return value
    if kind == "float":
        return _check_float(name, spec, value, fail)
    if kind in ("str", "name"):
        read_as = unquoted_kind(value)
        if read_as:  # name = 2024: the text in quotes
            text = str(value).lower() if isinstance(value, bool) else shown(value)
            fail(f"{name} must be a non-empty string, got {text}, which TOML reads as {read_as}: write it in "
                 f"quotes, {name.rpartition('.')[2]} = \"{text}\"")
        if not isinstance(value, str) or not value:
            fail(f"{name} must be a non-empty string, got {shown(value)}")
        return value
    if kind == "choice":
        if isinstance(value, bool) or not any(value == c and type(value) is type(c) for c in spec.choices):
            fail(f"{name} must be one of {', '.join(str(c) for c in spec.choices)}; got {shown(value)}")
        return value
    if kind == "conductivity":
        if isinstance(value, list):
            if value and all(isinstance(v, list) for v in value):
                fail(f"{name}: a table is written {{ table = [[T, value], ...] }}; a list gives the diagonal "
                     f"[kx, ky(, kz)] of an anisotropic k")
            return [_check_property(name, spec, v, fail) for v in value]
        return _check_property(name, spec, value, fail)
    if kind == "property":
        return _check_property(name, spec, value, fail)
    if kind == "duration":
        if isinstance(value, (datetime.time, datetime.datetime, datetime.date)):
            fail(f"{name} = {value.isoformat()} is a TOML time or date: write a duration as a string, "
                 f"\"{value.isoformat()}\", or a number of seconds")
        seconds = parse_duration(value)
        if seconds is None or seconds <= 0:
            fail(f"{name} must be a duration such as \"01:55:00\", \"1-00:00:00\" or a number of seconds, "
                 f"got {shown(value)}")
        return seconds
    if kind == "dt":
        if value in ("auto", "adaptive"):
            return value
        if isinstance(value, str):
            fail(f"{name} must be a number > 0, \"auto\" or \"adaptive\", got {shown(value)}")
        return _check_float(name, spec, value, fail)
    if kind == "tolerance":
        if isinstance(value, dict):
            extra = sorted(set(value) - {"relative", "absolute"})
            if extra or len(value) != 2:
                fail(f"{name} must be a number or {{ relative = r, absolute = a }} (both), got {shown(value)}")
            return {k: _check_float(f"{name}.{k}", Key("float", "", positive=True), value[k], fail)
                    for k in ("relative", "absolute")}
        tol = _check_float(name, Key("float", "", positive=True), value, fail)
        return {"relative": tol, "absolute": tol}
    if kind == "points":
        if not isinstance(value, list) or not value or not all(isinstance(p, list) and 2 <= len(p) <= 3
                                                               for p in value):
            fail(f"{name} must be a list of points [[x, y(, z)], ...], got {shown(value)}")
        if len(value) > MAX_PROBES:
            fail(f"{name}: {len(value)} points, more than the {MAX_PROBES} allowed (probes are recorded at every "
                 f"step; write the field instead with output.every or output.times)")
        return [[_check_float(f"{name} (point {i}, coordinate {j})", Key("float", ""), c, fail)
                 for j, c in enumerate(p, 1)] for i, p in enumerate(value, 1)]
    if kind == "floats":
        if not isinstance(value, list) or not value:
            fail(f"{name} must be a list of numbers, got {shown(value)}")
        return [_check_float(f"{name} (entry {i})", spec, v, fail) for i, v in enumerate(value, 1)]
    if kind == "expr":
        try:
            Expression(value, time=spec.space_time)
        except ExpressionError as exc:
            fail(f"{name}: {exc}")
        _check_constant_range(name, spec, value, fail)
        return value
    raise AssertionError(kind)


def _check_property(name: str, spec: Key, value, fail):
    """A number, an expression (of T, and of x, y, z, t where ``spec.space_time``) or a table in T,
    kept as plain data: float, str, or {"table": pairs[, "file": name]}."""
    if isinstance(value, str):
        try:
            e = Expression(value, temperature=True)
        except ExpressionError as exc:
            fail(f"{name}: {exc}")
        if not spec.space_time and e.names - {"T"}:
            fail(f"{name}: may depend on T only (a region gives it a place), got {shown(value)}")
        if e.is_constant:
            return _check_float(name, spec, float(e(np.zeros((1, 1)))[0]), fail)
        return value
    if is_table(value):
        try:
            pairs, file = read_pairs(value, _TABLE_FILES.get())
        except TableError as exc:
            fail(f"{name}: {exc}")
        try:
            check_pairs(pairs, spec.low, spec.high, spec.positive)
        except TableError as exc:  # (its points, counted without the file's header and comments)
            fail(f"{name}: {exc}{f' in {cut(file)}' if file else ''}")
        return {"table": pairs, **({"file": file} if file else {})}
    if isinstance(value, list):
        fail(f"{name} must be {PROPERTY_FORMS}, got a list")
    return _check_float(name, spec, value, fail)


def _check_constant_range(name: str, spec: Key, value, fail) -> None:
    """A constant expression is a finite number, within its key's range where it has one (others
    are checked where evaluated)."""
    e = Expression(value)
    if not e.is_constant:
        return
    with np.errstate(all="ignore"):
        number = float(e(np.zeros((1, 1)))[0])
    if not math.isfinite(number):  # (not "overflows with the mesh's sizes": it is not finite by itself)
        fail(f"{name} must be a finite number, got {shown(value)}"
             + ("" if isinstance(value, (int, float)) else f", which is {number:g}"))
    if spec.low is not None or spec.high is not None or spec.positive:
        _check_float(name, spec, number, fail)


def parse_duration(value) -> float | None:
    """Seconds from a number or SLURM-style "[D-]HH:MM:SS", "D-HH:MM" or "MM:SS"; None if malformed
    (minutes and seconds of 60 or more after hours, too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    m = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)", value.strip())
    if not m:
        return None
    days, hours, minutes, seconds = m.groups()
    if max(len(days or ""), len(hours or ""), len(minutes), len(seconds)) > 12:
        return None  # longer than the age of the universe
    if days is not None and hours is None:  # SLURM's D-HH:MM
        if "." in seconds:
            return None
        hours, minutes, seconds = minutes, seconds, "0"
    if float(seconds) >= 60 or (hours is not None and int(minutes) >= 60):
        return None  # 1:99:00 is not a time of day
    return ((int(days or 0) * 24 + int(hours or 0)) * 60 + int(minutes)) * 60 + float(seconds)


def _check_float(name, spec, value, fail):
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 1.7e308:
        fail(f"{name} must be a finite number, got {shown(value)} (more than a double's 1.8e308)")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        fail(f"{name} must be a finite number, got {shown(value)}")
    value = float(value)
    if spec.positive and value <= 0:
        fail(f"{name} must be > 0, got {shown(value)}")
    if spec.positive and value < TINY:
        fail(f"{name} must be at least {TINY:.3g} (the smallest normal double: below it, products with it "
             f"underflow to zero), got {shown(value)}")
    if spec.low is not None and value < spec.low:
        fail(f"{name} must be >= {spec.low}, got {shown(value)}")
    if spec.high is not None and value > spec.high:
        fail(f"{name} must be <= {spec.high}, got {shown(value)}")
    return value


def _check_mesh(mesh, fail):
    if mesh["file"] is not None:
        if mesh["type"] not in (None, "file"):
            fail(f"mesh.type must be \"file\" (or absent) with mesh.file, got {mesh['type']!r}")
        mesh["type"] = "file"
        for key in STRUCTURED_KEYS:
            mesh.pop(key)
        return
    if mesh["type"] == "file":
        fail("mesh.file is required with mesh.type = \"file\" (a Gmsh .msh or other meshio file)")
    if mesh["type"] is None:
        mesh["type"] = "rectangle"
    dim = 2 if mesh["type"] == "rectangle" else 3
    cells = STRUCTURED_CELLS[mesh["type"]]
    if mesh["cell"] is None:
        mesh["cell"] = cells[0]
    elif mesh["cell"] not in cells:
        fail(f"mesh.cell must be one of {', '.join(cells)} for a {mesh['type']}, got {mesh['cell']!r}")
    for key, default in (("lengths", 1.0), ("origin", 0.0)):
        if mesh[key] is None:
            mesh[key] = [default] * dim
        elif len(mesh[key]) != dim:
            fail(f"mesh.{key} must have {dim} entries for a {mesh['type']}, got {len(mesh[key])}")
    if dim == 2:
        mesh.pop("nz")
    mesh.pop("file")
    mesh.pop("partitioner")


def _check_time(time, fail, restart=False):
    scheme = time["scheme"]
    if scheme == "theta" and time["theta"] is None:
        fail("time.theta is required when time.scheme = \"theta\" (0.5 <= theta <= 1)")
    if scheme not in ("theta", "steady") and time["theta"] is not None:  # (steady: no step, nothing to weigh)
        fail(f"time.theta is only used with time.scheme = \"theta\", not {scheme!r}")
    if scheme == "explicit-euler" and time["mass"] == "consistent":
        fail("time.mass = \"consistent\" is not available with explicit-euler (it uses the lumped mass)")
    if time["mass"] is None:
        time["mass"] = "lumped" if scheme == "explicit-euler" else "consistent"
    if scheme == "steady":
        return
    for key in ("dt", "t_end"):
        if time[key] is None:
            fail(f"time.{key} is required for time.scheme = {scheme!r} ({SCHEMA['time'][key].doc})")
    if time["dt"] != "adaptive":
        for key in ADAPTIVE_KEYS:
            if time[key] is not None:
                fail(f"time.{key} is only used with time.dt = \"adaptive\" (this case has time.dt = {time['dt']!r})")
    if time["dt"] == "auto":
        if scheme != "explicit-euler":
            fail(f"time.dt = \"auto\" is only for time.scheme = \"explicit-euler\", not {scheme!r}")
        return
    if time["dt"] == "adaptive":
        if scheme == "explicit-euler":
            fail("time.dt = \"adaptive\" is for the implicit schemes (backward-euler, crank-nicolson, theta, bdf2); "
                 "explicit-euler takes a fixed dt or time.dt = \"auto\" (90% of its stable limit)")
        a = records.adaptive_spec(time)  # defaults resolved from t_end (kept unresolved in the values)
        if a.dt_min > a.dt_max:
            fail(f"time.dt_min = {a.dt_min:g} must not exceed time.dt_max = {a.dt_max:g}")
        if not a.dt_min <= a.dt_initial <= a.dt_max:
            fail(f"time.dt_initial = {a.dt_initial:g} must lie in [time.dt_min, time.dt_max] = "
                 f"[{a.dt_min:g}, {a.dt_max:g}]")
        _check_adaptive_bounds(time["t_end"], a, fail)
        return
    steps = time["t_end"] / time["dt"]
    if not math.isfinite(steps) or steps > records.MAX_STEPS:
        fail(f"time.t_end / time.dt = {steps:.3g} steps: at most {records.MAX_STEPS:.0e} (a larger time.dt, or "
             f"a shorter time.t_end)")
    if not restart and (not records.whole_steps(time["t_end"], time["dt"]) or round(steps) < 1):
        fail(f"time.t_end must be a whole number of time steps, got t_end/dt = {steps:.6g}")


def _check_adaptive_bounds(t_end, a, fail):
    """Adaptive steps of at most dt_max take at least t_end / dt_max of them: at most
    records.MAX_STEPS, as a fixed dt (dt_max = 1e-300 stepped for ever, and past t = 1e-284,
    t + dt_max == t). A dt_min that leaves t_end + dt_min == t_end cannot advance t where the run
    ends (its steps would be the runtime's shortest, 64 rounding steps of t, instead)."""
    steps = t_end / a.dt_max
    if not math.isfinite(steps) or steps > records.MAX_STEPS:
        fail(f"time.t_end / time.dt_max = {steps:.3g} steps at the least: at most {records.MAX_STEPS:.0e} (a larger "
             f"time.dt_max, or a shorter time.t_end)")
    if t_end + a.dt_min == t_end:
        fail(f"time.dt_min = {a.dt_min:g} s cannot advance t near time.t_end = {t_end:g} s (t_end + dt_min == t_end "
             f"in double precision); give at least {float(np.spacing(t_end)):.3g} s")


MAX_OUTPUT_TIMES = records.MAX_OUTPUT_TIMES  # snapshots that output.every or output.interval may ask for


def _check_output_times(output, raw_output, time, fail, restart=False):
    """output.interval or output.times: one of them, not with output.every, within (0, t_end] and,
    with a fixed dt, on the steps."""
    keys = [k for k in ("every", "interval", "times") if isinstance(raw_output, dict) and k in raw_output]
    if len(keys) > 1:
        fail(f"output.{keys[0]} and output.{keys[1]} both choose when to write; give one of them")
    if time["scheme"] == "steady":  # it writes the steady state once: when to write is not used, as time.dt is not
        return
    if output["interval"] is None and output["times"] is None:
        if isinstance(time["dt"], float) and time["dt"] > 0:
            snapshots = time["t_end"] / time["dt"] / output["every"]
            if not snapshots <= MAX_OUTPUT_TIMES:
                given = "output.every" if isinstance(raw_output, dict) and "every" in raw_output else \
                    "output.every (default 1)"
                fail(f"{given} = {output['every']} writes {snapshots:.3g} snapshots over the "
                     f"{time['t_end'] / time['dt']:.3g} steps to time.t_end; at most {MAX_OUTPUT_TIMES:,} "
                     f"(a larger output.every, or output.interval)")
        return
    key = "interval" if output["interval"] is not None else "times"
    t_end = time["t_end"]
    if key == "interval" and not t_end / output["interval"] <= MAX_OUTPUT_TIMES:
        fail(f"output.interval = {output['interval']:g} s gives {t_end / output['interval']:.3g} snapshots up to "
             f"time.t_end = {t_end:g} s; at most {MAX_OUTPUT_TIMES:,} (a larger interval, or output.every)")
    if key == "times":
        times = output["times"]
        if any(b <= a for a, b in zip(times, times[1:])):
            fail(f"output.times must be strictly increasing, got {shown(times)}")
        if times[-1] > t_end * (1 + 1e-12):
            fail(f"output.times must lie in (0, time.t_end = {t_end!r}], got {times[-1]!r}")
    dt = time["dt"]
    times = records.output_times(output, t_end)
    if dt == "adaptive":
        _check_adaptive_output_times(key, times, t_end, fail)
    if isinstance(dt, float) and not restart:  # a restart's: checked from where its steps count
        for t in times:
            if not records.whole_steps(t, dt) or round(t / dt) < 1:
                fail(f"output.{key}: t = {t:g} s is not a whole number of steps of time.dt = {dt:g}; "
                     f"use times on the steps or time.dt = \"adaptive\"")
        pair = records.shared_step(times, dt)
        if pair is not None:
            fail(shared_step_message(key, pair, dt))


def _check_adaptive_output_times(key, times, t_end, fail):
    """Adaptive steps land on each output time: none within 1e-12 of t_end of t = 0 or of the time
    before it, which the steps cannot tell apart (the later one was never written)."""
    if times[0] < 1e-12 * t_end:
        fail(f"output.{key}: t = {times[0]:g} s is within 1e-12 of time.t_end from the start, which the steps "
             f"cannot tell from t = 0; give times from {1e-12 * t_end:.3g} s on")
    close = np.flatnonzero(np.diff(times) < 1e-12 * t_end)
    if len(close):
        a, b = times[close[0]], times[close[0] + 1]
        fail(f"output.{key}: t = {a!r} s and t = {b!r} s are within 1e-12 of time.t_end of each other, which the "
             f"steps cannot tell apart (one snapshot for both); give times at least {1e-12 * t_end:.3g} s apart")


def shared_step_message(key: str, pair: tuple[float, float], dt: float, since: str = "") -> str:
    """The refusal of two output times on one fixed step of ``dt`` (``since``: where it counts from)."""
    return (f"output.{key}: t = {pair[0]!r} s and t = {pair[1]!r} s fall on the same step of dt = {dt:.6g} s"
            f"{since} (one snapshot for both); give times at least one step apart")


LATENT_RATIO = 1e15  # latent heat over the sensible heat of the melting range, at most (1/eps: 4.5e15)
MELTING_WIDTH = 1e-9  # the narrowest melting range, relative to its temperatures (|T| >= 1)


def _check_phase_change(where, m, fail):
    """latent_heat > 0 needs solidus < liquidus; they are not used without it, but given both
    must still be in order (a melting range turned round is a slip, whatever the latent heat)."""
    if not m["latent_heat"] and m["solidus"] is not None and m["liquidus"] is not None \
            and not m["solidus"] < m["liquidus"]:
        fail(f"{where}.solidus must be below {where}.liquidus, got solidus = {m['solidus']:g}, liquidus = "
             f"{m['liquidus']:g} (with latent_heat = 0 they are not used: remove them, or give the latent heat)")
    if m["latent_heat"]:
        for key in ("solidus", "liquidus"):
            if m[key] is None:
                fail(f"{where}.{key} is required with latent_heat > 0 (the melting range)")
        if not m["solidus"] < m["liquidus"]:
            fail(f"{where}.solidus must be below {where}.liquidus (a melting range of finite width), got "
                 f"solidus = {m['solidus']:g}, liquidus = {m['liquidus']:g}")
        width, scale = m["liquidus"] - m["solidus"], max(abs(m["solidus"]), abs(m["liquidus"]), 1.0)
        if width < MELTING_WIDTH * scale:  # a few rounding steps of T: the latent heat's share is lost in them
            fail(f"{where}: the melting range from solidus = {m['solidus']!r} to liquidus = {m['liquidus']!r} is "
                 f"{width:.3g} degrees wide, narrower than {MELTING_WIDTH:g} of its temperature, where rounding "
                 f"loses part of the latent heat; give a range at least {MELTING_WIDTH * scale:.3g} wide")
        c = m.get("c")
        if isinstance(c, (int, float)) and c > 0:  # the sensible heat must not vanish beside the latent one
            ratio = m["latent_heat"] / (c * (m["liquidus"] - m["solidus"]))
            if ratio > LATENT_RATIO:
                fail(f"{where}.latent_heat = {m['latent_heat']:g} is {ratio:.2g} times the sensible heat of the "
                     f"melting range (c times its width): beyond double precision, where the sensible heat is lost "
                     f"(metals: about 10); check its units (J/kg)")


def _check_absolute_zero(values, fail):
    """No temperature of the case below absolute zero in its unit: numbers and constant expressions
    (initial, Dirichlet and ambient temperatures), the temperatures of tables, solidus, liquidus and
    the lower end of run.temperature_range; round-off below it is taken (:func:`below_absolute_zero`).
    Expressions of x, y, z, t are checked on the mesh."""
    unit = values["temperature_unit"] or "C"
    zero = absolute_zero(unit)
    allowed = f"must be >= {zero:g} {unit} (absolute zero)"

    def number(name, value):
        if value is not None and below_absolute_zero(value, unit):
            fail(f"{name} {allowed}, got {shown(value)}")

    def expression(name, value):
        e = None if value is None else Expression(value)
        if e is not None and e.is_constant:
            number(name, float(e(np.zeros((1, 3)))[0]))

    def tables(name, value):
        for v in value if isinstance(value, list) else [value]:
            # (temperatures increase: the first is the lowest)
            if isinstance(v, dict) and below_absolute_zero(v["table"][0][0], unit):
                where = f" in {cut(v['file'])}" if "file" in v else ""
                fail(f"{name}: the table's temperature T = {v['table'][0][0]!r}{where} {allowed}")

    expression("initial.temperature", values["initial"]["temperature"])
    for name, b in values["boundary"].items():
        for key in ("value", "T_inf"):
            expression(f"boundary.{cut(name)}.{key}", b.get(key))
        tables(f"boundary.{cut(name)}.epsilon", b.get("epsilon"))
    for where, m in [("material", values["material"])] + [(f"region.{cut(n)}", r) for n, r in values["region"].items()]:
        for key in ("k", "rho", "c"):
            tables(f"{where}.{key}", m[key])
        for key in ("solidus", "liquidus"):
            number(f"{where}.{key}", m[key])
    low = values["run"]["temperature_range"][0]
    if below_absolute_zero(low, unit):
        fail(f"run.temperature_range: its min {allowed}, got {values['run']['temperature_range']!r}")


def _check_conductivity(name, k, dim, fail):
    if isinstance(k, list) and len(k) != dim:
        fail(f"{name} must be one value (a number, an expression or a table) or a list of {dim} (a diagonal "
             f"tensor), got {len(k)} entries")


def _check_regions(raw, dim, from_file, fail) -> dict:
    if not isinstance(raw, dict):
        fail(f"region must be a table of named regions ([region.name]), got {shown(raw)}")
    result = {}
    for key_name, body in raw.items():
        name = cut(key_name)  # (messages show a long name's start)
        if not isinstance(body, dict):
            fail(f"region.{name} must be a table with x/y/z ranges and k, rho, c, got {shown(body)}")
        for key in body:
            if key not in REGION_SCHEMA or (key == "z" and dim == 2):
                allowed = [k for k in REGION_SCHEMA if dim != 2 or k != "z"]
                fail(f"unknown key region.{name}.{cut(key)}{near(key, allowed)} (allowed: {', '.join(allowed)}); "
                     f"every key: "
                     f"{KEY_REFERENCE}")
        region = {k: _check(f"region.{name}.{k}", spec, body.get(k, spec.default), fail)
                  for k, spec in REGION_SCHEMA.items()}
        if region["group"] is not None and not from_file:
            fail(f"region.{name}.group needs a mesh file with physical groups (mesh.file); use x/y/z boxes")
        if region["group"] is None and all(region[axis] is None for axis in "xyz"):
            where = "x/y ranges" if dim == 2 else "x/y/z ranges"
            fail(f"region.{name} says where it is by none of its keys: give {where} [min, max] or a group "
                 f"(mesh files); the whole body's properties go in [material]")
        for axis in "xyz"[:dim or 3]:
            r = region[axis]
            if r is not None and (len(r) != 2 or r[0] > r[1]):
                fail(f"region.{name}.{axis} must be [min, max] with min <= max, got {shown(r)}")
        if region["k"] is not None and dim:
            _check_conductivity(f"region.{name}.k", region["k"], dim, fail)
        if all(region[k] is None for k in ("k", "rho", "c", "latent_heat", "solidus", "liquidus")):
            fail(f"region.{name} sets none of k, rho, c, latent_heat, solidus, liquidus")
        result[key_name] = region
    return result


def _check_boundaries(raw, mesh_type, time, fail) -> dict:
    names = BOUNDARIES[mesh_type]
    if not isinstance(raw, dict):
        fail(f"boundary must be a table of named boundaries ([boundary.left]), got {shown(raw)}")
    result = {}
    for key_name, body in raw.items():
        name = cut(key_name)  # (messages show a long name's start)
        if names is not None and key_name not in names:
            fail(f"boundary.{name}: unknown boundary {name!r} for a {mesh_type} (allowed: {', '.join(names)})"
                 f"{near(key_name, names)}")
        if not isinstance(body, dict):
            fail(f"boundary.{name} must be a table with type and value, got {shown(body)}")
        kind = body.get("type")
        for key in body:
            if key not in BOUNDARY_SCHEMA:
                known = isinstance(kind, str) and kind in BC_KEYS  # the keys of its type, else of every type
                allowed = ["type", *BC_KEYS[kind]] if known else list(BOUNDARY_SCHEMA)
                of_kind = f" for a {kind} boundary" if known else ""
                fail(f"unknown key boundary.{name}.{cut(key)}{near(key, BOUNDARY_SCHEMA)} (allowed{of_kind}: "
                     f"{', '.join(allowed)}); every key: "
                     f"{KEY_REFERENCE}")
        bc = {k: _check(f"boundary.{name}.{k}", spec, body.get(k, spec.default), fail)
              for k, spec in BOUNDARY_SCHEMA.items()}
        kind = bc["type"]
        for key in BC_KEYS[kind]:
            if bc[key] is None:
                fail(f"boundary.{name}.{key} is required for a {kind} boundary ({BOUNDARY_SCHEMA[key].doc})")
        for key in BOUNDARY_SCHEMA:
            if key != "type" and key not in BC_KEYS[kind] and bc[key] is not None:
                takes = ", ".join(f"{k} = ..." for k in BC_KEYS[kind])
                fail(f"boundary.{name}.{key} is not used by {'an' if kind[0] in 'aeiou' else 'a'} {kind} boundary "
                     f"(it takes: {', '.join(BC_KEYS[kind]) or 'nothing'}); remove it, or with --set give the whole "
                     f"boundary anew: --set 'boundary.{name}={{type = \"{kind}\"{', ' + takes if takes else ''}}}'")
        result[key_name] = {k: v for k, v in bc.items() if v is not None}
    return result
