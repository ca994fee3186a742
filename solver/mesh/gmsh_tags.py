"""Node tags of ASCII Gmsh files (MSH 2.2, 4.0 and 4.1), checked before meshio reads them.

meshio turns node tags into rows with ``tag - 1`` and indexes with the result: a node tag 0 or
a negative one, an element referring to node 0 or to a negative id, silently become another
node (negative indices count from the end), and of two nodes with the same tag the later one
wins. The mesh would be wrong without a word, so :func:`check_gmsh_tags` scans ``$Nodes`` and
``$Elements`` first and refuses such files with one line. The scan is vectorised (NumPy parses
the sections; no Python loop over nodes, elements or lines, only over the entity blocks of
MSH 4), so it costs a fraction of meshio's own read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from solver.errors import CaseError

_HEAD_BYTES = 1 << 16  # $MeshFormat comes first (after $Comments, if any)
_FORMAT = re.compile(rb"^\$MeshFormat[ \t\r]*\n[ \t]*(\S+)[ \t]+(\S+)", re.MULTILINE)
_DIGITS = 18  # longest tag read by the fast path (int64 holds 18 digits)


class _Scan(NamedTuple):
    """What the checks need: node tags in file order, every element's node references in file
    order, and each element's tag and number of references."""

    node_tags: np.ndarray
    refs: np.ndarray
    elements: np.ndarray
    per_element: np.ndarray

    def element_of(self, ref: int) -> int:
        """Tag of the element that holds the ``ref``-th node reference."""
        return int(self.elements[np.searchsorted(np.cumsum(self.per_element), ref, side="right")])


def check_gmsh_tags(path: Path) -> None:
    """Refuse an ASCII Gmsh file whose ``$Nodes`` has a tag <= 0 or a tag twice, or whose
    ``$Elements`` refers to a node ``$Nodes`` does not define (CaseError naming the tag).

    Only ``.msh`` files in ASCII format 2.2, 4.0 or 4.1 are checked. Binary files are not
    (meshio itself requires the node tags of a binary 2.2 file to be 1..n; binary 4.x files go
    unchecked), nor are other formats. A file this scan cannot follow passes unchecked too:
    meshio reports what is wrong with it when it reads it. Raises nothing but CaseError.
    """
    path = Path(path)
    if path.suffix.lower() != ".msh":
        return
    try:
        scan = _scan(path)
    except Exception:  # noqa: BLE001 - an unreadable or corrupt file is meshio's to report
        return
    if scan is not None:
        _check(path, scan)


def _scan(path: Path) -> _Scan | None:
    """Node tags and element node references of an ASCII Gmsh file, or None (not ASCII Gmsh,
    a version without a scanner, sections missing or given twice, text the scan cannot follow)."""
    with open(path, "rb") as f:
        data = f.read(_HEAD_BYTES)
        match = _FORMAT.search(data)
        if match is None or match.group(2) != b"0":  # binary, or no $MeshFormat
            return None
        f.seek(0)
        data = f.read()
    version = match.group(1).decode("ascii", "replace")
    if version.split(".")[0] not in ("2", "4"):
        return None
    # meshio reads every 2.x as 2.2 and 4 or 4.x as 4.1 except "4.0" (Gmsh writes 4.0 as "4")
    layout = "2" if version.startswith("2") else "4.0" if version == "4.0" else "4.1"
    markers = _sections(data)
    nodes, elements = _section(data, markers, b"Nodes"), _section(data, markers, b"Elements")
    del data
    if nodes is None or elements is None:
        return None
    node_tags = _node_tags(nodes, layout)
    del nodes
    if node_tags is None:
        return None
    located = _elements_2(elements) if layout == "2" else _elements_4(elements, layout)
    return None if located is None else _Scan(node_tags, *located)


def _sections(data: bytes) -> dict[bytes, list[tuple[int, int]]]:
    """Where each ``$Name`` line starts and where the line after it starts, by name (a line
    that starts with ``$`` begins or ends a section)."""
    found = {}
    at = data.find(b"$")  # one byte: a fast search, and "$" is rare outside section lines
    while at >= 0:
        eol = data.find(b"\n", at)
        eol = len(data) if eol < 0 else eol + 1
        if at == 0 or data[at - 1] == ord("\n"):
            found.setdefault(data[at + 1:eol].strip(), []).append((at, eol))
        at = data.find(b"$", at + 1)
    return found


def _section(data: bytes, markers: dict, name: bytes) -> bytes | None:
    """The lines between ``$name`` and ``$Endname``; None when missing, unclosed or given twice."""
    begins = markers.get(name, [])
    ends = [at for at, _ in markers.get(b"End" + name, []) if begins and at > begins[0][1] - 1]
    return data[begins[0][1]:ends[0]] if len(begins) == 1 and ends else None


def _lines(text: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (without CR LF) of each non-empty line of ``text``, in bytes."""
    chars = np.frombuffer(text, dtype=np.uint8)
    if not len(chars):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    newline = np.flatnonzero(chars == 10)
    start = np.concatenate([[0], newline + 1])
    end = np.concatenate([newline, [len(chars)]])
    end[(end > start) & (chars[np.maximum(end - 1, 0)] == 13)] -= 1
    keep = end > start
    return start[keep], end[keep]


def _leading_integers(text: bytes, start: np.ndarray, end: np.ndarray, alone: bool) -> np.ndarray | None:
    """The integer that opens each line ``[start, end)`` of ``text`` (the whole line if
    ``alone``); None if a line does not open so (the caller then reads the text token by token)."""
    if not len(start):
        return np.zeros(0, dtype=np.int64)
    if start[-1] + _DIGITS + 2 > len(text):  # a window would pass the end
        text = text + b"\n" * (_DIGITS + 2)
    window = np.lib.stride_tricks.sliding_window_view(np.frombuffer(text, dtype=np.uint8), _DIGITS + 2)[start]
    negative = window[:, 0] == ord("-")
    digits = window - np.uint8(ord("0"))  # other characters wrap around to more than 9
    digits[negative, 0] = 0
    length = np.argmin(digits <= 9, axis=1)  # the sign counts as a leading 0
    after = window[np.arange(len(start)), length]
    ok = (length > negative) & (after <= 32) & (length <= _DIGITS)
    if alone:
        ok &= length == end - start
    if not ok.all():
        return None
    value = np.zeros(len(start), dtype=np.int64)
    for k in range(int(length.max())):
        more = k < length
        value[more] = 10 * value[more] + digits[more, k]
    value[negative] *= -1
    return value


def _node_tags(text: bytes, layout: str) -> np.ndarray | None:
    """Node tags of ``$Nodes`` in file order: line by line (fast), else token by token."""
    try:
        tags = _node_tags_by_line(text, layout)
    except (ValueError, IndexError):
        tags = None
    return tags if tags is not None else _node_tags_by_token(text, layout)


def _node_tags_by_line(text: bytes, layout: str) -> np.ndarray | None:
    """The tags from the layout of the lines: MSH 2 has the count, then lines ``tag x y z``;
    4.1 has ``numEntityBlocks numNodes minNodeTag maxNodeTag``, then per block ``entityDim
    entityTag parametric numNodes``, a line per tag and a line per node of coordinates; 4.0 has
    ``numEntityBlocks numNodes``, then per block ``entityTag entityDim parametric numNodes`` and
    lines ``tag x y z``. None if the lines do not follow it."""
    start, end = _lines(text)
    if not len(start):
        return None
    if layout == "2":
        n = int(text[start[0]:end[0]])
        return _leading_integers(text, start[1:], end[1:], False) if len(start) == n + 1 else None
    n_blocks, line, rows = int(text[start[0]:end[0]].split()[0]), 1, []
    for _ in range(n_blocks):
        if line >= len(start):
            return None
        header = text[start[line]:end[line]].split()
        n = int(header[3]) if len(header) == 4 else -1
        if n < 0:
            return None
        rows.append(np.arange(line + 1, line + 1 + n))
        line += 1 + (n if layout == "4.0" else 2 * n)
    if line != len(start):
        return None
    rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return _leading_integers(text, start[rows], end[rows], layout == "4.1")


def _node_tags_by_token(text: bytes, layout: str) -> np.ndarray | None:
    """The tags from the numbers alone (meshio's way: line breaks do not matter), parsing the
    coordinates too; None if the numbers do not add up."""
    values = np.fromstring(text, dtype=np.float64, sep=" ")
    if layout == "2":
        n = int(_integers(values[:1])[0])
        return _integers(values[1:1 + 4 * n:4]) if 0 <= n and 1 + 4 * n <= len(values) else None
    position, tags = 2 if layout == "4.0" else 4, []
    for _ in range(int(_integers(values[:1])[0])):
        header = _integers(values[position:position + 4])
        dim, parametric, n = (header[1], header[2], header[3]) if layout == "4.0" else (header[0], header[2], header[3])
        width = 4 + (int(dim) if parametric else 0)  # a tag, x y z, the parametric coordinates
        position += 4
        if n < 0 or position + n * width > len(values):
            return None
        tags.append(values[position:position + n * width:width] if layout == "4.0" else values[position:position + n])
        position += n * width
    return _integers(np.concatenate(tags)) if tags else np.zeros(0, dtype=np.int64)


def _integers(values: np.ndarray) -> np.ndarray:
    """Integer-valued floats as int64 (a ValueError for anything else, or for no value)."""
    if not len(values) or not np.all(np.isfinite(values) & (values == np.trunc(values))):
        raise ValueError("not an integer")
    return values.astype(np.int64)


def _token_lines(text: bytes, n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first token and number of tokens of each non-blank line of ``text``."""
    chars = np.frombuffer(text, dtype=np.uint8)
    blank = chars <= 32  # space, tab, CR, LF (other control characters stop np.fromstring)
    starts = np.flatnonzero(~blank[1:] & blank[:-1]) + 1
    if len(chars) and not blank[0]:
        starts = np.concatenate([[0], starts])
    if len(starts) != n_tokens:
        raise ValueError("tokens and words differ")
    first = np.empty(np.count_nonzero(chars == 10) + 1, dtype=np.int64)
    first[0], first[1:] = 0, np.searchsorted(starts, np.flatnonzero(chars == 10))
    count = np.diff(first, append=n_tokens)
    return first[count > 0], count[count > 0]


def _between(begin: np.ndarray, end: np.ndarray, size: int) -> np.ndarray:
    """Mask of the tokens in ``[begin[i], end[i])`` for every i (ranges in order, disjoint)."""
    mark = np.zeros(size + 1, dtype=np.int8)
    mark[begin] += 1
    mark[end] -= 1
    return np.cumsum(mark[:size], dtype=np.int8).astype(bool)


def _elements_2(text: bytes):
    """Node references, element tags and references per element of MSH 2 ``$Elements``: the
    count, then lines ``elm-number elm-type number-of-tags <tags> node-number-list`` (the
    nodes are what the tags leave of the line); None if the text does not follow that layout."""
    tokens = np.fromstring(text, dtype=np.int64, sep=" ")
    first, count = _token_lines(text, len(tokens))
    if not len(first) or count[0] != 1 or not 0 <= tokens[0] <= len(first) - 1:
        return None
    n = int(tokens[0])
    first, count = first[1:n + 1], count[1:n + 1]
    if np.any(count < 3):
        return None
    nodes = 3 + tokens[first + 2]  # where the nodes start in the line
    if np.any((nodes < 3) | (nodes > count)):
        return None
    return tokens[_between(first + nodes, first + count, len(tokens))], tokens[first], count - nodes


def _elements_4(text: bytes, layout: str):
    """What :func:`_elements_2` returns, from MSH 4.1 ``$Elements`` (and 4.0): a header line
    (4 numbers, 2 in 4.0), then per entity block a line ending with ``numElements`` and that many
    lines ``elementTag nodeTag...`` (as many numbers each as the first of them)."""
    start, end = _lines(text)
    if not len(start) or len(text[start[0]:end[0]].split()) != (2 if layout == "4.0" else 4):
        return None
    refs, elements, per_element, line = [], [], [], 1
    for _ in range(int(text[start[0]:end[0]].split()[0])):  # entity blocks
        header = text[start[line]:end[line]].split() if line < len(start) else []
        n = int(header[3]) if len(header) == 4 else -1
        if n < 0 or line + n >= len(start):
            return None
        if n:
            width = len(text[start[line + 1]:end[line + 1]].split())
            block = np.fromstring(text[start[line + 1]:end[line + n]], dtype=np.int64, sep=" ")
            if width < 2 or len(block) != n * width:
                return None
            block = block.reshape(n, width)
            refs.append(block[:, 1:].ravel())
            elements.append(block[:, 0])
            per_element.append(np.full(n, width - 1))
        line += 1 + n
    if line != len(start):
        return None
    if not refs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(refs), np.concatenate(elements), np.concatenate(per_element)


def _check(path: Path, scan: _Scan) -> None:
    """Raise CaseError for the first bad node tag, repeated node tag or dangling reference."""
    tags = scan.node_tags
    bad = np.flatnonzero(tags <= 0)
    if len(bad):
        raise CaseError(f"{path}: node tag {tags[bad[0]]} in $Nodes is invalid (node tags are positive integers)")
    if np.all(tags[1:] > tags[:-1]):  # increasing (as Gmsh writes them): no repeats
        known = tags
    else:
        order = np.argsort(tags, kind="stable")
        known = tags[order]
        again = order[1:][known[1:] == known[:-1]]
        if len(again):
            raise CaseError(f"{path}: node tag {tags[again.min()]} appears twice in $Nodes (node tags must be unique)")
    refs = scan.refs
    if not len(known):
        defined = np.zeros(len(refs), dtype=bool)
    elif known[0] == 1 and known[-1] == len(known):  # 1..n
        defined = (refs >= 1) & (refs <= len(known))
    elif known[-1] <= 4 * len(known) + (1 << 20):  # dense enough for a table
        table = np.zeros(int(known[-1]) + 1, dtype=bool)
        table[known] = True
        defined = (refs >= 1) & table[np.clip(refs, 0, known[-1])]
    else:
        defined = known[np.minimum(np.searchsorted(known, refs), len(known) - 1)] == refs
    bad = np.flatnonzero(~defined)
    if len(bad):
        node = int(refs[bad[0]])
        why = " (node tags are positive integers)" if node <= 0 else ""
        raise CaseError(f"{path}: element {scan.element_of(int(bad[0]))} in $Elements refers to node {node} "
                        f"that $Nodes does not define{why}")
