"""``python -m solver bench --study``: the throughput of studies, timed from outside as a user
runs them (``mpirun`` included), alternated ``--repeat`` times; medians and ranges.

* **Side by side against one after another**: 32 small transient samples on ``--ranks`` ranks in
  groups of one, against the same 32 samples on one rank (one after another). Target: >= 1.8x on
  2 ranks.
* **Uneven costs**: 16 samples of which the first costs 10x the others (ten times the steps),
  handed out dynamically (the default) or round-robin (``--schedule static``); the ratio says how
  much dynamic scheduling gains.

Figures go to a table and to ``--json`` (default ``outputs/bench/study.json``).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import h5py

from solver.parallel.launcher import mpirun_command, mpirun_environment
from solver.bench.cases import case_text, scratch_beside
from solver.errors import ProcessFailed

EVEN = """
[study]
case = "case.toml"
method = "monte-carlo"
samples = 32
seed = 1
[parameters]
"boundary.right.h" = {{ distribution = "uniform", low = 10.0, high = 40.0 }}
"""
UNEVEN = """
[study]
case = "case.toml"
method = "list"
[parameters]
"time.t_end" = {{ values = [{values}] }}
[outputs]
fields = false
"""


def timed(cmd: list[str], env: dict, cwd: Path) -> float:
    """Seconds of ``cmd`` as a whole process; a failed study is the command's error (its status and its line)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        study = next(word for word in cmd if word.endswith(".toml"))
        raise ProcessFailed(f"bench --study: the study {study} (its case: --n, --steps)", proc.returncode, proc.stderr)
    return seconds


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def measure(ranks: int, repeat: int, n: int, steps: int, folder: Path) -> dict:
    (folder / "case.toml").write_text(case_text(2, n, "triangle", steps, "bjacobi", scheme="backward-euler")
                                      + f'[output]\nevery = 1000\ndirectory = "{folder / "out"}"\n')
    (folder / "even.toml").write_text(EVEN.format())
    slow = 5.0 * steps * 10
    (folder / "uneven.toml").write_text(UNEVEN.format(values=", ".join([f"{slow:g}"] + [f"{5.0 * steps:g}"] * 15)))
    python = [sys.executable, "-m", "solver", "study"]
    runs = {"one_after_another": (1, ["even.toml"]), "side_by_side": (ranks, ["even.toml"]),
            "uneven_dynamic": (ranks, ["uneven.toml"]),
            "uneven_static": (ranks, ["uneven.toml", "--schedule", "static"])}
    times: dict[str, list[float]] = {name: [] for name in runs}
    inside: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):  # alternated, so that a slow spell of the machine hits all alike
        for name, (n_ranks, args) in runs.items():
            cmd = mpirun_command(n_ranks) + python + args + ["--quiet", "--overwrite"]
            times[name].append(timed(cmd, mpirun_environment(n_ranks), folder))
            stem = args[0].removesuffix(".toml")
            with h5py.File(folder / "out" / stem / f"{stem}.study.h5", "r") as f:
                inside[name].append(float(f.attrs["wall_time"]))  # the study's own time, start-up excluded
    r = {name: spread(values) for name, values in times.items()}
    r["study_time"] = {name: spread(values) for name, values in inside.items()}
    seq, par = times["one_after_another"], times["side_by_side"]
    dyn, sta = inside["uneven_dynamic"], inside["uneven_static"]
    r["speedup"] = spread([a / b for a, b in zip(seq, par)])
    r["speedup_study"] = spread([a / b for a, b in zip(inside["one_after_another"], inside["side_by_side"])])
    r["dynamic_gain"] = spread([s / d for s, d in zip(sta, dyn)])
    r |= {"ranks": ranks, "samples": 32, "mesh": n, "steps": steps}
    return r


def table(r: dict) -> str:
    def row(label, s, unit="s"):
        return f"{label:<52} {s['median']:8.2f} {unit}  [{s['min']:.2f}..{s['max']:.2f}]"
    st = r["study_time"]
    return "\n".join([
        f"studies on {r['ranks']} ranks, {r['samples']} samples of {(r['mesh'] + 1) ** 2} DOFs and {r['steps']} steps "
        f"(medians [ranges] of {len(r['speedup']['runs'])} alternated runs)",
        "whole process (mpirun and start-up included):",
        row("  32 samples one after another (1 rank)", r["one_after_another"]),
        row(f"  32 samples side by side ({r['ranks']} groups of 1)", r["side_by_side"]),
        row("  speed-up", r["speedup"], "x"),
        "the study itself (its wall_time: samples, statistics, study file):",
        row("  32 samples one after another (1 rank)", st["one_after_another"]),
        row(f"  32 samples side by side ({r['ranks']} groups of 1)", st["side_by_side"]),
        row("  speed-up (target >= 1.8x on 2 ranks)", r["speedup_study"], "x"),
        row("  16 uneven samples (one 10x), dynamic queue", st["uneven_dynamic"]),
        row("  16 uneven samples (one 10x), static round-robin", st["uneven_static"]),
        row("  static / dynamic", r["dynamic_gain"], "x"),
    ])


def throughput_command(args) -> int:
    """``bench --study`` (the arguments: :func:`solver.bench.arguments.bench_arguments`)."""
    if mpirun_command(1) is None:
        print("error: bench --study needs mpirun on the PATH", file=sys.stderr)
        return 2
    scratch = scratch_beside(args.json, "bench-study-")  # (a --json that cannot be written: refused before measuring)
    try:
        r = measure(args.ranks, args.repeat, args.n, args.steps, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(table(r))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(r, indent=2))
    return 0
