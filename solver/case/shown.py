"""How values appear in messages and names: excerpts of what a user wrote, never all of it, and
counts with their nouns."""

from __future__ import annotations

import datetime
import re
import shlex
import unicodedata

__all__ = ["counted", "cut", "derived_name", "printable", "shell_word", "size", "shown"]


def shown(value) -> str:
    """A value as a message shows it: an integer of many digits in engineering form, a long text or
    list cut to an excerpt."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        try:
            return f"{float(value):.3g}"
        except OverflowError:
            return f"an integer of {len(str(abs(value)))} digits"
    if isinstance(value, (datetime.date, datetime.time)):  # a TOML date or time: as written, not repr
        return value.isoformat()
    try:
        text = _written(value)
    except RecursionError:  # (a value nested as deep as TOML's reader goes, shown from deep in a check)
        return f"a {type(value).__name__} nested too deeply to show"
    return text if len(text) <= 120 else f"{text[:100]}... ({len(text)} characters)"


def _written(value) -> str:
    """repr of ``value``, a table as TOML writes it inline ({ a = 1 }, not Python's {'a': 1}), with
    the integers of many digits inside lists and tables in engineering form: [2, 1.00e+309], not the
    310 digits."""
    if isinstance(value, list):
        return "[" + ", ".join(map(_written, value)) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_table_key(k)} = {_written(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        digits = str(abs(value))
        return f"{'-' if value < 0 else ''}{digits[0]}.{digits[1:3]}e+{len(digits) - 1:02d}"
    if isinstance(value, bool):  # as TOML writes it
        return "true" if value else "false"
    return repr(value)


def _table_key(key) -> str:
    """A key of an inline table as TOML writes it: bare where it may be, else quoted."""
    key = str(key)
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else repr(key)


def cut(text, width: int = 100) -> str:
    """A name a user gave (a key, a group, a file, a word of an expression) as a message shows it:
    whole up to ``width`` characters, else its start and its length."""
    text = str(text)
    return text if len(text) <= width else f"{text[:width - 40]}... ({len(text)} characters)"


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is one: 1 rank, 2 ranks."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def size(n_bytes: float) -> str:
    """A number of bytes with a unit that shows it with three significant digits, or as a whole
    number from 1000 of its unit on: 512 bytes, 63.5 KiB, 20.3 MiB, 1020 KiB, 1250 GiB."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= scale:
            value = n_bytes / scale
            return f"{value:.3g} {unit}" if value < 999.5 else f"{value:.0f} {unit}"
    return f"{n_bytes:.0f} bytes"


def derived_name(stem: str) -> str:
    """A valid output.name from a case file's name: accented letters without their accents, every
    other character '_', at most 100 characters ("case" when nothing is left)."""
    plain = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", plain).strip("._-")[:100].rstrip("._-")
    return name or "case"


def shell_word(text: str) -> str:
    """``text`` quoted for a command line a user may copy: as shlex quotes it, or, where it holds a
    character that does not print (a tab, a newline), in bash's $'...' with that character escaped,
    so that the command stays on one line and gives back the same text."""
    if text.isprintable():
        return shlex.quote(text)
    return "$'" + "".join(map(_escaped, text)) + "'"


def printable(text: str) -> str:
    """``text`` with control characters escaped (\\n, \\x01): a name or key of a hostile file stays
    on one line."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _escaped(c: str) -> str:
    """One character as bash's $'...' reads it back."""
    if c in "\\'":
        return "\\" + c
    if c.isprintable():
        return c
    n = ord(c)
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(c) or \
        (f"\\x{n:02x}" if n < 0x80 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}")
