"""A study of many samples stopped (its wall limit reached after a sample per group): the bytes
each rank sent in the world's collectives over the whole run (pickled, :mod:`solver.parallel.counting`),
how long the study file's write took, and the file's tables. The tables (a row per sample) stay on
rank 0, which writes them: the others receive their shapes and dtypes only.

Usage: mpirun -n N python study_stop_checks.py FOLDER SAMPLES
"""

import sys
import time
from pathlib import Path

import h5py
import numpy as np
from _guard import run

from solver.app.study import driver
from solver.app.study.driver import StudyOptions, run_study
from solver.app.study.sampling import sample_table
from solver.app.study.spec import load_study
from solver.parallel.counting import counted

CASE = """[mesh]
type = "rectangle"
cell = "quadrilateral"
nx = 2
ny = 1
lengths = [0.1, 0.02]
[material]
k = 1.0
rho = 1.0
c = 1.0
[boundary.left]
type = "dirichlet"
value = 100.0
[time]
scheme = "steady"
[output]
directory = "{out}"
"""
STUDY = """[study]
case = "base.toml"
method = "grid"
[parameters]
"material.k" = {{ low = 1.0, high = 2.0, count = {samples} }}
[outputs]
fields = false
"""


def big_study(comm, folder: Path, samples: int):
    """The study of ``samples`` samples of a two-cell case, written into ``folder`` by rank 0 and
    loaded on every rank."""
    if comm.rank == 0:
        (folder / "base.toml").write_text(CASE.format(out=folder / "out"))
        (folder / "big.toml").write_text(STUDY.format(samples=samples))
    comm.Barrier()
    return load_study(folder / "big.toml")


def tables(f: h5py.File, spec) -> dict:
    """A study file's status attributes and per-sample tables: the samples done, the rows of each
    table, whether the values are the spec's samples, the outputs of the samples done and whether
    those of the others are NaN."""
    st = f["samples/status"][()]
    done = np.flatnonzero(st != -1)
    return {"attrs": [f.attrs["status"], int(f.attrs["done"])], "done": done.tolist(),
            "rows": [len(st), len(f["samples/values"]), len(f["samples/message"]), len(f["samples/seconds"])],
            "values": bool(np.array_equal(f["samples/values"][()], sample_table(spec))),
            "max_temperature": f["outputs/max_temperature"][done].tolist(),
            "pending_nan": bool(np.isnan(np.delete(f["outputs/max_temperature"][()], done)).all())}


def main(comm):
    folder = Path(sys.argv[1])
    spec = big_study(comm, folder, int(sys.argv[2]))
    world = counted(comm)
    write, seconds = driver.write_study, []

    def timed(*args):
        start = time.perf_counter()
        write(*args)
        seconds.append(time.perf_counter() - start)
    driver.write_study = timed
    status = run_study(spec, world, StudyOptions(overwrite=True, quiet=True, wall_limit=0.0))
    sent = comm.gather({kind: int(n) for (_, kind), n in world.tally.bytes.items()}, root=0)
    if comm.rank:
        return None
    with h5py.File(folder / "out" / "big" / "big.study.h5", "r") as f:
        found = tables(f, spec)
    return found | {"status": status, "sent": sent, "seconds": seconds}


if __name__ == "__main__":
    run(main)
