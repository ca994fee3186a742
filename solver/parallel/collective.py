"""Helpers that keep ranks in agreement: root-only actions whose outcome all ranks share,
and a bounded wait that turns a disagreement into an abort instead of a hang."""

from __future__ import annotations

import time

from mpi4py import MPI

from solver.errors import SolverExit


def on_root(comm, fn, error=SolverExit, keep: tuple = (), shared: bool = True):
    """Run ``fn()`` on rank 0 only; its result (or its failure, as ``error``, or as itself when it
    is one of the ``keep`` classes) reaches every rank; ``shared=False``: the result stays on rank 0
    (None elsewhere: a large one is not sent), only a failure reaches the others."""
    result, message, kind = None, None, None
    if comm.rank == 0:
        try:
            result = fn()
        except (OSError, SolverExit) as exc:
            message = str(exc)
            kind = next((i for i, cls in enumerate(keep) if isinstance(exc, cls)), None)
    if shared:
        result, message, kind = comm.bcast((result, message, kind), root=0)
    else:
        message, kind = comm.bcast((message, kind), root=0)
    if message is not None:
        raise (error if kind is None else keep[kind])(message)
    return result


def all_arrived(comm, timeout: float) -> bool:
    """True when every rank reaches this point within ``timeout`` seconds (non-blocking barrier)."""
    if comm.size == 1:
        return True
    request = comm.Ibarrier()
    deadline = time.monotonic() + timeout
    while not request.Test():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def max_over_ranks(comm, values: dict) -> dict:
    """Element-wise maximum over ranks of a dict of floats (same keys on every rank)."""
    import numpy as np

    keys = sorted(values)
    buf = np.array([float(values[k]) for k in keys])
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.MAX)
    return dict(zip(keys, buf.tolist()))
