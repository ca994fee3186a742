"""Vectorised finite-element assembly of the rows this rank owns (no Python loop over cells).

The sparsity pattern of the owned rows (columns in local numbering) and a map from every
element-matrix entry to its CSR slot are computed once; a matrix is then one
``np.bincount`` over the element matrices, and all matrices share one pattern, so that
``M + theta*dt*K`` is an addition of ``data`` arrays.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from solver.elements import CELLS, quadrature
from solver.mesh import DistributedMesh


def _det_inv(J: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Determinants and inverses of a stack of 2x2 or 3x3 matrices (explicit formulas)."""
    if J.shape[-1] == 2:
        a, b, c, d = J[..., 0, 0], J[..., 0, 1], J[..., 1, 0], J[..., 1, 1]
        det = a * d - b * c
        inv = np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2) / det[..., None, None]
        return det, inv
    if J.shape[-1] == 3:
        cof = np.empty_like(J)
        for i in range(3):  # 3x3 cofactors: loops over matrix indices, not cells
            for j in range(3):
                r = [k for k in range(3) if k != i]
                c = [k for k in range(3) if k != j]
                minor = J[..., r[0], c[0]] * J[..., r[1], c[1]] - J[..., r[0], c[1]] * J[..., r[1], c[0]]
                cof[..., i, j] = minor if (i + j) % 2 == 0 else -minor
        det = np.einsum("...j,...j->...", J[..., 0, :], cof[..., 0, :])
        return det, np.swapaxes(cof, -1, -2) / det[..., None, None]
    if J.shape[-1] == 1:
        return J[..., 0, 0], 1.0 / J
    raise ValueError(J.shape)


class CellGeometry:
    """Quadrature data of a set of cells: |det J| * weights, physical gradients and points."""

    def __init__(self, cell_type: str, coords: np.ndarray, cells: np.ndarray, degree: int = 2,
                 gradients: bool = True):
        ref = CELLS[cell_type]
        self.ref = ref
        self.points_ref, self.weights = quadrature(cell_type, degree)
        self.N = ref.shape(self.points_ref)  # (nq, nn)
        X = coords[cells]  # (nc, nn, gdim)
        dN = ref.grad(self.points_ref)  # (nq, nn, d)
        # batched matmul rather than einsum: BLAS-free small products, but one C loop each
        Xt = X.transpose(0, 2, 1)  # (nc, gdim, nn)
        if ref.affine:
            J = np.matmul(Xt, dN[0])[:, None]  # (nc, 1, gdim, d)
        else:
            J = np.matmul(Xt[:, None], dN[None])  # (nc, nq, gdim, d)
        if J.shape[-1] == J.shape[-2]:
            det, inv = _det_inv(J)
            self.detJ = np.abs(det)
            if gradients:
                # grad_x N_i = J^{-T} grad_ref N_i  ->  (nc, nq|1, nn, gdim)
                dNq = dN[:1] if ref.affine else dN
                self.grad = np.matmul(dNq[None], inv)
        else:  # facets: |J| = sqrt(det(J^T J))
            JtJ = np.einsum("fqab,fqac->fqbc", J, J)
            self.detJ = np.sqrt(np.abs(_det_inv(JtJ)[0])) if J.shape[-1] > 1 else np.sqrt(JtJ[..., 0, 0])
        self.wdet = self.weights[None, :] * self.detJ  # (nc, nq): broadcasts for affine cells
        self.points = np.matmul(self.N, X)  # (nc, nq, gdim)

    def integrate(self, values: np.ndarray) -> np.ndarray:
        """Element vectors of int(values * N_i), values at quadrature points (nc, nq)."""
        return (values * self.wdet) @ self.N


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


def owned_integral(mesh: DistributedMesh, integrand_at_points, degree: int = 4) -> float:
    """Integral over the mesh (owned cells only; collective sum over ranks)."""
    g = CellGeometry(mesh.cell_type, mesh.coords, mesh.owned_cells, degree, gradients=False)
    local = np.array([np.sum(integrand_at_points(g) * g.wdet) if len(mesh.owned_cells) else 0.0])
    total = np.empty(1)
    mesh.comm.Allreduce(local, total, op=MPI.SUM)
    return float(total[0])


def l2_error(mesh: DistributedMesh, u_local: np.ndarray, exact, t: float, degree: int = 5) -> float:
    """|| u_h - u ||_L2 over the whole mesh, with u_h the P1/Q1 interpolant of nodal values."""
    def integrand(g):
        uh = u_local[mesh.owned_cells] @ g.N.T  # (nc, nq)
        return (uh - exact(g.points, t)) ** 2
    return float(np.sqrt(owned_integral(mesh, integrand, degree)))
