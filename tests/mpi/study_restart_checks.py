"""A study of many samples continued with ``--restart latest``: stopped once (its wall limit, a
study file), then killed before its study file (partial files beside it), then continued. The
bytes each rank sent in the world's collectives during the restart (pickled,
:mod:`solver.parallel.counting`), how long it took, and the file's tables. The tables (a row per
sample) stay on rank 0, which reads, merges and writes them: the others receive the runs of the
samples left to run, counts, shapes and dtypes.

Usage: mpirun -n N python study_restart_checks.py FOLDER SAMPLES
"""

import sys
import time
from pathlib import Path

import h5py
from _guard import run
from mpi4py import MPI
from study_stop_checks import big_study, tables

from solver.app.study import driver
from solver.app.study.driver import StudyOptions, run_study
from solver.app.study.partial import partial_files
from solver.parallel.counting import counted


class Killed(Exception):
    """The study killed before its study file is written (its partial files are kept)."""


def main(comm):
    folder = Path(sys.argv[1])
    spec = big_study(comm, folder, int(sys.argv[2]))
    statuses = [run_study(spec, comm, StudyOptions(overwrite=True, quiet=True, wall_limit=0.0))]

    def kill(folder, rank):
        raise Killed()
    driver.before_study_file, before = kill, driver.before_study_file
    try:
        run_study(spec, comm, StudyOptions(restart="latest", quiet=True, wall_limit=0.0))
    except Killed:
        pass
    driver.before_study_file = before
    partials = len(partial_files(folder / "out" / "big", "big"))
    world = counted(comm)
    start = time.perf_counter()
    statuses.append(run_study(spec, world, StudyOptions(restart="latest", quiet=True, wall_limit=0.0)))
    seconds = comm.allreduce(time.perf_counter() - start, op=MPI.MAX)
    sent = comm.gather({kind: int(n) for (_, kind), n in world.tally.bytes.items()}, root=0)
    if comm.rank:
        return None
    with h5py.File(folder / "out" / "big" / "big.study.h5", "r") as f:
        found = tables(f, spec)
    return found | {"status": statuses, "partials": partials, "sent": sent, "seconds": seconds}


if __name__ == "__main__":
    run(main)
