"""Timing on a communicator: the best of repeated runs as the slowest rank saw it, and a figure
measured on rank 0 alone while the other ranks sleep."""

from __future__ import annotations

import math
import time

from mpi4py import MPI


def best_time(comm, fn, repeat: int) -> float:
    """Best over ``repeat`` runs of the slowest rank's time of ``fn()``."""
    best = math.inf
    for _ in range(repeat):
        comm.Barrier()
        t0 = MPI.Wtime()
        fn()
        t = comm.allreduce(MPI.Wtime() - t0, op=MPI.MAX)
        best = min(best, t)
    return best


def alone(comm, fn):
    """``fn(MPI.COMM_SELF)`` on rank 0 while the others sleep in a polled barrier (so that they
    take no core from it); the result on every rank."""
    result = fn(MPI.COMM_SELF) if comm.rank == 0 else None
    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(0.002)
    return comm.bcast(result, root=0)

