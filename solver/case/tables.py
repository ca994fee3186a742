"""Properties tabulated against temperature: (T, value) pairs given inline in a case file or in a
CSV file, interpolated piecewise-linearly and held constant beyond the first and last points.

Accepted forms of a tabulated property (``k``, ``rho``, ``c``, ``epsilon``)::

    k = { table = [[20.0, 237.0], [200.0, 240.0], [400.0, 236.0]] }
    k = { file = "inputs/aluminium_k.csv" }      # two columns T, value; '#' comments, one header line

A CSV path is taken relative to the working directory, like ``mesh.file``. The validated case
keeps the pairs themselves (a checkpoint carries them), with the file name beside them.
"""

from __future__ import annotations

import csv
import math
import re
import sys
from pathlib import Path

import numpy as np

from solver.case.inputfiles import MAX_TABLE_BYTES, MISSING, file_problem, not_utf8, utf16
from solver.case.shown import cut, shell_word, shown


SHORT_TABLE = 32  # points up to which with_derivative counts comparisons instead of searching


class TableError(ValueError):
    """A table that cannot be used (message says why)."""


class TemperatureTable:
    """Piecewise-linear value(T) through ``points`` (T strictly increasing), constant beyond its ends."""

    def __init__(self, points, origin: str = "inline"):
        a = np.asarray(points, dtype=float)
        self.temperatures = np.ascontiguousarray(a[:, 0])
        self.values = np.ascontiguousarray(a[:, 1])
        self.origin = origin
        self.slopes = np.diff(self.values) / np.diff(self.temperatures)
        # by the number i of points at or below T: the left point's T and value, and the slope (0 beyond the ends)
        self._left_T = np.concatenate([self.temperatures[:1], self.temperatures])
        self._left_value = np.concatenate([self.values[:1], self.values])
        self._slope = np.concatenate([[0.0], self.slopes, [0.0]])

    def __call__(self, T) -> np.ndarray:
        return np.interp(T, self.temperatures, self.values)

    def with_derivative(self, T) -> tuple[np.ndarray, np.ndarray]:
        """(value, d value / dT): the slope of the interval holding T (the right one at a point),
        0 beyond the ends."""
        T = np.asarray(T, dtype=float)
        if len(self.temperatures) <= SHORT_TABLE:  # a few comparisons beat a binary search per point
            i = np.zeros(T.shape, dtype=np.intp)
            for x in self.temperatures:
                i += T >= x
        else:
            i = np.searchsorted(self.temperatures, T, side="right")
        slope = self._slope[i]
        return self._left_value[i] + slope * (T - self._left_T[i]), slope  # beyond the ends: the end's value

    @property
    def low(self) -> float:
        return float(self.values.min())

    @property
    def high(self) -> float:
        return float(self.values.max())

    def __repr__(self) -> str:
        return f"TemperatureTable({len(self.temperatures)} points, {self.origin})"


def is_table(value) -> bool:
    """True for the case-file forms of a table: ``{table = [...]}`` or ``{file = "..."}``."""
    return isinstance(value, dict)


def read_pairs(value, files: dict | None = None) -> tuple[list[list[float]], str | None]:
    """The (T, value) pairs of a table given as ``{table = [[T, v], ...]}`` or ``{file = "x.csv"}``,
    and the file name (None inline). Raises TableError naming what is wrong. ``files``: the pairs
    of the files read so far, by name, shared by the keys that name one file (nine regions naming
    a 100,000-point file read it nine times, 1.3 s and 12 MB each on every rank)."""
    keys = set(value)
    if keys - {"table", "file"} or len(keys) != 1:
        raise TableError(f"a table is {{ table = [[T, value], ...] }} or {{ file = \"name.csv\" }}, got keys "
                         f"{', '.join(sorted(keys)) or 'none'}")
    if "file" in value:
        name = value["file"]
        if not isinstance(name, str) or not name:
            raise TableError(f"file must be a CSV file name, got {shown(name)}")
        if files is None or name not in files:
            pairs = _read_csv(Path(name))
            if files is None:
                return pairs, name
            files[name] = pairs
        return files[name], name
    pairs = value["table"]
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise TableError("table must be a list of [T, value] pairs")
    return [_pair(p, f"pair {i + 1}") for i, p in enumerate(pairs)], None


MAX_TABLE_ROWS = 100_000  # points of a property table, file or inline
MAX_LINE_CHARS = 10_000  # characters of a line of a CSV table (its two numbers, or a comment)
_LINE_BREAK = re.compile(r"\r\n?|\n")  # as Python's universal newlines: \n, \r\n and a lone \r
MAX_CASE_TABLE_ROWS = 1_000_000  # points of all the tables of a case together: every rank holds each


def rows_at_most(value, lines_of: dict) -> int:
    """An upper bound on the points of a table ``{table = [...]}`` or ``{file = "x.csv"}`` found
    without reading them: the inline list's length, or the lines of the file (0 for a file that
    cannot be read: read_pairs says why). ``lines_of``: the files counted so far, by name."""
    if isinstance(value.get("table"), list):
        return len(value["table"])
    name = value.get("file")
    if not isinstance(name, str) or not name:
        return 0
    if name not in lines_of:
        try:
            data = Path(name).read_bytes() if file_problem(name, MAX_TABLE_BYTES) is None else b""
            lines_of[name] = line_count(data)
        except OSError:
            lines_of[name] = 0
    return lines_of[name]


def line_count(data: bytes) -> int:
    """The lines of ``data`` as _lines splits them: ended by \\n, \\r\\n or a lone \\r (old Mac files)."""
    ends = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    return ends + (bool(data) and not data.endswith((b"\n", b"\r")))


def _lines(text: str, name: str):
    """(number, line) of ``text`` split at its line breaks, each line's length checked before it is
    cut out: a 60 MB line is refused without being copied or split into fields."""
    start, number = 0, 0
    for number, brk in enumerate(_LINE_BREAK.finditer(text), start=1):
        yield number, _line(text, start, brk.start(), number, name)
        start = brk.end()
    if start < len(text):
        yield number + 1, _line(text, start, len(text), number + 1, name)


def _line(text: str, start: int, end: int, number: int, name: str) -> str:
    if end - start > MAX_LINE_CHARS:
        raise TableError(f"{name}:{number}: a line of {end - start:,} characters, more than the {MAX_LINE_CHARS:,} a "
                         f"line of a table may have (two numbers T, value, or a comment)")
    return text[start:end]


def _cells(line: str, number: int, name: str) -> list[str]:
    """The fields of one CSV line; a quote must close on its own line (a number never holds a line break)."""
    if '"' not in line:
        return line.split(",")  # what the csv module gives for a line without quotes, without its cost
    try:
        return next(csv.reader((line,), strict=True, skipinitialspace=True))  # 20, "237": a quote after a space
    except csv.Error as exc:  # a quote left open, a character after a closing quote
        raise TableError(f"{name}:{number}: {shown(line)} is not two numbers separated by a comma ({exc}; a quoted "
                         f"field closes its quote on its own line)") from None


_DASHES = str.maketrans(dict.fromkeys("\u2212\u2013\u2010\u2012", "-"))  # minus sign, en dash, hyphens
_GROUPED = (  # digit groups a spreadsheet writes in a number, that float() does not read
    ((",",), " (a comma inside a number: write 1000.5, without digit groups and with a decimal point)"),
    ((" ", "\u00a0", "\u202f", "'"), " (a space or quote inside a number: write 1000, without digit groups)"),
)


def _written_as(cells: list[str]) -> str:
    """Why cells a person reads as numbers are not numbers to a table, or ""."""
    dashed = next((c for c in cells if c.translate(_DASHES) != c), None)
    if dashed is not None:
        return f" (a Unicode minus sign or dash: write the ASCII hyphen-minus, {dashed.translate(_DASHES)})"
    return next((why for marks, why in _GROUPED if any(m in c for c in cells for m in marks)), "")


def _pair(p, where: str) -> list[float]:
    out = []
    for v in p:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, int) and abs(v) > 1.7e308) \
                or not math.isfinite(v):
            raise TableError(f"{where}: {shown(p)} is not two finite numbers")
        out.append(float(v))
    return out


def _number(cell: str) -> float:
    """A CSV cell's number, as float() reads it but without the underscores it also accepts between
    digits ("5_0" is 50 to Python, a typo to a table): ValueError for them, as for 0x10."""
    if "_" in cell:
        raise ValueError(cell)
    return float(cell)


def _read_csv(path: Path) -> list[list[float]]:
    problem, name = file_problem(path, MAX_TABLE_BYTES), cut(path)  # (messages show a long name's start)
    if problem not in (None, MISSING):  # a missing file: read_bytes says so below
        raise TableError(f"{name} {problem}" if problem.startswith("is ") else f"{name}: {problem}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TableError(f"cannot read {name} ({exc.strerror})") from None
    if utf16(data):
        raise TableError(f"{name} is UTF-16 text (Excel's \"Unicode Text\"); a table is a CSV file in UTF-8: save it "
                         f"as CSV UTF-8, or convert it (iconv -f utf-16 -t utf-8 {shell_word(path.name)} > new.csv)")
    if b"\0" in data:
        raise TableError(f"{name} is not a text file (a table is a CSV text file in UTF-8)")
    try:
        text = data.decode("utf-8-sig")  # Excel's "CSV UTF-8" begins with a byte-order mark
    except UnicodeDecodeError as exc:
        raise TableError(f"{name} is not UTF-8 text ({not_utf8(exc)}); save it as UTF-8 (in Excel: CSV UTF-8), or "
                         f"convert it (from Latin-1: iconv -f latin1 -t utf-8 {shell_word(path.name)} > new.csv)"
                         ) from None
    pairs = []
    header = False
    for number, line in _lines(text, name):
        row = _cells(line, number, name)
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):  # a blank line (or only commas), a comment
            continue
        if len(cells) != 2:
            comma = len(cells) in (3, 4) and all(c.lstrip("+-").isdigit() for c in cells)  # 20,5,237,5
            other = next((f" ({w}? columns are separated by commas, and decimals written with points)"
                          for c, w in ((";", "separated by semicolons"), ("\t", "separated by tabs"))
                          if c in cells[0]), " (decimals written with commas? columns are separated by commas, "
                                             "and decimals written with points)" if comma else "")
            raise TableError(f"{name}:{number}: expected two columns T, value, got {len(cells)}{other}")
        if len(pairs) >= MAX_TABLE_ROWS:
            raise TableError(f"{name}: more than {MAX_TABLE_ROWS:,} points (a property table needs far fewer; "
                             f"every rank holds it)")
        try:
            values = [_number(c) for c in cells]
        except ValueError:
            # only the first line that is not a comment may be a header, and a header is words
            first = next(c for c in cells if c)  # a header may leave the T column unnamed: ",k"
            if pairs or header or first[:1] in "0123456789+-.":
                raise TableError(f"{name}:{number}: {shown(row)} is not two numbers{_written_as(cells)}") from None
            header = True
            continue
        pairs.append(_pair(values, f"{name}:{number}"))  # numbers, but not finite: refused, never a header
        if len(pairs) > 1 and not pairs[-1][0] > pairs[-2][0]:  # named by its line here: check_pairs has points only
            raise TableError(f"{name}:{number}: temperatures must increase strictly: {pairs[-2][0]:g} then "
                             f"{pairs[-1][0]:g} (point {len(pairs)})")
    return pairs


def check_pairs(pairs: list[list[float]], low: float | None, high: float | None, positive: bool) -> None:
    """At least two points, T strictly increasing, values within the allowed range."""
    if len(pairs) < 2:
        raise TableError(f"a table needs at least two (T, value) points, got {len(pairs)}")
    if len(pairs) > MAX_TABLE_ROWS:
        raise TableError(f"a table of more than {MAX_TABLE_ROWS:,} points (a property table needs far fewer; every "
                         f"rank holds it)")
    T = [p[0] for p in pairs]
    for i in range(1, len(T)):
        if not T[i] > T[i - 1]:
            raise TableError(f"temperatures must increase strictly: {T[i - 1]:g} then {T[i]:g} (point {i + 1})")
        if T[i] - T[i - 1] <= 1e-9 * max(abs(T[i]), abs(T[i - 1]), 1.0):
            raise TableError(f"temperatures {T[i - 1]:.17g} and {T[i]:.17g} (point {i + 1}) are closer than 1e-9 "
                             f"of the larger (or of one degree, near 0): the slope between them is beyond what "
                             f"double precision resolves")
    t, v = np.asarray(pairs).T
    with np.errstate(over="ignore", invalid="ignore"):
        steep = np.flatnonzero(~np.isfinite(np.diff(v) / np.diff(t)))
    if steep.size:
        i = steep[0]
        raise TableError(f"the slope between points {i + 1} and {i + 2} (values {v[i]:g} and {v[i + 1]:g} at T = "
                         f"{t[i]:g} and {t[i + 1]:g}) is beyond the range of double precision")
    for t, v in pairs:
        if positive and v <= 0:
            raise TableError(f"value {v:g} at T = {t:g} is not > 0")
        if positive and v < sys.float_info.min:
            raise TableError(f"value {v:g} at T = {t:g} is below {sys.float_info.min:.3g} (the smallest normal "
                             f"double: products with it underflow to zero)")
        if low is not None and v < low or high is not None and v > high:
            raise TableError(f"value {v:g} at T = {t:g} is outside [{low:g}, {high:g}]")
