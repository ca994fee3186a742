"""Strong- and weak-scaling studies of a case on a SLURM cluster.

    python jobs/scaling.py submit inputs/plate.toml --ranks 1 2 4 8 --kind strong weak --out scaling/plate
    python jobs/scaling.py collect scaling/plate        # once the jobs are done: CSV + PNG
    python jobs/scaling.py submit ... --wait            # or submit, wait and collect in one go
    python jobs/scaling.py submit inputs/reference.toml --nodes 1 2 4 8 --ntasks-per-node 64 --kind strong

``submit`` sends one ``jobs/scaling.slurm`` job per rank count and kind; they run one after
another (``--dependency=singleton``), never side by side. With ``--nodes`` the series sweeps whole
nodes instead (``--nodes=N --ntasks-per-node=K``: N x K ranks, placed node by node):

* strong: the case as it is, on each rank count;
* weak: the mesh grows with the ranks (``mesh.nx`` and ``mesh.lengths[0]`` times N / N_min,
  so the cells keep their shape and each rank keeps the same number of cells).

``collect`` reads the wall times that every results file records (``wall_time_total``, and
its parts) and writes ``scaling.csv`` and ``scaling.png``: speed-up and parallel efficiency
against ranks, relative to the smallest rank count of each series (strong: S = T_min / T_N *
N_min and E = S / N; weak: E = T_min / T_N, and the scaled speed-up N * E).
Run it with the project's Python (``.venv/bin/python``), from the project directory.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
FIELDS = ["kind", "ranks", "dofs", "cells", "steps", "wall_total", "wall_solve", "wall_assembly", "wall_output",
          "time_per_step", "speedup", "efficiency", "job"]


def fail(message: str) -> None:
    """A bad argument or a failed submission: one line and exit status 2, as the solver's."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def weak_overrides(case_file: Path, factor: int, sets: list[str]) -> list[str]:
    """``--set`` options that make a structured mesh ``factor`` times longer along x (the case's
    mesh as modified by ``sets``)."""
    with open(case_file, "rb") as f:
        mesh = tomllib.load(f).get("mesh", {})
    for item in sets:
        key, _, value = item.partition("=")
        if key.startswith("mesh."):
            try:
                mesh[key[5:]] = tomllib.loads(f"v = {value}")["v"]
            except tomllib.TOMLDecodeError:  # a bare word, as the solver's --set takes it
                mesh[key[5:]] = value
    if "file" in mesh:
        fail(f"{case_file}: weak scaling needs a structured mesh (mesh.nx), not mesh.file")
    nx = int(mesh.get("nx", 16))
    # the x length grows with nx, so that the cells keep their shape (the solver's default: a unit
    # square, or cube for mesh.type = "box")
    lengths = mesh.get("lengths") or [1.0] * (3 if mesh.get("type") == "box" else 2)
    longer = ", ".join(repr(float(v) * (factor if i == 0 else 1)) for i, v in enumerate(lengths))
    return [f"mesh.nx={nx * factor}", f"mesh.lengths=[{longer}]"]


def submit(args) -> list[dict]:
    out = Path(args.out).resolve()
    case = Path(args.case)
    placement = {n * args.ntasks_per_node: [f"--nodes={n}", f"--ntasks-per-node={args.ntasks_per_node}"]
                 for n in args.nodes} if args.nodes else {n: [f"--ntasks={n}"] for n in args.ranks}
    ranks = sorted(placement)
    base = min(ranks)
    if "weak" in args.kind and any(n % base for n in ranks):  # before any job is submitted
        fail(f"--ranks: weak scaling needs multiples of the smallest count {base}, got "
                 f"{' '.join(str(n) for n in ranks if n % base)}")
    out.mkdir(parents=True, exist_ok=True)
    series = f"scaling-{out.name}-{os.getpid()}"
    jobs = []
    for kind in args.kind:
        for n in ranks:
            point = out / f"{kind}-n{n}"
            sets = list(args.set) + (weak_overrides(case, n // base, args.set) if kind == "weak" and n > base else [])
            solver_args = [str(case), "--overwrite", "--set", f"output.directory={point}"]
            for s in sets:
                solver_args += ["--set", s]
            # one name for the whole series + singleton: its jobs run one after the other, never
            # side by side, so that they do not disturb each other's timings
            cmd = ["sbatch", "--parsable", *placement[n], f"--job-name={series}", "--dependency=singleton",
                   f"--output={out}/{kind}-n{n}.out", *args.sbatch, str(HERE / "scaling.slurm"), *solver_args]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                fail(f"sbatch failed for {kind} n={n}: {proc.stderr.strip()}")
            job = int(proc.stdout.strip().split(";")[0])
            print(f"submitted {kind:6s} {n:4d} ranks: job {job}")
            jobs.append({"kind": kind, "ranks": n, "job": job, "directory": str(point)})
    (out / "jobs.json").write_text(json.dumps({"case": str(case), "jobs": jobs}, indent=1))
    return jobs


def job_state(job: int) -> str:
    text = subprocess.run(["scontrol", "show", "job", "-o", str(job)], capture_output=True, text=True).stdout
    m = re.search(r"JobState=(\S+)", text)
    if m:
        return m.group(1)
    text = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "State", "-j", str(job)], capture_output=True,
                          text=True).stdout.split()  # already purged from the controller
    return text[0] if text else "UNKNOWN"


def wait(jobs: list[dict], timeout: float, poll: float = 2.0) -> None:
    """Poll the jobs' states (``sbatch --wait`` notices completion late)."""
    deadline = time.monotonic() + timeout
    pending = {j["job"] for j in jobs}
    while pending and time.monotonic() < deadline:
        for job in list(pending):
            state = job_state(job)
            if state in FINAL or state == "UNKNOWN":
                pending.discard(job)
                print(f"job {job}: {state}")
        if pending:
            time.sleep(poll)
    if pending:
        fail(f"jobs {sorted(pending)} still running after {timeout:.0f} s; collect later")


def read_point(entry: dict) -> dict | None:
    import h5py

    files = [f for f in sorted(Path(entry["directory"]).glob("*/*.h5")) if f.stem == f.parent.name]  # <name>/<name>.h5
    if not files:
        return None
    with h5py.File(files[0], "r") as f:
        a = f.attrs
        if "wall_time_total" not in a:
            return None
        steps = int(a.get("steps", 0))
        return {"kind": entry["kind"], "ranks": entry["ranks"], "job": entry["job"],
                "dofs": int(f["mesh/geometry"].shape[0]), "cells": int(f["mesh/topology"].shape[0]),
                "steps": steps, "wall_total": float(a["wall_time_total"]),
                "wall_solve": float(a.get("wall_time_solve", 0.0)),
                "wall_assembly": float(a.get("wall_time_assembly", 0.0)),
                "wall_output": float(a.get("wall_time_output", 0.0)),
                "time_per_step": float(a.get("wall_time_solve", 0.0)) / max(steps, 1)}


def collect(directory: Path) -> tuple[Path, Path]:
    directory = Path(directory)
    try:
        meta = json.loads((directory / "jobs.json").read_text())
    except (OSError, ValueError) as exc:
        fail(f"{directory / 'jobs.json'}: cannot read the series' job list ({getattr(exc, 'strerror', None) or exc}); "
                 f"give the --out folder of a submitted series")
    rows, missing = [], []
    for entry in meta["jobs"]:
        row = read_point(entry)
        (rows if row else missing).append(row or entry)
    if missing:
        print("no timings for: " + ", ".join(f"{m['kind']} n={m['ranks']} (job {m['job']}, see "
                                             f"{directory}/{m['kind']}-n{m['ranks']}.out)" for m in missing),
              file=sys.stderr)
    if not rows:
        fail(f"{directory}: no finished runs to collect yet")
    for kind in {r["kind"] for r in rows}:
        series = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["ranks"])
        n0, t0 = series[0]["ranks"], series[0]["wall_total"]
        for r in series:
            if kind == "strong":
                r["speedup"] = t0 / r["wall_total"] * n0
                r["efficiency"] = r["speedup"] / r["ranks"]
            else:
                r["efficiency"] = t0 / r["wall_total"]
                r["speedup"] = r["efficiency"] * r["ranks"]  # scaled speed-up, S(N0) = N0 as for strong
    rows.sort(key=lambda r: (r["kind"], r["ranks"]))
    csv_path = directory / "scaling.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    png_path = directory / "scaling.png"
    plot(rows, png_path, meta["case"])
    for r in rows:
        print(f"{r['kind']:6s} {r['ranks']:4d} ranks  {r['dofs']:10d} DOFs  total {r['wall_total']:9.3f} s  "
              f"speed-up {r['speedup']:6.2f}  efficiency {100 * r['efficiency']:5.1f}%")
    print(f"wrote {csv_path} and {png_path}")
    return csv_path, png_path


def plot(rows: list[dict], path: Path, case: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_s, ax_e) = plt.subplots(1, 2, figsize=(10, 4))
    ranks_all = sorted({r["ranks"] for r in rows})
    for kind, marker in (("strong", "o"), ("weak", "s")):
        series = [r for r in rows if r["kind"] == kind]
        if not series:
            continue
        n = [r["ranks"] for r in series]
        label = "strong (fixed size)" if kind == "strong" else "weak (size per rank fixed, scaled speed-up)"
        ax_s.plot(n, [r["speedup"] for r in series], marker=marker, label=label)
        ax_e.plot(n, [100 * r["efficiency"] for r in series], marker=marker, label=kind)
    if ranks_all:  # S(N) = N: speed-ups are scaled so that the smallest count N0 has S = N0
        ax_s.plot(ranks_all, ranks_all, "k--", lw=0.8, label="ideal")
    ax_e.axhline(100, color="k", ls="--", lw=0.8)
    for ax in (ax_s, ax_e):
        ax.set_xlabel("MPI ranks")
        ax.set_xticks(ranks_all)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_s.set_ylabel("speed-up")
    ax_e.set_ylabel("parallel efficiency (%)")
    ax_e.set_ylim(0, 110)
    fig.suptitle(f"scaling of {case} (whole run, wall time)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("submit", help="submit a scaling series (one job per rank count and kind)")
    s.add_argument("case", help="case file (TOML)")
    s.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4], help="rank counts (default: 1 2 4)")
    s.add_argument("--nodes", type=int, nargs="+", help="node counts instead of --ranks (with --ntasks-per-node)")
    s.add_argument("--ntasks-per-node", type=int, default=1, help="ranks per node with --nodes (default 1)")
    s.add_argument("--kind", nargs="+", choices=["strong", "weak"], default=["strong", "weak"])
    s.add_argument("--out", default="scaling", help="directory for the results, logs, CSV and plot")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="case override for every job")
    s.add_argument("--sbatch", action="append", default=[], metavar="OPTION",
                   help="extra sbatch option for every job, e.g. --sbatch=--time=10 --sbatch=--exclusive")
    s.add_argument("--wait", action="store_true", help="wait for the jobs, then collect")
    s.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait with --wait")
    c = sub.add_parser("collect", help="gather the timings of a submitted series into CSV + PNG")
    c.add_argument("directory")
    args = parser.parse_args(argv)
    if args.command == "collect":
        collect(Path(args.directory))
        return 0
    if "SLURM_CONF" not in os.environ and subprocess.run(["which", "sbatch"], capture_output=True).returncode:
        fail("sbatch not found: run this on a SLURM login node")
    jobs = submit(args)
    if args.wait:
        wait(jobs, args.timeout)
        collect(Path(args.out))
    else:
        print(f"when the jobs are done: python jobs/scaling.py collect {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
