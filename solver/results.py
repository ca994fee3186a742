"""Reading results files from Python (notebooks, scripts) and finite-element point evaluation.

    from solver import results
    r = results.open("outputs/plate/plate.h5")
    r.points, r.cells, r.cell_type        # mesh in canonical (file) order
    r.times, r.steps                      # one entry per snapshot
    T = r.temperature(-1)                 # last snapshot, read on demand
    r.probe([[0.1, 0.05]], -1)            # interpolated values at points
    r.case                                # the resolved case as a dict

Everything is read lazily from the HDF5 file with plain (serial) h5py.
"""

from __future__ import annotations

import tomllib
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from solver.elements import CELLS
from solver.errors import CaseError


class Results:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise CaseError(f"{self.path}: results file not found")
        if self.path.is_dir():
            raise CaseError(f"{self.path}: is a directory, expected a results .h5 file")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError:
            raise CaseError(f"{self.path}: not an HDF5 file (expected a results .h5 file of this solver)") from None
        if "mesh/geometry" not in self.file or "fields/temperature" not in self.file or "time" not in self.file:
            self.file.close()
            raise CaseError(f"{self.path}: not a results file of this solver (no /mesh and /fields/temperature)")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.file.close()

    @cached_property
    def points(self) -> np.ndarray:
        return self.file["mesh/geometry"][()]

    @cached_property
    def cells(self) -> np.ndarray:
        return self.file["mesh/topology"][()]

    @property
    def cell_type(self) -> str:
        return str(self.file["mesh/topology"].attrs["cell_type"])

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    @cached_property
    def times(self) -> np.ndarray:
        return self.file["time"][()]

    @cached_property
    def steps(self) -> np.ndarray:
        return self.file["step"][()]

    @property
    def attrs(self) -> dict:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in self.file.attrs.items()}

    @cached_property
    def case(self) -> dict:
        return tomllib.loads(self.attrs["case"])

    def index(self, step: int | None = None, time: float | None = None) -> int:
        """Snapshot index from a position (negative counts from the end) or the nearest time."""
        n = len(self.times)
        if n == 0:
            raise CaseError(f"{self.path}: holds no snapshots")
        if time is not None:
            if not self.times[0] - 1e-12 <= time <= self.times[-1] + 1e-12:
                raise CaseError(f"--time {time:g}: outside the times in {self.path.name} "
                                f"({self.times[0]:g} to {self.times[-1]:g})")
            return int(np.argmin(np.abs(self.times - time)))
        step = -1 if step is None else step
        if not -n <= step < n:
            raise CaseError(f"--step {step}: {self.path.name} has {n} snapshots (0..{n - 1}, or -{n}..-1)")
        return step % n

    def temperature(self, index: int = -1) -> np.ndarray:
        i = self.index(index)
        return self.file[f"fields/temperature/{i:06d}"][()]

    @cached_property
    def locator(self) -> "PointLocator":
        return PointLocator(self.cell_type, self.points, self.cells)

    def probe(self, points, index: int = -1) -> np.ndarray:
        """Finite-element interpolation of the temperature at ``points`` (outside: CaseError)."""
        pts = np.atleast_2d(np.asarray(points, dtype=float))
        cell, xi = self.locator.locate(pts)
        outside = np.flatnonzero(cell < 0)
        if len(outside):
            p = ", ".join(f"{c:g}" for c in pts[outside[0]])
            raise CaseError(f"point ({p}) is outside the mesh of {self.path.name}")
        return self.locator.interpolate(self.temperature(index), cell, xi)


def open(path: str | Path) -> Results:  # noqa: A001 - the natural name: results.open(path)
    return Results(path)


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
        xi = np.full(p.shape, 0.5)
        for _ in range(12):  # Newton on the multilinear map
            N = _shape_many(ref, xi)
            dN = _grad_many(ref, xi)
            r = np.einsum("mi,mia->ma", N, X) - p
            J = np.einsum("mia,mib->mab", X, dN)
            xi = xi - np.linalg.solve(J, r[..., None])[..., 0]
        return xi

    def _inside(self, xi: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        if self.ref.affine:
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
            _, cand = self.tree.query(points[todo], k=kk)
            cand = cand.reshape(len(todo), kk)
            for j in range(kk):  # loop over the candidate rank (at most kk), vectorised over points
                c = cand[:, j]
                x = self._reference(self.coords[self.cells[c]], points[todo])
                ok = self._inside(x)
                cell[todo[ok]] = c[ok]
                xi[todo[ok]] = x[ok]
                todo, cand = todo[~ok], cand[~ok]
                if not len(todo):
                    break
        return cell, xi

    def interpolate(self, values: np.ndarray, cell: np.ndarray, xi: np.ndarray) -> np.ndarray:
        N = _shape_many(self.ref, xi)
        return np.einsum("mi,mi->m", N, values[self.cells[cell]])


def _shape_many(ref, xi):
    """Shape functions at one reference point per row: (m, nn)."""
    if ref.affine:
        return np.column_stack([1.0 - xi.sum(axis=1), xi])
    v = ref.vertices
    return np.prod(np.where(v[None] == 1, xi[:, None, :], 1.0 - xi[:, None, :]), axis=2)


def _grad_many(ref, xi):
    """Reference gradients at one point per row: (m, nn, d)."""
    v = ref.vertices
    factors = np.where(v[None] == 1, xi[:, None, :], 1.0 - xi[:, None, :])
    out = np.empty(factors.shape)
    for d in range(ref.dim):  # loop over space dimensions only
        out[..., d] = np.where(v[None, :, d] == 1, 1.0, -1.0) * np.prod(np.delete(factors, d, axis=2), axis=2)
    return out

