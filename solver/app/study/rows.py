"""A group's finished samples as an append-only block file, ``<name>.group<g>.rows`` beside its
partial study file: each record appends the samples finished since the one before as one block (a
header: magic, payload length, CRC-32; then an uncompressed ``.npz`` of their rows, with their
numbers), flushed and fsynced. A kill during an append leaves a torn last block, which reading drops
(its samples run again). A record's cost is bounded by the samples since the last one, whatever the
study's size, and the group keeps in memory only the samples not yet recorded."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from solver.app.study.studyfile import PROBE_SERIES, SampleTable, StudyContents, encoded, put_probes, widened

MAGIC = b"SOLVROW1"
HEADER = struct.Struct("<8sQI")  # magic, payload bytes, CRC-32 of the payload


def rows_path(partial: Path) -> Path:
    """The rows file of the partial study file ``partial`` (``<name>.group<g>.study.h5``)."""
    return partial.with_name(partial.name.removesuffix(".study.h5") + ".rows")


def records_contents(spec, table: np.ndarray, records) -> StudyContents:
    """The rows of ``records`` (finished samples) only, with their numbers (``table.index``)."""
    n = len(records)
    index = np.array([rec.index for rec in records], dtype=np.int64)
    status = np.array([rec.status for rec in records], dtype=np.int64)
    seconds = np.array([rec.seconds for rec in records], dtype=float)
    message = np.array([rec.message for rec in records] + [""], dtype=object)[:n]
    outputs: dict[str, np.ndarray] = {}
    for row, rec in enumerate(records):
        for key, value in rec.scalars.items():
            outputs.setdefault(key, np.full(n, np.nan))[row] = value
        if rec.probes is not None:
            put_probes(outputs, n, row, rec.times, rec.probes)
    if spec.base.output.probes and "probes" in outputs:
        outputs["probe_points"] = np.array(spec.base.output.probes, dtype=float)
    values = np.asarray(table, dtype=float)[index] if n else np.zeros((0,) + np.shape(table)[1:])
    return StudyContents({}, SampleTable(values, status, seconds, message, index), outputs)


def append_rows(path: Path, contents: StudyContents, fresh: bool = False) -> int:
    """Append ``contents``' rows to ``path`` (``fresh``: in place of what it held) as one block,
    flushed to the disk; returns the bytes written. A failed append (a full disk) is cut off
    again, so that later blocks stay readable."""
    t = contents.table
    arrays = {f"table/{k}": (encoded(v) if k == "message" else v) for k, v in t.columns().items()}
    arrays |= {f"outputs/{k}": v for k, v in contents.outputs.items()}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    block = HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload
    with open(path, "wb" if fresh else "ab") as f:
        end = f.tell()
        try:
            f.write(block)
            f.flush()
            os.fsync(f.fileno())
        except OSError:
            try:
                f.truncate(end)
            except OSError:
                pass
            raise
    return len(block)


def read_rows(path: Path, limit: int | None = None) -> StudyContents:
    """The rows of the whole blocks of ``path`` (the first ``limit`` only; none without a file);
    a torn or damaged block ends the file."""
    parts = []
    if not path.is_file():
        return concatenated(parts, limit)
    with open(path, "rb") as f:
        while True:
            head = f.read(HEADER.size)
            if len(head) < HEADER.size:
                break
            magic, length, crc = HEADER.unpack(head)
            payload = f.read(length) if magic == MAGIC else b""
            if magic != MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
                break
            with np.load(io.BytesIO(payload), allow_pickle=False) as z:
                parts.append({k: z[k] for k in z.files})
    return concatenated(parts, limit)


def concatenated(parts: list[dict], limit: int | None = None) -> StudyContents:
    """Blocks of rows (``table/...``, ``outputs/...`` arrays) as one table of rows: an output some
    blocks lack is NaN there, and the probe series are widened to the longest."""
    if not parts:
        parts = [{"table/values": np.zeros((0, 0)), "table/status": np.zeros(0, dtype=np.int64),
                  "table/seconds": np.zeros(0), "table/message": np.zeros(0, dtype="S1"),
                  "table/index": np.zeros(0, dtype=np.int64)}]
    sizes = [len(p["table/index"]) for p in parts]
    columns = {}
    for name in ("values", "status", "seconds", "index"):
        columns[name] = np.concatenate([p[f"table/{name}"] for p in parts])
    message = np.concatenate([p["table/message"] for p in parts])  # (a Python step for the failed samples' only)
    full = np.flatnonzero(message != b"")
    columns["message"] = np.full(len(message), "", dtype=object)
    columns["message"][full] = [m.decode(errors="replace") for m in message[full]]
    outputs = {}
    keys = dict.fromkeys(k for p in parts for k in p if k.startswith("outputs/"))
    for key in keys:
        name = key.removeprefix("outputs/")
        if name == "probe_points":
            outputs[name] = next(p[key] for p in parts if key in p)
            continue
        shapes = [p[key].shape for p in parts if key in p]
        width = max(s[1] for s in shapes) if name in PROBE_SERIES else None
        tail = shapes[0][2:] if name in PROBE_SERIES else shapes[0][1:]
        blocks = []
        for p, n in zip(parts, sizes):
            rows = p.get(key)
            if rows is None:
                rows = np.full((n, width or 0) + tail if width is not None else (n,) + tail, np.nan)
            blocks.append(widened(rows, width) if width is not None else rows)
        outputs[name] = np.concatenate(blocks)
    contents = StudyContents({}, SampleTable(columns["values"], columns["status"], columns["seconds"],
                                             columns["message"], columns["index"]), outputs)
    return contents if limit is None else head(contents, limit)


def head(contents: StudyContents, n: int) -> StudyContents:
    """The first ``n`` rows of a table of rows."""
    t = contents.table
    contents.table = SampleTable(t.values[:n], t.status[:n], t.seconds[:n], t.message[:n], t.index[:n])
    contents.outputs = {k: (v if k == "probe_points" else v[:n]) for k, v in contents.outputs.items()}
    return contents
