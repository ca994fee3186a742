"""Node tags of Gmsh files (MSH 2.2, 4.0 and 4.1, ASCII or binary), checked before meshio reads them.

meshio turns node tags into rows with ``tag - 1`` and indexes with the result: a node tag 0 or
a negative one, an element referring to node 0 or to a negative id, silently become another
node (negative indices count from the end; in binary MSH 4.1 a tag 0 wraps around to the slot
of the largest tag), and of two nodes with the same tag the later one wins. The mesh would be
wrong without a word, so :func:`check_gmsh_tags` scans ``$Nodes`` and ``$Elements`` first and
refuses such files with one line. The scan is vectorised (NumPy parses the sections, or reads
the binary records in place; no Python loop over nodes, elements or lines, only over the
entity blocks of MSH 4 and the element blocks of binary MSH 2), so it costs a fraction of
meshio's own read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from solver.errors import CaseError

_HEAD_BYTES = 1 << 16  # $MeshFormat comes first (after $Comments, if any)
_FORMAT = re.compile(rb"^\$MeshFormat[ \t\r]*\n[ \t]*(\S+)[ \t]+(\S+)(?:[ \t]+(\S+))?", re.MULTILINE)
_DIGITS = 18  # longest tag read by the fast path (int64 holds 18 digits)


class _Block(NamedTuple):
    """Elements and their node references: ``refs`` is (n, width) for n elements of one width
    (a view into a binary file), or flat in file order with ``per_element`` references each."""

    refs: np.ndarray
    elements: np.ndarray
    per_element: np.ndarray | None = None

    def element_of(self, ref: int) -> int:
        """Tag of the element that holds the ``ref``-th node reference of the block."""
        if self.per_element is None:
            return int(self.elements[ref // self.refs.shape[1]])
        return int(self.elements[np.searchsorted(np.cumsum(self.per_element), ref, side="right")])


class _Scan(NamedTuple):
    """What the checks need: node tags in file order, and the elements' node references in
    blocks, in file order."""

    node_tags: np.ndarray
    blocks: list
    in_order: bool = False  # the reader takes only the tags 1..n in file order (meshio, binary MSH 2.2)


def check_gmsh_tags(path: Path) -> bool:
    """Refuse a Gmsh file whose ``$Nodes`` has a tag <= 0, a tag that is not an integer or a tag
    twice, whose ``$Nodes`` or ``$Elements`` section comes twice, or whose ``$Elements`` refers to
    a node ``$Nodes`` does not define (CaseError naming the tag).

    ``.msh`` files in format 2.2, 4.0 or 4.1, ASCII or binary (with meshio's layout of the
    binary records), are checked the same way; a binary 2.2 file must also number its nodes
    1..n in order (meshio reads no other). Other formats number their nodes from 0 without
    tags (:mod:`solver.mesh.files` checks those references). Returns whether the file was
    checked: False for a ``.msh`` file this scan cannot follow, which meshio may refuse as
    damaged; one that it reads all the same is refused by the caller (its tags unchecked).
    Raises nothing but CaseError.
    """
    path = Path(path)
    if path.suffix.lower() != ".msh":
        return True
    check_physical_names(path)
    try:
        scan = _scan(path)
    except CaseError:
        raise
    except Exception:  # noqa: BLE001 - an unreadable or corrupt file is meshio's to report
        return False
    if scan is None:
        return False
    _check(path, scan)
    return True


UNCHECKED = ("its $Nodes and $Elements sections do not follow the layout of MSH 2.2 or 4.x as Gmsh and meshio "
             "write them, so its node tags cannot be checked (a wrong or repeated tag would silently move nodes); "
             "save it again from Gmsh (MSH 4.1) or meshio")


_NAMES_MARKER = b"\n$PhysicalNames"
_CHUNK = 1 << 20  # (a chunk, its copy with the tail and the next: three held at once)


def check_physical_names(path: Path) -> None:
    """Refuse a Gmsh file that gives one physical name to two groups (two tags, or two
    dimensions): meshio keeps the last of them by name, and the others' facets or cells would
    silently lose their condition or material (CaseError naming both). Every ``$PhysicalNames``
    section is read (text in ASCII and binary files alike, wherever it is), its names split as
    meshio splits them (shell words: quoted or not)."""
    seen: dict[str, tuple[int, int]] = {}
    for dim, tag, name in _physical_names(path):
        if name in seen and seen[name] != (dim, tag):
            (d0, t0), (d1, t1) = seen[name], (dim, tag)
            raise CaseError(f"{path}: the physical name \"{name[:80]}\" is given to two groups (dimension {d0} "
                            f"tag {t0}, and dimension {d1} tag {t1}): the mesh reader keeps one, and the other's "
                            f"facets or cells would lose their condition or material; give each group its own "
                            f"name, or both the same tag")
        seen.setdefault(name, (dim, tag))


def _physical_names(path: Path):
    """(dimension, tag, name) of every line of every ``$PhysicalNames`` section (lines that do not
    parse are meshio's to report)."""
    import shlex

    with open(path, "rb") as f:
        starts, offset, tail = [], 0, b"\n"
        while chunk := f.read(_CHUNK):
            data = tail + chunk
            at = data.find(_NAMES_MARKER)
            while at >= 0:
                starts.append(offset - len(tail) + at + 1)
                at = data.find(_NAMES_MARKER, at + 1)
            offset += len(chunk)
            tail = data[-len(_NAMES_MARKER):]
        for start in starts:
            f.seek(start)
            f.readline()
            try:
                count = int(f.readline())
            except ValueError:
                continue
            for _ in range(min(count, 1 << 20)):
                line = f.readline()
                try:
                    words = shlex.split(line.decode("utf-8", "replace"))
                    yield int(words[0]), int(words[1]), words[2]
                except (ValueError, IndexError):
                    continue


def _scan(path: Path) -> _Scan | None:
    """Node tags and element node references of a Gmsh file, or None (not Gmsh, a version
    without a scanner, sections missing or given twice, data the scan cannot follow)."""
    with open(path, "rb") as f:
        data = f.read(_HEAD_BYTES)
        match = _FORMAT.search(data)
        f.seek(0)
        data = f.read()
    if match is None:  # after $Comments of more than the head's bytes?
        match = _FORMAT.search(data)
    if match is None or match.group(2) not in (b"0", b"1"):  # no $MeshFormat
        return None
    version = match.group(1).decode("ascii", "replace")
    if version.split(".")[0] not in ("2", "4"):
        return None
    # meshio reads every 2.x as 2.2 and 4 or 4.x as 4.1 except "4.0" (Gmsh writes 4.0 as "4")
    layout = "2" if version.startswith("2") else "4.0" if version == "4.0" else "4.1"
    if match.group(2) == b"1":
        return _scan_binary(path, data, match.end(), layout, int(match.group(3) or b"8"))
    markers = _sections(data)
    for name in (b"Nodes", b"Elements"):
        if len(markers.get(name, [])) > 1:
            twice(path, name)
    nodes, elements = _section(data, markers, b"Nodes"), _section(data, markers, b"Elements")
    no_elements = b"Elements" not in markers  # (meshio reads the nodes alone: the mesh then has no cells)
    del data
    if nodes is None or (elements is None and not no_elements):
        return None
    node_tags = _node_tags(path, nodes, layout)
    del nodes
    if node_tags is None:
        return None
    if no_elements:
        return _Scan(node_tags, [])
    located = _elements_2(elements) if layout == "2" else _elements_4(elements, layout)
    if located is None and layout != "2":  # lines laid out otherwise: the numbers alone, as meshio reads them
        located = _elements_4_by_token(elements, layout)
    return None if located is None else _Scan(node_tags, [_Block(*located)])


def twice(path: Path, name: bytes):
    """Refuse a second ``$Nodes`` or ``$Elements`` section: meshio keeps the last one's nodes (a
    tag given in both would silently move), or reads elements of both."""
    section = name.decode()
    raise CaseError(f"{path}: the file has more than one ${section} section (a Gmsh mesh has one: the reader would "
                    f"keep one and silently drop or mix the others); merge them into one")


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
    printed = np.concatenate([[0], np.cumsum(chars > 32)])  # a line of blanks alone counts as empty
    keep = printed[end] > printed[start]
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


def _node_tags(path: Path, text: bytes, layout: str) -> np.ndarray | None:
    """Node tags of ``$Nodes`` in file order: line by line (fast), else token by token."""
    try:
        tags = _node_tags_by_line(text, layout)
    except (ValueError, IndexError):
        tags = None
    if tags is not None:
        return tags
    try:
        return _node_tags_by_token(text, layout)
    except TagError as exc:
        raise CaseError(f"{path}: node tag {exc} in $Nodes is not an integer (node tags are positive "
                        f"integers)") from None


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
        lines = n if layout == "4.0" else 2 * n
        if n < 0 or line + 1 + lines > len(start):  # (a count the file has no lines for: nothing allocated for it)
            return None
        rows.append(np.arange(line + 1, line + 1 + n))
        line += 1 + lines
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
        return _tags(values[1:1 + 4 * n:4]) if 0 <= n and 1 + 4 * n <= len(values) else None
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
    return _tags(np.concatenate(tags)) if tags else np.zeros(0, dtype=np.int64)


class TagError(ValueError):
    """A node tag that is not an integer (meshio would cut it to one, silently)."""


def _tags(values: np.ndarray) -> np.ndarray:
    """The node tags ``values`` as int64; TagError naming the first that is not an integer."""
    whole = np.isfinite(values) & (values == np.trunc(values)) & (np.abs(values) < 2.0**63)
    if not whole.all():
        raise TagError(f"{values[np.argmin(whole)]:.17g}")
    return values.astype(np.int64)


def _integers(values: np.ndarray) -> np.ndarray:
    """Integer-valued floats as int64 (a ValueError for anything else, or for no value)."""
    if not len(values) or not np.all(np.isfinite(values) & (values == np.trunc(values))):
        raise ValueError("not an integer")
    if np.any(np.abs(values) >= 2.0**63):  # beyond int64: no node has such a tag, and no count is that large
        raise ValueError("an integer beyond 2^63")
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


def _elements_4_by_token(text: bytes, layout: str):
    """What :func:`_elements_4` returns, from the numbers alone (meshio's way: line breaks do not
    matter), each block's width given by its element type; None if the numbers do not add up."""
    from meshio._common import num_nodes_per_cell
    from meshio.gmsh.common import _gmsh_to_meshio_type

    values = np.fromstring(text, dtype=np.int64, sep=" ")
    header = 4 if layout == "4.1" else 2
    if len(values) < header or np.any(np.abs(values) >= np.iinfo(np.int64).max):  # (a number beyond int64 saturates)
        return None
    refs, elements, per_element, position = [], [], [], header
    for _ in range(int(values[0])):
        if position + 4 > len(values):
            return None
        kind, n = int(values[position + 2]), int(values[position + 3])
        if kind not in _gmsh_to_meshio_type or n < 0:
            return None
        width = 1 + num_nodes_per_cell[_gmsh_to_meshio_type[kind]]
        position += 4
        if position + n * width > len(values):
            return None
        block = values[position:position + n * width].reshape(n, width)
        refs.append(block[:, 1:].ravel())
        elements.append(block[:, 0])
        per_element.append(np.full(n, width - 1))
        position += n * width
    if position != len(values) or not refs:
        return None if position != len(values) else (np.zeros(0, dtype=np.int64),) * 3
    return np.concatenate(refs), np.concatenate(elements), np.concatenate(per_element)


_INT = np.dtype("i")  # the binary records as meshio reads them: C int, C unsigned long, size_t of the header
_ULONG = np.dtype("L")
_DOUBLE = np.dtype("d")


class _Binary:
    """A cursor over the bytes of a binary Gmsh file: NumPy arrays read in place, lines as text."""

    def __init__(self, data: bytes, at: int):
        self.data, self.at = data, at

    def read(self, dtype, count: int) -> np.ndarray:
        """``count`` items of ``dtype`` (a ValueError past the end of the file)."""
        dtype = np.dtype(dtype)
        if count < 0 or self.at + count * dtype.itemsize > len(self.data):
            raise ValueError("past the end of the file")
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += count * dtype.itemsize
        return out

    def line(self) -> bytes:
        """The rest of the current line, without its end."""
        end = self.data.find(b"\n", self.at)
        end = len(self.data) if end < 0 else end
        text, self.at = self.data[self.at:end].strip(), end + 1
        return text

    def after(self, marker: bytes) -> None:
        """Move past the line that starts with ``marker`` (a ValueError if there is none)."""
        at = self.data.find(marker, self.at)
        if at < 0:
            raise ValueError(f"no {marker!r}")
        self.at = at
        self.line()


def _scan_binary(path: Path, data: bytes, at: int, layout: str, size: int) -> _Scan | None:
    """What :func:`_scan` returns, from a binary file read section by section the way meshio
    reads it (``at``: the end of the version line; ``size``: the data size, sizeof(size_t))."""
    from meshio._common import num_nodes_per_cell
    from meshio.gmsh.common import _gmsh_to_meshio_type

    def nodes_of(element_type) -> int:
        return num_nodes_per_cell[_gmsh_to_meshio_type[int(element_type)]]

    size_t = np.dtype(f"u{size}")
    f = _Binary(data, at)
    f.line()
    if f.read(_INT, 1)[0] != 1:  # another byte order than this machine's (meshio refuses it)
        return None
    f.after(b"$EndMeshFormat")
    node_tags = blocks = None
    while True:
        while f.at < len(data) and data[f.at] in b" \t\r\n":
            f.at += 1
        if f.at >= len(data):
            break
        if data[f.at] != ord("$"):
            return None
        name = f.line()[1:]
        if name == b"Nodes" and node_tags is None:
            node_tags = _binary_nodes(f, layout, size_t)
        elif name == b"Elements" and blocks is None:
            blocks = _binary_elements(f, layout, size_t, nodes_of)
        elif name in (b"Nodes", b"Elements"):
            twice(path, name)
        f.after(b"$End" + name)
    if node_tags is None or blocks is None:
        return None
    return _Scan(node_tags, blocks, in_order=layout == "2")


def _binary_nodes(f: _Binary, layout: str, size_t) -> np.ndarray:
    """Node tags of binary ``$Nodes``: 2.2 has the count (text) and records ``int tag, 3 double``;
    4.1 has 4 ``size_t``, then per entity block 3 ``int`` and a ``size_t`` count, the tags
    (``size_t``) and the coordinates; 4.0 has 2 ``unsigned long``, then per block 3 ``int``, an
    ``unsigned long`` count and records ``int tag, 3 double``."""
    record = np.dtype([("tag", _INT), ("x", _DOUBLE, (3,))])
    if layout == "2":
        return f.read(record, int(f.line()))["tag"].astype(np.int64)
    n_blocks = int(f.read(size_t if layout == "4.1" else _ULONG, 4 if layout == "4.1" else 2)[0])
    tags = []
    for _ in range(n_blocks):
        header = f.read(_INT, 3)
        n = int(f.read(size_t if layout == "4.1" else _ULONG, 1)[0])
        if layout == "4.1":
            if header[2]:  # parametric nodes: meshio refuses them
                raise ValueError("parametric nodes")
            tags.append(_signed(f.read(size_t, n)))
            f.read(_DOUBLE, 3 * n)
        else:
            tags.append(f.read(record, n)["tag"])
    return np.concatenate(tags).astype(np.int64, copy=False) if tags else np.zeros(0, dtype=np.int64)


def _signed(values: np.ndarray) -> np.ndarray:
    """Unsigned 8-byte integers as int64 without a copy (those past 2**63 - 1, invalid tags
    anyway, turn negative), others as they are."""
    return values.view(np.int64) if values.dtype.kind == "u" and values.dtype.itemsize == 8 else values


def _binary_elements(f: _Binary, layout: str, size_t, nodes_of) -> list:
    """The element blocks (:class:`_Block`, views into the file) of binary ``$Elements``: 2.2 has
    the count (text), then blocks of 3 ``int`` (type, count, tags) and records of ``int`` (tag,
    its tags, its nodes); 4.1 has 4 ``size_t``, then per entity block 3 ``int`` (the last the
    type), a ``size_t`` count and records of ``size_t`` (tag, nodes); 4.0 the same with
    ``unsigned long`` counts and ``int`` records."""
    blocks = []
    if layout == "2":
        total, done = int(f.line()), 0
        while done < total:
            kind, n, n_tags = (int(v) for v in f.read(_INT, 3))
            width = nodes_of(kind)
            block = f.read(_INT, n * (1 + n_tags + width)).reshape(n, 1 + n_tags + width)
            blocks.append(_Block(block[:, 1 + n_tags:], block[:, 0]))
            done += n
    else:
        count_t, record_t = (size_t, size_t) if layout == "4.1" else (_ULONG, _INT)
        for _ in range(int(f.read(count_t, 4 if layout == "4.1" else 2)[0])):
            width = nodes_of(f.read(_INT, 3)[2])
            n = int(f.read(count_t, 1)[0])
            block = _signed(f.read(record_t, n * (1 + width))).reshape(n, 1 + width)
            blocks.append(_Block(block[:, 1:], block[:, 0]))
    return blocks


SPARSE_TAGS = 16  # node tags up to this many times the nodes (and a million) are read


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
    largest, n = int(known[-1]) if len(known) else 0, len(known)
    if largest > SPARSE_TAGS * n + 10**6:  # meshio holds arrays as long as the largest tag
        raise CaseError(f"{path}: node tags reach {largest:.3g} for {n} nodes: reading them would take memory for "
                        f"every tag up to the largest; renumber the nodes 1..n (Gmsh's API: "
                        f"gmsh.model.mesh.renumberNodes(), then save)")
    defined = _lookup(known)
    for block in scan.blocks:  # a check of each block's references: no copy of them all
        bad = np.flatnonzero(~defined(block.refs))
        if len(bad):
            node = int(block.refs.flat[bad[0]])
            why = " (node tags are positive integers)" if node <= 0 else ""
            raise CaseError(f"{path}: element {block.element_of(int(bad[0]))} in $Elements refers to node {node} "
                            f"that $Nodes does not define{why}")
    off = np.flatnonzero(tags != np.arange(1, len(tags) + 1)) if scan.in_order else ()
    if len(off):
        at = int(off[0])
        raise CaseError(f"{path}: node tag {tags[at]} in $Nodes is number {at + 1} of the section: a binary MSH 2.2 "
                        f"file must tag its nodes 1..n in order (save it as MSH 4.1 or in ASCII)")


def _lookup(known: np.ndarray):
    """The mask of the references among the sorted, distinct tags ``known``, as a function."""
    if not len(known):
        return lambda refs: np.zeros(refs.shape, dtype=bool)
    if known[0] == 1 and known[-1] == len(known):  # 1..n
        return lambda refs: (refs >= 1) & (refs <= len(known))
    if known[-1] <= 4 * len(known) + (1 << 20):  # dense enough for a table
        table = np.zeros(int(known[-1]) + 1, dtype=bool)
        table[known] = True
        return lambda refs: (refs >= 1) & (refs <= known[-1]) & table[np.clip(refs, 0, known[-1])]
    return lambda refs: known[np.minimum(np.searchsorted(known, refs), len(known) - 1)] == refs
