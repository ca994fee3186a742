"""The case that a results file, a checkpoint or a saved study sample stores: the resolved case as
TOML in the root attribute ``case``, with each table of (T, value) points (a property or an
emissivity, inline or from a CSV file) replaced by a reference to a dataset that holds its points::

    k = { dataset = "/case_tables/<sha256 of the points>", points = 100000, file = "k.csv" }
    /case_tables/<sha256>   (points, 2) float64: T, value

A table named by many keys (one CSV file for nine regions) is stored once per file, and the
attribute stays a few kB (one of over 64 KiB needs HDF5's dense storage, which slows every open).
:func:`expand` gives the case back as the run resolved it, each table's points in place; files
written before tables were stored apart hold them in the attribute itself, which it leaves as
they are.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import tomli_w

from solver.case.tables import MAX_CASE_TABLE_ROWS, MAX_TABLE_ROWS

GROUP = "case_tables"  # where a file keeps the points of its case's tables
REFERENCE_KEYS = {"dataset", "points", "file"}


class StoredCaseError(ValueError):
    """A stored case whose tables cannot be read back (message says which and why)."""


@dataclass(frozen=True)
class StoredCase:
    """The stored form of a resolved case: its TOML text, and its tables by dataset path."""

    text: str
    tables: dict[str, np.ndarray]


def stored_case(values: dict) -> StoredCase:
    """The TOML text (keys of value None left out) and the distinct tables of a resolved case."""
    tables: dict[str, np.ndarray] = {}
    return StoredCase(tomli_w.dumps(_light(values, tables, {})), tables)


def _light(value, tables: dict, seen: dict):
    """``value`` with its tables replaced by references (``seen``: the path of each pairs list by id)."""
    if isinstance(value, dict):
        pairs = value.get("table")
        if isinstance(pairs, list):
            if id(pairs) not in seen:
                points = np.array(pairs, dtype="<f8").reshape(-1, 2)
                path = f"/{GROUP}/{digest(points)}"
                tables.setdefault(path, points)
                seen[id(pairs)] = path
            path = seen[id(pairs)]
            file = {"file": value["file"]} if "file" in value else {}
            return {"dataset": path, "points": len(tables[path]), **file}
        return {k: _light(v, tables, seen) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_light(v, tables, seen) for v in value]
    return value


def digest(points: np.ndarray) -> str:
    """SHA-256 of a table's points as little-endian doubles (its dataset's name)."""
    return hashlib.sha256(np.ascontiguousarray(points, dtype="<f8").tobytes()).hexdigest()


def is_reference(value) -> bool:
    return isinstance(value, dict) and "dataset" in value and "points" in value and set(value) <= REFERENCE_KEYS


def references(case) -> dict[str, int]:
    """The datasets a stored case names, with the points each reference gives."""
    found: dict[str, int] = {}
    if is_reference(case):
        found[str(case["dataset"])] = case["points"]
    elif isinstance(case, dict):
        for v in case.values():
            found.update(references(v))
    elif isinstance(case, list):
        for v in case:
            found.update(references(v))
    return found


def expand(case, tables: Mapping[str, np.ndarray]):
    """The stored case with each reference replaced by its table, ``{"table": pairs[, "file": name]}``
    as the run resolved it (a case without references is returned as it is)."""
    if is_reference(case):
        pairs = tables[str(case["dataset"])].tolist()
        return {"table": pairs, **({"file": case["file"]} if "file" in case else {})}
    if isinstance(case, dict):
        return {k: expand(v, tables) for k, v in case.items()}
    if isinstance(case, list):
        return [expand(v, tables) for v in case]
    return case


def read_tables(f, case: dict) -> dict[str, np.ndarray]:
    """The tables a stored case names, read from the open h5py file ``f``; StoredCaseError for one
    that is missing, of another shape than its reference gives, or whose points are not those its
    name was made from (changed after it was written). Counts are checked before anything is read,
    each table's and their sum."""
    named = references(case)
    for path, points in named.items():
        if not (path.startswith(f"/{GROUP}/") and type(points) is int and 2 <= points <= MAX_TABLE_ROWS):
            raise StoredCaseError(f"its attribute case names the table {path[:100]!r} of {str(points)[:20]} points, "
                                  f"not a dataset of /{GROUP} of 2 to {MAX_TABLE_ROWS:,} points")
    if sum(named.values()) > MAX_CASE_TABLE_ROWS:
        raise StoredCaseError(f"its attribute case names {len(named):,} tables of {sum(named.values()):,} points in "
                              f"all, more than the {MAX_CASE_TABLE_ROWS:,} a case may hold")
    out = {}
    for path, points in named.items():
        ds = f.get(path)
        if ds is None or not hasattr(ds, "dtype") or ds.shape != (points, 2) or ds.dtype.kind != "f":
            what = "missing" if ds is None else f"of shape {getattr(ds, 'shape', '?')}"
            raise StoredCaseError(f"its attribute case names the table {path[:100]} of {points} (T, value) points, "
                                  f"which is {what}")
        values = np.asarray(ds[()], dtype="<f8")
        if digest(values) != path.rpartition("/")[2]:
            raise StoredCaseError(f"the table {path[:100]} does not hold the points it was written with (changed "
                                  f"after it was written)")
        out[path] = values
    return out
