"""The heat equation rho*c du/dt = div(k grad u) + f discretised on a distributed mesh.

Semi-discrete form ``M du/dt + K u = F(t)`` on the owned rows, with Dirichlet nodes
constrained symmetrically (:func:`constrain`) and insulated boundaries as the natural
(zero-flux) condition.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from solver.assembly import Assembler
from solver.expressions import Expression
from solver.mesh import DistributedMesh


class HeatProblem:
    def __init__(self, mesh: DistributedMesh, material: dict, source, boundaries: dict):
        self.mesh = mesh
        self.assembler = Assembler(mesh)
        n_cells = len(mesh.cells)
        k = np.full(n_cells, float(material["k"]))
        rhoc = np.full(n_cells, float(material["rho"]) * float(material["c"]))
        self.K = self.assembler.stiffness(k)
        self.M = self.assembler.mass(rhoc)
        self.source = Expression(source)
        self._load_cache = None
        # Dirichlet boundaries in case-file order: a node on two boundaries takes the later value.
        self.dirichlet = [(name, Expression(bc["value"])) for name, bc in boundaries.items()
                          if bc["type"] == "dirichlet"]
        self.dirichlet_mask = mesh.owned_dirichlet_mask([name for name, _ in self.dirichlet])
        self._dirichlet_nodes = []
        for name, _ in self.dirichlet:
            on = mesh.owned_dirichlet_mask([name])
            self._dirichlet_nodes.append(np.flatnonzero(on))

    @property
    def time_dependent_dirichlet(self) -> bool:
        return any(expr.depends_on_time for _, expr in self.dirichlet)

    def dirichlet_values(self, t: float) -> np.ndarray:
        """Local vector with the prescribed temperatures on Dirichlet nodes, 0 elsewhere."""
        g = np.zeros(self.mesh.n_local)
        for (_, expr), nodes in zip(self.dirichlet, self._dirichlet_nodes):
            g[nodes] = expr(self.mesh.coords[nodes], t)
        return g

    def load(self, t: float) -> np.ndarray:
        """Owned load vector F(t) = int f N_i (cached when f does not depend on t)."""
        if self.source.is_constant and self.source(np.zeros((1, 1)))[0] == 0.0:
            return np.zeros(self.mesh.n_owned)
        if not self.source.depends_on_time:
            if self._load_cache is None:
                self._load_cache = self.assembler.load(self.source, 0.0)
            return self._load_cache
        return self.assembler.load(self.source, t)


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
