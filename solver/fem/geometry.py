"""Geometry of cells and facets at quadrature points: Jacobians, |det J| times the weights,
physical gradients of the shape functions and the points themselves (vectorised over cells)."""

from __future__ import annotations

import numpy as np

from solver.fem.quadrature import quadrature
from solver.mesh.cells import CELLS


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
                 gradients: bool = True, rule: tuple[np.ndarray, np.ndarray] | None = None):
        """``rule``: (reference points, weights) in place of the quadrature of ``degree``."""
        ref = CELLS[cell_type]
        self.ref = ref
        self.points_ref, self.weights = quadrature(cell_type, degree) if rule is None else rule
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
