"""The study file written onto a disk without room for it: every rank raises the same
OutputError at once (the room is set aside before anything is written, so no rank fails inside
HDF5 while another waits in a collective call), no temporary file is left, and the earlier study
file stays as it was. Prints the seconds the refused write took and what it said.

Usage: mpirun -n N python study_disk_checks.py FOLDER  (FOLDER on a small disk, nearly full)
"""

import sys
import time
from pathlib import Path

import numpy as np
from _guard import run
from mpi4py import MPI

from solver.app.study.statistics import Moments
from solver.app.study.studyfile import (SampleTable, StudyContents, StudyMesh, study_bytes, world_blocks,
                                        write_study)
from solver.errors import OutputError


def contents(comm, n_nodes: int, n_times: int) -> StudyContents:
    """A study of 8 samples over a strip of n_nodes nodes, this rank's world blocks (degenerate
    cells: only the sizes matter)."""
    nodes, cells = world_blocks(comm, n_nodes), world_blocks(comm, n_nodes - 1)
    x = np.arange(nodes.start, nodes.stop, dtype=float)
    first = np.arange(cells.start, cells.stop)
    mesh = StudyMesh(np.column_stack([x, 0 * x]), np.column_stack([first, first + 1, first + 1]), n_nodes - 1,
                     "triangle", 2)
    stats = Moments.empty(n_times, nodes.stop - nodes.start, [1.0])
    stats.add(np.ones((n_times, nodes.stop - nodes.start)))
    table = SampleTable(np.arange(8.0)[:, None], np.zeros(8, dtype=np.int64), np.ones(8), np.full(8, "", dtype=object))
    return StudyContents({"count": 1}, table, {"max_temperature": np.ones(8)}, np.arange(n_times, dtype=float),
                         n_nodes, mesh, stats)


def main(comm):
    path = Path(sys.argv[1]) / "s.study.h5"
    small = contents(comm, 100, 2)
    write_study(path, comm, "mpio", small)  # the earlier study file
    before = path.read_bytes() if comm.rank == 0 else b""
    big = contents(comm, 20000, 20)  # 20 times of 6 fields of 20,000 nodes: about 20 MiB
    start = time.perf_counter()
    try:
        write_study(path, comm, "mpio", big)
        said = None
    except OutputError as exc:
        said = str(exc)
    seconds = comm.allreduce(time.perf_counter() - start, op=MPI.MAX)
    said_everywhere = comm.allgather(said)
    left = sorted(p.name for p in path.parent.iterdir()) if comm.rank == 0 else None
    return {"seconds": seconds, "said": said_everywhere, "left": left, "estimate": study_bytes(big),
            "kept": comm.rank != 0 or path.read_bytes() == before}


if __name__ == "__main__":
    run(main)
