"""Run a test script's main on every rank; a failure on any rank aborts all (no hang)."""

import json
import sys
import traceback

from mpi4py import MPI


def run(main):
    comm = MPI.COMM_WORLD
    try:
        result = main(comm)
    except BaseException:  # noqa: BLE001
        sys.stderr.write(f"rank {comm.rank} failed:\n{traceback.format_exc()}")
        sys.stderr.flush()
        comm.Abort(1)
    if comm.rank == 0:
        print(json.dumps(result), flush=True)
