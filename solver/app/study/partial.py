"""A study's finished samples, kept while it runs, so that a study killed on any rank loses only
the samples in flight.

Each group records what its finished samples gave, after a sample finishes, at most every
:func:`record_seconds` (5 s), and once more when the group takes no further sample (before the study
file is written: one that finds no room on the disk loses no finished sample): the samples finished
since its last record are appended to its rows file, ``<directory>/study_groups/<name>.group<g>.rows``
(:mod:`.rows`), and then its block of the field statistics and its attributes (``rows``: how many rows
they count) are written whole to its partial study file, ``<name>.group<g>.study.h5``, through a
temporary file renamed, so that a crash at any moment leaves the previous one readable. A stop by
signal or wall limit writes the study file as before, its rows read back from the rows files; a
SIGKILL, a lost node or an out-of-memory kill leaves the group files.

``--restart latest`` merges the partial files into the study file's contents (or starts from them
when the study never wrote one), writes the study file at once and removes the partial files, so
that the restarted run's own partial files never replace samples it has not yet written. A study
that ends writes its study file and then removes its partial files; one that was killed between
the two leaves partial files whose samples the study file already lists: they are skipped.

Cost per record: one append of the rows of the samples since the last record (group rank 0), and
one write, collective within the group, of the group's statistics block (output times x nodes /
group ranks): bounded by the mesh and the samples since the last record, whatever the study's size
or run time; the group keeps in memory only the samples not yet recorded.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from solver.io.checkpoint import checkpoint_dir
from solver.app.study.rows import append_rows, read_rows, records_contents, rows_path
from solver.app.study.studyfile import (PENDING, PROBE_SERIES, SampleTable, StudyContents, read_study, widened,
                                          write_study)
from solver.errors import CaseError, OutputError
from solver.parallel.collective import on_root
from solver.post.study_info import GROUPS_FOLDER  # (not the checkpoints' folder: --overwrite of a run moves that)

log = logging.getLogger(__name__)
RECORD_SECONDS = 5.0


def record_seconds() -> float:
    """The longest a group keeps finished samples unrecorded (``SOLVER_TEST_RECORD_SECONDS`` in tests)."""
    return float(os.environ.get("SOLVER_TEST_RECORD_SECONDS", RECORD_SECONDS))


def partial_path(directory: Path, name: str, group_index: int) -> Path:
    return Path(directory) / GROUPS_FOLDER / f"{name}.group{group_index:05d}.study.h5"


def partial_files(directory: Path, name: str) -> list[Path]:
    """The partial files of the study ``name`` in its results directory, in group order (also
    those an earlier version kept among the checkpoints)."""
    found = []
    for folder in (Path(directory) / GROUPS_FOLDER, checkpoint_dir(directory)):
        if folder.is_dir():
            found += sorted(folder.glob(f"{name}.group[0-9][0-9][0-9][0-9][0-9].study.h5"))
    return found


def record_partial(path: Path, group, driver: str, spec, table: np.ndarray, identity: dict, share,
                   n_nodes: int) -> None:
    """The group's samples finished since its last record (``share.records``, on the group's rank
    0) appended to its rows file, then its statistics block and attributes written to ``path``
    (every rank of the group; ``share.rows`` counts the rows recorded, ``share.records`` is emptied);
    ``identity``: the base case's hash and mesh digest (:func:`solver.app.study.driver.base_identity`)."""
    def append():  # (rank 0; its failure, a full disk, reaches the group's every rank: none waits)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{path.parent}: cannot make the folder of the study's group files "
                              f"({exc.strerror or exc})") from None
        rows = rows_path(path)
        try:
            append_rows(rows, records_contents(spec, table, share.records), fresh=share.rows == 0)
        except OSError as exc:
            raise OutputError(f"{rows}: cannot record the group's finished samples ({exc.strerror or exc})") from None
        return len(share.records)

    share.rows += on_root(group, append, OutputError)
    share.records.clear()  # (they are in the rows file: the study file takes them from there)
    contents = records_contents(spec, table, [])  # (the rows: in the rows file)
    stats = share.moments if share.times is not None else None
    contents.times, contents.n_nodes, contents.stats = share.times, n_nodes, stats
    contents.attrs = {"case": spec.case_text, **identity, "keys": json.dumps(spec.keys), "name": spec.name,
                      "study_source": str(spec.source),
                      "samples": len(table), "status": "partial", "rows": share.rows,
                      "count": stats.count if stats is not None else 0,
                      "thresholds": json.dumps(list(spec.thresholds)), "fields": int(spec.fields),
                      "save_runs": int(spec.save_runs)}
    write_study(path, group, driver, contents)


def read_partial(path: Path, comm, driver: str, n_nodes: int | None) -> StudyContents:
    """A partial file's contents with the rows its statistics count (rank 0's; the other ranks of
    ``comm`` get its attributes and statistics blocks, as :func:`read_study`): the first ``rows`` of
    its rows file (those appended after it, before a kill, run again); a partial file of an earlier
    version holds its rows itself."""
    part = read_study(path, comm, driver, n_nodes)
    if "rows" in part.attrs and comm.rank == 0:
        rows = read_rows(rows_path(path), int(part.attrs["rows"]))
        part.table, part.outputs = rows.table, rows.outputs
    return part


def group_files(directory: Path, name: str) -> list[Path]:
    """The partial files of the study ``name`` and their rows files (those of a partial file never
    written too)."""
    rows = sorted((Path(directory) / GROUPS_FOLDER).glob(f"{name}.group[0-9][0-9][0-9][0-9][0-9].rows"))
    return partial_files(directory, name) + rows


def merge_rows(data: StudyContents, part: StudyContents) -> StudyContents:
    """``data`` (a whole study's tables) with a table of rows (:func:`.rows.read_rows`) put in
    place: a cost bounded by the rows (and the output tables that ``data`` lacked)."""
    index, t, n = part.table.index, part.table, len(data.table.status)
    data.table.status[index], data.table.seconds[index], data.table.message[index] = t.status, t.seconds, t.message
    for key, rows in part.outputs.items():
        if key == "probe_points":
            data.outputs.setdefault(key, rows)
            continue
        if key not in data.outputs:
            data.outputs[key] = np.full((n, 0) + rows.shape[2:], np.nan) if key in PROBE_SERIES \
                else np.full((n,) + rows.shape[1:], np.nan)
        if key in PROBE_SERIES:
            width = max(data.outputs[key].shape[1], rows.shape[1])
            data.outputs[key], rows = widened(data.outputs[key], width), widened(rows, width)
        data.outputs[key][index] = rows
    return data


def expand(part: StudyContents, table: np.ndarray) -> StudyContents:
    """A partial file's rows at their places in the whole sample ``table`` (the others pending)."""
    t, index, n = part.table, part.table.index, len(table)
    if index is None or len(index) != len(t.status) or (len(index) and not 0 <= index.min() <= index.max() < n):
        raise CaseError("its sample numbers do not match its sample table")
    values = np.array(table, dtype=float, copy=True)
    if len(index):
        values[index] = t.values
    status, seconds = np.full(n, PENDING, dtype=np.int64), np.full(n, np.nan)
    message = np.full(n, "", dtype=object)
    status[index], seconds[index], message[index] = t.status, t.seconds, t.message
    outputs = {}
    for key, rows in part.outputs.items():
        if key == "probe_points":
            outputs[key] = rows
            continue
        outputs[key] = np.full((n,) + rows.shape[1:], np.nan)
        outputs[key][index] = rows
    part.table, part.outputs = SampleTable(values, status, seconds, message), outputs
    return part


def merge_partial(data: StudyContents | None, part: StudyContents, path: Path, comm=None) -> StudyContents:
    """``data`` (the study file's contents, or None) with the samples of a partial file added; a
    partial file of samples ``data`` already lists is a leftover (skipped). Over ``comm``, the
    tables are rank 0's (:func:`read_partial`): it alone merges them and tells the others whether
    to merge the statistics blocks."""
    if data is None:
        return part
    rank = comm.rank if comm is not None else 0
    leftover = bool(np.any(data.table.status[part.table.status != PENDING] != PENDING)) if rank == 0 else None
    if comm is not None:
        leftover = comm.bcast(leftover, root=0)
    if leftover:
        if rank == 0:
            log.info(f"{path.name}: its samples are in the study file already (skipped)")
        return data
    if rank == 0:
        merge_partial_tables(data, part)
    if part.stats is not None and part.stats.count:
        if data.stats is None or data.times is None:
            data.stats, data.times = part.stats, part.times
        else:
            data.stats.merge(part.stats)
    return data


def merge_partial_tables(data: StudyContents, part: StudyContents) -> None:
    """The rows of ``part``'s finished samples put in place in ``data``'s tables (both whole)."""
    done = part.table.status != PENDING
    table = data.table
    table.status[done], table.seconds[done], table.message[done] = (part.table.status[done],
                                                                      part.table.seconds[done],
                                                                      part.table.message[done])
    for key, values in part.outputs.items():
        if key == "probe_points":
            data.outputs.setdefault(key, values)
            continue
        if key not in data.outputs:
            data.outputs[key] = np.full((len(values), 0) + values.shape[2:], np.nan) if key in PROBE_SERIES \
                else np.full(values.shape, np.nan)
        if key in PROBE_SERIES:  # each sample's own output times: the longer series of the two
            width = max(data.outputs[key].shape[1], values.shape[1])
            data.outputs[key], values = widened(data.outputs[key], width), widened(values, width)
        data.outputs[key][done] = values[done]
