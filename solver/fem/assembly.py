"""Vectorised finite-element assembly of the rows this rank owns (no Python loop over cells).

The sparsity pattern of the owned rows (columns in local numbering) and a map from every
element-matrix entry to its CSR slot are computed once; a matrix is then one
``np.bincount`` over the element matrices, and all matrices share one pattern, so that
``M + theta*dt*K`` is an addition of ``data`` arrays.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from solver.fem.geometry import CellGeometry
from solver.mesh.distributed import DistributedMesh


class Assembler:
    """Assembles the owned rows of matrices and vectors on a distributed mesh."""

    def __init__(self, mesh: DistributedMesh, degree: int = 2):
        self.mesh = mesh
        cells = mesh.cells
        self.geometry = CellGeometry(mesh.cell_type, mesh.coords, cells, degree)
        nc, nn = cells.shape
        n_owned, n_local = mesh.n_owned, mesh.n_local
        rows = np.repeat(cells, nn, axis=1).ravel()
        cols = np.tile(cells, (1, nn)).ravel()
        keep = rows < n_owned
        keys = rows[keep].astype(np.int64) * n_local + cols[keep]
        unique, inverse = np.unique(keys, return_inverse=True)
        self.nnz = len(unique)
        index_type = np.int32 if self.nnz < 2**31 - 1 else np.int64
        # entries of rows owned elsewhere go to a dump slot at index nnz
        self.entry_map = np.full(nc * nn * nn, self.nnz, dtype=index_type)
        self.entry_map[keep] = inverse
        self.indices = (unique % n_local).astype(index_type)
        self.indptr = np.zeros(n_owned + 1, dtype=index_type)
        np.cumsum(np.bincount(unique // n_local, minlength=n_owned), out=self.indptr[1:])
        self.shape = (n_owned, n_local)

    def release_matrix_workspace(self) -> None:
        """Free what only volume matrices need (the entry map and the gradients), once they are
        built; vectors (loads) can still be assembled."""
        self.entry_map = None
        self.geometry.grad = None

    def matrix(self, element_matrices: np.ndarray) -> sp.csr_matrix:
        if self.entry_map is None:
            raise RuntimeError("the matrix workspace of this assembler was released")
        data = np.bincount(self.entry_map, weights=element_matrices.ravel(), minlength=self.nnz + 1)
        return sp.csr_matrix((data[: self.nnz], self.indices, self.indptr), shape=self.shape)

    def matrix_from_entries(self, rows, cols, values) -> sp.csr_matrix:
        """A matrix with this pattern from (row, col, value) triplets whose pairs lie in the
        pattern (e.g. facet terms); entries of rows owned elsewhere are dropped."""
        keep = rows < self.shape[0]
        rows, cols, values = rows[keep], cols[keep], values[keep]
        row_of_slot = np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self.indptr))
        slot_keys = row_of_slot * self.shape[1] + self.indices  # sorted: CSR order
        keys = rows.astype(np.int64) * self.shape[1] + cols
        slots = np.searchsorted(slot_keys, keys)
        if len(keys) and not np.array_equal(slot_keys[np.minimum(slots, self.nnz - 1)], keys):
            raise ValueError("entries outside the sparsity pattern")
        data = np.bincount(slots, weights=values, minlength=self.nnz)
        return sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape)

    def stiffness(self, k_cell: np.ndarray) -> sp.csr_matrix:
        """K_ij = int grad N_i . k grad N_j, with k per cell: a scalar (n_cells,) or a
        diagonal tensor (n_cells, dim)."""
        g = self.geometry
        w = g.wdet if g.grad.shape[1] > 1 else g.wdet.sum(axis=1, keepdims=True)  # affine: one gradient
        k = np.asarray(k_cell, dtype=float)
        if k.ndim == 1:
            Ke = np.einsum("cq,cqia,cqja->cij", w * k[:, None], g.grad, g.grad, optimize=True)
        else:
            Ke = np.einsum("cq,ca,cqia,cqja->cij", w, k, g.grad, g.grad, optimize=True)
        return self.matrix(Ke)

    def mass(self, rhoc_cell: np.ndarray) -> sp.csr_matrix:
        """M_ij = int rho c N_i N_j, with rho c constant per cell."""
        g = self.geometry
        nn = g.N.shape[1]
        NN = (g.N[:, :, None] * g.N[:, None, :]).reshape(len(g.N), nn * nn)  # (nq, nn*nn)
        Me = ((g.wdet * rhoc_cell[:, None]) @ NN).reshape(-1, nn, nn)
        return self.matrix(Me)

    def lumped(self, M: sp.csr_matrix) -> sp.csr_matrix:
        """Row-sum lumping of M, kept in the shared sparsity pattern (zeros off the diagonal)."""
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        data = np.where(self.indices == rows, np.asarray(M.sum(axis=1)).ravel()[rows], 0.0)
        return sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape)

    def vector(self, element_vectors: np.ndarray) -> np.ndarray:
        """Sum element vectors (nc, nn) into owned entries."""
        out = np.bincount(self.mesh.cells.ravel(), weights=element_vectors.ravel(), minlength=self.mesh.n_local)
        return out[: self.mesh.n_owned]

    def load(self, f, t: float = 0.0) -> np.ndarray:
        """F_i = int f N_i for an expression f(x, t)."""
        g = self.geometry
        return self.vector(g.integrate(f(g.points, t)))
