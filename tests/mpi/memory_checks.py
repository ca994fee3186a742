"""Memory per rank of a whole run: the reference problem (2D P1, backward Euler, multigrid,
results and a checkpoint written) at N cells per side, run in process by the command line's own
entry point after a tiny warm-up run of the same case (which loads every module and the compiled
kernels: the fixed overhead of a process).

Usage: mpirun -n P python memory_checks.py N OUTDIR

Prints one JSON line on rank 0: the global DOFs and, per rank, the peak resident set of the
warm-up (``base_MB``) and of the whole process (``peak_MB``); their difference is what the
problem's data took on that rank.
"""

import resource
import sys
from pathlib import Path

from _guard import run

import solver.compiled
from solver.app.cli import main as solver_main

ROOT = Path(__file__).resolve().parents[2]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def one_run(n: int, outdir: str, name: str) -> None:
    code = solver_main([str(ROOT / "inputs" / "reference.toml"), "--set", f"mesh.nx={n}", "--set", f"mesh.ny={n}",
                        "--set", "time.t_end=0.005", "--set", "output.every=5", "--set", "solver.preconditioner=amg",
                        "--set", f"output.directory={outdir}", "--set", f"output.name={name}", "--set",
                        "checkpoint.every=5", "--overwrite", "--quiet"])
    assert code == 0, code


def main(comm):
    solver.compiled.FORCED = True  # the warm-up loads the kernels the large run uses
    n, outdir = int(sys.argv[1]), sys.argv[2]
    one_run(16, outdir, "warm")
    base = peak_mb()
    one_run(n, outdir, "big")
    every = comm.gather({"base_MB": base, "peak_MB": peak_mb()}, root=0)
    if comm.rank == 0:
        return {"ranks": comm.size, "dofs": (n + 1) ** 2, "per_rank": every}
    return None


if __name__ == "__main__":
    run(main)
