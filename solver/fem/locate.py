"""Point location: the cell that holds each point and its reference coordinates, and the
finite-element interpolation of nodal values there (vectorised over points). P1 simplices invert
their affine map directly; other cells (Q1, and P2/Q2 with straight or curved edges) by Newton's
method on their isoparametric map from the cell's centre."""

from __future__ import annotations

import numpy as np

from solver.mesh.cells import CELLS


class PointLocator:
    """Finds the cell containing each point and its reference coordinates (vectorised)."""

    def __init__(self, cell_type: str, coords: np.ndarray, cells: np.ndarray):
        from scipy.spatial import cKDTree

        self.ref = CELLS[cell_type]
        self.coords, self.cells = coords, cells
        self.tree = cKDTree(coords[cells].mean(axis=1)) if len(cells) else None

    def _reference(self, X: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Reference coordinates of points p (m, d) in cells with vertices X (m, nn, d)."""
        ref = self.ref
        if ref.affine:
            J = np.swapaxes(X[:, 1:] - X[:, :1], 1, 2)  # (m, d, d)
            return np.linalg.solve(J, (p - X[:, 0])[..., None])[..., 0]
        xi = np.full(p.shape, 1.0 / (p.shape[1] + 1) if ref.simplex else 0.5)
        for _ in range(12):  # Newton on the isoparametric map
            N = ref.shape(xi)
            dN = ref.grad(xi)
            r = np.einsum("mi,mia->ma", N, X) - p
            J = np.einsum("mia,mib->mab", X, dN)
            xi = xi - np.linalg.solve(J, r[..., None])[..., 0]
        return xi

    def _inside(self, xi: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        if self.ref.simplex:
            return np.all(xi >= -tol, axis=1) & (xi.sum(axis=1) <= 1 + tol)
        return np.all((xi >= -tol) & (xi <= 1 + tol), axis=1)

    def locate(self, points: np.ndarray, k: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """(cell index or -1, reference coordinates) for each point."""
        m, d = points.shape
        cell = np.full(m, -1, dtype=np.int64)
        xi = np.zeros((m, d))
        if self.tree is None:
            return cell, xi
        todo = np.arange(m)
        for kk in (k, 128):
            if not len(todo):
                break
            kk = min(kk, len(self.cells))
            with np.errstate(all="ignore"):
                _, cand = self.tree.query(points[todo], k=kk)
            cand = cand.reshape(len(todo), kk)
            found = cand < len(self.cells)  # a point too far for a finite distance has no candidates
            cand = np.where(found, cand, 0)
            for j in range(kk):  # loop over the candidate rank (at most kk), vectorised over points
                c = cand[:, j]
                with np.errstate(all="ignore"):
                    x = self._reference(self.coords[self.cells[c]], points[todo])
                ok = self._inside(x) & found[:, j]
                cell[todo[ok]] = c[ok]
                xi[todo[ok]] = x[ok]
                todo, cand, found = todo[~ok], cand[~ok], found[~ok]
                if not len(todo):
                    break
        return cell, xi

    def interpolate(self, values: np.ndarray, cell: np.ndarray, xi: np.ndarray) -> np.ndarray:
        N = self.ref.shape(xi)
        return np.einsum("mi,mi->m", N, values[self.cells[cell]])
