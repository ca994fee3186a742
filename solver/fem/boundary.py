"""Boundary terms: quadrature on the facets of a named boundary, and the symmetric elimination of
Dirichlet rows and columns from an owned-rows matrix."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from solver.fem.geometry import CellGeometry
from solver.mesh.cells import CELLS
from solver.mesh.distributed import DistributedMesh


class BoundaryTerm:
    """Quadrature on the facets of one named boundary: load vectors ``int g N_i`` and matrix
    entries ``int c N_i N_j`` for coefficients given at the facets' quadrature points."""

    def __init__(self, mesh: DistributedMesh, name: str):
        facets = mesh.boundaries[name]
        self.nodes = facets.nodes
        self.n_owned, self.n_local = mesh.n_owned, mesh.n_local
        facet_type = CELLS[mesh.cell_type].facet_name
        self.geometry = CellGeometry(facet_type, mesh.coords, facets.nodes, degree=2, gradients=False) \
            if len(facets.nodes) else None

    @property
    def empty(self) -> bool:
        """No facet of this boundary on this rank."""
        return self.geometry is None

    def load(self, values) -> np.ndarray:
        """Owned entries of ``int g N_i`` with ``values(points) -> g`` at the quadrature points."""
        if self.empty:
            return np.zeros(self.n_owned)
        g = self.geometry
        full = np.bincount(self.nodes.ravel(), g.integrate(values(g.points)).ravel(), minlength=self.n_local)
        return full[: self.n_owned]

    def mass_entries(self, values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, values) of ``int c N_i N_j`` with ``values(points) -> c`` (local numbering)."""
        if self.empty:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
        g = self.geometry
        Ke = np.einsum("fq,qi,qj->fij", values(g.points) * g.wdet, g.N, g.N)
        nn = self.nodes.shape[1]
        return np.repeat(self.nodes, nn, axis=1).ravel(), np.tile(self.nodes, (1, nn)).ravel(), Ke.ravel()


def constrain(A: sp.csr_matrix, mask: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Symmetric Dirichlet constraint of owned rows ``A`` (local columns).

    Returns ``(A_c, lift, diag)``: ``A_c`` has Dirichlet rows and columns zeroed and the
    original diagonal kept on Dirichlet rows (so it stays SPD and well scaled); ``lift`` holds
    the entries (free row, Dirichlet column) to move to the right-hand side: for prescribed
    values g, solve ``A_c u = b - lift g`` with ``u = g`` on Dirichlet rows (rhs ``diag * g``).
    """
    n_owned = A.shape[0]
    rows = np.repeat(np.arange(n_owned), np.diff(A.indptr))
    cols = A.indices
    dr, dc = mask[rows], mask[cols]
    diag = A.diagonal()
    keep = ~(dr | dc)
    data = np.where(keep, A.data, 0.0)
    on_diag = dr & (cols == rows)
    data[on_diag] = A.data[on_diag]
    A_c = sp.csr_matrix((data, A.indices.copy(), A.indptr.copy()), shape=A.shape)
    A_c.eliminate_zeros()
    lift = sp.csr_matrix((np.where(~dr & dc, A.data, 0.0), A.indices.copy(), A.indptr.copy()), shape=A.shape)
    lift.eliminate_zeros()
    return A_c, lift, diag
