"""``python -m solver bench --solvers``: the linear solver on the reference problem, side by side
with DOLFINx/PETSc, and how its iterations grow with ranks and mesh size.

It launches whole processes, as a user does, and times them from outside (``mpirun`` included):

* the reference problem (``inputs/reference.toml``, or ``inputs/reference3d.toml`` with ``--dim 3``)
  at ``--n`` cells per side on each of ``--ranks``, ours and, when DOLFINx is installed for
  ``/usr/bin/python3``, the peer script ``dolfinx_heat.py`` with CG + hypre BoomerAMG and a warm
  start, alternated ``--repeat`` times; medians, ranges and the ratio ours / DOLFINx of the whole
  process, of the solve time per step and of the set-up; iterations per step; peak memory per
  DOF; the relative L2 error of both at t_end (the same discrete problem gives the same digits);
* iterations per step against the number of ranks (``--iteration-ranks``, oversubscribed beyond
  the cores: only counts are read) and against the mesh size (``--iteration-sizes``);
* what the preconditioner reports of itself (levels, complexities, set-up time, messages and
  bytes per V-cycle and level) from the results file.

Figures go to a table and to ``--json`` (default ``outputs/bench/solvers.json``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import h5py
import numpy as np

from solver.bench.cases import REFERENCE, ROOT, scratch_beside
from solver.bench.memory import reset_peak
from solver.bench.peers import PEER_PYTHON, PEER_SCRIPT, dolfinx_available
from solver.errors import ProcessFailed
from solver.parallel.launcher import mpirun_command, mpirun_environment

BLOCK3D = ROOT / "inputs" / "block3d.toml"
HEATSINK = ROOT / "inputs" / "heatsink_radiation.toml"
ERRORS_AT = {2: "exp(-2*pi**2*t)*sin(pi*x)*sin(pi*y)", 3: "exp(-3*pi**2*t)*sin(pi*x)*sin(pi*y)*sin(pi*z)"}


def timed(cmd: list[str], env: dict, cwd: Path, timeout: float) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, peak RSS of its largest process in MB, the finished process) of a whole
    command: ``wait4`` reports the rusage of the launcher and of the ranks it waited for.

    Linux counts in a launched process's peak the peak of the process that launched it (the
    memory it had when the child called exec), so this process's peak restarts from its current
    RSS first: else a bench that has read a large results file (the L2 error of a 3D run) would
    report its own peak for every smaller run after it."""
    reset_peak()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err, text=True)
        expired = threading.Event()

        def stop() -> None:
            expired.set()
            child.kill()
        timer = threading.Timer(timeout, stop)
        timer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:  # a stop signal or Ctrl-C: the command it waits for ends with it
            child.kill()
            child.wait()
            raise
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        said = (f"error: stopped after its --timeout of {timeout:g} s\n" if expired.is_set() else "") + err.read()
        proc = subprocess.CompletedProcess(cmd, child.returncode, out.read(), said)
    return seconds, usage.ru_maxrss / 1024.0, proc


def _sets(n: int, dim: int) -> list[str]:
    sizes = ["mesh.nx", "mesh.ny"] + (["mesh.nz"] if dim == 3 else [])
    return [arg for key in sizes for arg in ("--set", f"{key}={n}")]


def run_case(ranks: int, case: Path, sets: list[str], name: str, directory: Path, timeout: float,
             exact: str | None = None) -> dict:
    """One whole run of a case under ``mpirun``; figures from its results file."""
    cmd = mpirun_command(ranks) + [sys.executable, "-m", "solver", str(case), *sets,
                                   "--set", f"output.directory={directory}", "--set", f"output.name={name}",
                                   "--overwrite", "--quiet"]
    seconds, peak_mb, proc = timed(cmd, mpirun_environment(ranks), ROOT, timeout)
    if proc.returncode != 0:
        raise ProcessFailed(f"bench: the run of {case.name} ({' '.join(sets)})", proc.returncode, proc.stderr)
    path = directory / name / f"{name}.h5"
    with h5py.File(path, "r") as f:
        a = dict(f.attrs)
        steps = max(int(a["steps"]), 1)
        out = {"whole_s": seconds, "peak_rss_MB": peak_mb, "steps": steps,
               "iterations_per_step": int(a["linear_iterations"]) / steps,
               "solve_per_step_s": float(a["wall_time_solve"]) / steps,
               "setup_s": float(a["wall_time_mesh"]) + float(a["wall_time_assembly"]),
               "assembly_s": float(a["wall_time_assembly"]),
               "solver_total_s": float(a.get("wall_time_total", np.nan)),  # the run's own clock, no start-up
               "nonlinear_iterations": int(a.get("nonlinear_iterations", 0)),
               "preconditioner": str(a.get("preconditioner", "")),
               "preconditioner_stats": json.loads(a["preconditioner_stats"]) if "preconditioner_stats" in a else {},
               "dofs": int(a["n_nodes"])}
    if exact is not None:
        out["rel_l2_error"] = relative_l2_error(path, exact)
    shutil.rmtree(directory / name, ignore_errors=True)
    return out


def run_ours(ranks: int, n: int, dim: int, directory: Path, extra: list[str], timeout: float) -> dict:
    """One whole run of the reference problem at N cells per side."""
    return run_case(ranks, REFERENCE[dim], [*_sets(n, dim), *extra], f"ref{dim}d_n{n}_np{ranks}", directory, timeout,
                    exact=ERRORS_AT[dim])


def run_peer(ranks: int, n: int, dim: int, script: Path, directory: Path, timeout: float,
             flags: tuple[str, ...] = ()) -> dict:
    """One whole run of DOLFINx's CG + BoomerAMG on the same problem (its JSON, and our clock);
    ``flags``: more options of the peer script (``--degree 2``, ``--theta 0.5``)."""
    cmd = [*mpirun_command(ranks), PEER_PYTHON, str(script), str(n), "20", "1e-3", "1", "--pc", "hypre", "--warm",
           "--dim", str(dim), "--outdir", str(directory / "peer"), *flags]
    env = {**mpirun_environment(ranks), "PEERS_DIR": str(directory / "peers_cache"), "OMP_NUM_THREADS": "1"}
    seconds, peak_mb, proc = timed(cmd, env, directory, timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise ProcessFailed(f"bench: DOLFINx's run ({' '.join(cmd)})", proc.returncode or 1, proc.stderr)
    r = json.loads(lines[-1])
    return {"whole_s": seconds, "peak_rss_MB": peak_mb, "iterations_per_step": r["iterations_per_step"],
            "solve_per_step_s": r["t_solve_per_step"],
            "setup_s": r["t_mesh"] + r.get("t_setup", 0.0) + r["t_assemble_matrix"] + r["t_solver_setup"],
            "rel_l2_error": r["rel_l2_error"], "dofs": r["ndofs"]}


def relative_l2_error(path: Path, exact: str, chunk: int = 1 << 16, degree: int = 8) -> float:
    """||u_h - u|| / ||u|| at the last snapshot, the exact solution at degree-8 quadrature points."""
    from solver.case.expressions import Expression
    from solver.fem.geometry import CellGeometry

    u = Expression(exact)
    with h5py.File(path, "r") as f:
        points, cells = f["mesh/geometry"][()], f["mesh/topology"][()]
        cell_type = str(f["mesh/topology"].attrs["cell_type"])
        t = float(f["time"][-1])
        values = f["fields/temperature"][sorted(f["fields/temperature"])[-1]][()]
    err = norm = 0.0
    for start in range(0, len(cells), chunk):
        block = cells[start:start + chunk]
        g = CellGeometry(cell_type, points, block, degree, gradients=False)
        exact_q = u(g.points, t)
        err += float(np.sum((values[block] @ g.N.T - exact_q) ** 2 * g.wdet))
        norm += float(np.sum(exact_q ** 2 * g.wdet))
    return float(np.sqrt(err / norm))


def iterations(ranks: int, n: int, dim: int, directory: Path, extra: list[str], timeout: float) -> float:
    """Iterations per step of a short run (2 steps)."""
    r = run_ours(ranks, n, dim, directory, ["--set", "time.t_end=0.002", *extra], timeout)
    return r["iterations_per_step"]


def _break_even(extra_setup: float, saved_per_solve: float) -> float:
    """Solves with one matrix beyond which the LU wins: 0 when it wins from the first, inf when never."""
    if saved_per_solve <= 0:
        return 0.0 if extra_setup <= 0 and saved_per_solve == 0 else math.inf
    return max(extra_setup / saved_per_solve, 0.0)


def crossover(sizes: list[int], steps: int, directory: Path, extra: list[str], timeout: float, say) -> dict:
    """The exact LU (``bjacobi``) against AMG on one rank in 2D at each N of ``sizes``: measured
    set-up and solve per step, the number of solves with one matrix beyond which the LU wins, and
    what the cost model of ``auto`` (:mod:`solver.la.choice`) predicts and picks."""
    from solver.la import choice

    t_end = ["--set", f"time.t_end={steps * 1e-3:.6g}"]
    out = {}
    for n in sizes:
        runs = {pc: run_ours(1, n, 2, directory, ["--set", f"solver.preconditioner={pc}", *t_end, *extra], timeout)
                for pc in ("bjacobi", "amg")}
        lu, amg = runs["bjacobi"], runs["amg"]
        dofs = lu["dofs"]
        extra_setup = lu["assembly_s"] - amg["assembly_s"]  # what the factorisation costs beyond AMG's set-up
        saved = amg["solve_per_step_s"] - lu["solve_per_step_s"]  # what each solve saves with the LU
        measured = _break_even(extra_setup, saved)
        model_saved = choice.amg_seconds(dofs, 1) - choice.amg_seconds(dofs, 0) - (
            choice.lu_seconds(dofs, 1) - choice.lu_seconds(dofs, 0))
        model_extra = choice.lu_seconds(dofs, 0) - choice.amg_seconds(dofs, 0)
        predicted = _break_even(model_extra, model_saved)
        winner = "bjacobi" if (lu["assembly_s"] + steps * lu["solve_per_step_s"]
                               < amg["assembly_s"] + steps * amg["solve_per_step_s"]) else "amg"
        picked = choice.choose_preconditioner(2, dofs, 1, steps).name
        out[str(dofs)] = {"n": n, "steps": steps,
                          "lu": {k: lu[k] for k in ("assembly_s", "solve_per_step_s", "iterations_per_step")},
                          "amg": {k: amg[k] for k in ("assembly_s", "solve_per_step_s", "iterations_per_step")},
                          "break_even_solves": measured, "model_break_even_solves": predicted,
                          "faster": winner, "auto_picks": picked}
        say(f"  crossover N = {n} ({dofs:,} DOFs): LU set-up +{extra_setup:.2f} s, "
            f"{saved * 1e3:+.1f} ms per solve; LU pays after {measured:.3g} solves (model {predicted:.3g}); "
            f"{steps} steps: {winner} faster, auto picks {picked}")
    return out


def block3d(sizes: list[int], ranks: list[int], steps: int, directory: Path, extra: list[str], timeout: float,
            say) -> dict:
    """``inputs/block3d.toml`` (hexahedra, BDF2, Robin faces, a source) at each size on each of
    ``ranks`` with the default solver: whole process, peak memory, iterations per step."""
    out = {}
    for n in sizes:
        for p in ranks:
            sets = [*_sets(n, 3), "--set", f"time.t_end={2.0 * steps:g}", "--set", f"output.every={steps}",
                    "--set", "solver.preconditioner=auto", *extra]
            r = run_case(p, BLOCK3D, sets, f"block3d_n{n}_np{p}", directory, timeout)
            out[f"{n}^3 on {p}"] = {"n": n, "ranks": p, **{k: r[k] for k in (
                "whole_s", "peak_rss_MB", "steps", "iterations_per_step", "solve_per_step_s", "setup_s",
                "preconditioner", "dofs")}}
            say(f"  block3d {n}^3 on {p} rank(s): {r['whole_s']:.1f} s, peak {r['peak_rss_MB']:.0f} MB per process, "
                f"{r['iterations_per_step']:.1f} iterations per step ({r['preconditioner']})")
    return out


def nonlinear_cost(ranks: list[int], steps: int, directory: Path, timeout: float, say) -> dict:
    """One Newton iteration against one linear step on the same mesh: ``inputs/heatsink_radiation.toml``
    stepped in time (backward Euler) as it is (k(T) from a table, convection and radiation: Newton,
    GMRES) and made linear (constant k, convection only: one CG solve per step with the
    preconditioner built once). Solve time per Newton iteration / solve time per linear step; the
    multigrid's first set-up is left out of the Newton side, as the linear run does it before its
    time loop (its updates, if any, stay in)."""
    import tomllib

    import tomli_w

    case = tomllib.loads(HEATSINK.read_text())
    case["time"] = {"scheme": "backward-euler", "dt": 5.0, "t_end": 5.0 * steps}
    case["initial"] = {"temperature": 60.0}
    linear = json.loads(json.dumps(case))
    linear["material"]["k"] = 167.0
    fins = linear["boundary"]["fins"]
    linear["boundary"]["fins"] = {"type": "robin", "h": fins["h"], "T_inf": fins["T_inf"]}
    out = {}
    for p in ranks:
        figures = {}
        for name, values in (("nonlinear", case), ("linear", linear)):
            path = directory / f"heatsink_{name}.toml"
            path.write_text(tomli_w.dumps(values))
            figures[name] = run_case(p, path, ["--set", "solver.preconditioner=amg", "--set", f"output.every={steps}"],
                                     f"heatsink_{name}_np{p}", directory, timeout)
        nl, lin = figures["nonlinear"], figures["linear"]
        first_setup = nl["preconditioner_stats"].get("setup_time") or 0.0
        per_iteration = (nl["solve_per_step_s"] * nl["steps"] - first_setup) / max(nl["nonlinear_iterations"], 1)
        out[str(p)] = {"dofs": nl["dofs"], "steps": steps, "newton_per_step": nl["nonlinear_iterations"] / steps,
                       "seconds_per_newton_iteration": per_iteration,
                       "seconds_per_linear_step": lin["solve_per_step_s"],
                       "ratio": per_iteration / lin["solve_per_step_s"],
                       "iterations_per_newton_iteration": nl["iterations_per_step"] * steps
                       / max(nl["nonlinear_iterations"], 1),
                       "iterations_per_linear_step": lin["iterations_per_step"]}
        say(f"  heat sink on {p} rank(s): Newton iteration {per_iteration * 1e3:.1f} ms, linear step "
            f"{lin['solve_per_step_s'] * 1e3:.1f} ms, ratio {out[str(p)]['ratio']:.2f}")
    return out


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def compare(args, directory: Path, peer: bool, say) -> dict:
    """Our runs (and DOLFINx's) at every rank count, in rounds: each round runs every rank count
    once, ours then theirs, so that the machine's drift hits all of them alike; the speed-ups
    are taken within each round."""
    runs = {ranks: ([], []) for ranks in args.ranks}
    for _ in range(args.repeat):
        for ranks in args.ranks:
            ours, theirs = runs[ranks]
            ours.append(run_ours(ranks, args.n, args.dim, directory, args.set, args.timeout))
            if peer:
                theirs.append(run_peer(ranks, args.n, args.dim, args.peer_script, directory, args.timeout,
                                       args.peer_flags))
            say(f"  {ranks} rank(s): ours {ours[-1]['whole_s']:.1f} s" +
                (f", DOLFINx {theirs[-1]['whole_s']:.1f} s" if theirs else ""))
    out = {}
    first = runs[args.ranks[0]][0]
    for ranks, (ours, theirs) in runs.items():
        entry = {"ours": ours}
        figures = ("whole_s", "solve_per_step_s", "setup_s", "iterations_per_step")
        entry["ours_summary"] = {k: _summary([r[k] for r in ours]) for k in figures}
        if ranks != args.ranks[0]:  # the time loop's speed-up over the first rank count, round by round
            entry["speedup_solve_per_step"] = _summary([a["solve_per_step_s"] / b["solve_per_step_s"]
                                                        for a, b in zip(first, ours)])
            # and between the best runs: a shared machine only ever adds time, so the fastest run
            # of each rank count is the closest to the undisturbed one (as the machine figures keep)
            entry["speedup_best_runs"] = min(a["solve_per_step_s"] for a in first) / \
                min(b["solve_per_step_s"] for b in ours)
        if theirs:
            entry["dolfinx"] = theirs
            entry["dolfinx_summary"] = {k: _summary([r[k] for r in theirs]) for k in figures}
            entry["ratios"] = {k: _summary([a[k] / b[k] for a, b in zip(ours, theirs)])
                               for k in ("whole_s", "solve_per_step_s", "setup_s")}
        out[str(ranks)] = entry
    return out


def table(r: dict) -> str:
    lines = []
    if r.get("reference"):
        scheme = "Crank-Nicolson" if r.get("theta") == 0.5 else "backward Euler"
        lines += [f"solver comparison: reference problem {r['dim']}D, N = {r['n']}, P{r.get('degree', 1)}, {scheme} "
                  f"({r['dofs']:,} DOFs), "
                  f"{r['repeat']} runs each, median [min..max]", ""]
    fmt = "{:.3g} [{:.3g}..{:.3g}]"

    def cell(s):
        return fmt.format(s["median"], s["min"], s["max"])
    for ranks, e in r.get("reference", {}).items():
        o = e["ours_summary"]
        lines.append(f"{ranks} rank(s), ours ({e['ours'][0]['preconditioner']}):")
        for key, label in (("whole_s", "whole process (s)"), ("solve_per_step_s", "solve per step (s)"),
                           ("setup_s", "set-up: mesh + assembly + preconditioner (s)"),
                           ("iterations_per_step", "CG iterations per step")):
            line = f"  {label:46s} {cell(o[key]):>28s}"
            if "dolfinx_summary" in e:
                line += f"   DOLFINx {cell(e['dolfinx_summary'][key]):>28s}"
                if key in e["ratios"]:
                    line += f"   ratio {cell(e['ratios'][key])}"
            lines.append(line)
        if "speedup_solve_per_step" in e:
            lines.append(f"  {'speed-up of the time loop (round by round)':46s} "
                         f"{cell(e['speedup_solve_per_step']):>28s}   target >= 1.7")
            lines.append(f"  {'speed-up of the time loop (best runs)':46s} {e['speedup_best_runs']:>28.3g}")
        mem = e["ours"][0]["peak_rss_MB"] * 2**20 * int(ranks) / e["ours"][0]["dofs"]
        lines.append(f"  {'peak memory per DOF, all ranks (bytes)':46s} {mem:>28.0f}")
        lines.append(f"  {'relative L2 error at t_end':46s} {e['ours'][0]['rel_l2_error']:>28.6e}"
                     + (f"   DOLFINx {e['dolfinx'][0]['rel_l2_error']:.6e}" if "dolfinx" in e else ""))
        stats = e["ours"][0]["preconditioner_stats"]
        if stats:
            lines.append(f"  {'levels, operator / grid complexity':46s} {stats.get('levels')}, "
                         f"{stats.get('operator_complexity', 0):.2f} / {stats.get('grid_complexity', 0):.2f}")
    if r.get("iterations_vs_ranks"):
        lines.append("")
        lines.append("iterations per step against ranks: " +
                     ", ".join(f"{k}: {v:.1f}" for k, v in r["iterations_vs_ranks"].items()))
    if r.get("iterations_vs_size"):
        lines.append("iterations per step against mesh size (DOFs): " +
                     ", ".join(f"{k}: {v:.1f}" for k, v in r["iterations_vs_size"].items()))
    if r.get("crossover"):
        lines += ["", "exact LU (bjacobi) against AMG, one rank, 2D: set-up (assembly + preconditioner) and solve per step",
                  f"  {'DOFs':>10s} {'LU set-up':>10s} {'LU step':>9s} {'AMG set-up':>11s} {'AMG step':>9s} "
                  f"{'LU pays after (solves)':>23s} {'model':>8s} {'20 steps: faster':>17s} {'auto':>8s}"]
        for dofs, c in r["crossover"].items():
            lines.append(f"  {int(dofs):>10,d} {c['lu']['assembly_s']:>10.2f} {c['lu']['solve_per_step_s']:>9.3f} "
                         f"{c['amg']['assembly_s']:>11.2f} {c['amg']['solve_per_step_s']:>9.3f} "
                         f"{c['break_even_solves']:>23.3g} {c['model_break_even_solves']:>8.3g} "
                         f"{c['faster']:>17s} {c['auto_picks']:>8s}")
    if r.get("nonlinear"):
        lines += ["", "radiating heat sink (inputs/heatsink_radiation.toml, backward Euler): one Newton iteration "
                  "against one linear step of the same mesh"]
        for ranks, c in r["nonlinear"].items():
            lines.append(f"  {ranks} rank(s), {c['dofs']:,} DOFs: {c['newton_per_step']:.1f} Newton iterations per step; "
                         f"{c['seconds_per_newton_iteration'] * 1e3:.1f} ms per iteration "
                         f"({c['iterations_per_newton_iteration']:.1f} GMRES iterations) against "
                         f"{c['seconds_per_linear_step'] * 1e3:.1f} ms per linear step "
                         f"({c['iterations_per_linear_step']:.1f} CG iterations): ratio {c['ratio']:.2f}")
    if r.get("block3d"):
        lines += ["", "inputs/block3d.toml (hexahedra, BDF2), default solver:"]
        for key, b in r["block3d"].items():
            lines.append(f"  {key} rank(s) ({b['dofs']:,} DOFs, {b['steps']} steps): {b['whole_s']:.1f} s whole, "
                         f"{b['solve_per_step_s']:.3f} s per step, {b['iterations_per_step']:.1f} iterations per step, "
                         f"peak {b['peak_rss_MB']:.0f} MB per process ({b['preconditioner']})")
    return "\n".join(lines)


def solvers_command(args) -> int:
    """``bench --solvers`` (the arguments: :func:`solver.bench.arguments.bench_arguments`)."""
    args.n = args.n or (1024 if args.dim == 2 else 100)
    args.peer_script = args.peer_script or PEER_SCRIPT
    args.set = [a for s in args.set for a in ("--set", s)]
    args.peer_flags = ("--degree", str(args.degree), "--theta", str(args.theta))
    args.set += ["--set", f"element.degree={args.degree}"] + \
        (["--set", "time.scheme=crank-nicolson"] if args.theta == 0.5 else [])
    from solver.case.load import load_case  # the overrides checked here, once: not in every run's traceback

    reference = REFERENCE[args.dim]
    load_case(reference.read_text(), str(reference), [f"mesh.nx={args.n}", f"mesh.ny={args.n}", *args.set[1::2]])
    if mpirun_command(1) is None:
        print("bench --solvers: mpirun not found", file=sys.stderr)
        return 2
    peer = not args.no_peer and dolfinx_available(args.peer_script)

    def say(text):
        print(text, file=sys.stderr, flush=True)

    why = "--no-peer" if args.no_peer else f"needs {PEER_PYTHON} with dolfinx and {args.peer_script}"
    scheme = "Crank-Nicolson" if args.theta == 0.5 else "backward Euler"
    say(f"bench --solvers: reference {args.dim}D N = {args.n}, P{args.degree}, {scheme}, on {args.ranks} ranks; "
        "DOLFINx "
        + ("found" if peer else f"not used ({why})"))
    directory = scratch_beside(args.json, "bench-solvers-")
    try:
        r = {"dim": args.dim, "n": args.n, "degree": args.degree, "theta": args.theta, "repeat": args.repeat,
             "peer": peer, "cores": os.cpu_count()}
        if not args.no_reference:
            r["reference"] = compare(args, directory, peer, say)
            r["dofs"] = next(iter(r["reference"].values()))["ours"][0]["dofs"]
        r["iterations_vs_ranks"] = {str(p): iterations(p, args.n, args.dim, directory, args.set, args.timeout)
                                    for p in args.iteration_ranks}
        r["iterations_vs_size"] = {}
        for n in args.iteration_sizes:
            dofs = (args.degree * n + 1) ** args.dim
            r["iterations_vs_size"][str(dofs)] = iterations(max(args.ranks), n, args.dim, directory, args.set,
                                                            args.timeout)
        if args.crossover:
            r["crossover"] = crossover(args.crossover, 20, directory, args.set, args.timeout, say)
        if args.nonlinear:
            r["nonlinear"] = nonlinear_cost(args.ranks, 40, directory, args.timeout, say)
        if args.block3d:
            r["block3d"] = block3d(args.block3d, args.ranks, args.block3d_steps, directory, args.set, args.timeout, say)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(table(r))
    tmp = args.json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(r, indent=1))
    tmp.replace(args.json)
    print(f"\nfigures: {args.json}")
    return 0
