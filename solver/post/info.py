"""``python -m solver info RESULTS [--json]``: what a results file holds."""

from __future__ import annotations

import json

import numpy as np

from solver.case.shown import counted
from solver.errors import CaseError
from solver.io.results_reader import Results
from solver.post.study_info import is_study_file, killed_study, study_info


PROVENANCE = ("format_version", "created", "host", "command_line", "git_commit", "python_version", "numpy_version",
              "scipy_version", "h5py_version", "hdf5_version", "mpi4py_version", "mpi_library")


def ending(a: dict) -> dict:
    """How the run ended: complete, stopped (a checkpoint to continue from), failed (with its exit
    status and message), or killed (no end record: still running, or ended without closing)."""
    status = a.get("status")
    status = status if status is None else str(status)
    if status is None and "complete" not in a:  # neither record: not as a run leaves its file
        return {"status": "unknown", "detail": "no end record (status): the file was changed after its run, or "
                                               "not written by this solver"}
    if status is None:  # files written before the status record
        status = "complete" if a.get("complete", True) else "stopped or failed"
    if status == "running":
        return {"status": "killed", "detail": "no end record: the run was killed, could not write its end "
                                              "(a full disk: see its log), or is still running"}
    detail = {"complete": "", "stopped": f"exit status 75, checkpoint {a.get('checkpoint', '')}",
              "failed": f"exit status {a.get('exit_status', '?')}: {a.get('error', '')}"}.get(status, "")
    return {"status": status, "detail": detail}


def _number(r: Results, key: str, kind=float, default=0):
    """A numeric root attribute (``default`` when absent); one that is not a number is a damaged file."""
    value = r.attrs.get(key, default)
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        raise CaseError(f"{r.path}: damaged file: its attribute {key} = {str(value)[:40]!r} is not a "
                        f"{'whole ' if kind is int else ''}number") from None


def summary(r: Results) -> dict:
    a = r.attrs
    times = r.times
    last = r.temperature(-1) if len(times) else None
    totals = "linear_iterations" in a
    return {
        "file": str(r.path), "case": r.case.get("output", {}).get("name", r.path.stem),
        "case_source": a.get("case_source", ""), "solver_version": a.get("solver_version", ""),
        "mesh": {"nodes": int(len(r.points)), "cells": int(len(r.cells)), "cell_type": r.cell_type, "dim": r.dim},
        "ranks": _number(r, "ranks", int), "ending": ending(a), "complete": ending(a)["status"] == "complete",
        "snapshots": int(len(times)), "steps": [int(s) for s in r.steps], "fields": list(r.fields),
        "time_range": [float(times[0]), float(times[-1])] if len(times) else [],
        "scheme": r.case.get("time", {}).get("scheme", ""),
        "last": {"time": float(times[-1]), "min": float(last.min()), "max": float(last.max()),
                 "mean": r.mean(last)} if last is not None else {},
        "solver": {"preconditioner": a.get("preconditioner", r.case.get("solver", {}).get("preconditioner", "")),
                   # (a failed or killed run has no totals: None)
                   "linear_iterations": _number(r, "linear_iterations", int) if totals else None,
                   "steps": _number(r, "steps", int),
                   "nonlinear_iterations": _number(r, "nonlinear_iterations", int) if totals else None},
        "heat_balance_relative_imbalance": _number(r, "balance_relative_imbalance", float, float("nan"))
        if totals else None,
        "provenance": {k: _plain(a[k]) for k in PROVENANCE if k in a},
        "wall_time": {k[len("wall_time_"):]: _number(r, k) for k in a if k.startswith("wall_time_")},
        "time_steps": _time_steps(r, a),
    }


def _time_steps(r: Results, a) -> dict:
    """The accepted steps of /steps (dt range and median), and the steps rejected by the error
    estimate (adaptive runs); empty when the file has no step table."""
    try:
        if "steps/dt" not in r.file or not len(r.file["steps/dt"]):
            return {}
        dt = r.file["steps/dt"][()]
    except (OSError, KeyError, ValueError):  # a write that failed while the table grew
        return {"damaged": True}
    return {"accepted": int(len(dt)), "rejected": _number(r, "steps_rejected", int), "dt_min": float(dt.min()),
            "dt_median": float(np.median(dt)), "dt_max": float(dt.max()),
            "adaptive": r.case.get("time", {}).get("dt") == "adaptive"}


def info_command(args) -> int:
    """A results or study file's summary as text or JSON (the arguments: :mod:`solver.post.arguments`)."""
    if is_study_file(args.results):
        return study_info(args.results, args.json)
    if (killed := killed_study(args.results)) is not None:
        raise CaseError(killed)
    with Results(args.results) as r:
        s = summary(r)
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    m, last, sol, end = s["mesh"], s["last"], s["solver"], s["ending"]
    steps = s["steps"]
    how = end["status"] + (f" ({end['detail']})" if end["detail"] else "")
    steady = s["scheme"] == "steady"
    when = "steady state" if steady or not last else f"t = {last['time']:g}"
    over = "in the steady solve" if steady else f"over {counted(sol['steps'], 'step')}"
    solver = (f"{sol['linear_iterations']} {'linear' if sol.get('nonlinear_iterations') else 'CG'} iterations {over} "
              f"(preconditioner {sol['preconditioner']})"
              + (f", {sol['nonlinear_iterations']} Newton/Picard iterations" if sol["nonlinear_iterations"] else "")
              + f"; heat imbalance {s['heat_balance_relative_imbalance']:.1e}"
              if sol["linear_iterations"] is not None else
              f"preconditioner {sol['preconditioner']}; no totals (a {end['status']} run)")
    prov = s["provenance"]
    lines = [
        f"file        {s['file']}",
        f"case        {s['case']} ({s['case_source']}), solver {s['solver_version']}",
        f"mesh        {m['nodes']} nodes, {m['cells']} {m['cell_type']} cells, {m['dim']}D",
        f"run         {counted(s['ranks'], 'rank')}, {s['scheme']}, {how}",
        ("snapshots   1 (the steady state)" if steady else
         f"snapshots   {s['snapshots']} (steps {steps[0]}..{steps[-1]}, "
         f"t = {s['time_range'][0]:g}..{s['time_range'][1]:g})") if steps else "snapshots   none",
        f"fields      {', '.join(s['fields'])} (plot, probe, export: --field NAME)",
        *([f"last field  {when}: min {last['min']:.6g}, max {last['max']:.6g}, mean {last['mean']:.6g}"]
          if last else []),
        f"solver      {solver}",
        *([f"time steps  {ts['accepted']} accepted"
            + (f", {ts['rejected']} rejected (adaptive)" if ts["adaptive"] else " (fixed dt)")
            + f"; dt {ts['dt_min']:.3g}..{ts['dt_max']:.3g} s, median {ts['dt_median']:.3g} s (plot --dt)"]
          if (ts := s["time_steps"]) and not ts.get("damaged") else []),
        *(["time steps  the table cannot be read (a write that failed while it grew); the snapshots can"]
          if s["time_steps"].get("damaged") else []),
        "wall time   " + (", ".join(f"{k} {v:.3f} s" for k, v in sorted(s["wall_time"].items())) or "not recorded"),
    ]
    if prov:
        lines.append(f"made        {prov.get('created', '?')} on {prov.get('host', '?')}, format "
                     f"{prov.get('format_version', '?')}, commit {prov.get('git_commit') or 'unknown'}")
    print("\n".join(lines))
    return 0


def _plain(value):
    return value.item() if hasattr(value, "item") else value
