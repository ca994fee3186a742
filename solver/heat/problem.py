"""The heat equation rho*c du/dt = div(k grad u) + f discretised on a distributed mesh.

Semi-discrete form on the owned rows::

    M du/dt + (K + K_R) u = F(t) = F_f(t) + F_N(t) + F_R(t)

* ``K``: conduction with a (diagonal, possibly anisotropic) conductivity per cell;
* Robin / convection boundaries ``-k du/dn = h (u - T_inf)``: ``K_R = int h N_i N_j`` and
  ``F_R = int h T_inf N_i`` over their facets;
* Neumann boundaries with heat flux q into the body: ``F_N = int q N_i``;
* Dirichlet nodes are constrained symmetrically (:func:`solver.fem.constrain`); boundaries that
  are not listed are insulated (the natural condition).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from solver.case.expressions import time_stamp
from solver.case.records import DirichletBC, NeumannBC, Physics, RobinBC
from solver.case.shown import cut
from solver.compiled import compile_shared, index_dtype, use_kernels, worth_compiling
from solver.fem.assembly import Assembler
from solver.fem.boundary import BoundaryTerm
from solver.fem.coarsening import linear_coarsening
from solver.fem.kernels.warm import warm_tasks
from solver.heat.dirichlet import DirichletConditions
from solver.heat.materials import cell_materials
from solver.heat.ranges import RangeMonitor
from solver.la.amg.fixed import CoarseSpace
from solver.la.symmetric import warm_tasks as symmetric_warm_tasks
from solver.mesh.cells import CELLS
from solver.mesh.distributed import DistributedMesh


@dataclass(frozen=True)
class FacetTerm:
    """A Neumann or Robin condition with the quadrature of its boundary's facets."""

    condition: NeumannBC | RobinBC
    facets: BoundaryTerm

    @property
    def name(self) -> str:
        return self.condition.name


class TimeLevelCache:
    """Values computed at a time t: those that do not depend on t once, the others for the last
    ``levels`` times asked per key: one for a matrix; :data:`LOAD_LEVELS` for a load vector (a
    step takes its loads at its scheme's levels, t1 and t0 for Crank-Nicolson, and its checks
    before the solve take them first: each is computed once)."""

    LOAD_LEVELS = 3

    def __init__(self):
        self._values: dict = {}
        self._levels: dict = {}  # key -> {stamp: value}, the most recent last

    def get(self, key, depends_on_time: bool, t: float, compute, levels: int = 1):
        if not depends_on_time:
            if key not in self._values:
                self._values[key] = compute(0.0)
            return self._values[key]
        stamp = time_stamp(t)  # a step's two ends see switches differently
        kept = self._levels.setdefault(key, {})
        if stamp in kept:
            kept[stamp] = kept.pop(stamp)  # (now the most recent)
        else:
            kept[stamp] = compute(t)
            if len(kept) > levels:
                del kept[next(iter(kept))]
        return kept[stamp]


LOAD = TimeLevelCache.LOAD_LEVELS

_SHARED: set = set()  # the kinds of problem whose kernels this process has compiled or loaded


def has_source(f) -> bool:
    """Whether a volumetric source is other than zero everywhere and always."""
    return not (f.is_constant and f(np.zeros((1, 1)))[0] == 0.0)


def property_keys(physics: Physics, names: tuple[str, ...]) -> str:
    """The keys that give the properties ``names`` of the cells, for messages: the material's, then
    those of each region that sets one of them (\"material.k or region.insulation.k\")."""
    material = " and ".join(f"material.{name}" for name in names)
    regions = [" and ".join(f"region.{cut(r.name)}.{name}" for name in names if getattr(r, name) is not None)
               for r in physics.regions]
    return " or ".join([material] + [r for r in regions if r][:3] + ["..."] * (sum(map(bool, regions)) > 3))


class HeatLoads:
    """What every form of the heat equation has: the mesh and its assembler, the source, the
    Neumann and Robin boundaries with their load vectors F(t) by origin, and the Dirichlet data."""

    radiation: list = []  # radiating boundaries (the nonlinear problem has them)

    def __init__(self, mesh: DistributedMesh, physics: Physics, linear: bool = True):
        """``linear``: assembled once (a nonlinear problem assembles at every Newton iteration,
        and so always takes the compiled kernels where numba is installed)."""
        self.mesh = mesh
        self.compiled = worth_compiling(mesh.n_global_cells, mesh.cells.shape[1], linear)
        use_kernels(self.compiled)  # the linear algebra's products follow
        if self.compiled:
            self.compile_kernels(physics, linear)
        self.assembler = Assembler(mesh, compiled=self.compiled)
        self.source = physics.source
        self.temperature_unit = physics.temperature_unit  # of T in the expressions of the case
        self.k_keys, self.capacity_keys = property_keys(physics, ("k",)), property_keys(physics, ("rho", "c"))
        # the lumped mass of P2 simplices takes the source at the nodes, with its own weights, and
        # the faces of P2 tetrahedra their loads and exchanges at their nodes (their corners' int N_i
        # vanish): a uniformly heated body heats uniformly
        self.nodal_source = physics.lumped_mass and mesh.cell_type in ("triangle6", "tetrahedron10")
        self.nodal_facets = physics.lumped_mass and mesh.cell_type == "tetrahedron10"
        self.neumann = [FacetTerm(bc, self.boundary_term(bc.name)) for bc in physics.of_kind(NeumannBC)]
        self.robin = [FacetTerm(bc, self.boundary_term(bc.name)) for bc in physics.of_kind(RobinBC)]
        self.dirichlet = DirichletConditions(mesh, physics.of_kind(DirichletBC))
        self.coarse_space = CoarseSpace(*linear_coarsening(mesh)) if CELLS[mesh.cell_type].degree > 1 else None
        self._cache = TimeLevelCache()
        self.ranges = RangeMonitor.of(physics, mesh.comm)  # checks h, k, rho, c, epsilon where evaluated
        # a heat transfer coefficient h(t) makes the system matrix change from step to step
        self.time_dependent_matrix = any(term.condition.h.depends_on_time for term in self.robin)

    def boundary_term(self, name: str) -> BoundaryTerm:
        return BoundaryTerm(self.mesh, name, self.compiled, nodal=self.nodal_facets)

    def compile_kernels(self, physics: Physics, linear: bool) -> None:
        """Collective: the kernels this problem uses compiled (or loaded) ahead of use, the ranks
        sharing the compilations (a first run on P ranks compiles P kernels at a time); once per
        process and kind of problem (a study's samples share them; every rank of a communicator
        has built the same problems before, so they skip together)."""
        mesh, nn = self.mesh, self.mesh.cells.shape[1]
        index = index_dtype(len(mesh.cells) * nn * nn, mesh.n_local)
        loads = not linear or has_source(physics.source)
        key = (mesh.cell_type, np.dtype(mesh.cells.dtype).str, np.dtype(index).str, mesh.affine, linear, loads,
               mesh.comm.size)
        if key in _SHARED:
            return
        _SHARED.add(key)
        compile_shared(mesh.comm, [*warm_tasks(mesh.cell_type, mesh.cells.dtype, index, mesh.affine, newton=not linear,
                                               loads=loads), *symmetric_warm_tasks()])

    def robin_data(self, t: float, data: np.ndarray | None = None) -> np.ndarray:
        """Values, in the assembler's pattern, of ``int h(t) N_i N_j`` over every Robin boundary,
        added into ``data`` when given."""
        data = np.zeros(self.assembler.nnz) if data is None else data
        for term in self.robin:
            term.facets.add_mass(lambda p, h=term.condition.h: self.ranges.evaluate(h, p, t), self.assembler.indptr,
                                 self.assembler.indices, data)
        return data

    def robin_uptake(self, term: FacetTerm, t: float) -> np.ndarray:
        """``int h(t) N_i`` over a Robin boundary: the uptake h u of its flow h (T_inf - u)."""
        h = term.condition.h
        return self._cache.get(("uptake", term.name), h.depends_on_time, t,
                               lambda s: term.facets.load(lambda p: self.ranges.evaluate(h, p, s)), LOAD)

    def load_parts(self, t: float) -> dict:
        """Owned load vectors at time t by origin: "source", then each Neumann boundary (flux)
        and each Robin boundary (h T_inf); each is cached when it does not depend on t."""
        parts = {}
        if has_source(self.source):
            load = self.assembler.nodal_load if self.nodal_source else self.assembler.load
            parts["source"] = self._cache.get("source", self.source.depends_on_time, t,
                                              lambda s: load(self.source, s), LOAD)
        for term in self.neumann:
            q = term.condition.flux
            parts[term.name] = self._cache.get(("load", term.name), q.depends_on_time, t,
                                               lambda s, q=q, f=term.facets: f.load(lambda p: q(p, s)), LOAD)
        for term in self.robin:
            h, ti = term.condition.h, term.condition.T_inf
            parts[term.name] = self._cache.get(
                ("load", term.name), ti.depends_on_time or h.depends_on_time, t,
                lambda s, h=h, ti=ti, f=term.facets: f.load(lambda p: self.ranges.evaluate(h, p, s) * ti(p, s)),
                LOAD)
        return parts

    def energy(self, u: np.ndarray) -> float:
        """Thermal energy (J, relative to u = 0), summed over ranks."""
        e = np.array([self.energy_local(u)])
        self.mesh.comm.Allreduce(MPI.IN_PLACE, e)
        return float(e[0])

    def energy_local(self, u: np.ndarray) -> float:
        raise NotImplementedError

    def energy_held_local(self, u: np.ndarray) -> tuple[float, float]:
        """This rank's :meth:`energy_local` and the energy its nodes hold, sum_i |E_i| (the scale
        of the round-off in the former)."""
        e = self.nodal_energy(u)
        return float(e.sum()), float(np.abs(e).sum())


class HeatProblem(HeatLoads):
    """The linear heat equation: M, K + K_R(t), the load vectors F(t) by origin, and the Dirichlet
    data of a case whose properties are numbers."""

    def __init__(self, mesh: DistributedMesh, physics: Physics):
        super().__init__(mesh, physics)
        self.k_cell, self.rhoc_cell = cell_materials(mesh, physics.material, physics.regions)
        self.K_conduction = self.assembler.stiffness(self.k_cell)
        self.M = self.assembler.mass(self.rhoc_cell)
        self.lumped = physics.lumped_mass
        if physics.lumped_mass and CELLS[mesh.cell_type].degree > 1:  # diagonal scaling (positive)
            self.M = self.assembler.lumped_mass(np.broadcast_to(self.rhoc_cell, (len(mesh.cells),)))
        elif physics.lumped_mass:  # row sums on the diagonal, same sparsity pattern
            self.M = self.assembler.lumped(self.M)
        self.assembler.release_matrix_workspace()  # NumPy path: gradients and entry map (~140 bytes per DOF in 2D)
        self.mass_weights = np.asarray(self.M.sum(axis=1)).ravel()  # int rho c N_i: E = m . u

    def explicit_mass_weights(self) -> np.ndarray:
        """The lumped mass explicit Euler steps with: this problem's own when it is lumped, else the
        lumping of its consistent mass (row sums; diagonal scaling on quadratic cells, whose row
        sums vanish at the vertices)."""
        if self.lumped or CELLS[self.mesh.cell_type].degree == 1:
            return self.mass_weights
        rhoc = np.broadcast_to(self.rhoc_cell, (len(self.mesh.cells),))
        return np.asarray(self.assembler.lumped_mass(rhoc).sum(axis=1)).ravel()

    def energy_local(self, u: np.ndarray) -> float:
        """This rank's part of int rho c u."""
        return float(np.dot(self.mass_weights, u[: self.mesh.n_owned]))

    def nodal_energy(self, u: np.ndarray) -> np.ndarray:
        """The owned nodes' energies, whose sum is :meth:`energy_local`."""
        return self.mass_weights * u[: self.mesh.n_owned]

    def energy_held_local(self, u: np.ndarray) -> tuple[float, float]:
        u = u[: self.mesh.n_owned]
        return float(np.dot(self.mass_weights, u)), float(np.dot(np.abs(self.mass_weights), np.abs(u)))

    def stiffness(self, t: float) -> sp.csr_matrix:
        """Owned rows of ``K + K_R(t)``: conduction plus the Robin term ``int h(t) N_i N_j``
        (one sparsity pattern, so their data arrays add; cached unless h depends on t)."""
        if not self.robin:
            return self.K_conduction
        return self._cache.get("K", self.time_dependent_matrix, t, self._stiffness)

    def _stiffness(self, t: float) -> sp.csr_matrix:
        return self.assembler.csr(self.robin_data(t, self.K_conduction.data.copy()))

