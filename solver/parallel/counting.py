"""Communication counted as it happens: communicators that tally every MPI call of a run by
phase and kind, for the tests and the bench that bound messages and collectives.

:func:`counted` wraps a communicator (``counted(MPI.COMM_WORLD)``); every communicator made from
it (``Split``, ``Dup``, the neighbour graphs of :mod:`solver.parallel.exchange`) is counted into
the same :class:`Tally`. The code under test runs unchanged: the wrappers are subclasses of
mpi4py's own classes whose methods record ``(phase, kind)`` and then call mpi4py's.

Kinds:

* ``neighbour``: a neighbour collective; its messages are the rank's out-neighbours;
* ``p2p``: one message (send side);
* ``reduction``: a reduction of a few numbers, a barrier, a scan or a broadcast;
* ``gather``: a gather, an all-gather, an all-to-all or a scatter (``alltoall`` apart: the
  rank-wide exchange that must not occur in a solve).

Bytes are those of the send buffer (pickled size for the lower-case calls). Counting costs a
Python call per MPI call: it is for tests and measurements, never on in a production run.
"""

from __future__ import annotations

import contextlib
import pickle
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from mpi4py import MPI

__all__ = ["Tally", "counted"]

REDUCTIONS = ("Allreduce", "allreduce", "Iallreduce", "Reduce", "reduce", "Barrier", "barrier", "Ibarrier",
              "Scan", "scan", "Exscan", "exscan", "Bcast", "bcast", "Ibcast")
GATHERS = ("Allgather", "allgather", "Allgatherv", "Gather", "gather", "Gatherv", "Scatter", "scatter",
           "Scatterv", "Iallgather")
ALLTOALLS = ("Alltoall", "alltoall", "Alltoallv", "Alltoallw", "Ialltoall", "Ialltoallv")
P2P = ("Send", "send", "Isend", "isend", "Issend", "issend", "Ssend", "ssend", "Sendrecv", "sendrecv")
NEIGHBOURS = ("Neighbor_alltoallv", "Ineighbor_alltoallv", "Neighbor_alltoall", "Ineighbor_alltoall",
              "Neighbor_allgather", "Neighbor_allgatherv")
FACTORIES = ("Split", "Dup", "Create_dist_graph_adjacent", "Create_group", "Create")


@dataclass
class Tally:
    """Calls, messages and bytes sent by this rank, by ``(phase, kind)``."""

    phase: str = "setup"
    calls: dict = field(default_factory=lambda: defaultdict(int))
    messages: dict = field(default_factory=lambda: defaultdict(int))
    bytes: dict = field(default_factory=lambda: defaultdict(int))
    names: dict = field(default_factory=lambda: defaultdict(int))  # calls by (phase, MPI call)

    @contextlib.contextmanager
    def during(self, phase: str):
        """Count into ``phase`` inside the block."""
        outer, self.phase = self.phase, phase
        try:
            yield self
        finally:
            self.phase = outer

    def record(self, kind: str, name: str, messages: int, nbytes: int) -> None:
        self.names[self.phase, name] += 1
        key = (self.phase, kind)
        self.calls[key] += 1
        self.messages[key] += messages
        self.bytes[key] += nbytes

    def of(self, phase: str) -> dict:
        """``{kind: (calls, messages, bytes)}`` of one phase."""
        return {kind: (self.calls[p, kind], self.messages[p, kind], self.bytes[p, kind])
                for (p, kind) in self.calls if p == phase}


def _nbytes(buffer) -> int:
    """Bytes of an mpi4py buffer specification (an array, or a list whose first item is one)."""
    if isinstance(buffer, (list, tuple)) and buffer:
        buffer = buffer[0]
    if buffer is None or buffer is MPI.IN_PLACE:
        return 0
    try:
        return memoryview(buffer).nbytes
    except TypeError:
        return int(np.asarray(buffer).nbytes)


def _pickled(obj) -> int:
    try:
        return len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # noqa: BLE001 - a count, not a contract
        return 0


def _size(name: str, args) -> int:
    if not args:
        return 0
    if name[0].islower():
        return _pickled(args[0])
    first = args[0]
    if first is MPI.IN_PLACE and len(args) > 1:
        return _nbytes(args[1])
    return _nbytes(first)


def _kind(name: str) -> str:
    for kind, names in (("reduction", REDUCTIONS), ("gather", GATHERS), ("alltoall", ALLTOALLS),
                        ("p2p", P2P), ("neighbour", NEIGHBOURS)):
        if name in names:
            return kind
    raise KeyError(name)


def _counting(base, name: str):
    kind, call = _kind(name), getattr(base, name)

    def method(self, *args, **kwargs):
        if kind == "neighbour":
            messages = self.Get_dist_neighbors_count()[1]
        else:
            messages = 1 if kind in ("p2p", "reduction") else max(self.Get_size() - 1, 0)
        self.tally.record(kind, name, messages, _size(name, args))
        return call(self, *args, **kwargs)
    method.__name__ = name
    return method


def _factory(base, name: str):
    call = getattr(base, name)

    def method(self, *args, **kwargs):
        return counted(call(self, *args, **kwargs), self.tally)
    method.__name__ = name
    return method


def _class(base):
    names = [n for n in (*REDUCTIONS, *GATHERS, *ALLTOALLS, *P2P, *NEIGHBOURS) if hasattr(base, n)]
    body = {n: _counting(base, n) for n in names}
    body.update({n: _factory(base, n) for n in FACTORIES if hasattr(base, n)})
    return type(f"Counted{base.__name__}", (base,), body)


_CLASSES = {base: _class(base) for base in (MPI.Intracomm, MPI.Distgraphcomm)}


def counted(comm, tally: Tally | None = None):
    """``comm`` counted into ``tally`` (a new one when None); it is ``comm.tally``. A null
    communicator (a rank outside a ``Split``) stays as it is."""
    if comm == MPI.COMM_NULL:
        return comm
    base = MPI.Distgraphcomm if isinstance(comm, MPI.Distgraphcomm) else MPI.Intracomm
    wrapped = _CLASSES[base](comm)
    wrapped.tally = tally if tally is not None else Tally()
    return wrapped
