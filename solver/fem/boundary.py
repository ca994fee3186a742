"""Boundary terms: quadrature on the facets of a named boundary (loads ``int g N_i`` and matrices
``int c N_i N_j`` added straight into the shared pattern by the compiled kernels), and the
symmetric elimination of Dirichlet rows and columns from an owned-rows matrix."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from solver.fem import kernels
from solver.fem.geometry import CellGeometry
from solver.fem.kernels import coefficient
from solver.fem.quadrature import cell_degree, quadrature
from solver.fem.reference import reference_slots
from solver.mesh.cells import CELLS
from solver.mesh.distributed import DistributedMesh


class BoundaryTerm:
    """Quadrature on the facets of one named boundary: load vectors ``int g N_i`` and matrix
    entries ``int c N_i N_j`` for coefficients given at the facets' quadrature points
    (``values(points)`` with points (n_facets, n_qp, gdim) -> (n_facets, n_qp), or a number)."""

    def __init__(self, mesh: DistributedMesh, name: str, compiled: bool | None = None, nodal: bool = False):
        """``nodal``: the facets' nodal quadrature (:func:`nodal_rule`) in place of Gauss points:
        loads at the nodes and a diagonal ``int c N_i N_j``, beside a lumped mass."""
        facets = mesh.boundaries[name]
        self.nodes = np.ascontiguousarray(facets.nodes, dtype=mesh.cells.dtype)
        self.n_owned, self.n_local = mesh.n_owned, mesh.n_local
        self.compiled = kernels.AVAILABLE if compiled is None else bool(compiled and kernels.AVAILABLE)
        self.facet_type = facet_type = CELLS[mesh.cell_type].facet_name
        ref = CELLS[facet_type]
        cell = CELLS[mesh.cell_type]
        self.degree = cell_degree(facet_type, cell.affine or (cell.degree > 1 and mesh.affine))
        rule = nodal_rule(facet_type) if nodal else None
        points, self.weights = rule if nodal else quadrature(facet_type, self.degree)
        self.points_ref = points
        self.N = np.ascontiguousarray(ref.shape(points))
        self.dN = np.ascontiguousarray(ref.grad(points))
        self.coords = np.ascontiguousarray(mesh.coords, dtype=np.float64)
        self.geometry = None
        self._pattern_slots: tuple | None = None  # (indptr, indices, slots) of the last pattern
        self._interpolation: sp.csr_matrix | None = None  # the field at the points, built at first use
        if self.empty:
            self.points = np.empty((0, len(self.weights), self.coords.shape[1]))
        elif self.compiled:
            self.points = np.empty((len(self.nodes), len(self.weights), self.coords.shape[1]))
            kernels.quadrature_points(self.coords, self.nodes, self.N, self.points)
            self.wdet = np.empty((len(self.nodes), len(self.weights)))  # weights times measures
            kernels.facet_measures(self.coords, self.nodes, self.dN, self.weights, self.wdet)
        else:
            self.geometry = CellGeometry(facet_type, self.coords, self.nodes, self.degree, gradients=False, rule=rule)
            self.points = self.geometry.points

    def _slots(self, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """The slots of the facets' entries in this pattern (-1 for rows owned elsewhere), found
        once per pattern: a matrix added every Newton iteration needs no search."""
        cached = self._pattern_slots
        if cached is None or cached[0] is not indptr or cached[1] is not indices:
            nn = self.nodes.shape[1]
            rows = np.repeat(self.nodes, nn, axis=1).astype(np.int64).ravel()
            cols = np.tile(self.nodes, (1, nn)).astype(np.int64).ravel()
            slots = kernels.entry_slots(indptr, indices, rows, cols, self.n_owned)
            if np.any(slots == -2):
                raise ValueError("facet entries outside the sparsity pattern")
            cached = self._pattern_slots = (indptr, indices, slots.reshape(len(self.nodes), nn * nn))
        return cached[2]

    def values_at_points(self, u: np.ndarray) -> np.ndarray:
        """A field (local vector) at the facets' quadrature points, (n_facets, n_qp): one product
        with an interpolation matrix built at the first call."""
        if self._interpolation is None:
            nf, nn = self.nodes.shape
            nq = len(self.weights)
            rows = np.repeat(np.arange(nf * nq), nn)
            cols = np.repeat(self.nodes, nq, axis=0).ravel()
            vals = np.tile(self.N, (nf, 1)).ravel()
            self._interpolation = sp.csr_matrix((vals, (rows, cols)), shape=(nf * nq, self.n_local))
        return (self._interpolation @ u).reshape(len(self.nodes), len(self.weights))

    @property
    def empty(self) -> bool:
        """No facet of this boundary on this rank."""
        return len(self.nodes) == 0

    def _values(self, values) -> np.ndarray:
        v = values(self.points) if callable(values) else values
        return coefficient(v, len(self.nodes), len(self.weights), 1, per_point=True)

    def load(self, values) -> np.ndarray:
        """Owned entries of ``int g N_i`` with ``values(points) -> g`` at the quadrature points."""
        out = np.zeros(self.n_owned)
        if self.empty:
            return out
        g = self._values(values)
        if self.compiled:
            kernels.facet_vector(self.nodes, self.n_owned, self.N, self.wdet, g, out)
            return out
        element = self.geometry.integrate(np.broadcast_to(g[:, :, 0], self.geometry.wdet.shape))
        full = np.bincount(self.nodes.ravel(), element.ravel(), minlength=self.n_local)
        return full[: self.n_owned]

    def add_mass(self, values, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray) -> None:
        """Add ``int c N_i N_j`` (owned rows) into ``data``, the values of a matrix with the CSR
        pattern (indptr, indices) of an assembler of the same mesh."""
        if len(indptr) != self.n_owned + 1:
            raise ValueError(f"a pattern of {len(indptr) - 1} rows for a mesh of {self.n_owned} owned nodes")
        if self.empty:
            return
        if self.compiled:
            kernels.facet_matrix(self.nodes, self.N, self.wdet, self._values(values), self._slots(indptr, indices),
                                 data)
            return
        rows, cols, vals = self.mass_entries(values)
        keep = rows < self.n_owned
        slots = reference_slots(indptr, indices, self.n_local, rows[keep], cols[keep])
        data += np.bincount(slots, weights=vals[keep], minlength=len(data))

    def mass_entries(self, values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, values) of ``int c N_i N_j`` with ``values(points) -> c`` (local numbering;
        the NumPy path)."""
        if self.empty:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
        g = self.geometry if self.geometry is not None else CellGeometry(
            self.facet_type, self.coords, self.nodes, self.degree, gradients=False,
            rule=(self.points_ref, self.weights))
        c = np.broadcast_to(self._values(values)[:, :, 0], g.wdet.shape)
        Ke = np.einsum("fq,qi,qj->fij", c * g.wdet, g.N, g.N)
        nn = self.nodes.shape[1]
        return np.repeat(self.nodes, nn, axis=1).ravel(), np.tile(self.nodes, (1, nn)).ravel(), Ke.ravel()


def nodal_rule(facet_type: str) -> tuple[np.ndarray, np.ndarray]:
    """The nodal quadrature of a reference facet: its nodes, weighted by the diagonal of its mass
    matrix scaled to its measure (Hinton, Rock and Zienkiewicz, as the lumped mass of the cells):
    positive at every node, where ``int N_i`` of a 6-node triangle vanishes at its corners (a flux
    into a face of quadratic tetrahedra reached their corners only by conduction)."""
    ref = CELLS[facet_type]
    points, weights = quadrature(facet_type, 2 * max(ref.degree, 1))
    N = ref.shape(points)
    diagonal = weights @ (N * N)
    return np.asarray(ref.vertices, dtype=float), diagonal * (weights.sum() / diagonal.sum())


def constrain(A: sp.csr_matrix, mask: np.ndarray,
              compiled: bool | None = None) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Symmetric Dirichlet constraint of owned rows ``A`` (local columns).

    Returns ``(A_c, lift, diag)``: ``A_c`` has Dirichlet rows and columns zeroed and the
    original diagonal kept on Dirichlet rows (so it stays SPD and well scaled); ``lift`` holds
    the entries (free row, Dirichlet column) to move to the right-hand side: for prescribed
    values g, solve ``A_c u = b - lift g`` with ``u = g`` on Dirichlet rows (rhs ``diag * g``).
    Exact zeros are left out of both (``compiled``, None: where numba is: one pass over the rows;
    else NumPy).
    """
    n_owned = A.shape[0]
    if kernels.AVAILABLE if compiled is None else (compiled and kernels.AVAILABLE):
        A = A.tocsr()
        ip_c, ind_c, dat_c, ip_l, ind_l, dat_l, diag = kernels.constrain_kernel(
            A.indptr, A.indices, A.data, np.ascontiguousarray(mask, dtype=np.bool_), n_owned)
        A_c = sp.csr_matrix((dat_c, ind_c, ip_c.astype(ind_c.dtype)), shape=A.shape, copy=False)
        lift = sp.csr_matrix((dat_l, ind_l, ip_l.astype(ind_l.dtype)), shape=A.shape, copy=False)
        if A.has_sorted_indices:
            A_c.has_sorted_indices = lift.has_sorted_indices = True
        return A_c, lift, diag
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
