"""Compiled kernels: the numba switch, the decorators with the on-disk cache, and the index type
of sparse matrices, shared by the assembly (:mod:`solver.fem.kernels`) and the linear algebra
(:mod:`solver.la.symmetric`, the multigrid).

* ``AVAILABLE`` is False when numba cannot be imported or ``SOLVER_NUMBA=0`` is set; every
  caller then takes its NumPy/SciPy path (the same results to rounding, slower).
* :func:`jit` compiles with ``cache=True``: in ``NUMBA_CACHE_DIR`` when set, else in
  ``__pycache__`` beside the source, else in the user's cache directory (``~/.cache/numba``);
  where none is writable numba refuses the cache at decoration, and the function is compiled
  in memory at every run instead. Without numba it returns the Python function itself.
* :data:`inline` inlines a helper into the kernels that call it (numba IR inlining): a call
  with array arguments costs reference counting, as much as the work of a small cell.
* :func:`index_dtype`: int32 where every index fits (half the index bytes of a product), else
  int64.
"""

from __future__ import annotations

import os

import numpy as np

try:  # optional: every kernel has a NumPy/SciPy path that does the same work without it
    if os.environ.get("SOLVER_NUMBA", "1") == "0":
        raise ImportError("disabled by SOLVER_NUMBA=0")
    import numba
    AVAILABLE = True
except ImportError:
    numba = None
    AVAILABLE = False

__all__ = ["AVAILABLE", "index_dtype", "inline", "jit", "numba"]


def jit(fn=None, **options):
    """numba.njit with an on-disk cache, or without one where no cache directory is writable;
    the Python function itself without numba. Use as ``@jit`` or ``@jit(option=...)``."""
    if fn is None:
        return lambda f: jit(f, **options)
    if numba is None:
        return fn
    options.setdefault("nogil", True)
    try:
        return numba.njit(cache=True, **options)(fn)
    except RuntimeError:
        return numba.njit(**options)(fn)


inline = jit(inline="always")


def index_dtype(*sizes: int):
    """int32 when every index and count fits, else int64."""
    return np.int32 if max(sizes, default=0) < 2**31 - 1 else np.int64
