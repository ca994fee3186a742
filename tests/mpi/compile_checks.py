"""Kernels compiled by a run on N ranks from the cache it is given (NUMBA_CACHE_DIR): the
reference problem at 160K DOFs (large enough for the compiled kernels), run in process by the
command line's entry point.

Usage: [mpirun -n N] python compile_checks.py OUTDIR

Prints one JSON line on rank 0: per rank, the kernels compiled (not loaded), the seconds spent, and
the kernels its helper processes compiled (one rank: :func:`solver.compiled.compile_beside`) and
the cores it may run on (mpirun binds a rank to one).
"""

import os
import sys
from pathlib import Path

from _guard import run

import solver.compiled as compiled
from solver.app.cli import main as solver_main

ROOT = Path(__file__).resolve().parents[2]


def main(comm):
    code = solver_main([str(ROOT / "inputs" / "reference.toml"), "--set", "mesh.nx=400", "--set", "mesh.ny=400",
                        "--set", "time.t_end=0.002", "--set", f"output.directory={sys.argv[1]}", "--overwrite",
                        "--quiet"])
    every = comm.gather({"code": code, "compiled": compiled.compiled_kernels(), "seconds": compiled.compile_seconds(),
                         "helpers": compiled.helper_compiled_kernels(), "cores": len(os.sched_getaffinity(0))})
    return {"ranks": comm.size, "per_rank": every} if comm.rank == 0 else None


if __name__ == "__main__":
    run(main)
