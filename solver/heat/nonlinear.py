"""The heat equation with temperature-dependent properties and radiation: residuals and Jacobians.

In enthalpy form, with ``H(T) = int_0^T rho c`` (:mod:`solver.heat.properties`)::

    d/dt int H(u) N_i + Q_i(u, t) = 0,
    Q_i(u, t) = int k_h(u) grad u . grad N_i + sum_Robin int h (u - T_inf) N_i
                + sum_radiation int eps(u) sigma (u_K^4 - T_inf,K^4) N_i - int f N_i - sum_Neumann int q N_i

(``u_K``: u in kelvin; ``k_h(u) = sum_j k(u_j) N_j``: a k depending on T is interpolated from its
nodal values on linear cells, and ``k_h(u) = k(u_h)`` at the quadrature points on quadratic ones,
u_h there limited to its cell's nodal range, see :mod:`solver.heat.properties`). The stored energy
``int H(u)`` then changes by exactly the heat that flows in, so the heat balance closes to the
Newton tolerance. With ``time.mass = "lumped"`` the storage term takes the vertex quadrature ``sum_c
int_c N_a H_c(u_a)`` (a diagonal Jacobian: no oscillations where H has kinks).

The Jacobian ``dQ/du`` is consistent: ``int k_h grad N_j . grad N_i`` plus ``dk/du(u_j) int N_j
grad u . grad N_i`` (``int dk/du(u_h) N_j grad u . grad N_i`` on quadratic cells; not symmetric),
the Robin mass and ``int (4 eps sigma u_K^3 + deps/du sigma (u_K^4 - T_inf,K^4)) N_i N_j``.
Picard iterations drop the non-symmetric term (k lagged): the system is
then symmetric and solved by CG. Every matrix lives in the assembler's one sparsity pattern. A
constant rho c gives S(u) = M u with a capacity matrix (or its lumped diagonal) built once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from solver.case.expressions import Expression, time_stamp
from solver.case.records import Physics, RadiationBC
from solver.case.schema import STEFAN_BOLTZMANN
from solver.fem.assembly import NodalConductivity
from solver.fem.boundary import BoundaryTerm
from solver.heat.problem import HeatLoads
from solver.heat.properties import MaterialField, evaluate
from solver.mesh.distributed import DistributedMesh



@dataclass(frozen=True)
class RadiationTerm:
    """A radiating boundary with the quadrature of its facets."""

    condition: RadiationBC
    facets: BoundaryTerm

    @property
    def name(self) -> str:
        return self.condition.name


@dataclass
class Linearisation:
    """What one evaluation at u gives: the residual part ``a S(u) + c Q(u, t)`` (owned rows) and,
    when asked for, the data of its Jacobian: the whole non-symmetric one (``combined``; None when
    the Jacobian is symmetric) and the symmetric part (when asked for, or when it is the whole)."""

    residual: np.ndarray
    symmetric: np.ndarray | None = None
    combined: np.ndarray | None = None


@dataclass
class _Fields:
    """What depends on u alone (and on t only through time-dependent properties): the flows out
    through conduction and radiation, the storage, and what the Jacobian is assembled from."""

    flows: np.ndarray  # int k_h grad u . grad N_i + radiation losses (owned)
    bad: str  # a property found not > 0 ("" if none)
    k: np.ndarray | None  # at the quadrature points (n_cells, n_qp, components); None when fused
    dk: np.ndarray | None  # dk/du when k depends on u: at the cells' nodes (n_cells, nodes, components), or
    # at the points (n_cells, n_qp, components) on quadratic cells
    gradient: np.ndarray | None  # grad u at the quadrature points; None when fused
    nodal: tuple | None  # the fused path: k and dk/du at the nodes per material set instead
    radiation_slopes: list  # d/du of each radiating boundary's flux at its points, as (eps lagged, the term of
    # d eps/du or None) (None: no facet here)
    T: np.ndarray | None = None  # u at the points (when k is evaluated there)
    storage: np.ndarray | None = None  # S(u) (owned), once asked for
    capacity: np.ndarray | None = None  # C = rho c (at the points, or nodal when lumped); None when constant


class NonlinearHeatProblem(HeatLoads):
    """Residuals ``S(u)`` (storage) and ``Q(u, t)`` (flows out) and their Jacobians."""

    def __init__(self, mesh: DistributedMesh, physics: Physics, enthalpy_zero: float | None = None):
        super().__init__(mesh, physics, linear=False)
        a = self.assembler  # (its matrix workspace is kept: every iteration assembles)
        self.enthalpy_zero = enthalpy_zero  # where tabulated enthalpies count from (None: 0 C)
        self.materials = MaterialField(mesh, physics.material, physics.regions, self.ranges, physics.temperature_unit,
                                       enthalpy_zero)
        # what decides the kind of solve must agree on every rank (a rank's cells may hold only
        # some of the materials): k depending on T (GMRES on the Newton Jacobian), melting (a
        # liquid-fraction field)
        self.k_nonlinear = bool(mesh.comm.allreduce(self.materials.k_nonlinear, op=MPI.LOR))
        self.melting = bool(mesh.comm.allreduce(self.materials.melting, op=MPI.LOR))
        # rho c of an expression: each step checks the temperatures crossed (a collective check)
        self.capacity_tabulated = bool(mesh.comm.allreduce(self.materials.capacity_tabulated, op=MPI.LOR))
        # quadratic basis functions dip below zero, so that k interpolated from positive nodal values
        # may not stay so: a k(T) is evaluated at the quadrature points there
        self.k_at_points = self.k_nonlinear and mesh.reference.name != mesh.reference.linear.name
        # k(T) on linear cells is interpolated from its nodal values; on affine cells with the compiled
        # kernels, residual and Jacobian take one fused pass over the cells each (else the quadrature kernels)
        k_per_cell = bool(mesh.comm.allreduce(self.materials.k_per_cell, op=MPI.LOR))
        self.fused = self.k_nonlinear and a.affine and a.compiled and not k_per_cell and not self.k_at_points
        at_points = not self.k_nonlinear or self.k_at_points
        self.points = a.quadrature_points() if self.materials.needs_points and at_points else None
        self.lumped = physics.lumped_mass
        self.offset = physics.kelvin_offset
        self.radiation = [RadiationTerm(bc, self.boundary_term(bc.name))
                          for bc in physics.of_kind(RadiationBC)]
        n = mesh.n_owned
        rows = np.repeat(np.arange(n), np.diff(a.indptr))
        self.diagonal_slots = np.flatnonzero(a.indices == rows)  # every owned row holds its diagonal
        # a constant rho c: S(u) = M u with the capacity matrix (or its lumped diagonal) built once
        self.capacity = None
        if mesh.comm.allreduce(self.materials.capacity_constant, op=MPI.LAND):
            C = self.materials.capacity()
            if self.lumped:
                w = C[:, None] * self.vertex_weights
                self.capacity = np.bincount(a.cells.ravel(), weights=w.ravel(), minlength=mesh.n_local)[:n]
            else:
                self.capacity = a.bilinear(mass=C).data.copy()
        self.bad = ""  # what went wrong in the last evaluation on this rank (non-positive k, rho c)
        # the fields at the last u, reused by the next evaluation at the same u (a Jacobian after
        # its residual; a step's first residual after the last one of the step before, when no
        # property depends on t)
        properties = [p for s in self.materials.sets for p in s.k]
        properties += [p for term in self.radiation for p in (term.condition.epsilon, term.condition.T_inf)]
        self.fields_depend_on_time = any(isinstance(p, Expression) and p.depends_on_time for p in properties)
        self._last: tuple | None = None  # (t or None, u, fields)

    def count_enthalpy_from(self, anchor: float) -> None:
        """Count the tabulated enthalpies from ``anchor`` (a checkpoint's: its energies continue)."""
        if anchor != self.enthalpy_zero:
            self.enthalpy_zero = anchor
            self.materials.count_enthalpy_from(anchor)
            self._last = None

    @cached_property
    def vertex_weights(self) -> np.ndarray:
        """The weights of the nodal quadrature per cell c and node a (n_cells, nodes per cell):
        ``int_c N_a`` for P1/Q1, the diagonally scaled ones for P2/Q2 (lumped storage, nodal
        averages; :meth:`~solver.fem.assembly.Assembler.nodal_weights`)."""
        return self.assembler.nodal_weights()

    # ------------------------------------------------------------------ storage S(u) = int H(u) N_i
    def _storage(self, u: np.ndarray, T: np.ndarray | None = None):
        """(S(u) owned, C at the points, nodal with the lumped storage, or None when constant);
        ``T``: u at the points, if known."""
        a = self.assembler
        if self.capacity is not None:
            if self.lumped:
                return self.capacity * u[: self.mesh.n_owned], None
            return a.csr(self.capacity) @ u, None
        if self.lumped:
            H, C = self.materials.storage(u[a.cells], lambda c, j: self.mesh.coords[a.cells[c, j]])
            self._check(C, "rho c")
            w = self.vertex_weights
            n = self.mesh.n_local
            S = np.bincount(a.cells.ravel(), weights=(H * w).ravel(), minlength=n)
            Cn = np.bincount(a.cells.ravel(), weights=(C * w).ravel(), minlength=n)
            return S[: self.mesh.n_owned], Cn[: self.mesh.n_owned]
        H, C = self.materials.storage(a.values_at_points(u) if T is None else T,
                                      lambda c, j: a.quadrature_points(c, c + 1)[0, j])
        self._check(C, "rho c")
        return a.load_values(H), C

    def _check(self, values: np.ndarray | bool, what: str) -> None:
        """Remember the first property found not > 0 (values, or whether all of them are)."""
        if not np.all(values > 0) and not self.bad:
            self.bad = f"{what} is not > 0 at a point (or not a number)"

    def storage(self, u: np.ndarray) -> np.ndarray:
        """S_i(u) = int H(u) N_i (owned)."""
        return self._storage(u)[0]

    def energy_local(self, u: np.ndarray) -> float:
        """This rank's part of the stored energy int H(u) (J, relative to u = 0)."""
        return float(self.storage(u).sum())

    def nodal_energy(self, u: np.ndarray) -> np.ndarray:
        """The owned nodes' energies S_i(u), whose sum is :meth:`energy_local`."""
        return self.storage(u)

    def liquid_fraction(self, u: np.ndarray) -> np.ndarray:
        """Owned nodal liquid fraction: the average over the cells around a node (weighted by
        int_c N_a) of each cell material's fraction at the node's temperature."""
        a = self.assembler
        w = self.vertex_weights
        fl = self.materials.liquid_fraction(u[a.cells])
        n = self.mesh.n_local
        num = np.bincount(a.cells.ravel(), weights=(fl * w).ravel(), minlength=n)
        den = np.bincount(a.cells.ravel(), weights=w.ravel(), minlength=n)
        m = self.mesh.n_owned
        return num[:m] / np.where(den[:m] > 0, den[:m], 1.0)

    # ------------------------------------------------------------------ radiation
    def _radiation(self, term: RadiationTerm, u: np.ndarray, t: float):
        """(eps sigma (u_K^4 - T_inf,K^4), (4 eps sigma u_K^3, sigma d eps/du (u_K^4 - T_inf,K^4) or
        None)) at the facets' quadrature points: d/du of the flux is the sum of the two slopes; Picard
        takes the first alone (eps lagged), which is never negative where a rising eps(T) heated by a
        hotter T_inf makes the sum negative and Newton's Jacobian indefinite."""
        f = term.facets
        T = f.values_at_points(u)
        eps, deps = evaluate(term.condition.epsilon, T, f.points, t)
        self.ranges.check(term.condition.epsilon, eps, t, f.points, T)
        TK = T + self.offset
        ambient = term.condition.T_inf(f.points, t) + self.offset
        TK3 = TK * TK * TK
        drive = TK3 * TK - ambient ** 4
        flux = (eps * STEFAN_BOLTZMANN) * drive
        slope = (4.0 * STEFAN_BOLTZMANN) * eps * TK3
        varying = STEFAN_BOLTZMANN * deps * drive if not isinstance(deps, float) or deps else None
        return flux, (slope, varying)

    def radiation_loss(self, term: RadiationTerm, u: np.ndarray, t: float) -> np.ndarray:
        """Owned entries of int eps sigma (u_K^4 - T_inf,K^4) N_i over a radiating boundary (W)."""
        if term.facets.empty:
            return np.zeros(self.mesh.n_owned)
        return term.facets.load(self._radiation(term, u, t)[0])

    def radiation_gross(self, term: RadiationTerm, u: np.ndarray, t: float, ambient_only: bool = False) -> np.ndarray:
        """Owned entries of int eps sigma (u_K^4 + T_inf,K^4) N_i over a radiating boundary (W):
        the size of the two flows whose difference is its loss; ``ambient_only``: of the flow from
        the ambient alone, int eps sigma T_inf,K^4 N_i."""
        if term.facets.empty:
            return np.zeros(self.mesh.n_owned)
        f = term.facets
        T = f.values_at_points(u)
        eps, _ = evaluate(term.condition.epsilon, T, f.points, t)
        ambient = (term.condition.T_inf(f.points, t) + self.offset) ** 4
        surface = 0.0 if ambient_only else (T + self.offset) ** 4
        return f.load(np.abs(eps) * STEFAN_BOLTZMANN * (surface + ambient))

    # ------------------------------------------------------------------ the evaluation
    def linearise(self, u: np.ndarray, t: float, a0: float, c: float, jacobian: bool = True,
                  newton: bool = True, symmetric: bool = True) -> Linearisation:
        """``a0 S(u) + c Q(u, t)`` (owned rows; ``u`` with current ghosts) and, with ``jacobian``,
        the data of ``a0 dS/du + c dQ/du``: with ``newton`` and k depending on u, the whole
        (non-symmetric) Jacobian in ``combined``, and its symmetric part if ``symmetric`` (the
        Picard matrix, and the preconditioner's); otherwise the symmetric Jacobian alone."""
        f = self._fields(u, t, storage=bool(a0))
        self.bad = f.bad
        residual = c * f.flows
        if a0:
            residual += a0 * f.storage
        if self.robin:
            residual += c * (self._robin_matrix(t) @ u)
        parts = self.load_parts(t)
        if parts:
            residual -= c * sum(parts.values())
        out = Linearisation(residual)
        if not jacobian:
            return out
        if newton and self.k_nonlinear:
            out.combined = self._jacobian_data(f, u, t, a0, c, newton=True)
        if symmetric or out.combined is None:
            out.symmetric = self._jacobian_data(f, u, t, a0, c, newton=False, exact_radiation=newton)
        return out

    def _jacobian_data(self, f: _Fields, u: np.ndarray, t: float, a0: float, c: float, newton: bool,
                       exact_radiation: bool = True) -> np.ndarray:
        """The data of ``a0 dS/du + c dQ/du``: with ``newton``, the whole Jacobian (the
        non-symmetric term of k(u) added in the same pass), else its symmetric part, whose radiation
        takes eps(u) lagged unless ``exact_radiation``. Always
        assembled the same way, so that a restart that needs the parts apart at another iteration
        than the run it continues still solves with the same bits."""
        a = self.assembler
        C = f.capacity
        mass = (a0 * C) if a0 and C is not None and not self.lumped else None
        # a constant capacity matrix: its part is where the fused kernel starts adding
        start = a0 * self.capacity if a0 and self.capacity is not None and not self.lumped else None
        if f.nodal is not None:
            if mass is not None:
                data = a.bilinear(mass=mass).data
            else:
                data = np.zeros(a.nnz) if start is None else start
            knode, dknode = f.nodal
            k = NodalConductivity(knode, self.materials.cell_set, dknode if newton else None)
            a.nodal_conduction(u, k, c, sym=data, nonsym=data if newton else None)
        else:
            data = a.bilinear(mass=mass, conductivity=c * f.k, per_point=True).data
            if newton:  # c int dk(u_j)/du_j N_j grad u . k-axes grad N_i
                grad, dk = f.gradient, f.dk
                if self.k_at_points:  # dk/du(u_h) at the points: in b, the axes' slopes on their own axes
                    a.convection(c * grad * dk, data)
                elif dk.shape[2] == 1:
                    a.convection(c * grad, data, dk[:, :, 0])
                else:
                    for d in range(dk.shape[2]):
                        b = np.zeros_like(grad)
                        b[:, :, d] = c * grad[:, :, d]
                        a.convection(b, data, dk[:, :, d])
            if start is not None:
                data += start
        if a0 and self.lumped:
            data[self.diagonal_slots] += a0 * (self.capacity if C is None else C)
        if self.robin:
            data += c * self._robin_data(t)
        for term, slopes in zip(self.radiation, f.radiation_slopes):
            if slopes is not None:
                lagged, varying = slopes
                exact = (newton or exact_radiation) and varying is not None
                term.facets.add_mass(c * (lagged + varying if exact else lagged), a.indptr, a.indices, data)
        return data

    def _fields(self, u: np.ndarray, t: float, storage: bool) -> _Fields:
        """The fields at u (and t), from the last evaluation if it was at the same u."""
        key = time_stamp(t) if self.fields_depend_on_time else None  # a step's two ends differ at switches
        last = self._last
        if last is not None and last[0] == key and np.array_equal(last[1], u):
            f = last[2]
        else:
            f = self._evaluate(u, t)
            self._last = (key, u.copy(), f)
        if storage and f.storage is None:
            self.bad = f.bad
            f.storage, f.capacity = self._storage(u, f.T)
            f.bad = self.bad
        return f

    def _evaluate(self, u: np.ndarray, t: float) -> _Fields:
        """The flows out by conduction and radiation at u: k at the quadrature points and, when k
        depends on u, dk/du at the cells' nodes (or, fused, both at the nodes per material set; on
        quadratic cells at the points)."""
        a, m = self.assembler, self.materials
        self.bad = ""
        k = dk = grad = T = nodal = None
        if self.fused:
            knode, dknode, positive = m.nodal_conductivity(u, t)
            self._check(positive, "the conductivity k")
            nodal = (knode, dknode)
            flows = np.zeros(self.mesh.n_owned)
            a.nodal_conduction(u, NodalConductivity(knode, m.cell_set), out=flows)
        elif self.k_nonlinear and not self.k_at_points:
            kn, dk, positive = m.conductivity_at_nodes(u, t)
            self._check(positive, "the conductivity k")
            k = np.matmul(a.N, kn)
            grad = a.gradients(u)
            flows = a.flux_load(k * grad)
        elif self.k_at_points:
            T, grad = a.values_and_gradients(u)
            within, outside = self._within_nodes(u, T)
            k, dk = m.conductivity_at_points(within, self.points, t)
            if outside is not None:
                dk[outside] = 0.0
            self._check(k, "the conductivity k")
            flows = a.flux_load(k * grad)
        else:
            T, grad = a.values_and_gradients(u)
            k = m.conductivity_at_points(T, self.points, t)[0]
            self._check(k, "the conductivity k")
            flows = a.flux_load(k * grad)
        slopes = []
        for term in self.radiation:
            slope = None
            if not term.facets.empty:
                flux, slope = self._radiation(term, u, t)
                flows += term.facets.load(flux)
            slopes.append(slope)
        return _Fields(flows, self.bad, k, dk, grad, nodal, slopes, T)

    def _within_nodes(self, u: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """u at the points (``T``) limited to the range of its cell's nodal values, where k is
        evaluated on quadratic cells, and where it was limited (None: nowhere). A quadratic
        interpolant overshoots its nodes: a wall held at 100 C beside nodes at 0 took it to -8.7 C
        at points of the cells along the wall, a temperature the body does not hold, where a
        k(T) = 1 + T is not > 0. A smooth field's interpolant leaves its nodes' range only near its
        extrema, by O(h^2), where its gradient vanishes: the limit changes the flux there by less
        than the discretisation error. Its derivative there (through the nodal extreme) is left
        out of the Jacobian."""
        nodal = u[self.assembler.cells]
        low, high = nodal.min(axis=1)[:, None], nodal.max(axis=1)[:, None]
        outside = (T < low) | (T > high)
        if not outside.any():
            return T, None
        return np.clip(T, low, high), outside

    def _robin_data(self, t: float) -> np.ndarray:
        return self._cache.get("robin", self.time_dependent_matrix, t, self.robin_data)

    def _robin_matrix(self, t: float) -> sp.csr_matrix:
        return self._cache.get("robin matrix", self.time_dependent_matrix, t,
                               lambda s: self.assembler.csr(self._robin_data(s)))
