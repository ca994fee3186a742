"""Material properties that may depend on temperature, evaluated with their derivatives in T (for
Newton), and the volumetric enthalpy H(T) = int_0^T rho c dT.

A conductivity that depends on T is, on linear cells, evaluated at the nodes of each cell and
interpolated (``k_h = sum_j k(u_j) N_j``, the group finite-element form): one evaluation per node
and material rather than per quadrature point, exact for a k linear in T, second order otherwise.
Its Newton derivative is then ``dk(u_j)/du_j N_j``. One of T and of the place is evaluated per cell
at its nodes moved just inside it, so that a jump on the cells' faces is not spread over the cells
beside it. On quadratic cells, whose basis functions dip below zero (a k positive at every node
would be interpolated below zero between them), it is evaluated at the quadrature points instead:
``k(u_h(x_q))``, with the derivative ``dk/du(u_h(x_q)) N_j(x_q)``, u_h(x_q) limited to the range of
the cell's nodal values (:meth:`solver.heat.nonlinear.NonlinearHeatProblem._within_nodes`). A
conductivity independent of T stays at the points.

Each cell takes the material's properties, overridden by the regions that contain it (later ones
winning), so the cells fall into a few *material sets*; a property is evaluated set by set on
the points of its cells. A property is a number, an :class:`~solver.case.expressions.Expression`
(of T, and of x, y, z, t for k and epsilon) or a
:class:`~solver.case.tables.TemperatureTable`.

The storage term of the heat equation is written with the enthalpy, ``dH(T)/dt``, so that the
stored energy ``int H(T)`` changes by exactly the heat that flows in, whatever ``rho c(T)`` is.
``H`` is integrated piecewise between the points of the tables (Gauss-Legendre, 6 points per
piece: exact for the piecewise-quadratic product of two tables); a rho or c given by an expression
is tabulated once on pieces that follow its steps and peaks (:mod:`solver.heat.enthalpy`), whose
samples also show the temperatures where it is not > 0, checked between the ends of each step.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from solver.case.expressions import Expression
from solver.case.records import Material, Melting, Property, Region
from solver.case.schema import TEMPERATURE_UNITS, absolute_zero, default_temperature_range
from solver.case.tables import TemperatureTable
from solver.heat.enthalpy import tabulate
from solver.heat.materials import Centroids, region_cells
from solver.heat.ranges import RangeMonitor
from solver.mesh.distributed import DistributedMesh

GAUSS_X, GAUSS_W = np.polynomial.legendre.leggauss(6)
INSIDE = 1e-6  # how far a cell's nodes move towards its centroid, for a k of T and x


def evaluate(p: Property, T, points=None, t: float = 0.0) -> tuple[np.ndarray | float, np.ndarray | float]:
    """(value, d value / dT) of a property at temperatures T (and points, time t)."""
    if isinstance(p, float):
        return p, 0.0
    if isinstance(p, TemperatureTable):
        return p.with_derivative(T)
    if points is None:
        points = np.zeros(np.shape(T) + (1,))
    return p.with_derivative(points, t, T)


def depends_on_temperature(p: Property) -> bool:
    return isinstance(p, TemperatureTable) or (not isinstance(p, float) and p.depends_on_temperature)


def depends_on_space(p: Property) -> bool:
    return not isinstance(p, (float, TemperatureTable)) and (p.depends_on_space or p.depends_on_time)


def _breaks(p: Property) -> list[float]:
    return list(p.temperatures) if isinstance(p, TemperatureTable) else []


class Capacity:
    """Volumetric heat capacity C(T) = rho(T) (c(T) + L dfl/dT) and enthalpy H(T) = int_0^T C (J/m^3),
    with the latent heat L released linearly between solidus and liquidus (fl: liquid fraction).
    Where rho or c is an expression, H = int_anchor^T C, tabulated (:mod:`solver.heat.enthalpy`):
    ``anchor`` a temperature the run holds (the lowest initial one), else 0 C, so that H stays
    moderate where the run is (a C huge near absolute zero, or a cryogenic run, keep their digits)."""

    def __init__(self, rho: Property, c: Property, melting: Melting | None = None, unit: str = "C",
                 anchor: float | None = None):
        self.rho, self.c, self.unit = rho, c, unit
        self.melting = melting if melting is not None and melting.latent_heat else None
        self.constant = isinstance(rho, float) and isinstance(c, float) and self.melting is None
        ends = [self.melting.solidus, self.melting.liquidus] if self.melting else []
        fixed = sorted(set([0.0] + _breaks(rho) + _breaks(c) + ends))
        self.table = None
        if any(isinstance(p, Expression) for p in (rho, c)):  # pieces that follow the expression
            low, high = default_temperature_range(unit)
            switches = [v for p in (rho, c) if isinstance(p, Expression) for v in p.switch_temperatures()
                        if low <= v <= high]  # (its comparisons of T: breaks, so that no box is missed)
            if anchor is None or not low <= anchor <= high:  # (default: 0 C in the case's unit)
                anchor = absolute_zero(unit) + TEMPERATURE_UNITS["C"]
            self.table = tabulate(self.values, low, high, sorted(set(fixed + switches)), anchor)
            self.breaks, self.cumulative = self.table.breaks, self.table.cumulative
            return
        self.breaks = np.array(fixed)
        steps = [self._piece(a, b) for a, b in zip(self.breaks[:-1], self.breaks[1:])]
        zero = int(np.searchsorted(self.breaks, 0.0))
        cumulative = np.concatenate([[0.0], np.cumsum(steps)]) if steps else np.zeros(1)
        self.cumulative = cumulative - cumulative[zero]  # H(0) = 0

    def counted_from(self, anchor: float) -> "Capacity":
        """This capacity with its enthalpy counted from ``anchor`` (the same where none is tabulated)."""
        return self if self.table is None else Capacity(self.rho, self.c, self.melting, self.unit, anchor)

    def crossed(self, T0: np.ndarray, T1: np.ndarray):
        """(index, temperature) of the first value whose range between T0 and T1 holds a
        temperature where rho c is not > 0 (or not finite), or None."""
        if self.table is None:
            return None
        hit = self.table.crossed(T0, T1)
        if not len(hit):
            return None
        i = int(hit[0])
        return i, float(self.table.bad_at[self.table.interval_of(T0[i], T1[i])])

    def values(self, T, check=None) -> np.ndarray:
        """C = dH/dT at T (inside the melting range: with the latent heat's share); ``check``: a
        function (property, values) called with rho and c at T."""
        T = np.asarray(T, dtype=float)
        r = evaluate(self.rho, T)[0]
        c = evaluate(self.c, T)[0]
        if check is not None:
            check(self.rho, r)
            check(self.c, c)
        if self.melting is not None:
            m = self.melting
            c = c + np.where((T >= m.solidus) & (T < m.liquidus), m.latent_heat / (m.liquidus - m.solidus), 0.0)
        return r * c + 0.0 * T

    def _piece(self, a, b):
        """int_a^b C (arrays or numbers), 6-point Gauss-Legendre (a and b in one piece)."""
        half, mid = 0.5 * (b - a), 0.5 * (b + a)
        return half * sum(w * self.values(mid + half * x) for x, w in zip(GAUSS_X, GAUSS_W))

    def enthalpy(self, T) -> np.ndarray:
        """H(T), from the last table point below T (the first one below all)."""
        T = np.asarray(T, dtype=float)
        if self.constant:
            return (self.rho * self.c) * T
        i = np.clip(np.searchsorted(self.breaks, T, side="right") - 1, 0, len(self.breaks) - 1)
        start = self.breaks[i]
        return self.cumulative[i] + self._piece(start, T)


@dataclass(frozen=True)
class MaterialSet:
    """The properties of one group of cells."""

    k: tuple[Property, ...]  # one per axis (an isotropic k repeated)
    capacity: Capacity

    @property
    def k_depends_on_temperature(self) -> bool:
        return any(depends_on_temperature(p) for p in self.k)


class MaterialField:
    """Which material set each cell takes, and the properties evaluated at quadrature points."""

    def __init__(self, mesh: DistributedMesh, material: Material, regions: tuple[Region, ...],
                 ranges: RangeMonitor | None = None, unit: str = "C", anchor: float | None = None):
        dim = mesh.dim
        self.ranges = ranges or RangeMonitor(mesh.comm)  # the expressions' ranges, checked where evaluated
        n = len(mesh.cells)

        def axes(k):
            return tuple(k) if isinstance(k, tuple) else (k,) * dim
        combos = [(axes(material.k), material.rho, material.c, material.melting)]
        index = {0: 0}
        which = np.zeros(n, dtype=np.int64)
        centroids = Centroids(mesh)
        for region in regions:
            inside = region_cells(mesh, region, centroids)
            for old in np.unique(which[inside]):
                k, rho, c, melting = combos[old]
                new = (axes(region.k) if region.k is not None else k,
                       region.rho if region.rho is not None else rho, region.c if region.c is not None else c,
                       region.melting if region.melting is not None else melting)
                key = (old, id(region))
                if key not in index:
                    index[key] = len(combos)
                    combos.append(new)
                which[inside & (which == old)] = index[key]
        used = np.unique(which)
        self.sets = [MaterialSet(combos[g][0], Capacity(*combos[g][1:], unit=unit, anchor=anchor)) for g in used]
        self.anchor = anchor
        which = np.searchsorted(used, which)
        self.cells_of = [np.flatnonzero(which == g) for g in range(len(self.sets))] if len(self.sets) > 1 else None
        self.dim = dim
        self.cells = mesh.cells
        self.coords = mesh.coords
        self.k_nonlinear = any(s.k_depends_on_temperature for s in self.sets)
        self.needs_points = any(depends_on_space(p) for s in self.sets for p in s.k)
        # k of T and of the place: per cell, as its own side of a jump on the faces (not fused)
        self.k_per_cell = any(isinstance(p, Expression) and p.depends_on_space and p.depends_on_temperature
                              for s in self.sets for p in s.k)
        self.k_components = 1 if all(all(p is s.k[0] for p in s.k) for s in self.sets) else dim
        self.capacity_constant = all(s.capacity.constant for s in self.sets)
        self._nodes_of = None

    def count_enthalpy_from(self, anchor: float) -> None:
        """Tabulated enthalpies counted from ``anchor`` from now on (a restart continues the energies
        of its checkpoint, counted from there)."""
        self.anchor = anchor
        self.sets = [MaterialSet(s.k, s.capacity.counted_from(anchor)) for s in self.sets]

    def capacity(self) -> np.ndarray:
        """rho c per cell (n_cells,), for constant capacities."""
        C = np.empty(len(self.cells))
        for s, cells in self._each():
            C[cells] = s.capacity.rho * s.capacity.c
        return C

    def _set_nodes(self) -> list:
        """The nodes of each material set's cells (every node with one set)."""
        if self._nodes_of is None:
            self._nodes_of = [slice(None)] if self.cells_of is None else \
                [np.unique(self.cells[cells]) for cells in self.cells_of]
        return self._nodes_of

    def nodal_conductivity(self, u: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray, bool]:
        """k and dk/dT at the nodes for each material set, (n_sets, n_local, k_components) each
        (zero at the nodes of no cell of the set; the set of each cell: :attr:`cell_set`), and
        whether every k evaluated is > 0."""
        n = len(u)
        k = np.zeros((len(self.sets), n, self.k_components))
        dk = np.zeros_like(k)
        positive = True
        for g, (s, nodes) in enumerate(zip(self.sets, self._set_nodes())):
            x = self.coords[nodes]
            for d, v, dv in self._components(s, u[nodes], x, t, x):
                k[g, nodes, d] = v
                dk[g, nodes, d] = dv
                positive = positive and bool(np.all(np.asarray(v) > 0))
        return k, dk, positive

    def _components(self, s: MaterialSet, T: np.ndarray, x: np.ndarray | None, t: float, where):
        """(axis, k, dk/dT) of set ``s``'s conductivity at T and x (``where``: the points for the
        range check); a property shared by the axes (an isotropic k) is evaluated and checked once."""
        done = {}
        for d in range(self.k_components):
            p = s.k[d]
            if id(p) not in done:
                done[id(p)] = evaluate(p, T, x, t)
                self.ranges.check(p, done[id(p)][0], t, where, T)
            yield (d, *done[id(p)])

    @cached_property
    def cell_set(self) -> np.ndarray:
        """The material set of each cell (n_cells,), or an empty array when there is one set."""
        cell_set = np.zeros(0 if self.cells_of is None else len(self.cells), dtype=np.int64)
        for g, cells in enumerate(self.cells_of or []):
            cell_set[cells] = g
        return cell_set

    def conductivity_at_nodes(self, u: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray, bool]:
        """:meth:`nodal_conductivity` at the nodes of each cell, (n_cells, nodes per cell,
        k_components) each (the cell's own material at a node shared by two). A k of T and of x,
        y, z is evaluated per cell, at its nodes moved a millionth of the way to its
        centroid: a jump of k on the cells' faces stays there, where one value per node would
        spread it over the cells beside it."""
        if self.k_per_cell:
            return self._cellwise_conductivity(u, t)
        k, dk, positive = self.nodal_conductivity(u, t)
        sets = self.cell_set[:, None] if len(self.cell_set) else 0
        return k[sets, self.cells], dk[sets, self.cells], positive

    def _cellwise_conductivity(self, u: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray, bool]:
        T = u[self.cells]
        x = self.coords[self.cells]
        x = x + INSIDE * (x.mean(axis=1, keepdims=True) - x)
        k = np.empty(T.shape + (self.k_components,))
        dk = np.empty_like(k)
        for s, cells in self._each():
            for d, v, dv in self._components(s, T[cells], x[cells], t, x[cells]):
                k[cells, :, d], dk[cells, :, d] = v, dv
        return k, dk, bool(np.all(k > 0))

    def _each(self):
        """(material set, its cells or slice(None))."""
        if self.cells_of is None:
            yield self.sets[0], slice(None)
        else:
            yield from zip(self.sets, self.cells_of)

    def conductivity_at_points(self, T: np.ndarray, points: np.ndarray | None,
                               t: float) -> tuple[np.ndarray, np.ndarray]:
        """(k, dk/dT) at the points, (n_cells, n_qp, k_components) each, at the temperatures T there
        (n_cells, n_qp); ``points``: their places (None when no k depends on them)."""
        k = np.empty(T.shape + (self.k_components,))
        dk = np.zeros_like(k)
        for s, cells in self._each():
            pc = None if points is None else points[cells]
            for d, v, dv in self._components(s, T[cells], pc, t, self._centroids(cells) if pc is None else pc):
                k[cells, :, d], dk[cells, :, d] = v, dv
        return k, dk

    def storage(self, T: np.ndarray, where=None) -> tuple[np.ndarray, np.ndarray]:
        """(H, C): enthalpy and volumetric heat capacity at T (any shape whose first axis is the
        cells, or nodes with ``storage_nodes``); ``where(cell, j)``: the point of T[cell, j] (for
        the range checks of rho and c; default: the cell's centroid)."""
        H = np.empty_like(T)
        C = np.empty_like(T)
        for s, cells in self._each():
            Tc = T[cells]
            H[cells] = s.capacity.enthalpy(Tc)
            C[cells] = s.capacity.values(Tc, self._checker(cells, Tc, where))
        return H, C

    @property
    def capacity_tabulated(self) -> bool:
        """Some rho c is an expression (its table knows where it is not > 0)."""
        return any(s.capacity.table is not None for s in self.sets)

    def check_crossing(self, T0: np.ndarray, T1: np.ndarray, t: float) -> None:
        """Record a violation of rho or c (in the range monitor) at a node whose temperature went
        from T0 to T1 (nodal arrays) across temperatures where rho c is not > 0 or not finite: a
        band that the values at the ends of a step do not show."""
        for s, nodes in zip(self.sets, self._set_nodes()):
            found = s.capacity.crossed(T0[nodes], T1[nodes])
            if found is None:
                continue
            i, T_bad = found
            node = np.arange(len(T0))[nodes][i]
            for p in (s.capacity.rho, s.capacity.c):
                value = np.atleast_1d(evaluate(p, np.array([T_bad]))[0])
                if not value[0] > 0:
                    self.ranges.check(p, value, t, self.coords[node][None], np.array([T_bad]))
                    return

    def _centroids(self, cells, where=None):
        """The point of a value's index, for values over ``cells`` (first axis): ``where(cell, j)``,
        or the cell's centroid."""
        def point(index):
            cell = np.arange(len(self.cells))[cells][index[0]]
            return self.coords[self.cells[cell]].mean(axis=0) if where is None else where(cell, index[1])
        return point

    def _checker(self, cells, T: np.ndarray, where=None):
        """A function (property, values) that checks the values of rho or c at T over ``cells``;
        None when no expression has a range."""
        if not self.ranges.active:
            return None
        point = self._centroids(cells, where)
        return lambda p, values: self.ranges.check(p, values, None, point, T)

    @property
    def melting(self) -> bool:
        return any(s.capacity.melting is not None for s in self.sets)

    def liquid_fraction(self, T: np.ndarray) -> np.ndarray:
        """Liquid fraction at T (first axis: cells); 0 where a material does not melt."""
        out = np.zeros_like(T)
        for s, cells in self._each():
            if s.capacity.melting is not None:
                out[cells] = s.capacity.melting.liquid_fraction(T[cells])
        return out
