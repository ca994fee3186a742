"""``python -m solver bench --model``: an alpha-beta-gamma model of a time step, checked against
measured scaling, and projected to many nodes.

A backward-Euler step of the reference problem is CG iterations, each one V-cycle of the
multigrid and a product with the matrix, and a few reductions. On P ranks the slowest rank's
time per iteration is modelled as

    T_it(P) = gamma(P) * sum_l W_l / A_l(P)                  (memory traffic, per rank)
            + sum_l X_l * (alpha(P) + S_l(P) / beta(P))      (halo exchanges of level l)
            + R * alpha(P) * ceil(log2 P)                     (R reductions, a tree each)

with, per level l of the hierarchy: W_l the bytes its products, smoother and transfers move per
V-cycle (from its rows and nonzeros, its precision and Chebyshev degree), A_l(P) the ranks that
hold it (coarse levels are agglomerated onto fewer ranks), X_l the exchanges per V-cycle and
S_l(P) the bytes a rank sends in each (the messages and bytes the multigrid's statistics count
per rank and level). gamma(P) is seconds per byte of one core when P cores of a node stream at
once: 1 / (eta x STREAM(P) / P), the node's measured bandwidth at that many cores, shared; eta,
the fraction of STREAM that the sparse products reach, is the one fitted parameter (on the 2D
problem, one rank). Caches are not modelled. alpha and beta are the latency and bandwidth of
a message: shared memory within a node, the interconnect between nodes. R = 4 (three dot products
and the V-cycle's scaling).

The profile of each level (rows, nonzeros, degree, active ranks, messages and bytes per rank) is
measured by running the case's set-up on 1-16 ranks here (oversubscribed: only counts are read);
beyond 16 ranks it is extrapolated: the messages of a level stay those of 16 ranks, the bytes
scale with the surface of a rank's part, (rows / A_l)^((d-1)/d), and a level is agglomerated onto
max(1, rows / rows_per_rank) ranks, as the multigrid does.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The 16-core machine of the scaling table (one socket, 300 MB L3), the reference problem, 20
# backward-Euler steps, the default solver: measured solve time per step (s) and iterations per step.
MEASURED = {
    "machine": "16-core Xeon, one socket, 300 MB L3 (2026-11)",
    "stream_GBs": {1: 18.5, 4: 71.0, 8: 88.0, 16: 107.0},
    2: {"dofs": 4_198_401, "n": 2048, "ranks": [1, 2, 4, 8, 16], "solve_per_step": [2.71, 1.49, 0.88, 0.57, 0.35],
        "whole": [73.7, 42.6, 26.4, 17.8, 12.3], "iterations": [10, 9, 10, 10, 10]},
    3: {"dofs": 912_673, "n": 96, "ranks": [1, 2, 4, 8, 16], "solve_per_step": [0.75, 0.47, 0.30, 0.19, 0.13],
        "whole": [27.3, 20.0, 13.1, 9.3, 7.2], "iterations": None},
}
REDUCTIONS_PER_ITERATION = 4  # p.Ap, r.z, r.r and the single-precision V-cycle's scale (counted)
STEPS = 20


@dataclass(frozen=True)
class Machine:
    """A node and the network between nodes; bandwidths in bytes per second."""

    cores: int = 16
    stream: dict = field(default_factory=lambda: dict(MEASURED["stream_GBs"]))  # GB/s by busy cores
    shm_latency: float = 0.6e-6  # seconds, a message between ranks of one node
    shm_bandwidth: float = 5e9  # bytes/s, per rank, within a node
    net_latency: float = 1.5e-6  # seconds, between nodes
    net_bandwidth: float = 12e9  # bytes/s per node, shared by its ranks

    def node_stream(self, busy: int) -> float:
        """Bytes/s of a node with ``busy`` cores streaming (interpolated in log-log between the
        measured counts)."""
        counts = sorted(self.stream)
        busy = min(max(busy, 1), self.cores)
        x = np.log([c for c in counts])
        y = np.log([self.stream[c] for c in counts])
        return float(np.exp(np.interp(np.log(busy), x, y))) * 1e9


@dataclass(frozen=True)
class LevelProfile:
    rows: int
    nnz: int
    degree: int
    active: int
    messages: int  # per V-cycle, the busiest rank
    bytes: int  # per V-cycle, the busiest rank


def level_bytes(level: LevelProfile, itemsize: int, coarsest: bool) -> float:
    """Bytes one V-cycle moves on a level (all its ranks together): the Chebyshev smoother's 2 x
    degree products (symmetric storage: upper entries with their indices, the diagonal, x and r)
    with its vector updates, and the transfers (a prolongator of about 3 entries per fine row,
    used twice); the coarsest level's direct solve reads a factor of about 10 x its nonzeros."""
    rows, upper = level.rows, (level.nnz - level.rows) / 2
    if coarsest:
        return 10.0 * level.nnz * 8
    product = upper * (itemsize + 4) + level.rows * (4 + 3 * itemsize)
    vectors = 4 * rows * itemsize
    transfer = 2 * (3 * rows * (itemsize + 4) + 2 * rows * itemsize)
    return 2 * level.degree * (product + vectors) + transfer


def krylov_bytes(fine: LevelProfile) -> float:
    """Bytes of one CG iteration outside the V-cycle: the product in double precision (symmetric
    storage) and about 16 vector passes (dots, updates, the V-cycle's conversions)."""
    upper = (fine.nnz - fine.rows) / 2
    return upper * 12 + fine.rows * (4 + 24) + 16 * fine.rows * 8


def extrapolate(profile: list[LevelProfile], ranks: int, dim: int, rows_per_rank: int = 2000) -> list[LevelProfile]:
    """A level profile at ``ranks`` from a measured one (each level's measured active ranks)."""
    out = []
    for lv in profile:
        active = max(1, min(ranks, lv.rows // rows_per_rank)) if lv.active > 1 or ranks == 1 else 1
        scale = ((lv.rows / active) / (lv.rows / lv.active)) ** ((dim - 1) / dim) if lv.active > 1 else 0.0
        messages = lv.messages if active > 1 else 0
        out.append(LevelProfile(lv.rows, lv.nnz, lv.degree, active, messages, int(lv.bytes * scale)))
    return out


def iteration_time(levels: list[LevelProfile], ranks: int, machine: Machine, eta: float, itemsize: int = 4,
                   ranks_per_node: int | None = None) -> dict:
    """Seconds of one CG iteration on ``ranks`` ranks, by part: memory traffic, halo exchanges,
    reductions."""
    per_node = min(ranks, ranks_per_node or machine.cores)
    nodes = math.ceil(ranks / per_node)
    gamma = per_node / (machine.node_stream(per_node) * eta)
    memory = gamma * krylov_bytes(levels[0]) / ranks
    exchanges = 0.0
    inter = nodes > 1
    latency = machine.net_latency if inter else machine.shm_latency
    bandwidth = min(machine.shm_bandwidth, machine.net_bandwidth / per_node) if inter else machine.shm_bandwidth
    for i, lv in enumerate(levels):
        memory += gamma * level_bytes(lv, itemsize, i == len(levels) - 1) / lv.active
        if lv.active > 1:
            exchanges += lv.messages * latency + lv.bytes / bandwidth
    fine = levels[0]
    if fine.active > 1:  # the CG product's halo exchange, in double precision
        share = 1.0 / (2 * fine.degree + 2)  # of the fine level's exchanges per V-cycle
        exchanges += fine.messages * share * latency + 2 * fine.bytes * share / bandwidth
    tree = math.ceil(math.log2(ranks)) if ranks > 1 else 0
    reductions = REDUCTIONS_PER_ITERATION * tree * latency
    return {"memory": memory, "exchanges": exchanges, "reductions": reductions,
            "total": memory + exchanges + reductions}


def agglomeration_rows(levels: list[LevelProfile], machine: Machine, eta: float, per_node: int) -> float:
    """Rows per rank below which a level's halo messages (at the interconnect's latency) cost more
    than its memory traffic: where agglomerating it onto fewer ranks must begin."""
    gamma = per_node / (machine.node_stream(per_node) * eta)
    fine = levels[0]
    per_row = level_bytes(fine, 4, False) / fine.rows
    messages = max((lv.messages for lv in levels if lv.active > 1), default=0)
    return messages * machine.net_latency / (gamma * per_row)


def levels_from_stats(stats: dict) -> list[LevelProfile]:
    """Level profiles from a results file's ``preconditioner_stats``."""
    return [LevelProfile(int(lv["rows"]), int(lv["nnz"]), int(lv["chebyshev_degree"]), int(lv["active_ranks"]),
                         int(max(lv["messages_per_rank"])), int(max(lv["bytes_per_rank"])))
            for lv in stats["per_level"]]


def measure_profiles(dim: int, ranks: list[int], directory: Path, timeout: float, say) -> dict:
    """The multigrid's profile and the iterations of one step of the reference problem of the
    scaling table, on each rank count (counts only: oversubscribed ranks are fine)."""
    from solver.bench.cases import REFERENCE
    from solver.bench.solvers import run_case

    n = MEASURED[dim]["n"]
    sizes = [a for key in ("mesh.nx", "mesh.ny", "mesh.nz")[:dim] for a in ("--set", f"{key}={n}")]
    out = {}
    for p in ranks:
        r = run_case(p, REFERENCE[dim], [*sizes, "--set", "time.t_end=0.002", "--set", "solver.preconditioner=amg"],
                     f"model{dim}d_np{p}", directory, timeout)
        out[p] = {"iterations": r["iterations_per_step"], "stats": r["preconditioner_stats"]}
        say(f"  {dim}D on {p} ranks: {len(out[p]['stats']['per_level'])} levels, "
            f"{r['iterations_per_step']:.1f} iterations per step")
    return out


def predict(profiles: dict, dim: int, machine: Machine, eta: float) -> dict:
    """Solve time per step on the measured rank counts (their own profiles and iterations)."""
    out = {}
    for p, prof in profiles.items():
        levels = levels_from_stats(prof["stats"])
        precision = 4 if prof["stats"].get("precision", "single") == "single" else 8
        t = iteration_time(levels, int(p), machine, eta, precision)
        out[int(p)] = {**{k: v * prof["iterations"] for k, v in t.items()}, "iterations": prof["iterations"]}
    return out


def fit_eta(profiles: dict, dim: int, machine: Machine) -> float:
    """eta such that the model gives the measured 1-rank solve time per step."""
    one = predict({1: profiles[1]}, dim, machine, 1.0)[1]
    return one["total"] / MEASURED[dim]["solve_per_step"][0]


def project(profile16: dict, dim: int, machine: Machine, eta: float, ranks: list[int], per_node: int,
            dofs_per_rank: float | None = None) -> dict:
    """Solve time per step beyond one node: strong scaling of the measured problem (the profile
    of 16 ranks extrapolated), or weak scaling at ``dofs_per_rank`` (levels scaled with the
    problem, one more iteration per 4x DOFs)."""
    base = levels_from_stats(profile16["stats"])
    out = {}
    for p in ranks:
        levels, its = base, profile16["iterations"]
        if dofs_per_rank is not None:
            factor = dofs_per_rank * p / base[0].rows
            levels = [LevelProfile(int(lv.rows * factor), int(lv.nnz * factor), lv.degree, 16, lv.messages,
                                   int(lv.bytes * factor ** ((dim - 1) / dim))) for lv in base]
            its = its + math.log(max(factor, 1.0), 4)
        levels = extrapolate(levels, p, dim)
        t = iteration_time(levels, p, machine, eta, ranks_per_node=per_node)
        out[p] = {k: v * its for k, v in t.items()}
    return out


def main(args) -> int:
    """Measure the profiles (or read them with --json of an earlier run), fit eta on the 2D
    1-rank point, compare with the measured table, project, and plot."""
    directory = Path(args.json).parent
    directory.mkdir(parents=True, exist_ok=True)
    path = Path(args.json)
    if path.exists() and not args.remeasure:
        profiles = {int(d): {int(p): v for p, v in prof.items()} for d, prof in json.loads(path.read_text()).items()}
    else:
        profiles = {d: measure_profiles(d, [1, 2, 4, 8, 16], directory, args.timeout, print) for d in (2, 3)}
        path.write_text(json.dumps(profiles, indent=1))
    machine = Machine()
    eta = fit_eta(profiles[2], 2, machine)
    report = {"eta": eta, "machine": machine.__dict__, "check": {}, "projection": {}}
    print(f"eta (fraction of STREAM the products reach, fitted on 2D, 1 rank): {eta:.2f}")
    for dim in (2, 3):
        pred = predict(profiles[dim], dim, machine, eta)
        meas = MEASURED[dim]
        rows = []
        for p, t in zip(meas["ranks"], meas["solve_per_step"]):
            m = pred[p]
            rows.append({"ranks": p, "measured": t, "model": m["total"], "ratio": m["total"] / t,
                         "memory": m["memory"], "exchanges": m["exchanges"], "reductions": m["reductions"]})
            print(f"  {dim}D {p:3d} ranks: measured {t:.3f} s, model {m['total']:.3f} s ({m['total'] / t:.2f}); "
                  f"memory {m['memory']:.3f}, exchanges {m['exchanges'] * 1e3:.2f} ms, "
                  f"reductions {m['reductions'] * 1e3:.2f} ms")
        report["check"][dim] = rows
    nodes = [1, 2, 4, 8, 16, 32, 64]
    ranks = [16 * n for n in nodes]
    report["projection"] = {
        "strong_2d": project(profiles[2][16], 2, machine, eta, ranks, 16),
        "weak_2d": project(profiles[2][16], 2, machine, eta, ranks, 16, dofs_per_rank=262_144),
    }
    for name, series in report["projection"].items():
        print(f"  {name}: " + ", ".join(f"{p}: {v['total'] * 1e3:.1f} ms" for p, v in series.items()))
        last = series[max(series)]
        print(f"    at {max(series)} ranks: memory {last['memory'] * 1e3:.1f} ms, exchanges "
              f"{last['exchanges'] * 1e3:.1f} ms, reductions {last['reductions'] * 1e3:.2f} ms")
    rows = agglomeration_rows(levels_from_stats(profiles[2][16]["stats"]), machine, eta, 16)
    report["agglomeration_rows"] = rows
    print(f"  a level's messages cost more than its products below {rows:.0f} rows per rank "
          f"(the multigrid agglomerates below {2000})")
    (directory / "model.json").write_text(json.dumps(report, indent=1, default=str))
    if args.plot:
        plot(report, Path(args.plot))
        print(f"plot: {args.plot}")
    return 0


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6))
    for dim, marker in ((2, "o"), (3, "s")):
        rows = report["check"][dim]
        p = [r["ranks"] for r in rows]
        ax1.plot(p, [r["measured"] for r in rows], marker, label=f"{dim}D measured", color=f"C{dim - 2}")
        ax1.plot(p, [r["model"] for r in rows], "-", label=f"{dim}D model", color=f"C{dim - 2}")
    ax1.set(xscale="log", yscale="log", xlabel="ranks (one 16-core node)", ylabel="solve time per step (s)",
            title="16-core node: measured and modelled")
    ax1.set_xticks([1, 2, 4, 8, 16], labels=["1", "2", "4", "8", "16"])
    for name, style in (("strong_2d", "-"), ("weak_2d", "--")):
        series = report["projection"][name]
        p = [int(k) for k in series]
        for part, color in (("total", "k"), ("memory", "C0"), ("exchanges", "C1"), ("reductions", "C2")):
            ax2.plot(p, [series[k][part] for k in series], style, color=color,
                     label=f"{name.replace('_', ' ')}: {part}" if style == "-" or part == "total" else None)
    ax2.set(xscale="log", yscale="log", xlabel="ranks (16 per node, 1.5 us, 12 GB/s per node)",
            ylabel="solve time per step (s)", title="projection: 2D, 4.2M DOFs (strong) and 262K per rank (weak)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
