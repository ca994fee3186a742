"""Point location: the cell that holds each point and its reference coordinates, and the
finite-element interpolation of nodal values there (vectorised over points). P1 simplices invert
their affine map directly; other cells (Q1, and P2/Q2 with straight or curved edges) by Newton's
method on their isoparametric map from the cell's centre, a point counting as inside only where
Newton converged. Candidates come from a k-d tree of the cells' centres, nearest first; a cell is
tried only where the point lies within its reach (its farthest node from its centre, with room
for a curved edge), so points in holes and outside the mesh cost a tree query, not a solve per
candidate. A point the 128 nearest centres miss (a large cell beside many small ones: a fan of
refined cells about a node) is looked for among every cell whose reach holds it: the cells are
grouped by their reach in powers of two, and a k-d tree of each group's centres is queried with
the group's largest reach, so that a query returns cells of about that size near the point."""

from __future__ import annotations

from itertools import chain

import numpy as np

from solver.mesh.cells import CELLS


class PointLocator:
    """Finds the cell containing each point and its reference coordinates (vectorised)."""

    def __init__(self, cell_type: str, coords: np.ndarray, cells: np.ndarray):
        from scipy.spatial import cKDTree

        self.ref = CELLS[cell_type]
        self.coords, self.cells = coords, cells
        self.tree = self.radius = self.centres = None
        self.groups: list | None = None  # (tree, cells, reach) by reach in powers of two, made when needed
        if len(cells):
            X = coords[cells]
            self.centres = centres = X.mean(axis=1)
            self.tree = cKDTree(centres)
            # no point of a cell lies farther from its centre than this (its nodes' farthest, with
            # room for a curved edge's bulge): candidates beyond it are skipped without a solve
            self.radius = 1.25 * np.sqrt(((X - centres[:, None]) ** 2).sum(axis=2).max(axis=1)) + 1e-12

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
        # where Newton did not converge (a point far from the cell), xi means nothing: NaN, outside
        miss = np.einsum("mi,mia->ma", ref.shape(xi), X) - p
        size = np.ptp(X, axis=1).max(axis=1)
        xi[~(np.linalg.norm(miss, axis=1) <= 1e-8 * size)] = np.nan
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
        reach = float(self.radius.max())
        for kk in (k, 128):
            if not len(todo):
                break
            kk = min(kk, len(self.cells))
            with np.errstate(all="ignore"):
                dist, cand = self.tree.query(points[todo], k=kk, distance_upper_bound=reach)
            dist, cand = dist.reshape(len(todo), kk), cand.reshape(len(todo), kk)
            # a candidate counts where the point is within its cell's reach (missing ones: index n)
            found = cand < len(self.cells)
            cand = np.where(found, cand, 0)
            found &= dist <= self.radius[cand]
            near = found.any(axis=1) | (kk < len(self.cells)) & (dist[:, -1] <= reach)
            todo, cand, found = todo[near], cand[near], found[near]  # the others lie outside every cell
            for j in range(kk):  # loop over the candidate rank (at most kk), vectorised over points
                rows = np.flatnonzero(found[:, j])  # only the points within this candidate's reach
                c = cand[rows, j]
                with np.errstate(all="ignore"):
                    x = self._reference(self.coords[self.cells[c]], points[todo[rows]])
                inside = self._inside(x)
                hit = rows[inside]
                cell[todo[hit]] = c[inside]
                xi[todo[hit]] = x[inside]
                ok = np.zeros(len(todo), dtype=bool)
                ok[hit] = True
                todo, cand, found = todo[~ok], cand[~ok], found[~ok]
                if not len(todo) or not found[:, j + 1:].any():
                    break
        if len(todo) and len(self.cells) > 128:
            self._every_candidate(points, todo, cell, xi)
        return cell, xi

    def _every_candidate(self, points: np.ndarray, todo: np.ndarray, cell: np.ndarray, xi: np.ndarray) -> None:
        """The points ``todo`` in any cell whose reach holds them (fills ``cell`` and ``xi``)."""
        from scipy.spatial import cKDTree

        if self.groups is None:
            group = np.floor(np.log2(self.radius)).astype(np.int64)
            self.groups = []
            for g in np.unique(group):
                members = np.flatnonzero(group == g)
                self.groups.append((cKDTree(self.centres[members]), members, float(self.radius[members].max())))
        for tree, members, reach in self.groups:
            if not len(todo):
                return
            near = tree.query_ball_point(points[todo], reach)
            lengths = np.fromiter(map(len, near), dtype=np.int64, count=len(near))
            if not lengths.any():
                continue
            c = members[np.fromiter(chain.from_iterable(near), dtype=np.int64, count=int(lengths.sum()))]
            row = np.repeat(np.arange(len(todo)), lengths)
            close = np.linalg.norm(points[todo[row]] - self.centres[c], axis=1) <= self.radius[c]
            row, c = row[close], c[close]
            with np.errstate(all="ignore"):
                x = self._reference(self.coords[self.cells[c]], points[todo[row]])
            inside = np.flatnonzero(self._inside(x))
            rows, first = np.unique(row[inside], return_index=True)  # the first cell that holds each point
            cell[todo[rows]] = c[inside[first]]
            xi[todo[rows]] = x[inside[first]]
            todo = np.delete(todo, rows)

    def interpolate(self, values: np.ndarray, cell: np.ndarray, xi: np.ndarray) -> np.ndarray:
        N = self.ref.shape(xi)
        return np.einsum("mi,mi->m", N, values[self.cells[cell]])
