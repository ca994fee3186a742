"""A study's finished samples, kept while it runs, so that a study killed on any rank loses only
the samples in flight.

Each group writes what its finished samples gave (their records, scalar outputs and probes, and its
block of the field statistics) to a partial study file of its own,
``<directory>/checkpoints/<name>.group<g>.study.h5``: after a sample finishes, at most every
:func:`record_seconds` (5 s), written whole to a temporary file and renamed, so that a crash at any
moment leaves the previous one readable. A stop by signal or wall limit writes the study file as
before; a SIGKILL, a lost node or an out-of-memory kill leaves the partial files.

``--restart latest`` merges the partial files into the study file's contents (or starts from them
when the study never wrote one), writes the study file at once and removes the partial files, so
that the restarted run's own partial files never replace samples it has not yet written. A study
that ends writes its study file and then removes its partial files; one that was killed between
the two leaves partial files whose samples the study file already lists: they are skipped.

Cost per record: one write, collective within the group, of the group's sample table and of its
statistics block (output times x nodes / group ranks): bounded by the mesh and the number of
samples, whatever the study's run time.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from solver.io.checkpoint import checkpoint_dir
from solver.app.study.studyfile import PENDING, StudyContents, merged_tables, write_study

log = logging.getLogger(__name__)
RECORD_SECONDS = 5.0


def record_seconds() -> float:
    """The longest a group keeps finished samples unrecorded (``SOLVER_TEST_RECORD_SECONDS`` in tests)."""
    return float(os.environ.get("SOLVER_TEST_RECORD_SECONDS", RECORD_SECONDS))


def partial_path(directory: Path, name: str, group_index: int) -> Path:
    return checkpoint_dir(directory) / f"{name}.group{group_index:05d}.study.h5"


def partial_files(directory: Path, name: str) -> list[Path]:
    """The partial files of the study ``name`` in its results directory, in group order."""
    folder = checkpoint_dir(directory)
    return sorted(folder.glob(f"{name}.group[0-9][0-9][0-9][0-9][0-9].study.h5")) if folder.is_dir() else []


def write_partial(path: Path, group, driver: str, spec, table: np.ndarray, share, n_nodes: int) -> None:
    """The group's finished samples (``share``: records on the group's rank 0, this rank's block of
    the statistics) to ``path`` (every rank of the group)."""
    contents = merged_tables(spec, table, None, [share.records]) if group.rank == 0 else None
    contents = group.bcast(contents, root=0)
    stats = share.moments if share.times is not None else None
    contents.times, contents.n_nodes, contents.stats = share.times, n_nodes, stats
    contents.attrs = {"case": spec.case_text, "name": spec.name, "samples": len(table), "status": "partial",
                      "count": stats.count if stats is not None else 0,
                      "thresholds": json.dumps(list(spec.thresholds))}
    if group.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
    group.Barrier()
    write_study(path, group, driver, contents)


def merge_partial(data: StudyContents | None, part: StudyContents, path: Path) -> StudyContents:
    """``data`` (the study file's contents, or None) with the samples of a partial file added; a
    partial file of samples ``data`` already lists is a leftover (skipped)."""
    done = part.table.status != PENDING
    if data is None:
        return part
    if np.any(data.table.status[done] != PENDING):
        log.info(f"{path.name}: its samples are in the study file already (skipped)")
        return data
    table = data.table
    table.status[done], table.seconds[done], table.message[done] = (part.table.status[done],
                                                                      part.table.seconds[done],
                                                                      part.table.message[done])
    for key, values in part.outputs.items():
        if key == "probe_points":
            data.outputs.setdefault(key, values)
            continue
        if key not in data.outputs:
            data.outputs[key] = np.full(values.shape, np.nan)
        if data.outputs[key].shape == values.shape:
            data.outputs[key][done] = values[done]
    if part.stats is not None and part.stats.count:
        if data.stats is None or data.times is None:
            data.stats, data.times = part.stats, part.times
        else:
            data.stats.merge(part.stats)
    return data
