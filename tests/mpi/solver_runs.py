"""Run several solver command lines one after another in one MPI launch (saves start-up time).

Usage: mpirun -n N python solver_runs.py '[["case.toml", "--set", "..."], [...]]'
Prints {"status": [exit status of each run], "stderr": [what each run wrote to stderr]} on rank 0.
"""

import contextlib
import io
import json
import sys

from _guard import run

from solver.app.cli import main as solver_main


def main(comm):
    status, stderr = [], []
    for args in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status.append(solver_main(args))
        stderr.append(err.getvalue())
    return {"status": status, "stderr": stderr}


run(main)
