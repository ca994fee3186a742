"""Run several solver command lines one after another in one MPI launch (saves start-up time).

Usage: mpirun -n N python solver_runs.py '[["case.toml", "--set", "..."], [...]]'
Prints {"status": [exit status of each run]} on rank 0.
"""

import json
import sys

from _guard import run

from solver.app.cli import main as solver_main


def main(comm):
    return {"status": [solver_main(args) for args in json.loads(sys.argv[1])]}


run(main)
