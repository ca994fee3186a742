"""Compiled assembly kernels (numba): the CSR pattern of the owned rows, and loops over cells (or
facets) that compute each element's geometry, matrix or vector from the node coordinates and add
it straight into the CSR ``data`` or the load vector; only owned rows are written.

Everything is computed per cell from ``coords`` and ``cells`` (as DOLFINx's generated code does):
no array of Jacobians, gradients or element matrices over all cells is ever held.

Modules, one stage each: :mod:`.coefficients` (the canonical form of coefficients),
:mod:`.pattern` (the CSR pattern and the slot of each element entry), :mod:`.blocks` (the block
geometry and scatters inlined into the cell kernels), the cell kernels :mod:`.matrices` (mass and
conduction), :mod:`.vectors` (loads, fields at the points) and :mod:`.newton` (the Jacobian of a
conductivity k(u)), gathered per kind of cell by :mod:`.cells`; :mod:`.facets` (boundary terms),
:mod:`.constraint` (the Dirichlet elimination) and :mod:`.warm` (compilation ahead of use).

Arguments shared by the kernels
-------------------------------
``mesh = (coords, cells, n_owned)``: ``coords`` (n_local, dim) float64, ``cells`` (n_cells, nn)
integer local node indices; rows ``< n_owned`` are written, others skipped. ``reference = (N, dN,
weights)``: the reference element at the quadrature points, ``N`` (n_qp, nn) shape values, ``dN``
(n_qp, nn, tdim) reference gradients (only ``dN[0]`` is used for affine cells), ``weights``
(n_qp,). ``target = (indptr, indices, slots, data)``: the CSR pattern of the owned rows, columns
sorted in each row, the relative slot of each element entry in its row (:func:`pattern_fill`;
empty: the kernels search the rows), and the values to add into. Facets, few, take their arrays
one by one (:func:`facet_matrix`, :func:`facet_vector`). Coefficients come in the canonical form
of :func:`coefficient`; an absent one is :data:`NONE`. A matrix kernel returns the number of
entries it could not place in the pattern (0 unless the pattern does not belong to these cells).

Compilation
-----------
Cell kernels are compiled per kind of cell with its sizes as constants (:func:`cell_kernels`), on
first use for the argument types met (int32 or int64 indices), 10-20 s of one core per cell type
(about a minute for the four), and cached on disk by :func:`solver.compiled.jit`; later runs load
them (numba's start and the loading, about 0.45 s per process). Each kernel is compiled when
first called, by one process while the others wait (:func:`solver.compiled.first_compile`):
a run compiles only what it uses. ``python -m solver.fem.kernels`` fills the cache for every
cell type. numba keys a cached kernel on its own source file only, and the kernels inline helpers
of other modules (:mod:`.blocks`, :mod:`.coefficients`): :func:`drop_stale_cache` empties the cache
beside these files whenever any of them changed since it was filled.
``AVAILABLE`` (from :mod:`solver.compiled`) is False when numba cannot be imported or
``SOLVER_NUMBA=0`` is set; the assembler and the constraint then read it here, on this package
(where tests switch it off), and take the NumPy path of :mod:`solver.fem.reference`.
"""

import hashlib
import os
from pathlib import Path

from solver.compiled import AVAILABLE
from solver.lazy import exports
from solver.parallel.launcher import launcher_rank

WHERE = {
    "CellKernels": "cells",
    "cell_kernels": "cells",
    "coefficient": "coefficients",
    "constrain_kernel": "constraint",
    "csr_pattern": "pattern",
    "entry_slots": "pattern",
    "facet_matrix": "facets",
    "facet_measures": "facets",
    "facet_vector": "facets",
    "node_cell_offsets": "pattern",
    "node_cells": "pattern",
    "NONE": "coefficients",
    "pattern_fill": "pattern",
    "pattern_row_lengths": "pattern",
    "quadrature_points": "vectors",
    "warm_up": "warm",
}
__all__ = ["AVAILABLE", *sorted(WHERE)]
__getattr__ = exports(__name__, WHERE)


def drop_stale_cache(folder: Path = Path(__file__).parent) -> bool:
    """Empty the on-disk cache beside these sources when any of them changed since it was filled
    (a digest of the sources is kept beside the cache); returns whether it did. numba checks only a
    kernel's own file, and the cell kernels inline helpers of other modules of this package. Done by
    the first process of a launch (the others wait for it in :func:`solver.compiled.first_compile`
    before they load a kernel); a cache elsewhere (``NUMBA_CACHE_DIR``) is left alone."""
    cache = folder / "__pycache__"
    if not AVAILABLE or os.environ.get("NUMBA_CACHE_DIR") or launcher_rank() not in (None, 0):
        return False
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.glob("*.py")))).hexdigest()
    stamp = cache / "kernel-sources.sha256"
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    try:
        for old in (*cache.glob("*.nbi"), *cache.glob("*.nbc")):
            old.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:  # a read-only install: numba compiles in memory there anyway
        return False
    return True


drop_stale_cache()
