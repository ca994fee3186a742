"""Buffers for mpi4py's buffer-based calls: MPI datatypes, counts and displacements.

Every ``[array, (counts, displacements), datatype]`` specification in the package is made here,
so that a new dtype or a change of packing has one place to go.
"""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

MPI_TYPES = {np.dtype(np.float64): MPI.DOUBLE, np.dtype(np.float32): MPI.FLOAT, np.dtype(np.int64): MPI.INT64_T,
             np.dtype(np.int32): MPI.INT32_T}


def mpi_type(dtype) -> MPI.Datatype:
    """The MPI datatype of a NumPy dtype (float64, int64, int32)."""
    return MPI_TYPES[np.dtype(dtype)]


def displacements(counts: np.ndarray) -> np.ndarray:
    """Start of each rank's segment in a buffer of consecutive segments of ``counts`` items."""
    displs = np.zeros_like(counts)
    np.cumsum(counts[:-1], out=displs[1:])
    return displs


def offsets(counts: np.ndarray) -> np.ndarray:
    """CSR row offsets (``len(counts) + 1`` entries) from row lengths, int32 when they fit."""
    total = int(counts.sum())
    xadj = np.zeros(len(counts) + 1, dtype=np.int32 if total < 2**31 else np.int64)
    np.cumsum(counts, out=xadj[1:])
    return xadj


def components(array: np.ndarray) -> int:
    """Numbers per item of an array of items (shape ``(n, ...)``)."""
    return int(np.prod(array.shape[1:], dtype=int)) if array.ndim > 1 else 1


def segments(array: np.ndarray, counts: np.ndarray) -> list:
    """``[array, (counts, displacements), datatype]`` for ``counts`` items per rank, items of any
    number of components (counts are scaled by it)."""
    scaled = np.asarray(counts, dtype=np.int64) * components(array)
    return [array, (scaled, displacements(scaled)), mpi_type(array.dtype)]


def whole(array: np.ndarray) -> list:
    """``[array, datatype]`` for a contiguous array sent or received whole."""
    return [array, mpi_type(array.dtype)]
