"""METIS (through pymetis), safe from stop signals.

METIS's GKlib catches SIGTERM for the length of each call and turns it into an error return (its
``SIGERR``, through a longjmp out of its handler), and after such a return its handler stays
installed and SIGTERM stays blocked in the calling thread: the next SIGTERM goes to another thread
of the process and jumps into a finished call, which crashes the process. A stop signal
arriving while METIS partitions a mesh or orders a matrix would thus fail the run with pymetis's
"unknown exception", lose the signal, and leave the process to die on the next one.

Here a call that fails puts the handler that was in place back (the solver's graceful stop,
:mod:`solver.app.signals`, or Python's default), unblocks SIGTERM, and is tried again, up to
:data:`TRIES` times: when a later try succeeds, the earlier ones were interrupted by SIGTERM, which
is raised again for that handler once METIS is done. When every try fails, the callers do
without METIS (the partition by recursive bisection, the factorisation in its own ordering).
(Blocking SIGTERM in this thread for the call would only move the signal to another thread of
the process, an MPI progress thread or a BLAS thread, where GKlib's handler cannot return to the
call at all.)
"""

from __future__ import annotations

import signal
import threading

import numpy as np

TRIES = 3
interruptions = 0  # tries interrupted by a signal (read by the tests)


def _call(method, *args, **kwargs):
    """``method``'s result, or None when every try failed (the callers then do without METIS)."""
    global interruptions
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    failed, result = 0, None
    for _ in range(TRIES):
        try:
            result = method(*args, **kwargs)
            break
        except RuntimeError:
            failed += 1
            if handler is not None:  # GKlib left its handler, and SIGTERM blocked (its longjmp)
                signal.signal(signal.SIGTERM, handler)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    if failed and result is not None and handler is not None:  # METIS is deterministic: a signal failed it
        interruptions += failed
        signal.raise_signal(signal.SIGTERM)  # the signal GKlib swallowed, to the handler in place
    return result


def part_graph(n_parts: int, xadj: np.ndarray, adjncy: np.ndarray, vweights, eweights) -> np.ndarray:
    """METIS's k-way partition of a CSR graph: the part of each vertex (None: METIS failed)."""
    import pymetis

    result = _call(pymetis.part_graph, n_parts, adjacency=pymetis.CSRAdjacency(xadj, adjncy),
                   vweights=vweights, eweights=eweights)
    return None if result is None else np.asarray(result[1], dtype=np.int64)


def nested_dissection(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """METIS's fill-reducing nested-dissection ordering of a CSR graph without its diagonal (None:
    METIS failed)."""
    import pymetis

    perm = _call(pymetis.nested_dissection, adjacency=pymetis.CSRAdjacency(indptr, indices))
    return None if perm is None else np.asarray(perm[0] if isinstance(perm, tuple) else perm, dtype=np.int64)
