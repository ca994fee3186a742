"""The heat equation rho*c du/dt = div(k grad u) + f discretised on a distributed mesh.

Semi-discrete form on the owned rows::

    M du/dt + (K + K_R) u = F(t) = F_f(t) + F_N(t) + F_R(t)

* ``K``: conduction with a (diagonal, possibly anisotropic) conductivity per cell;
* Robin / convection boundaries ``-k du/dn = h (u - T_inf)``: ``K_R = int h N_i N_j`` and
  ``F_R = int h T_inf N_i`` over their facets;
* Neumann boundaries with heat flux q into the body: ``F_N = int q N_i``;
* Dirichlet nodes are constrained symmetrically (:func:`constrain`); boundaries that are
  not listed are insulated (the natural condition).

Materials: ``material`` everywhere, then each ``region`` (a box, tested on cell centroids)
overrides k, rho or c where it applies, later regions winning.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from solver.assembly import Assembler, CellGeometry
from solver.elements import CELLS
from solver.expressions import Expression
from solver.mesh import DistributedMesh


def cell_materials(mesh: DistributedMesh, material: dict, regions: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell conductivity (n_cells, dim) and rho*c (n_cells,)."""
    dim = mesh.dim
    n = len(mesh.cells)
    k = np.broadcast_to(np.asarray(material["k"], dtype=float), (dim,))
    kk = np.tile(k, (n, 1))
    rho = np.full(n, float(material["rho"]))
    c = np.full(n, float(material["c"]))
    centroids = mesh.coords[mesh.cells].mean(axis=1)
    for region in regions.values():
        inside = np.ones(n, dtype=bool)
        if region.get("group") is not None:
            inside &= mesh.cell_tags == mesh.groups["region"][region["group"]]
        for axis, name in enumerate("xyz"[:dim]):
            if region.get(name) is not None:
                lo, hi = region[name]
                inside &= (centroids[:, axis] >= lo) & (centroids[:, axis] <= hi)
        if region.get("k") is not None:
            kk[inside] = np.broadcast_to(np.asarray(region["k"], dtype=float), (dim,))
        if region.get("rho") is not None:
            rho[inside] = region["rho"]
        if region.get("c") is not None:
            c[inside] = region["c"]
    return kk, rho * c


class BoundaryTerm:
    """Quadrature on the facets of one named boundary (owned rows only are kept)."""

    def __init__(self, mesh: DistributedMesh, name: str):
        facets = mesh.boundaries[name]
        self.nodes = facets.nodes
        facet_type = CELLS[mesh.cell_type].facet_name
        self.geometry = CellGeometry(facet_type, mesh.coords, facets.nodes, degree=2, gradients=False) \
            if len(facets.nodes) else None

    def element_vectors(self, values_at_points: np.ndarray) -> np.ndarray:
        return self.geometry.integrate(values_at_points)


class HeatProblem:
    def __init__(self, mesh: DistributedMesh, case_values: dict):
        self.mesh = mesh
        self.assembler = Assembler(mesh)
        v = case_values
        self.k_cell, self.rhoc_cell = cell_materials(mesh, v["material"], v.get("region", {}))
        self.K_conduction = self.assembler.stiffness(self.k_cell)
        self.M = self.assembler.mass(self.rhoc_cell)
        if v["time"].get("mass") == "lumped":  # row sums on the diagonal, same sparsity pattern
            self.M = self.assembler.lumped(self.M)
        self.assembler.release_matrix_workspace()  # gradients and entry map: ~140 bytes per DOF in 2D
        self.source = Expression(v["source"]["f"])
        boundaries = v["boundary"]
        self.neumann = [(name, BoundaryTerm(mesh, name), Expression(bc["flux"]))
                        for name, bc in boundaries.items() if bc["type"] == "neumann"]
        self.robin = [(name, BoundaryTerm(mesh, name), Expression(bc["h"]), Expression(bc["T_inf"]))
                      for name, bc in boundaries.items() if bc["type"] == "robin"]
        self._cache: dict = {}
        # a heat transfer coefficient h(t) makes the system matrix change from step to step
        self.time_dependent_matrix = any(h.depends_on_time for _, _, h, _ in self.robin)
        # Dirichlet boundaries in case-file order: a node on two boundaries takes the later value.
        self.dirichlet = [(name, Expression(bc["value"])) for name, bc in boundaries.items()
                          if bc["type"] == "dirichlet"]
        self.dirichlet_mask = mesh.owned_dirichlet_mask([name for name, _ in self.dirichlet])
        self._dirichlet_nodes = [np.flatnonzero(mesh.owned_dirichlet_mask([name])) for name, _ in self.dirichlet]
        # which Dirichlet boundary each local node belongs to (the last one listed wins)
        self.dirichlet_boundary = np.zeros(mesh.n_local, dtype=np.int64)
        for i, nodes in enumerate(self._dirichlet_nodes):
            self.dirichlet_boundary[nodes] = i
        self.mass_weights = np.asarray(self.M.sum(axis=1)).ravel()  # int rho c N_i: E = m . u

    # ------------------------------------------------------------------ boundary terms
    @property
    def K(self) -> sp.csr_matrix:
        """The stiffness matrix at t = 0 (see :meth:`stiffness`)."""
        return self.stiffness(0.0)

    def stiffness(self, t: float) -> sp.csr_matrix:
        """Owned rows of ``K + K_R(t)``: conduction plus the Robin term ``int h(t) N_i N_j``
        (one sparsity pattern, so their data arrays add; cached unless h depends on t)."""
        if not self.robin:
            return self.K_conduction
        return self._cached("K", self.time_dependent_matrix, t, self._stiffness)

    def _stiffness(self, t: float) -> sp.csr_matrix:
        K = self.K_conduction
        return sp.csr_matrix((K.data + self._robin_matrix(t).data, K.indices, K.indptr), shape=K.shape)

    def robin_uptake(self, name: str, t: float) -> np.ndarray:
        """``int h(t) N_i`` over Robin boundary ``name``: the uptake h u of its flow h (T_inf - u)."""
        term, h = next((term, h) for n, term, h, _ in self.robin if n == name)
        return self._cached(("uptake", name), h.depends_on_time, t,
                            lambda s: self._facet_load(term, lambda p: h(p, s)))

    def _robin_matrix(self, t: float) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for _, term, h, _ in self.robin:
            if term.geometry is None:
                continue
            g = term.geometry
            hq = h(g.points, t) * g.wdet  # (nf, nq)
            Ke = np.einsum("fq,qi,qj->fij", hq, g.N, g.N)
            nn = term.nodes.shape[1]
            rows.append(np.repeat(term.nodes, nn, axis=1).ravel())
            cols.append(np.tile(term.nodes, (1, nn)).ravel())
            vals.append(Ke.ravel())
        if not rows:
            return self.assembler.matrix_from_entries(np.empty(0, int), np.empty(0, int), np.empty(0))
        return self.assembler.matrix_from_entries(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals))

    @property
    def time_dependent_dirichlet(self) -> bool:
        return any(expr.depends_on_time for _, expr in self.dirichlet)

    @property
    def has_dirichlet(self) -> bool:
        count = np.array([self.dirichlet_mask[: self.mesh.n_owned].sum()], dtype=np.int64)
        self.mesh.comm.Allreduce(MPI.IN_PLACE, count)
        return bool(count[0])

    def dirichlet_values(self, t: float) -> np.ndarray:
        """Local vector with the prescribed temperatures on Dirichlet nodes, 0 elsewhere."""
        g = np.zeros(self.mesh.n_local)
        for (_, expr), nodes in zip(self.dirichlet, self._dirichlet_nodes):
            g[nodes] = expr(self.mesh.coords[nodes], t)
        return g

    # ------------------------------------------------------------------ loads
    def _facet_load(self, term: BoundaryTerm, values) -> np.ndarray:
        if term.geometry is None:
            return np.zeros(self.mesh.n_owned)
        full = np.bincount(term.nodes.ravel(), term.element_vectors(values(term.geometry.points)).ravel(),
                           minlength=self.mesh.n_local)
        return full[: self.mesh.n_owned]

    def _cached(self, key, depends_on_time: bool, t: float, compute):
        if depends_on_time:
            if self._cache.get(("at", key)) != t:  # one time level is kept: steps revisit t0 and t1
                self._cache[("at", key)], self._cache[key] = t, compute(t)
            return self._cache[key]
        if key not in self._cache:
            self._cache[key] = compute(0.0)
        return self._cache[key]

    def load_parts(self, t: float) -> dict:
        """Owned load vectors at time t by origin: "source", then each Neumann boundary (flux)
        and each Robin boundary (h T_inf); each is cached when it does not depend on t."""
        parts = {}
        if not (self.source.is_constant and self.source(np.zeros((1, 1)))[0] == 0.0):
            parts["source"] = self._cached("source", self.source.depends_on_time, t,
                                           lambda s: self.assembler.load(self.source, s))
        for name, term, q in self.neumann:
            parts[name] = self._cached(name, q.depends_on_time, t,
                                       lambda s: self._facet_load(term, lambda p: q(p, s)))
        for name, term, h, ti in self.robin:
            parts[name] = self._cached(name, ti.depends_on_time or h.depends_on_time, t,
                                       lambda s: self._facet_load(term, lambda p: h(p, s) * ti(p, s)))
        return parts

    def load(self, t: float) -> np.ndarray:
        """Owned load vector F(t): source, Neumann fluxes and Robin ambient terms."""
        return sum(self.load_parts(t).values(), np.zeros(self.mesh.n_owned))

    @property
    def balance_terms(self) -> list[str]:
        """Names of the heat flows: source, Neumann and Robin boundaries, Dirichlet boundaries."""
        return ["source"] + [n for n, *_ in self.neumann] + [n for n, *_ in self.robin] + \
            [n for n, _ in self.dirichlet]

    def local_flows(self, parts: dict, u: np.ndarray, t: float) -> np.ndarray:
        """This rank's heat flows into the body (W) at time t, in ``balance_terms`` order (Dirichlet: 0).

        From the load vectors themselves (sum_i F_i = int f by construction), so the balance
        is that of the discrete equations; Robin: int h (T_inf - u)."""
        n = self.mesh.n_owned
        out = np.zeros(len(self.balance_terms))
        out[0] = parts["source"].sum() if "source" in parts else 0.0
        for i, (name, *_) in enumerate(self.neumann, start=1):
            out[i] = parts[name].sum()
        for i, (name, *_) in enumerate(self.robin, start=1 + len(self.neumann)):
            out[i] = parts[name].sum() - np.dot(self.robin_uptake(name, t), u[:n])
        return out

    def local_reactions(self, rows: np.ndarray, reactions: np.ndarray) -> np.ndarray:
        """Dirichlet reactions (heat in, J or W) of owned rows, summed per Dirichlet boundary and
        placed in ``balance_terms`` order."""
        out = np.zeros(len(self.balance_terms))
        first = len(self.balance_terms) - len(self.dirichlet)
        out[first:] = np.bincount(self.dirichlet_boundary[rows], weights=reactions, minlength=len(self.dirichlet))
        return out

    def energy(self, u: np.ndarray) -> float:
        """Thermal energy int rho c u (J, relative to u = 0), summed over ranks."""
        e = np.array([np.dot(self.mass_weights, u[: self.mesh.n_owned])])
        self.mesh.comm.Allreduce(MPI.IN_PLACE, e)
        return float(e[0])


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
