"""Communication counted on N ranks: the reference problem (2D P1, backward Euler, multigrid) at
a fixed size per rank, every MPI call of the set-up and of the time steps tallied by kind
(:mod:`solver.parallel.counting`).

Usage: mpirun -n N python comm_checks.py [dofs_per_rank] [steps] [base_dofs]

The time step is 1e-3 at ``base_dofs`` (default: dofs_per_rank) and shrinks with h^2 beyond it, so
that weak scaling keeps dt/h^2, and the operator's conditioning, as on the base problem.

Prints one JSON line on rank 0: per rank, the calls, messages and bytes of each phase and kind,
the rank's neighbours on the fine level, and the largest neighbour count of any graph used in
the steps; the iterations per step; the multigrid's levels, rows and active ranks per level.
"""

import math
import sys
from pathlib import Path

from _guard import run

from solver.case.load import load_case
from solver.heat.simulation import Simulation
from solver.parallel.counting import Tally, counted

ROOT = Path(__file__).resolve().parents[2]


def cells_across(dofs: int) -> int:
    return max(int(math.sqrt(dofs)) - 1, 8)


def reference_case(n: int, steps: int, dt: float):
    text = (ROOT / "inputs" / "reference.toml").read_text()
    case = load_case(text, "inputs/reference.toml", overrides=[
        f"mesh.nx={n}", f"mesh.ny={n}", f"time.dt={dt!r}", f"time.t_end={steps * dt!r}",
        "solver.preconditioner=amg"])
    return case


def main(world):
    per_rank = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    base = int(sys.argv[3]) if len(sys.argv) > 3 else per_rank
    n = cells_across(per_rank * world.size)
    dt = 1e-3 * (cells_across(base) / n) ** 2
    tally = Tally()
    comm = counted(world, tally)
    case = reference_case(n, steps, dt)
    with tally.during("setup"):
        sim = Simulation(case, comm)
    graphs = []
    with tally.during("solve"):
        iterations = [sim.advance().iterations for _ in range(steps)]
    halo = sim.mesh.halo.pattern
    fine_neighbours = len(set(halo.send_ranks.tolist()) | set(halo.recv_ranks.tolist()))
    precond = sim.stepper.system.precond
    with tally.during("stats"):
        st = precond.stats()
    levels = getattr(precond, "levels", [])
    for lvl in levels:
        p = lvl.halo.pattern
        graphs.append(len(set(p.send_ranks.tolist()) | set(p.recv_ranks.tolist())))
    mine = {"phases": {phase: {k: list(v) for k, v in tally.of(phase).items()} for phase in ("setup", "solve")},
            "fine_neighbours": fine_neighbours, "level_neighbours": graphs}
    every = world.gather(mine, root=0)
    if world.rank == 0:
        return {"ranks": world.size, "dofs": sim.mesh.n_global_nodes, "iterations": iterations,
                "levels": st.levels, "rows": list(st.rows),
                "active_ranks": [lv.active_ranks for lv in st.per_level], "per_rank": every}
    return None


if __name__ == "__main__":
    run(main)
