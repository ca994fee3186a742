"""The vectorised NumPy assembly: the test oracle of the compiled kernels, and the path taken where
numba is missing (or ``SOLVER_NUMBA=0``).

This is the assembly the solver had before :mod:`solver.fem.kernels`: the pattern of the owned
rows is ``np.unique`` of all (row, col) entry keys, an entry map sends every element-matrix entry
to its CSR slot, element matrices of all cells are built at once with ``einsum`` from the
gradients of :class:`CellGeometry`, and summed with ``np.bincount``. It takes coefficients in the
canonical form of :func:`solver.fem.kernels.coefficient` (per cell, per component, per point).
Its memory is O(cells x entries) float64: several times one matrix's data.
"""

from __future__ import annotations

import numpy as np

from solver.fem.geometry import CellGeometry


def reference_pattern(cells: np.ndarray, n_owned: int, n_local: int):
    """(indptr, indices, entry_map) of the owned rows: the entry map sends the entry (c, i, j) of
    the element matrices, flattened, to its CSR slot, or to ``nnz`` for rows owned elsewhere."""
    nc, nn = cells.shape
    rows = np.repeat(cells, nn, axis=1).ravel()
    cols = np.tile(cells, (1, nn)).ravel()
    keep = rows < n_owned
    keys = rows[keep].astype(np.int64) * n_local + cols[keep]
    unique, inverse = np.unique(keys, return_inverse=True)
    nnz = len(unique)
    index_type = np.int32 if max(nnz, n_local) < 2**31 - 1 else np.int64
    entry_map = np.full(nc * nn * nn, nnz, dtype=index_type)
    entry_map[keep] = inverse
    indices = (unique % n_local).astype(index_type)
    indptr = np.zeros(n_owned + 1, dtype=index_type)
    np.cumsum(np.bincount(unique // n_local, minlength=n_owned), out=indptr[1:])
    return indptr, indices, entry_map


def reference_slots(indptr, indices, n_local: int, rows, cols) -> np.ndarray:
    """CSR slots of (row, col) pairs of owned rows (searchsorted on the sorted entry keys)."""
    n_owned = len(indptr) - 1
    row_of_slot = np.repeat(np.arange(n_owned, dtype=np.int64), np.diff(indptr))
    slot_keys = row_of_slot * n_local + indices
    keys = np.asarray(rows, dtype=np.int64) * n_local + cols
    slots = np.searchsorted(slot_keys, keys)
    if len(keys) and not np.array_equal(slot_keys[np.minimum(slots, len(slot_keys) - 1)], keys):
        raise ValueError("entries outside the sparsity pattern")
    return slots


def element_matrices(g: CellGeometry, mass: np.ndarray | None, cond: np.ndarray | None) -> np.ndarray:
    """(n, nn, nn) element matrices of ``int m N_i N_j + int sum_d k_d dN_i/dx_d dN_j/dx_d`` on the
    cells (or facets, without ``cond``) of ``g``; coefficients canonical, None when absent."""
    nc, nq = g.wdet.shape[0], len(g.weights)
    nn = g.N.shape[1]
    wdet = np.broadcast_to(g.wdet, (nc, nq))
    out = np.zeros((nc, nn, nn))
    if cond is not None and cond.size:
        k = np.broadcast_to(cond, (nc, nq, cond.shape[2]))
        if g.grad.shape[1] == 1:  # affine: one gradient, the point values summed
            kw = np.einsum("cq,cqd->cd", wdet, k)
            out += np.einsum("cd,cid,cjd->cij", kw, g.grad[:, 0], g.grad[:, 0], optimize=True)
        else:
            out += np.einsum("cq,cqd,cqid,cqjd->cij", wdet, k, g.grad, g.grad, optimize=True)
    if mass is not None and mass.size:
        m = np.broadcast_to(mass[:, :, 0], (nc, nq))
        NN = (g.N[:, :, None] * g.N[:, None, :]).reshape(nq, nn * nn)
        out += ((wdet * m) @ NN).reshape(nc, nn, nn)
    return out


def element_vectors(g: CellGeometry, values: np.ndarray) -> np.ndarray:
    """(n, nn) element vectors of ``int f N_i``, f canonical (n or 1, nq or 1, 1)."""
    nc, nq = g.wdet.shape[0], len(g.weights)
    return g.integrate(np.broadcast_to(values[:, :, 0], (nc, nq)))


class ReferenceAssembly:
    """Pattern, entry map and geometry of the cells of a mesh, as the NumPy path holds them."""

    def __init__(self, coords, cells, cell_type: str, n_owned: int, n_local: int, degree: int = 2):
        self.cells, self.n_owned, self.n_local = cells, n_owned, n_local
        self.geometry = CellGeometry(cell_type, coords, cells, degree)
        self.indptr, self.indices, self.entry_map = reference_pattern(cells, n_owned, n_local)
        self.nnz = len(self.indices)

    def release(self) -> None:
        """Free the entry map and the gradients (vectors can still be assembled)."""
        self.entry_map = None
        self.geometry.grad = None

    def matrix_data(self, element: np.ndarray) -> np.ndarray:
        """CSR data of the owned rows from element matrices (n_cells, nn, nn)."""
        if self.entry_map is None:
            raise RuntimeError("the matrix workspace of this assembler was released")
        return np.bincount(self.entry_map, weights=element.ravel(), minlength=self.nnz + 1)[: self.nnz]

    def bilinear(self, mass, cond) -> np.ndarray:
        if self.entry_map is None:
            raise RuntimeError("the matrix workspace of this assembler was released")
        return self.matrix_data(element_matrices(self.geometry, mass, cond))

    def vector(self, element: np.ndarray) -> np.ndarray:
        """Owned entries of the sum of element vectors (n_cells, nn)."""
        out = np.bincount(self.cells.ravel(), weights=element.ravel(), minlength=self.n_local)
        return out[: self.n_owned]

    def load(self, values) -> np.ndarray:
        return self.vector(element_vectors(self.geometry, values))

    def entries_data(self, rows, cols, values) -> np.ndarray:
        """CSR data from (row, col, value) triplets inside the pattern (rows owned elsewhere dropped)."""
        keep = rows < self.n_owned
        slots = reference_slots(self.indptr, self.indices, self.n_local, rows[keep], cols[keep])
        return np.bincount(slots, weights=values[keep], minlength=self.nnz)
