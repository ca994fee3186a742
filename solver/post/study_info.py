"""``python -m solver info STUDY.study.h5 [--json]``: what a study file holds, and the reader the
study's ``plot`` shares; serial h5py, no MPI (the layout: :mod:`solver.app.study.studyfile`)."""

from __future__ import annotations

import json
import shlex
import tomllib
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from solver.case.shown import counted, shown
from solver.errors import CaseError
from solver.io.folder import RUN_LOCK, run_holds
from solver.io.results_reader import SolverFile

PENDING, DONE = -1, 0
STATISTICS = ("mean", "std", "min", "max")
FAILURES_SHOWN = 5
PROVENANCE = ("created", "host", "command_line", "git_commit", "python_version", "mpi_library")
TEMPERATURE_UNITS = {"C": "°C", "K": "K"}


def is_study_file(path) -> bool:
    """Whether ``path`` is an HDF5 file with the study mark (any other file: False)."""
    try:
        if not Path(path).is_file():
            return False
        with h5py.File(path, "r") as f:
            return "solver_study" in f.attrs
    except (OSError, ValueError):
        return False


GROUPS_FOLDER = "study_groups"  # where a running study's groups keep their finished samples (solver.app.study.partial)


def killed_study(path) -> str | None:
    """Where ``path`` (missing, or a folder) is the study file or the folder of a study that has
    not written its study file, but whose groups kept their finished samples in their partial
    files: what to do instead (wait for a study still running, continue one stopped); else None."""
    path = Path(path)
    if path.is_file():
        return None
    folder = path if path.is_dir() else path.parent
    name = path.name[: -len(".study.h5")] if path.name.endswith(".study.h5") else "*"
    found = sorted((folder / GROUPS_FOLDER).glob(f"{name}.group[0-9][0-9][0-9][0-9][0-9].study.h5"))
    if not found or (path.is_dir() and any(folder.glob("*.study.h5"))):  # (a folder with its study file)
        return None
    source = "STUDY.toml"
    try:
        with h5py.File(found[0], "r") as f:
            source = shlex.quote(str(f.attrs.get("study_source", source)))
            name = str(f.attrs.get("name", name))
    except (OSError, TypeError):
        pass
    if run_holds(folder):
        return (f"{path}: no study file yet: the study {name} is still running (it holds {folder / RUN_LOCK}) and "
                f"writes its study file when it ends; the samples it finished so far are in {folder / GROUPS_FOLDER} "
                f"({counted(len(found), 'group file')}): read the study file once it has ended")
    return (f"{path}: no study file yet: the study {name} stopped before it wrote one (killed, or its disk full); "
            f"the samples it finished are in {folder / GROUPS_FOLDER} ({counted(len(found), 'group file')}): "
            f"continue it with mpirun -n N python -m solver study {source} --restart latest, which writes the study "
            f"file, then read that")


def find_study(argv) -> str | None:
    """The first command-line word naming a study file, if any (commands dispatch on it)."""
    return next((a for a in argv if not a.startswith("-") and is_study_file(a)), None)


class StudyFile(SolverFile):
    """A study file read lazily: the sample table, the scalar outputs, the mesh and statistics."""

    def __init__(self, path):
        self.path = Path(path)
        if not is_study_file(self.path):
            raise CaseError(f"{self.path}: not a study file of this solver (no solver_study mark)")
        self.file = h5py.File(self.path, "r")
        if self.file.attrs.get("status") in ("partial", b"partial"):
            self.file.close()
            raise CaseError(f"{self.path}: the finished samples of one group of a study that was killed, not a "
                            f"study file; continue the study with --restart latest, then read its study file")

    @cached_property
    def keys(self) -> list[str]:
        raw = self.attrs.get("keys", self.file["samples/values"].attrs.get("keys", "[]"))
        return json.loads(raw.decode() if isinstance(raw, bytes) else raw)

    @cached_property
    def values(self) -> np.ndarray:
        return self.file["samples/values"][()].reshape(-1, len(self.keys))

    @cached_property
    def status(self) -> np.ndarray:
        return self.file["samples/status"][()]

    @property
    def done(self) -> np.ndarray:
        return self.status == DONE

    @cached_property
    def seconds(self) -> np.ndarray:
        return self.file["samples/seconds"][()] if "samples/seconds" in self.file else np.full(len(self.status), np.nan)

    def messages(self, indices) -> list[str]:
        ds = self.file["samples/message"]
        return [bytes(ds[int(i)]).decode("utf-8", "replace") for i in indices]

    @cached_property
    def outputs(self) -> tuple[str, ...]:
        """Names of the scalar outputs (one value per sample)."""
        group = self.file.get("outputs", {})
        return tuple(sorted(k for k, d in group.items() if isinstance(d, h5py.Dataset) and d.ndim == 1
                            and k != "probe_count"))  # (the length of each sample's probe series)

    def output(self, name: str) -> np.ndarray:
        if name not in self.outputs:
            hint = " (-o FILE writes the figure)" if name.lower().endswith((".png", ".pdf", ".svg")) else ""
            raise CaseError(f"--output {name}: {self.path.name} has no such scalar output{hint} "
                            f"(it holds: {', '.join(self.outputs) or 'none'})")
        return self.file["outputs"][name][()]

    def key_index(self, key: str) -> int:
        if key not in self.keys:
            raise CaseError(f"--against {key}: not a varied key of {self.path.name} (its keys: {', '.join(self.keys)})")
        return self.keys.index(key)

    @cached_property
    def case(self) -> dict:
        try:
            return tomllib.loads(self.attrs.get("case", ""))
        except tomllib.TOMLDecodeError:
            return {}

    @property
    def temperature_unit(self) -> str:
        return TEMPERATURE_UNITS.get(self.case.get("temperature_unit", "C"), "°C")

    @cached_property
    def times(self) -> np.ndarray:
        return self.file["time"][()] if "time" in self.file else np.zeros(0)

    @cached_property
    def thresholds(self) -> list[float]:
        return [float(t) for t in json.loads(self.attrs.get("thresholds", "[]"))]

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """The statistics fields (mean, std, min, max, above_<k>); empty without field statistics."""
        names = [n for n in self.file.get("statistics", {}) if n != "m2"]
        order = {n: i for i, n in enumerate(STATISTICS)}
        return tuple(sorted(names, key=lambda n: (order.get(n, len(order)), n)))

    def index(self, step: int | None = None, time: float | None = None) -> int:
        """Output-time index from a position (negative counts from the end) or the nearest time."""
        n = len(self.times)
        if n == 0 or not self.fields:
            raise CaseError(f"{self.path}: holds no field statistics (a study with outputs.fields = false, "
                            "or no sample done)")
        if time is not None:
            if not self.times[0] - 1e-12 <= time <= self.times[-1] + 1e-12:
                raise CaseError(f"--time {time:g}: outside the output times of {self.path.name} "
                                f"({self.times[0]:g} to {self.times[-1]:g})")
            return int(np.argmin(np.abs(self.times - time)))
        step = -1 if step is None else step
        if not -n <= step < n:
            raise CaseError(f"--step {shown(step)}: {self.path.name} has {n} output times (0..{n - 1}, or -{n}..-1)")
        return step % n

    def statistic(self, name: str, index: int) -> np.ndarray:
        """The nodal statistics field ``name`` at output-time ``index``."""
        if name not in self.fields:
            raise CaseError(f"--field {name}: {self.path.name} has no such statistics field "
                            f"(it holds: {', '.join(self.fields) or 'none'})")
        return self.file["statistics"][name][f"{index:06d}"][()]


def describe(x: np.ndarray) -> dict:
    """count, mean, std (sample), min, max of the finite values of ``x`` (None when there are none)."""
    x = x[np.isfinite(x)]
    if not len(x):
        return {"count": 0, "mean": None, "std": None, "min": None, "max": None}
    return {"count": int(len(x)), "mean": float(x.mean()), "std": float(x.std(ddof=1)) if len(x) > 1 else None,
            "min": float(x.min()), "max": float(x.max())}


def summary(s: StudyFile) -> dict:
    a, status = s.attrs, s.status
    failed = np.flatnonzero((status != PENDING) & (status != DONE))
    ran = s.seconds[np.isfinite(s.seconds)]
    return {
        "file": str(s.path),
        "study": {"name": a.get("name", s.path.name.split(".")[0]), "source": a.get("study_source", ""),
                  "case": a.get("case_source", ""), "method": a.get("method", ""), "seed": _plain(a.get("seed"))},
        "solver_version": a.get("solver_version", ""),
        "samples": {"total": int(len(status)), "done": int(np.sum(status == DONE)), "failed": int(len(failed)),
                    "pending": int(np.sum(status == PENDING)), "status": a.get("status", ""),
                    "exit_status": int(a.get("exit_status", 0))},
        "ranks": int(a.get("ranks", 0)), "ranks_per_case": int(a.get("ranks_per_case", 0)),
        "wall_time": float(a.get("wall_time", np.nan)),
        "sample_seconds": {"total": float(ran.sum()), "mean": float(ran.mean()), "max": float(ran.max())}
        if len(ran) else {},
        "mesh": {"nodes": int(len(s.points)), "cells": int(len(s.cells)), "cell_type": s.cell_type, "dim": s.dim}
        if "mesh/geometry" in s.file else {},
        "parameters": {k: {"min": float(v.min()), "max": float(v.max())} for k, v in zip(s.keys, s.values.T)},
        "outputs": {name: describe(s.output(name)[s.done]) for name in s.outputs},
        "probes": int(s.file["outputs/probes"].shape[-1]) if "outputs/probes" in s.file else 0,
        "statistics": {"count": int(a.get("count", 0)), "times": int(len(s.times)),
                       "time_range": [float(s.times[0]), float(s.times[-1])] if len(s.times) else [],
                       "thresholds": s.thresholds, "fields": list(s.fields)},
        "failures": [{"sample": int(i), "status": int(status[i]), "message": m}
                     for i, m in zip(failed[:FAILURES_SHOWN], s.messages(failed[:FAILURES_SHOWN]))],
        "provenance": {k: _plain(a[k]) for k in PROVENANCE if k in a},
    }


def study_info(path, as_json: bool) -> int:
    with StudyFile(path) as s:
        info = summary(s)
    print(json.dumps(info, indent=2) if as_json else "\n".join(text_lines(info)))
    return 0


def text_lines(info: dict) -> list[str]:
    st, sm, stats = info["study"], info["samples"], info["statistics"]
    ending = sm["status"] + ("" if sm["status"] == "complete" else
                             f" (exit status {sm['exit_status']}; continue with: mpirun -n N python -m solver study "
                             f"{shlex.quote(str(st['source']))} --restart latest)")
    sec = info["sample_seconds"]
    lines = [
        f"file        {info['file']}",
        f"study       {st['name']} ({st['source']}): {st['method']}"
        + (f", seed {st['seed']}" if st["method"] not in ("grid", "list") else "")
        + f", solver {info['solver_version']}",
        f"base case   {st['case']}",
        f"samples     {sm['total']}: {sm['done']} done, {sm['failed']} failed, {sm['pending']} pending; {ending}",
        f"run         {counted(info['ranks'], 'rank')}, {info['ranks_per_case']} per case, "
        f"wall time {info['wall_time']:.3f} s"
        + (f" (samples {sec['mean']:.3g} s on average, longest {sec['max']:.3g} s)" if sec else ""),
    ]
    if m := info["mesh"]:
        lines.append(f"mesh        {m['nodes']} nodes, {m['cells']} {m['cell_type']} cells, {m['dim']}D")
    lines += _table("parameters", f"over the {sm['total']} samples", ("min", "max"), info["parameters"])
    lines += _table("outputs", f"over the {sm['done']} done samples (plot --output NAME)",
                    ("mean", "std", "min", "max"), info["outputs"])
    if info["probes"]:
        lines.append(f"probes      {info['probes']} points, at each sample's output times (/outputs/probes, "
                     f"probe_times, probe_count)")
    if stats["fields"]:
        th = ", ".join(f"above_{k}: T > {t:g}" for k, t in enumerate(stats["thresholds"]))
        t0, t1 = stats["time_range"]
        when = (f"1 output time (t = {t0:g})" if stats["times"] == 1
                else f"{stats['times']} output times (t = {t0:g}..{t1:g})")
        lines.append(f"statistics  {stats['count']} samples, {when}; fields "
                     f"{', '.join(stats['fields'])} (plot --field NAME)" + (f"; {th}" if th else ""))
    else:
        lines.append("statistics  none (no field statistics in this file)")
    if info["failures"]:
        shown = len(info["failures"])
        lines.append(f"failures    {'the first ' + str(shown) + ' of ' if shown < sm['failed'] else ''}{sm['failed']}:")
        lines += [f"  sample {f['sample']} (status {f['status']}): {f['message']}" for f in info["failures"]]
    if p := info["provenance"]:
        lines.append(f"made        {p.get('created', '?')} on {p.get('host', '?')}, "
                     f"commit {p.get('git_commit') or 'unknown'}")
    return lines


def _table(title: str, note: str, columns: tuple[str, ...], rows: dict) -> list[str]:
    """A heading line and one aligned row per name (``-`` for a missing value)."""
    width = max((len(k) for k in rows), default=0)
    head = f"{title:<11} {note}" if rows else f"{title:<11} none"
    body = [(f"  {k:<{width}}  " + "  ".join(f"{c} {_number(r.get(c))}" for c in columns)).rstrip()
            for k, r in rows.items()]
    return [head, *body]


def _number(v) -> str:
    return "-" if v is None else f"{v:<11.6g}"


def _plain(value):
    return value.item() if hasattr(value, "item") else value
