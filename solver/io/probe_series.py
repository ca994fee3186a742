"""Probes recorded during a run: each point is evaluated by the one rank whose owned cells hold
it (finite-element interpolation), and the values reach rank 0 with one small Allreduce."""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from solver.errors import CaseError
from solver.fem.locate import PointLocator

MAX_PENDING = 1 << 20  # values (8 MiB) kept between writes: more reach the results file at the next step


class ProbeSeries:
    def __init__(self, mesh, points):
        self.mesh = mesh
        self.points = np.asarray(points, dtype=float)
        owned = mesh.owned_cells
        locator = PointLocator(mesh.cell_type, mesh.coords, owned)
        cell, xi = locator.locate(self.points)
        rank = np.where(cell >= 0, mesh.comm.rank, mesh.comm.size)
        mesh.comm.Allreduce(MPI.IN_PLACE, rank, op=MPI.MIN)  # lowest rank holding a point evaluates it
        missing = np.flatnonzero(rank == mesh.comm.size)
        if len(missing):
            p = ", ".join(f"{c:.12g}" for c in self.points[missing[0]])
            raise CaseError(f"output.probes: point ({p}) is outside the mesh")
        self.mine = np.flatnonzero(rank == mesh.comm.rank)
        self.locator, self.cell, self.xi = locator, cell[self.mine], xi[self.mine]
        self.times: list[float] = []
        self.rows: list[np.ndarray] = []

    def record(self, u: np.ndarray, t: float) -> None:
        values = np.zeros(len(self.points))
        if len(self.mine):
            values[self.mine] = self.locator.interpolate(u, self.cell, self.xi)
        self.mesh.comm.Allreduce(MPI.IN_PLACE, values)
        self.times.append(float(t))
        self.rows.append(values)

    @property
    def full(self) -> bool:
        """Whether the rows recorded since the last :meth:`take` hold :data:`MAX_PENDING` values
        or more (the same on every rank: every rank records every row)."""
        return len(self.rows) * max(1, len(self.points)) >= MAX_PENDING

    def take(self):
        """The rows recorded since the last call: (times, values)."""
        times, rows = np.array(self.times), np.array(self.rows).reshape(-1, len(self.points))
        self.times, self.rows = [], []
        return times, rows
