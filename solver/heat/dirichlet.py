"""Dirichlet boundaries: which nodes they fix (consistent on ghosts), and their values at t.
Boundaries apply in case-file order: a node on two of them takes the later one's value."""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from solver.case.records import DirichletBC
from solver.mesh.distributed import DistributedMesh


class DirichletConditions:
    def __init__(self, mesh: DistributedMesh, conditions: list[DirichletBC]):
        self.mesh = mesh
        self.conditions = conditions
        self.names = [bc.name for bc in conditions]
        self.mask = mesh.owned_dirichlet_mask(self.names)  # local, ghosts included
        self.local = np.flatnonzero(self.mask)
        self._nodes = [np.flatnonzero(mesh.owned_dirichlet_mask([name])) for name in self.names]
        # which Dirichlet boundary each local node belongs to (the last one listed wins)
        self.boundary_of = np.zeros(mesh.n_local, dtype=np.int64)
        for i, nodes in enumerate(self._nodes):
            self.boundary_of[nodes] = i
        self.time_dependent = any(bc.value.depends_on_time for bc in conditions)

    def values(self, t: float) -> np.ndarray:
        """Local vector with the prescribed temperatures on Dirichlet nodes, 0 elsewhere."""
        g = np.zeros(self.mesh.n_local)
        for bc, nodes in zip(self.conditions, self._nodes):
            g[nodes] = bc.value(self.mesh.coords[nodes], t)
        return g

    def count(self) -> int:
        """Dirichlet nodes in the whole mesh (collective)."""
        count = np.array([self.mask[: self.mesh.n_owned].sum()], dtype=np.int64)
        self.mesh.comm.Allreduce(MPI.IN_PLACE, count)
        return int(count[0])
