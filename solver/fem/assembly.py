"""Assembly of the rows this rank owns: one CSR sparsity pattern per mesh, shared by every matrix
(so that ``M + theta*dt*K`` is an addition of ``data`` arrays), and compiled loops over cells that
write element matrices and vectors straight into it.

* Pattern: built once, in O(entries) (:mod:`solver.fem.kernels.pattern`): the cells around each owned node
  by a counting sort, then the distinct nodes of those cells with a marker array, sorted within
  each (short) row. No sort of all entry keys, no map from element entries to slots: a cell finds
  its slots by a merged scan of its sorted nodes against each owned row.
* Values: :meth:`Assembler.bilinear` assembles ``int m N_i N_j + int k grad N_i . grad N_j`` (mass,
  conductivity, or both at once: the system matrix ``a M + b K`` in one pass) and
  :meth:`Assembler.load` the vector ``int f N_i``; geometry is computed per cell from the node
  coordinates, so memory beyond the result is a few arrays of one cell.
* Coefficients (conductivity k, mass coefficient rho c, source values) may be given per cell
  ``(n_cells,)``, per cell and component (diagonal anisotropic k: ``(n_cells, dim)``), per
  quadrature point ``(n_cells, n_qp)`` or per point and component ``(n_cells, n_qp, dim)``: the
  kernels read them in the canonical form of :func:`solver.fem.kernels.coefficient`, where a
  constant (extent 1) broadcasts. ``Assembler.quadrature_points()`` gives the points at which to
  evaluate per-point coefficients (e.g. k(T) from T interpolated there).

Without numba (or with ``SOLVER_NUMBA=0``) the same methods run the NumPy path of
:mod:`solver.fem.reference` (``np.unique`` pattern, ``einsum`` element matrices, ``np.bincount``):
the same matrices to rounding, about 10 times slower and with O(cells x entries) memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from solver.fem import kernels
from solver.fem.kernels import NONE, coefficient, csr_pattern
from solver.fem.geometry import CellGeometry
from solver.fem.quadrature import cell_degree, quadrature
from solver.fem.reference import ReferenceAssembly, element_vectors
from solver.mesh.cells import CELLS
from solver.mesh.distributed import DistributedMesh

CHUNK = 1 << 15  # cells per batch where values are evaluated at quadrature points in NumPy

@dataclass(frozen=True)
class NodalConductivity:
    """k (and dk/du, for a Newton Jacobian) at the nodes per material set, (n_sets, n_local,
    components), and the set of each cell (n_cells,; empty: one set)."""

    knode: np.ndarray
    cell_set: np.ndarray
    dknode: np.ndarray | None = None


class Assembler:
    """Assembles the owned rows of matrices and vectors on a distributed mesh."""

    def __init__(self, mesh: DistributedMesh, degree: int | None = None, compiled: bool | None = None):
        """``degree``: of the quadrature (None: :func:`~solver.fem.quadrature.cell_degree`)."""
        self.mesh = mesh
        self.compiled = kernels.AVAILABLE if compiled is None else bool(compiled and kernels.AVAILABLE)
        ref = CELLS[mesh.cell_type]
        self.affine = ref.affine  # P1 simplices: constant Jacobian and gradients
        self.affine_map = ref.affine or (ref.degree > 1 and mesh.affine)  # a constant Jacobian (P1/Q1 as always)
        self.dim = ref.dim
        self.degree = cell_degree(mesh.cell_type, self.affine_map) if degree is None else degree
        degree = self.degree
        points, self.weights = quadrature(mesh.cell_type, degree)
        self.N = np.ascontiguousarray(ref.shape(points))  # (n_qp, nn)
        self.dN = np.ascontiguousarray(ref.grad(points))  # (n_qp, nn, dim)
        self.n_qp = len(self.weights)
        self.n_cells = len(mesh.cells)
        self.cells = np.ascontiguousarray(mesh.cells)
        self.coords = np.ascontiguousarray(mesh.coords, dtype=np.float64)
        n_owned, n_local = mesh.n_owned, mesh.n_local
        self.shape = (n_owned, n_local)
        self.compiled &= self.coords.shape[1] == ref.dim  # the kernels take cells of full dimension
        self.tables = (self.N, self.dN, self.weights)  # the kernels' reference element
        if self.compiled:
            self.reference = None
            self.indptr, self.indices, self.slots = csr_pattern(self.cells, n_owned, n_local)
            self.kernels = kernels.cell_kernels(self.cells.shape[1], ref.dim, self.n_qp, self.affine_map,
                                                ref.affine)
        else:
            self.reference = ReferenceAssembly(self.coords, self.cells, mesh.cell_type, n_owned, n_local, degree)
            self.indptr, self.indices = self.reference.indptr, self.reference.indices
        self.nnz = len(self.indices)

    # ------------------------------------------------------------------------------ matrices
    def cell_mesh(self, start: int = 0, stop: int | None = None) -> tuple:
        """The kernels' mesh: (coords, cells [start, stop), n_owned)."""
        return self.coords, self.cells[start:stop], self.shape[0]

    def target(self, data: np.ndarray) -> tuple:
        """The kernels' CSR target: this pattern, its slot map and ``data`` to add into."""
        return self.indptr, self.indices, self.slots, data

    def csr(self, data: np.ndarray) -> sp.csr_matrix:
        """A matrix of the shared pattern with these values."""
        A = sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape, copy=False)
        A.has_sorted_indices = True
        return A

    def release_matrix_workspace(self) -> None:
        """Free what only volume matrices need on the NumPy path (the entry map and the
        gradients); the compiled path holds nothing beyond the pattern. Vectors can still be
        assembled, and matrices too on the compiled path."""
        if self.reference is not None:
            self.reference.release()

    def bilinear(self, mass=None, conductivity=None, per_point: bool | None = None,
                 out: np.ndarray | None = None) -> sp.csr_matrix:
        """``int m N_i N_j + int sum_d k_d dN_i/dx_d dN_j/dx_d`` in one pass over the cells: the mass
        matrix (``mass`` = rho c), the conduction matrix (``conductivity`` = k, scalar or diagonal)
        or a combination ``a M + b K`` (mass = a rho c, conductivity = b k). Coefficients in any
        of the shapes of :func:`solver.fem.kernels.coefficient`; ``per_point`` resolves a 2-D k
        whose second extent is both dim and n_qp. ``out`` (nnz,): data array to overwrite."""
        nc, nq = self.n_cells, self.n_qp
        m = NONE if mass is None else coefficient(mass, nc, nq, 1)
        k = NONE if conductivity is None else coefficient(conductivity, nc, nq, self.dim, per_point)
        if self.compiled:
            data = np.zeros(self.nnz) if out is None else out
            if out is not None:
                data[:] = 0.0
            missing = self.kernels.matrix(self.cell_mesh(), self.tables, m, k, self.target(data))
            if missing:
                raise RuntimeError(f"{missing} element entries outside the sparsity pattern")
        else:
            data = self.reference.bilinear(None if mass is None else m, None if conductivity is None else k)
            if out is not None:
                out[:] = data
                data = out
        return self.csr(data)

    def stiffness(self, k_cell, per_point: bool | None = None) -> sp.csr_matrix:
        """K_ij = int grad N_i . k grad N_j, with k a scalar or a diagonal tensor per cell
        ((n_cells,), (n_cells, dim)) or per quadrature point ((n_cells, n_qp[, dim]))."""
        return self.bilinear(conductivity=k_cell, per_point=per_point)

    def mass(self, rhoc_cell) -> sp.csr_matrix:
        """M_ij = int rho c N_i N_j, with rho c per cell (n_cells,) or per point (n_cells, n_qp)."""
        return self.bilinear(mass=rhoc_cell)

    def lumped(self, M: sp.csr_matrix) -> sp.csr_matrix:
        """Row-sum lumping of M, kept in the shared sparsity pattern (zeros off the diagonal)."""
        return self.diagonal(np.asarray(M.sum(axis=1)).ravel())

    def diagonal(self, d: np.ndarray) -> sp.csr_matrix:
        """The diagonal matrix of the owned values ``d``, in the shared sparsity pattern."""
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        return self.csr(np.where(self.indices == rows, d[rows], 0.0))

    def nodal_weights(self) -> np.ndarray:
        """Per cell, the weights of its nodes in a diagonal (lumped) mass matrix with a unit
        coefficient, (n_cells, nodes per cell). P1/Q1: ``int_c N_a``, the row sums of the cell's
        mass matrix. P2/Q2: its diagonal ``int_c N_a^2`` scaled to sum to the cell's volume
        (Hinton, Rock and Zienkiewicz): positive on every cell, where the row sums of P2 simplices
        vanish (triangles) or turn negative (tetrahedra) at the vertices."""
        if getattr(self, "_nodal_weights", None) is not None:
            return self._nodal_weights
        ref = CELLS[self.mesh.cell_type]
        degree = 2 if ref.degree == 1 else self.degree
        out = np.empty(self.cells.shape)
        for start in range(0, self.n_cells, CHUNK):
            g = CellGeometry(self.mesh.cell_type, self.coords, self.cells[start:start + CHUNK], degree,
                             gradients=False)
            wdet = np.broadcast_to(g.wdet, (len(g.wdet), len(g.weights)))
            if ref.degree == 1:
                out[start:start + CHUNK] = wdet @ g.N
            else:
                diagonal = wdet @ (g.N * g.N)
                out[start:start + CHUNK] = diagonal * (wdet.sum(axis=1) / diagonal.sum(axis=1))[:, None]
        self._nodal_weights = out
        return out

    def nodal_load(self, f, t: float = 0.0) -> np.ndarray:
        """Owned entries of ``sum_c w_ci f(x_i)``: the load of the nodal quadrature whose weights
        are the lumped mass's (:meth:`nodal_weights`), for an expression f(x, t). Beside that mass
        it heats a uniformly heated body uniformly, where the consistent load of P2 simplices,
        zero (triangles) or negative (tetrahedra) at the vertices, cooled them."""
        values = np.broadcast_to(np.asarray(f(self.coords, t), dtype=float), (len(self.coords),))
        w = self.nodal_weights() * values[self.cells]
        return np.bincount(self.cells.ravel(), weights=w.ravel(), minlength=self.shape[1])[: self.shape[0]]

    def lumped_mass(self, rhoc_cell: np.ndarray) -> sp.csr_matrix:
        """The diagonal mass matrix of :meth:`nodal_weights` with rho c per cell (n_cells,)."""
        w = np.asarray(rhoc_cell, dtype=float)[:, None] * self.nodal_weights()
        d = np.bincount(self.cells.ravel(), weights=w.ravel(), minlength=self.shape[1])[: self.shape[0]]
        return self.diagonal(d)

    def matrix_from_entries(self, rows, cols, values) -> sp.csr_matrix:
        """A matrix with this pattern from (row, col, value) triplets whose pairs lie in the
        pattern; entries of rows owned elsewhere are dropped."""
        rows, cols = np.asarray(rows), np.asarray(cols)
        values = np.asarray(values, dtype=float)
        if not self.compiled:
            return self.csr(self.reference.entries_data(rows, cols, values))
        slots = kernels.entry_slots(self.indptr, self.indices, rows.astype(np.int64), cols.astype(np.int64),
                                    self.shape[0])
        if np.any(slots == -2):
            raise ValueError("entries outside the sparsity pattern")
        keep = slots >= 0
        return self.csr(np.bincount(slots[keep], weights=values[keep], minlength=self.nnz))

    def convection(self, b: np.ndarray, data: np.ndarray, scale: np.ndarray | None = None) -> None:
        """Add ``s_cj int (b . grad N_i) N_j`` into ``data`` (values of this pattern), ``b`` (n_cells,
        n_qp, dim) at the quadrature points, ``scale`` s (n_cells, nodes per cell) or None (1): the
        non-symmetric part of a Newton Jacobian of ``div(k(u) grad u)``, with ``b = dk/du grad u``
        (k at the points), or ``b = grad u`` and ``s = dk/du`` at the nodes (k interpolated)."""
        b = np.ascontiguousarray(b, dtype=np.float64)
        s = np.zeros((0, self.cells.shape[1])) if scale is None else np.ascontiguousarray(scale, dtype=np.float64)
        if self.compiled:
            missing = self.kernels.convection(self.cell_mesh(), self.tables, b, s, self.target(data))
            if missing:
                raise RuntimeError(f"{missing} element entries outside the sparsity pattern")
            return
        g = self.reference.geometry
        element = np.einsum("cqd,cqid,qj,cq->cij", b, np.broadcast_to(g.grad, b.shape[:2] + g.grad.shape[2:]),
                            g.N, np.broadcast_to(g.wdet, b.shape[:2]), optimize=True)
        if scale is not None:
            element *= s[:, None, :]
        data += self.reference.matrix_data(element)

    def nodal_conduction(self, u: np.ndarray, k: NodalConductivity, c: float = 1.0, out: np.ndarray | None = None,
                         sym: np.ndarray | None = None, nonsym: np.ndarray | None = None) -> None:
        """The conduction terms with k interpolated from nodal values on affine cells (compiled),
        in one pass over the cells: adds ``int k_h grad u . grad N_i`` to ``out`` (owned), ``c int
        k_h grad N_j . grad N_i`` to ``sym`` and ``c dk/du(u_j) int N_j grad u . grad N_i`` to
        ``nonsym`` (each None: skipped; ``nonsym`` also without ``k.dknode``). See
        ``nodal_conduction`` in :func:`solver.fem.kernels.cell_kernels`."""
        if not (self.compiled and self.affine):
            raise ValueError("nodal_conduction needs affine cells and the compiled kernels")
        empty = np.zeros(0)
        knode, dknode = k.knode, k.dknode
        nodal = (np.ascontiguousarray(u, dtype=np.float64), knode, knode if dknode is None else dknode, k.cell_set)
        jacobian = (float(c), self.target(empty if sym is None else sym),
                    self.target(empty if nonsym is None or dknode is None else nonsym),
                    sym is not None and sym is nonsym)
        missing = self.kernels.nodal_conduction(self.cell_mesh(), self.tables, float(self.weights.sum()), nodal,
                                                empty if out is None else out, jacobian)
        if missing:
            raise RuntimeError(f"{missing} element entries outside the sparsity pattern")

    # ------------------------------------------------------------------------------ fields at points
    def values_at_points(self, u: np.ndarray) -> np.ndarray:
        """A field (local vector) at the quadrature points, (n_cells, n_qp)."""
        return u[self.cells] @ self.N.T

    def gradients(self, u: np.ndarray) -> np.ndarray:
        """The gradient of a field (local vector) at the quadrature points, (n_cells, n_qp, dim)."""
        return self.values_and_gradients(u, values=False)[1]

    def values_and_gradients(self, u: np.ndarray, values: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """A field (local vector) and its gradient at the quadrature points in one pass:
        (n_cells, n_qp) and (n_cells, n_qp, dim)."""
        out = np.empty((self.n_cells, self.n_qp, self.dim))
        if self.compiled:
            vals = np.empty((self.n_cells, self.n_qp) if values else (0, 0))
            self.kernels.gradient(self.cell_mesh(), self.tables, np.ascontiguousarray(u, dtype=np.float64), out, vals)
            return (vals if values else None), out
        g = self.reference.geometry
        out[:] = np.einsum("cn,cqnd->cqd", u[self.cells], g.grad)
        return (self.values_at_points(u) if values else None), out

    def flux_load(self, flux: np.ndarray) -> np.ndarray:
        """Owned entries of ``int flux . grad N_i``, ``flux`` (n_cells, n_qp, dim) at the quadrature
        points (e.g. k grad u: the conduction part of a residual)."""
        flux = np.ascontiguousarray(flux, dtype=np.float64)
        if self.compiled:
            out = np.zeros(self.shape[0])
            self.kernels.flux_vector(self.cell_mesh(), self.tables, flux, out)
            return out
        g = self.reference.geometry
        element = np.einsum("cqd,cqnd,cq->cn", flux, np.broadcast_to(g.grad, flux.shape[:2] + g.grad.shape[2:]),
                            np.broadcast_to(g.wdet, flux.shape[:2]), optimize=True)
        return self.reference.vector(element)

    # ------------------------------------------------------------------------------ vectors
    def vector(self, element_vectors: np.ndarray) -> np.ndarray:
        """Sum element vectors (nc, nn) into owned entries."""
        out = np.bincount(self.mesh.cells.ravel(), weights=element_vectors.ravel(), minlength=self.mesh.n_local)
        return out[: self.mesh.n_owned]

    def quadrature_points(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Physical coordinates (n, n_qp, gdim) of the quadrature points of cells [start, stop)."""
        cells = self.cells[start:stop]
        if self.compiled:
            out = np.empty((len(cells), self.n_qp, self.coords.shape[1]))
            kernels.quadrature_points(self.coords, cells, self.N, out)
            return out
        return np.matmul(self.N, self.coords[cells])

    def load_values(self, values) -> np.ndarray:
        """Owned entries of ``int f N_i`` from the values of f: a number, per cell (n_cells,),
        or at the quadrature points (n_cells, n_qp)."""
        f = coefficient(values, self.n_cells, self.n_qp, 1, per_point=True)
        if not self.compiled:
            return self.reference.load(f)
        out = np.zeros(self.shape[0])
        self.kernels.vector(self.cell_mesh(), self.tables, f, out)
        return out

    def load(self, f, t: float = 0.0) -> np.ndarray:
        """F_i = int f N_i for an expression f(x, t), evaluated at the quadrature points in
        batches of cells (a constant expression once)."""
        gdim = self.coords.shape[1]
        if getattr(f, "is_constant", False):
            return self.load_values(np.asarray(f(np.zeros((1, 1, gdim)), t), dtype=float).reshape(1, 1, 1))
        if not self.compiled:
            g = self.reference.geometry
            return self.reference.vector(element_vectors(g, coefficient(f(g.points, t), self.n_cells, self.n_qp, 1,
                                                                        per_point=True)))
        out = np.zeros(self.shape[0])
        for start in range(0, self.n_cells, CHUNK):
            stop = min(start + CHUNK, self.n_cells)
            values = coefficient(f(self.quadrature_points(start, stop), t), stop - start, self.n_qp, 1, per_point=True)
            self.kernels.vector(self.cell_mesh(start, stop), self.tables, values, out)
        return out
