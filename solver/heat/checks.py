"""Checks of a discretised case before its first step and after each step: nothing may run, let
alone finish "successfully", on non-finite data. Every value the input gives on the mesh (the
initial temperature, the source, boundary values, fluxes, h and T_inf, the matrices built from
k, rho, c and the mesh) must be finite, and every cell must have a volume; at the initial time
no temperature it gives (initial, Dirichlet, T_inf) may lie below absolute zero. A violation is an
input error (exit 2) naming the key; regions that select no cell are reported. All checks are
collective (one ``Allreduce`` of flags or minima) so that every rank raises together.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from solver.case.expressions import Expression, StepTime
from solver.case.records import MeshFileSpec
from solver.case.schema import ZERO_ROUNDOFF, absolute_zero, below_absolute_zero
from solver.case.shown import cut
from solver.errors import CaseError, NumericalError, RangeError
from solver.heat.balance import ENERGY_ROUNDOFF
from solver.heat.materials import Centroids, region_cells
from solver.heat.parts import check_parts_held, touch_fixed_parts
from solver.heat.problem import HeatProblem
from solver.heat.ranges import ranged_expressions
from solver.mesh.quality import check_cells

log = logging.getLogger(__name__)


def first_bad(comm, named: list[tuple[str, np.ndarray]]) -> str | None:
    """The name of the first array that holds a non-finite value on some rank (collective)."""
    flags = np.array([0.0 if np.all(np.isfinite(values)) else 1.0 for _, values in named])
    comm.Allreduce(MPI.IN_PLACE, flags, op=MPI.MAX)
    return next((name for (name, _), bad in zip(named, flags) if bad), None)


def term_key(problem, name: str) -> str:
    """The case keys behind a heat term (a load part or a balance term) of this name."""
    if name == "source":
        return "source.f"
    if name in problem.dirichlet.names:
        return f"boundary.{name}.value"
    if any(t.name == name for t in problem.neumann):
        return f"boundary.{name}.flux"
    return f"boundary.{name}.h or boundary.{name}.T_inf"


def prescribed_temperatures(problem, u0: np.ndarray | None, t: float) -> list[tuple[str, np.ndarray]]:
    """(key, owned values) of the initial temperature ``u0`` (when given) and of each Dirichlet boundary at t."""
    n = problem.mesh.n_owned
    named = [] if u0 is None else [("initial.temperature", u0[:n])]
    d = problem.dirichlet
    values = d.values(t)
    for i, name in enumerate(d.names):
        named.append((f"boundary.{name}.value", values[:n][d.mask[:n] & (d.boundary_of[:n] == i)]))
    return named


def check_inputs(source: str, problem, u0: np.ndarray | None, t: float = 0.0, unit: str | None = None,
                 physics=None) -> None:
    """Refuse a case whose input gives a non-finite value on the mesh at time t (and whose
    initial temperature ``u0`` is not finite, when given); with the temperature ``unit``, also one
    whose temperatures at t (``u0``, Dirichlet values, T_inf) go below absolute zero. The line
    speaks of an expression only where ``physics`` (when given) writes that key as one."""
    named = prescribed_temperatures(problem, u0, t)
    linear = isinstance(problem, HeatProblem)  # (the nonlinear problem assembles its matrices at each iteration)
    if linear:  # h first: a Robin load h T_inf that is not finite where h is names T_inf
        named += [(f"boundary.{term.name}.h", problem.robin_uptake(term, t)) for term in problem.robin]
    robin = {term.name for term in problem.robin} if linear else set()
    for name, part in problem.load_parts(t).items():
        named.append((f"boundary.{name}.T_inf" if name in robin else term_key(problem, name), part))
    if linear:
        named.append((f"{problem.capacity_keys} (or mesh sizes)", problem.M.data))
        named.append((f"{problem.k_keys} (or mesh sizes)", problem.K_conduction.data))
    with np.errstate(all="ignore"):
        bad = first_bad(problem.mesh.comm, named)
    if bad is not None and physics is not None and not written_as_expression(physics, bad):
        raise CaseError(f"{source}: {bad} gives a non-finite value (inf or NaN) on the mesh at t = {t:g}: the "
                        f"values times the mesh's sizes overflow double precision, far beyond any material or mesh; "
                        f"check the values and their units")
    if bad is not None:
        raise CaseError(f"{source}: {bad} gives a non-finite value (inf or NaN) on the mesh at t = {t:g}: an "
                        f"overflow, a division by zero or a value out of range; check the expression and its units")
    if unit is not None:
        check_absolute_zero(source, problem, u0, t, unit)


def written_as_expression(physics, key: str) -> bool:
    """Whether some value behind ``key`` (a key of :func:`check_inputs`' lines: "material.k (or
    mesh sizes)", "boundary.right.h or boundary.right.T_inf") is an expression of x, y, z, t or T
    rather than a number."""
    m, regions = physics.material, physics.regions
    if key.startswith("material.k "):
        values = [m.k] + [r.k for r in regions]
    elif key.startswith("material.rho "):
        values = [m.rho, m.c] + [p for r in regions for p in (r.rho, r.c)]
    elif key == "source.f":
        values = [physics.source]
    elif key == "initial.temperature":
        values = [physics.initial]
    else:
        values = [v for bc in physics.boundaries if key.startswith(f"boundary.{bc.name}.")
                  for k, v in vars(bc).items() if k != "name"]
    flat = [p for v in values for p in (v if isinstance(v, tuple) else (v,))]
    return not flat or any(not isinstance(p, (float, int, type(None))) and not getattr(p, "is_constant", False)
                           for p in flat)


@dataclass(frozen=True)
class StepInput:
    """An input as a step's system takes it at time ``t``: owned values, scaled as they enter it
    (a load times the step's weight of F), and ``sample()``: the input's own values and their
    points, where a bad one is placed (None: the values themselves, with no point). ``weighed``:
    the time step weighs its share of the system (loads, exchanges and conduction; not the
    capacity, the Dirichlet values or an ambient temperature)."""

    key: str
    t: float
    values: np.ndarray
    sample: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
    weighed: bool = False


def step_inputs(problem, t: float, c: float, a0: float = 0.0, scale: float = 1.0, changing: bool = False,
                dirichlet: bool = True, loads: bool = True, u: np.ndarray | None = None) -> list[StepInput]:
    """What the system of a step at time t is made of, by key: the Dirichlet values, the source's
    and fluxes' loads, each Robin boundary's T_inf, its uptake ``int h N_i`` and its load ``int h
    T_inf N_i``, a radiating boundary's T_inf and, for the linear problem, the capacity and
    conduction matrices (``a0`` M, ``c`` K); for the nonlinear problem, given the temperature
    ``u``, its capacity and conduction Jacobians there, and each radiating boundary's heat from its
    ambient, ``int eps sigma T_inf,K^4 N_i`` (with ``changing`` too). Loads and matrices are weighted
    as the step weighs them (``c``: dt b0, 1 steady), matrices times the temperature ``scale`` they act on. With
    ``changing``, only the inputs that depend on t (the others were checked at the start); without
    ``dirichlet`` or ``loads``, the Dirichlet values or the rest left out."""
    def moves(*expressions):
        return not changing or any(getattr(e, "depends_on_time", False) for e in expressions)

    n, coords = problem.mesh.n_owned, problem.mesh.coords
    out = []
    d = problem.dirichlet
    if dirichlet and d.names and moves(*(bc.value for bc in d.conditions)):
        g = d.values(t)
        for i, (name, bc) in enumerate(zip(d.names, d.conditions)):
            nodes = np.flatnonzero(d.mask[:n] & (d.boundary_of[:n] == i))
            if moves(bc.value):
                out.append(StepInput(f"boundary.{name}.value", t, g[nodes], lambda g=g, i=nodes: (g[i], coords[i])))
    if not loads:
        return out
    parts = problem.load_parts(t)
    if "source" in parts and moves(problem.source):
        f = problem.source
        out.append(StepInput("source.f", t, c * parts["source"], lambda: _sampled(f, problem.assembler, t),
                             weighed=True))
    for term in problem.neumann:
        q = term.condition.flux
        if moves(q):
            out.append(StepInput(f"boundary.{term.name}.flux", t, c * parts[term.name],
                                 lambda q=q, p=term.facets.points: (q(p, t), p), weighed=True))
    for term in problem.robin:
        h, ti, points = term.condition.h, term.condition.T_inf, term.facets.points
        if moves(ti):
            out.append(StepInput(f"boundary.{term.name}.T_inf", t, ti(points, t), lambda v=ti, p=points: (v(p, t), p)))
        if moves(h):
            out.append(StepInput(f"boundary.{term.name}.h", t, c * scale * problem.robin_uptake(term, t),
                                 lambda v=h, p=points: (v(p, t), p), weighed=True))
        if moves(h, ti):
            out.append(StepInput(f"boundary.{term.name}.h times boundary.{term.name}.T_inf", t, c * parts[term.name],
                                 lambda h=h, ti=ti, p=points: (h(p, t) * ti(p, t), p), weighed=True))
    for term in getattr(problem, "radiation", ()):
        ti, points = term.condition.T_inf, term.facets.points
        if moves(ti):
            out.append(StepInput(f"boundary.{term.name}.T_inf", t, ti(points, t), lambda v=ti, p=points: (v(p, t), p)))
        if moves(ti) and u is not None:  # its fourth power: the heat the ambient radiates in
            out.append(StepInput(f"boundary.{term.name}.T_inf", t, c * problem.radiation_gross(term, u, t, True),
                                 lambda v=ti, p=points: (v(p, t), p), weighed=True))
    if isinstance(problem, HeatProblem) and not changing:
        if a0:
            out.append(StepInput(f"{problem.capacity_keys} (or mesh sizes)", t, a0 * scale * problem.M.data))
        out.append(StepInput(f"{problem.k_keys} (or mesh sizes)", t, c * scale * problem.K_conduction.data,
                             weighed=True))
    elif u is not None and hasattr(problem, "linearise") and not changing:  # k, rho, c of T: at u
        # the conduction first: the capacity Jacobian is assembled with the conduction weighted by
        # 0, which an overflowing k turns into NaN there (0 * inf), and the capacity would be named
        Q = problem.linearise(u, t, 0.0, 1.0, jacobian=True)
        conduction = Q.symmetric if Q.combined is None else Q.combined
        out.append(StepInput(f"{problem.k_keys} (or mesh sizes), at the initial temperature", t, c * scale * conduction,
                             weighed=True))
        if a0:
            S = problem.linearise(u, t, 1.0, 0.0, jacobian=True, newton=False)
            out.append(StepInput(f"{problem.capacity_keys} (or mesh sizes), at the initial temperature", t,
                                 a0 * scale * S.symmetric))
    return out


def _sampled(f, assembler, t: float) -> tuple[np.ndarray, np.ndarray]:
    """A source's values at the cells' quadrature points, and the points."""
    points = assembler.quadrature_points()
    return f(points, t), points


def check_step_inputs(problem, inputs: list[StepInput], where: str, error=RangeError, dt: float | None = None,
                      dt_key: str = "time.dt") -> None:
    """Refuse (collective: one ``Allreduce`` of the inputs' sums of squares) a step whose system
    an input makes non-finite, or so large that the solve's sums of squares overflow double
    precision (a load of 1e300 W: the solver found a system of inf and could name no key). The
    first such input, its value, time and place (the first non-finite value, else the largest)
    are named: ``error`` (exit 3 during the run) of ``where``: "step 6 (t = 60): source.f = inf ..."
    (no ``where``: the line alone); ``dt``: the time step, which weighs the loads (None: steady),
    and ``dt_key`` the key that names it."""
    if not inputs:
        return
    with np.errstate(all="ignore"):
        squares = np.array([float(np.vdot(i.values, i.values)) for i in inputs])
    problem.mesh.comm.Allreduce(MPI.IN_PLACE, squares)
    bad = next((i for i, s in zip(inputs, squares) if not np.isfinite(s)), None)
    if bad is not None:
        message = describe_bad_input(problem.mesh.comm, bad, dt, dt_key)
        raise error(f"{where}: {message}" if where else message)


def check_step_loads(problem, u: np.ndarray, t1: float, load_times: list, dt: float, where: str) -> None:
    """Before a step's solve (collective): the inputs that depend on t, as the step takes them (the
    Dirichlet values at its end t1, the loads at ``load_times``: t1 and the earlier levels' times
    that its scheme weighs, its start for explicit Euler), finite and within what the solve can
    take (:func:`check_step_inputs`, exit 3). The loads are checked last at the time the step
    takes them first, whose values the step then finds cached."""
    n = problem.mesh.n_owned
    with np.errstate(all="ignore"):
        scale = max(1.0, float(np.max(np.abs(u[:n]), initial=0.0)))
        inputs = step_inputs(problem, t1, dt, scale=scale, changing=True, loads=False)
        for t in load_times:
            inputs += step_inputs(problem, t, dt, scale=scale, changing=True, dirichlet=False, u=u)
    check_step_inputs(problem, inputs, where, dt=dt)


def step_load_times(scheme, t1, dt: float) -> list:
    """The times at which a step of ``scheme`` (a :class:`~solver.heat.stepping.Multistep`) to t1
    takes its loads, as it builds them, the first it takes last."""
    earlier = [StepTime(t1 - j * dt, t1 - (j - 1) * dt) for j in range(1, len(scheme.b)) if scheme.b[j]]
    return [t1] + earlier[::-1]


def describe_bad_input(comm, bad: StepInput, dt: float | None = None, dt_key: str = "time.dt") -> str:
    """One line on an input that a step's system cannot take: its first non-finite value on the
    lowest rank holding one, else its largest value (collective); a value too large that the time
    step weighs (``bad.weighed``) names ``dt`` too (by ``dt_key``; None: steady)."""
    with np.errstate(all="ignore"):
        values, points = bad.sample() if bad.sample is not None else (bad.values, None)
        values = np.asarray(values, dtype=float)
        if points is not None:
            values = np.broadcast_to(values, points.shape[:-1])
        finite = np.isfinite(values)
        local = None
        if values.size:
            i = int(np.argmin(finite)) if not finite.all() else int(np.argmax(np.abs(values)))
            index = np.unravel_index(i, values.shape)
            point = None if points is None else tuple(float(x) for x in points[index])
            local = (not finite.all(), abs(float(values[index])), float(values[index]), point)
    found = [f for f in comm.allgather(local) if f is not None]
    step = "" if dt is None or not bad.weighed else f", and {dt_key} = {dt:g}, which weighs it"
    first = next((f for f in found if f[0]), None) or max(found, key=lambda f: f[1], default=None)
    if first is None or bad.sample is None:
        value = "" if first is None else " reach inf" if first[0] else f" reach {first[2]:.3g}"
        return (f"{bad.key}: the system's entries from it{value}, so large that the system of the step overflows "
                f"double precision (its sums of squares reach inf): far beyond any material or mesh; check the "
                f"values and their units{step}")
    nonfinite, _, value, point = first
    at = "" if point is None else f" at ({', '.join(f'{x:.6g}' for x in point)})"
    # (a step's start sees the switches of t from inside the step: where(t > 50, ...) holds at 50 there)
    after = " (as the step after it sees t)" if getattr(bad.t, "switch", bad.t) > bad.t else ""
    if nonfinite:
        return (f"{bad.key} = {value:g}{at}, t = {bad.t:.6g}{after}: not finite (inf or NaN): an overflow, a "
                f"division by zero or a value out of range at that time; check the expression and its units")
    return (f"{bad.key} = {value:.6g}{at}, t = {bad.t:.6g}{after}: so large that the system of the step overflows "
            f"double precision (its sums of squares reach inf); check the value and its units{step}")


def check_temperature_range(source: str, problem, u0: np.ndarray | None, t: float, bounds, unit: str,
                            what: str = "") -> None:
    """Refuse (exit 2) prescribed temperatures at time t (``u0``, when given, and the Dirichlet
    values) outside ``run.temperature_range`` = ``bounds`` (a lower end at absolute zero in ``unit``
    takes round-off below it: :func:`below_absolute_zero`): the run would stop at its first step
    as if it had diverged (collective). ``what`` names ``u0`` when it is not the initial
    temperature (a checkpoint's)."""
    named = prescribed_temperatures(problem, u0, t)
    if what and named and u0 is not None:
        named[0] = (what, named[0][1])
    if not named:
        return
    extremes = np.array([[np.min(v) if v.size else np.inf, -np.max(v) if v.size else np.inf] for _, v in named])
    problem.mesh.comm.Allreduce(MPI.IN_PLACE, extremes, op=MPI.MIN)
    lo, hi = bounds
    floor = lo - ZERO_ROUNDOFF if lo <= absolute_zero(unit) else lo
    for (name, _), (low, minus_high) in zip(named, extremes):
        for value in (low, -minus_high):
            if np.isfinite(value) and not floor <= value <= hi:
                raise CaseError(f"{source}: {name} reaches {value:.6g}, outside run.temperature_range = "
                                f"[{lo:g}, {hi:g}] (the range a run's temperatures must stay in): fix the value, or "
                                f"widen run.temperature_range")


def check_absolute_zero(source: str, problem, u0: np.ndarray | None, t: float, unit: str) -> None:
    """Refuse temperatures below absolute zero in ``unit`` on the mesh at time t: the initial
    temperature ``u0`` (when given), Dirichlet values and T_inf at the quadrature points of its
    facets, beyond round-off (:func:`below_absolute_zero`); the message names the key and its lowest
    value, in all its digits (collective)."""
    named = prescribed_temperatures(problem, u0, t)
    for term in list(problem.robin) + list(problem.radiation):
        named.append((f"boundary.{term.name}.T_inf", term.condition.T_inf(term.facets.points, t)))
    if not named:
        return
    lows = np.array([np.min(v) if v.size else np.inf for _, v in named], dtype=float)
    problem.mesh.comm.Allreduce(MPI.IN_PLACE, lows, op=MPI.MIN)
    bad = next(((name, low) for (name, _), low in zip(named, lows) if below_absolute_zero(low, unit)), None)
    if bad is not None:
        raise CaseError(f"{source}: {bad[0]} must be >= {absolute_zero(unit):g} {unit} (absolute zero), got "
                        f"{bad[1]:.15g} (its lowest value on the mesh at t = {t:g})")


def temperature_scale(problem, u0: np.ndarray) -> float:
    """The largest magnitude of the temperatures the case gives at the start (collective): the
    initial field ``u0``, the Dirichlet values and T_inf at t = 0; the solves' round-off is relative
    to it."""
    named = prescribed_temperatures(problem, u0, 0.0)
    exchanges = list(problem.robin) + list(problem.radiation)
    named += [("", term.condition.T_inf(term.facets.points, 0.0)) for term in exchanges]
    with np.errstate(all="ignore"):
        top = np.array([max((float(np.max(np.abs(v))) for _, v in named if np.size(v)), default=0.0)])
    problem.mesh.comm.Allreduce(MPI.IN_PLACE, top, op=MPI.MAX)
    return float(top[0]) if np.isfinite(top[0]) else 0.0


def boundary_temperatures_change(problem) -> bool:
    """Some Dirichlet value or T_inf depends on t (the same on every rank)."""
    exprs = [bc.value for bc in problem.dirichlet.conditions]
    exprs += [term.condition.T_inf for term in list(problem.robin) + list(problem.radiation)]
    return any(getattr(e, "depends_on_time", False) for e in exprs)


def check_boundary_temperatures(source: str, problem, t: float, unit: str, where: str) -> None:
    """After a step whose boundary temperatures depend on t: none of them below absolute zero at
    its time (collective); else a RangeError (exit 3) of ``where`` ("step 2 (t = 0.2)") naming the
    key and its lowest value."""
    try:
        check_absolute_zero(source, problem, None, t, unit)
    except CaseError as exc:
        raise RangeError(f"{where}: {str(exc).removeprefix(f'{source}: ')}") from None


def check_step_moves(case, problem, dt: float, u: np.ndarray | None = None) -> None:
    """Refuse (exit 2) a fixed time step over which conduction and convection cannot move a
    temperature: on every node dt (K + K_R)_ii is below solver.rtol of the heat capacity m_i, so
    the solver's first residual already meets its tolerance and every step keeps the field as it
    was (a capacity far beyond any material, or a time step far too small). Not judged with a
    source or a heat flux, which move temperatures by themselves. The nonlinear problem is judged
    on the diagonals of its conduction and capacity Jacobians at the initial temperature ``u``
    (``c = "1e30*(1+T)"`` "completed" with the field it started from). One Allreduce."""
    if problem.load_parts(0.0).keys() - {t.name for t in problem.robin}:  # a source or a flux heats without K
        return
    n = problem.mesh.n_owned
    with np.errstate(all="ignore"):
        if u is not None:  # (k, rho, c of T)
            slots = problem.diagonal_slots
            stiffness = problem.linearise(u, 0.0, 0.0, 1.0, jacobian=True, newton=False).symmetric[slots]
            capacity = problem.linearise(u, 0.0, 1.0, 0.0, jacobian=True, newton=False).symmetric[slots]
        else:
            stiffness, capacity = np.asarray(problem.stiffness(0.0).diagonal()[:n]), problem.mass_weights[:n]
        ratio = dt * stiffness / np.abs(capacity)
    largest = np.array([float(np.max(ratio, initial=0.0))])
    problem.mesh.comm.Allreduce(MPI.IN_PLACE, largest, op=MPI.MAX)
    rtol = case.solver.rtol
    exchange = "".join(f" and boundary.{t.name}.h" for t in problem.robin)  # (the exchanges in K_R)
    if np.isfinite(largest[0]) and 0 < largest[0] < rtol:
        raise CaseError(f"{case.source}: time.dt = {dt:.6g} moves no temperature: the heat conducted over a step "
                        f"is below solver.rtol = {rtol:g} of the heat capacity on every node (at most "
                        f"{largest[0]:.2g} of it): material.k{exchange} far too small or material.rho and "
                        f"material.c far too large for any material, or time.dt far too small; check them and their "
                        f"units, or lower solver.rtol")


def inputs_of_time(physics) -> list[tuple[str, object]]:
    """(key, value) of every input that may depend on t: the source, the boundary values, and the
    properties (k of t, in the material and in regions; a diagonal k's entries each)."""
    named = [("source.f", physics.source)]
    for bc in physics.boundaries:
        named += [(f"boundary.{bc.name}.{key}", value) for key, value in vars(bc).items() if key != "name"]
    known = {id(value) for _, value in named}
    named += [(key, p) for p, key, _ in ranged_expressions(physics) if id(p) not in known]
    return named


def warn_time_in_steady(case) -> None:
    """A steady case solves at t = 0: an input that depends on t is taken there (a warning names it)."""
    late = [key for key, value in inputs_of_time(case.physics) if getattr(value, "depends_on_time", False)]
    if late:
        log.warning(f"warning: {case.source}: time.scheme = \"steady\" solves at t = 0: {', '.join(late)} "
                    f"{'depends' if len(late) == 1 else 'depend'} on t and {'is' if len(late) == 1 else 'are'} "
                    f"taken there")


def warn_switches_between_steps(case, dt: float) -> None:
    """Fixed steps sample an input at their ends: a switch of t between two step ends (a heater on
    from 3 to 4 s, steps of 2 s) acts for the whole step it falls in, or not at all: a warning
    names the first such input and time."""
    for key, value in inputs_of_time(case.physics):
        for s in getattr(value, "switch_times", lambda: ())():
            if 0.0 < s < case.time.t_end and abs(s / dt - round(s / dt)) > 1e-9 * max(1.0, s / dt):
                log.warning(f"warning: {case.source}: {key} switches at t = {s:g} s, between two steps of "
                            f"{dt:.6g} s: the step it falls in takes the value of its end for the whole step; "
                            f"a time.dt that divides {s:g} s (or adaptive steps, which land on it) is exact")
                return


def warn_hidden_switches(case, guarded: set[str] = frozenset()) -> None:
    """Adaptive steps land on the times that t is compared with (``t >= 300``); an input that
    switches on another function of t may be stepped over: a warning names it (unless its
    switches were found among the abrupt changes that the steps are kept short over, the keys
    ``guarded``)."""
    hidden = [key for key, value in inputs_of_time(case.physics)
              if key not in guarded and getattr(value, "hidden_switches", lambda: False)()]
    if hidden:
        log.warning(f"warning: {case.source}: {', '.join(hidden)} switch{'es' if len(hidden) == 1 else ''} at times "
                    f"that adaptive steps cannot find (a comparison or floor/ceil/sign of a function of t), and a "
                    f"short pulse may be stepped over: compare t itself with numbers (t >= 300 and t <= 301), or "
                    f"lower time.dt_max below the pulse's length")


def warn_abrupt_changes(case, changes, dt: float | None = None) -> None:
    """An input's abrupt changes (:mod:`solver.heat.pulses`: a pulse of ``exp``, ``tanh``, ``abs``
    or ``max`` of t, a steep ramp) that the steps could miss: adaptive steps, grown long in the
    steady spell before one, are kept short over it (a warning names the input, the time, the
    rise and the steps taken there, unless time.dt_max is already shorter); fixed steps of ``dt``
    longer than its rise sample it at one time or none (a warning says so, unless it is a jump
    that may fall on a step's end, as at every 10 s with steps of 1 s). One line per input."""
    by_key: dict[str, list] = {}
    for c in changes:
        by_key.setdefault(c.key, []).append(c)
    for key, found in by_key.items():
        if dt is None:
            spec = case.time.adaptive
            found = [c for c in found if c.guard()[2] < spec.dt_max]
            if not found:
                continue
            c = found[0]
            start, end, cap = c.guard()
            more = (f"; the same over its {len(found) - 1} later change{'s' if len(found) > 2 else ''}, the last at "
                    f"t = {found[-1].start:.6g} s" if len(found) > 1 else "")
            log.warning(f"warning: {case.source}: {key} changes abruptly at t = {c.start:.6g} s (by half its range "
                        f"within {c.rise:.3g} s, after a steady spell): adaptive steps grown there would step over "
                        f"it, so they land on t = {start:.6g} s and take at most {cap:.3g} s until t = {end:.6g} s"
                        f"{more}; a time.dt_max below {c.rise:.3g} s sets the steps there instead")
        else:
            found = [c for c in found if c.rise < dt and not (c.jump and on_a_step_end(c.start, c.rise, dt))]
            if not found:
                continue
            c = found[0]
            if c.jump:
                log.warning(f"warning: {case.source}: {key} jumps between t = {c.start:.6g} and "
                            f"{c.start + c.rise:.6g} s, between two steps of {dt:.6g} s: the step it falls in takes "
                            f"the value of its end for the whole step; a time.dt with a step's end there (or "
                            f"adaptive steps, kept short over it) is closer")
            else:
                log.warning(f"warning: {case.source}: {key} changes abruptly at t = {c.start:.6g} s (by half its "
                            f"range within {c.rise:.3g} s): steps of {dt:.6g} s sample it at one or two times, or "
                            f"none, and take the value at their end for the whole step; a time.dt below "
                            f"{c.rise:.3g} s (or adaptive steps, kept short over it) resolves it")


def on_a_step_end(start: float, length: float, dt: float) -> bool:
    """Some multiple of dt lies in [start, start + length]."""
    return math.floor((start + length) / dt + 1e-9) * dt >= start - 1e-9 * dt


def warn_lumped_quadratic_simplices(case, cell_type: str) -> None:
    """The lumped mass of P2 triangles and tetrahedra: no positive diagonal mass is consistent
    with their load (the row sums vanish or turn negative at the vertices), so the loads take its
    nodal quadrature, second-order accurate; a warning says so, and what keeps the elements'
    accuracy."""
    if case.physics.lumped_mass and cell_type in ("triangle6", "tetrahedron10"):
        cells = "triangles" if cell_type == "triangle6" else "tetrahedra"
        log.warning(f"warning: {case.source}: the lumped mass of quadratic {cells} is second-order accurate "
                    f"only (no positive diagonal mass is consistent with their load, which vanishes or turns "
                    f"negative at the vertices: the loads are taken at the nodes, and a long run reaches the "
                    f"steady state within an error of order h^2); the consistent mass (time.mass = "
                    f"\"consistent\", an implicit scheme), linear elements, or quadrilaterals and hexahedra keep "
                    f"the accuracy")


def check_step(problem, balance, where: str) -> None:
    """After a step: the heat balance (its terms are global) must be finite; else a RangeError
    (exit 3) of ``where`` ("step 4 (t = 66.6667)") naming the term."""
    if np.isfinite(balance.energy) and np.all(np.isfinite(balance.inflow)):
        return
    bad = next((name for name, value in zip(balance.terms, balance.inflow) if not np.isfinite(value)), None)
    what = "the stored energy (material.rho, material.c or the temperature)" if bad is None else term_key(problem, bad)
    raise RangeError(f"{where}: {what} gives a non-finite heat flow (inf or NaN): an overflow, a division by zero "
                     f"or a value out of range at that time; check the expression")


def check_mesh(case, mesh) -> None:
    """Every cell finite and with a volume, and a mesh file's cells not folded over each other
    (a generated mesh cannot fold); else exit 2 naming the mesh file or keys."""
    check_cells(mesh, f"{case.source}: {case.mesh_key}", folds=isinstance(case.mesh, MeshFileSpec))


def _other_kind(mesh, name: str) -> str:
    """What a group of ``name`` is when it is not of the kind asked for: "" when none has the name."""
    g, dim = mesh.groups, mesh.dim
    if name in g.region:
        return f": {name!r} is a region group (cells, dimension {dim}); a boundary is a group of facets " \
               f"(dimension {dim - 1})"
    if name in g.boundary:
        return f": {name!r} is a boundary group (facets, dimension {dim - 1}); a region is a group of cells " \
               f"(dimension {dim})"
    if name in g.other:
        return f": {name!r} is a group of {'points' if g.other[name] == 0 else 'lines'} (dimension {g.other[name]}); " \
               f"a boundary is a group of facets (dimension {dim - 1}), a region of cells (dimension {dim})"
    return ""


def check_case_against_mesh(case, mesh) -> None:
    """What the case names must exist in the mesh: the boundary and region groups of a mesh file
    (each boundary with facets); probes and an anisotropic k of the mesh's dimension."""
    def fail(msg):
        raise CaseError(f"{case.source}: {msg}")

    if isinstance(case.mesh, MeshFileSpec):
        path, have, counts = case.mesh.path, mesh.groups.boundary, mesh.groups.facet_counts
        for name in case.physics.named_boundaries:
            if name not in have:
                fail(f"boundary.{name}: the mesh {path} has no boundary group {name!r}{_other_kind(mesh, name)} "
                     f"(it has: {', '.join(sorted(have)) or NO_GROUPS})")
            if counts.get(name, 1) == 0:
                fail(f"boundary.{name}: the group {name!r} of the mesh {path} has no facets")
            kind = (case.values.get("boundary", {}).get(name) or {}).get("type")
            inside = mesh.groups.inner.get(name, 0)
            if inside and kind in SURFACE_ONLY:
                article = "an" if kind == "insulated" else "a"
                acts = "has no surface to insulate: the heat crosses it" if kind == "insulated" else \
                    "has no surface to exchange through: it would draw heat out of the middle of the solid"
                fail(f"boundary.{name}: {inside} of the {counts.get(name, inside)} facets of the group {name!r} of the "
                     f"mesh {path} lie inside the domain, with cells on both sides, where {article} {kind} boundary "
                     f"{acts}; give it type \"dirichlet\" or \"neumann\" (a sheet source), or mesh a gap there (a "
                     f"slot between the parts, each with its own surface)")
        groups = mesh.groups.region
        for region in case.physics.regions:
            if region.group is not None and region.group not in groups:
                have = ", ".join(sorted(groups)) or "no named region groups"
                fail(f"region.{cut(region.name)}.group: the mesh {path} has no region group "
                     f"{cut(repr(region.group))}{_other_kind(mesh, region.group)} (it has: {have})")
    if mesh.dim == 2:
        for key, value in inputs_of_time(case.physics) + [("initial.temperature", case.physics.initial)]:
            if isinstance(value, Expression) and "z" in value.names:
                fail(f"{key} uses z, but the mesh is 2D: its points have x and y only (z would read 0 everywhere)")
    for region in case.physics.regions:
        if mesh.dim == 2 and len(region.box) > 2 and region.box[2] is not None:
            fail(f"region.{cut(region.name)}.z: the mesh is 2D (a box in 2D takes x and y only)")
    for point in case.output.probes or ():
        if len(point) != mesh.dim:
            fail(f"output.probes: {list(point)} has {len(point)} coordinates, the mesh is {mesh.dim}D")
    physics = case.physics
    for name, k in [("material.k", physics.material.k)] + [(f"region.{cut(r.name)}.k", r.k)
                                                           for r in physics.regions]:
        if isinstance(k, tuple) and len(k) != mesh.dim:
            fail(f"{name} must be one value (a number, an expression or a table) or a list of {mesh.dim} (a "
                 f"diagonal tensor), got {len(k)} entries")


def refuse_shared_facets(case, mesh) -> None:
    """Two boundaries of the case on the same facets (groups of a mesh file that share them) are
    refused (collective): the later Dirichlet value took them without a word, two Robin exchanges
    were added, a flux was booked on facets a Dirichlet value holds."""
    if not isinstance(case.mesh, MeshFileSpec):
        return  # (a generated mesh's sides share no facet)
    names = [n for n in case.physics.named_boundaries if n in mesh.boundaries]
    pair = np.array([len(names) ** 2], dtype=np.int64)  # the first pair a * len + b sharing a facet (none: len^2)
    rows = [np.sort(mesh.boundaries[n].nodes, axis=1) for n in names]
    if len(names) > 1 and sum(map(len, rows)):
        keys = np.concatenate(rows)
        which = np.repeat(np.arange(len(names)), [len(r) for r in rows])
        order = np.lexsort(keys.T[::-1])
        keys, which = keys[order], which[order]
        shared = np.flatnonzero(np.all(keys[1:] == keys[:-1], axis=1) & (which[1:] != which[:-1]))
        if len(shared):
            a, b = np.minimum(which[shared], which[shared + 1]), np.maximum(which[shared], which[shared + 1])
            pair[0] = int((a * len(names) + b).min())
    mesh.comm.Allreduce(MPI.IN_PLACE, pair, op=MPI.MIN)
    if pair[0] < len(names) ** 2:
        a, b = names[int(pair[0]) // len(names)], names[int(pair[0]) % len(names)]
        raise CaseError(f"{case.source}: boundary.{a} and boundary.{b} are on the same facets (the groups {a!r} and "
                        f"{b!r} of the mesh {case.mesh.path} share some): a facet takes one condition; give the "
                        f"condition to one of them, or make groups that do not overlap")


def report_unused_melting(case, comm) -> None:
    """Warn (rank 0) where solidus or liquidus is given without a latent heat: they do nothing."""
    material = case.values.get("material", {})
    regions = {name: body for name, body in (case.values.get("region") or {}).items() if isinstance(body, dict)}
    # a region takes the melting keys it does not set from [material]: the material's range is used
    # by a region with a latent heat of its own, and a region's by the material's latent heat
    inherits = any(body.get("latent_heat") and (body.get("solidus") is None or body.get("liquidus") is None)
                   for body in regions.values())
    tables = [("material", material, material.get("latent_heat") or inherits)]
    tables += [(f"region.{cut(name)}", body, body.get("latent_heat") if body.get("latent_heat") is not None
                else material.get("latent_heat")) for name, body in regions.items()]
    for where, body, latent in tables:
        given = [key for key in ("solidus", "liquidus") if body.get(key) is not None]
        if given and not latent and comm.rank == 0:
            log.warning(f"warning: {case.source}: {where}.{' and '.join(given)} "
                        f"{'are' if len(given) > 1 else 'is'} not used without {where}.latent_heat > 0 (no melting "
                        f"range is modelled)")


def report_empty_regions(mesh, physics, source="") -> None:
    """Warn (rank 0) about regions whose box selects no cell; refuse one that a group alone selects
    (a group of the mesh file without cells: the properties meant for it would go nowhere);
    collective."""
    if not physics.regions:
        return
    centroids = Centroids(mesh)
    totals = np.array([region_cells(mesh, r, centroids)[: mesh.n_owned_cells].sum() for r in physics.regions],
                      dtype=np.int64)
    mesh.comm.Allreduce(MPI.IN_PLACE, totals)
    for region, total in zip(physics.regions, totals):
        if total == 0 and region.group is not None and all(b is None for b in region.box):
            raise CaseError(f"{source}: region.{cut(region.name)}.group: the group {cut(repr(region.group))} of the "
                            f"mesh file has no cells")
        if total == 0 and mesh.comm.rank == 0:
            log.warning(f"region.{cut(region.name)} selects no cell (its box or group misses the mesh): it has no "
                        f"effect")


# boundary kinds that only a surface of the body has (a group of facets inside the domain is refused)
SURFACE_ONLY = ("insulated", "robin", "radiation", "convection-radiation")
BALANCE_LIMIT = 1e-2  # relative imbalance beyond which a balance that should close is looked at
LOOSE_RTOL = 1e-6  # solver.rtol above which a balance that does not close is put down to it (exit 2)
GROSS_LIMIT = 1e-6  # ... as a fraction of the magnitude of flows that cancel (sum_i |F_i|), at least


# a mesh file without any facet group: where the reader looks for them
NO_GROUPS = ("no boundary groups: facets tagged in cell data named gmsh:physical (Gmsh), cell_tags (XDMF) or "
             "medit:ref (Medit), with the boundary's facet elements in the file")


def check_balance(sim) -> None:
    """:func:`judge_balance`; then a steady balance that passed is scaled, as shown, by its
    exchanges' magnitude too (:func:`_exchange_magnitude`: a body at its ambient temperature
    exchanges its round-off), which the judgement leaves out: the round-off of h = 1e17 would
    hide the Dirichlet reactions it loses (collective)."""
    judge_balance(sim)
    if sim.case.steady and sim.balance is not None:
        sim.balance.exchange = _exchange_magnitude(sim)
        _drop_round_off_flows(sim)


def _drop_round_off_flows(sim) -> None:
    """A steady balance whose every flow is round-off of the magnitudes in play (the loads', and
    the exchanges and the conduction into the Dirichlet rows of the temperatures the solve started
    from and ended at), to the solves' tolerance (:func:`solve_tolerance`), and whose flows do not
    balance each other (within :data:`BALANCE_LIMIT` of their sum of magnitudes), is of a body held
    or left at one temperature: it shows no flows and no imbalance, as where its round-off cancels
    exactly (a body held at 0 C by one side printed left +8.8e-13 W, relative imbalance 1.00, on one
    rank and none, 0.00, on three; so did one cooled by convection to 0 C from 100 C). Tiny flows
    that balance are real and shown (two sides held at 20 C and 20.00000001 C pass 1e-8 W; a fixed
    cut of 1e-9 of the conduction of 20 C printed none; collective)."""
    b = sim.balance
    scale = max(b.magnitude, b.exchange, _exchange_magnitude(sim, start=True), _conduction_magnitude(sim, start=True))
    if not np.isfinite(scale) or np.any(np.abs(b.inflow) > solve_tolerance(sim.case) * scale):
        return
    gross = float(np.abs(b.inflow).sum())
    if gross == 0.0 or abs(float(b.inflow.sum())) > BALANCE_LIMIT * gross:
        b.inflow[:] = 0.0


def solve_tolerance(case) -> float:
    """The fraction of the magnitudes in play that the solves leave as error in a steady balance's
    flows: ten times the largest relative tolerance of the solves (solver.rtol, nonlinear.rtol of a
    nonlinear case; 1e-9 with the defaults), at least 1e3 double-precision epsilons."""
    rtol = max(case.solver.rtol, case.nonlinear.rtol if case.physics.nonlinear else 0.0)
    return max(10.0 * rtol, 1e3 * np.finfo(float).eps)


def judge_balance(sim) -> None:
    """At the end of a run: refuse (exit 3) a heat balance that does not close although the
    problem's scales let it (collective). It closes to the solver tolerance on any sound problem;
    far off, the Dirichlet reactions ``K u`` were lost in round-off (a conductivity or a length
    many orders of magnitude off) and the reported heat flows are meaningless. A balance made of
    round-off alone (no heat flows at all, a field that stays put) is not refused: transient, the
    imbalance must exceed :data:`ENERGY_ROUNDOFF` of the thermal energy the body holds (sum of
    m_i |u_i|); steady, it must exceed :data:`BALANCE_LIMIT` of the flows, or where the source's
    and fluxes' magnitudes (sum_i |F_i|) exceed their nets (they cancel over the body), 1e3 times
    the solves' tolerances (at least :data:`GROSS_LIMIT`) of those magnitudes; and a flow that
    round-off cannot make (a source, a Neumann flux, a Robin exchange far above its own round-off)
    must be there."""
    fixed = check_parts_held(sim) if sim.case.steady else None
    roundoff = getattr(sim.stepper, "check_roundoff", None) if sim.case.steady else None
    if roundoff is not None:  # (after each part's own balance: a part held too weakly is named for what it is)
        roundoff(sim.u)
    p = sim.problem
    # transient: the steps' own balance (the Dirichlet values' jump at the start closes by construction)
    b = sim.balance if sim.balance is None or sim.case.steady else sim.balance.since_opened()
    if b is not None and not np.isfinite(b.relative):  # every rank holds the same sums
        sums = f"heat in {float(np.sum(b.inflow)):.3g} W" if sim.case.steady else \
            f"energy change {b.change:.3g} J, heat in {float(np.sum(b.inflow)):.3g} J"
        raise CaseError(f"{sim.case.source}: the heat balance is not finite ({sums}): the stored energy or the heat "
                        f"flows overflow double precision, so the mesh's size, the properties or the temperatures "
                        f"are far beyond any physical scale; check their values and units")
    limit = BALANCE_LIMIT
    if b is not None:
        net = max(abs(b.change), float(np.abs(b.inflow).sum()), abs(b.lag))
        if sim.case.steady:
            b.magnitude = _load_magnitude(sim)  # (b is the run's balance: its relative imbalance as shown)
        # flows that cancel (over the body: their magnitude; over the run: their gross) are judged on
        # what they move, to the solves' tolerances
        if (b.magnitude if sim.case.steady else b.gross) > net:
            c = sim.case
            limit = max(GROSS_LIMIT, 1e3 * c.solver.rtol, 1e3 * c.nonlinear.rtol if c.physics.nonlinear else 0.0)
    if b is not None and not sim.case.steady and not b.moved:  # no temperature moved in any step: did heat flow?
        # (against the flows themselves: the energy held, which scales b.relative, dwarfs them here)
        net = abs(b.imbalance)
        if net > 0.5 * max(float(np.abs(b.inflow).sum()), abs(b.lag)) and _flows_beyond_round_off(sim, b):
            raise CaseError(_frozen(sim, b))
    if b is None or b.relative <= limit:
        return
    comm, n = sim.mesh.comm, sim.mesh.n_owned
    u = np.abs(sim.u[:n])
    eps = np.finfo(float).eps
    if not sim.case.steady:
        # (the energy held at the last step, relative to u = 0, and the totals booked before a restart)
        if abs(b.imbalance) <= ENERGY_ROUNDOFF * (b.held + b.carried):
            return
        reason = f"{abs(b.imbalance):.3g} J against {b.held:.3g} J held"
    else:
        # the flows of parts without a dirichlet boundary have had their own judgement (check_parts_held)
        index = {name: i for i, name in enumerate(b.terms)}
        touching = touch_fixed_parts(sim.mesh, [t.name for t in p.neumann + p.robin], fixed)
        neumann = [t for t, on in zip(p.neumann, touching[: len(p.neumann)]) if on]
        robin = [t for t, on in zip(p.robin, touching[len(p.neumann):]) if on]
        firm = [abs(b.inflow[index["source"]])] if "source" in index else []
        firm += [abs(b.inflow[index[t.name]]) for t in neumann]
        uptake = np.array([_uptake_scale(p, t, u) for t in robin])
        if len(uptake):
            comm.Allreduce(MPI.IN_PLACE, uptake)
        firm += [abs(b.inflow[index[t.name]]) for t, scale in zip(robin, uptake)
                 if abs(b.inflow[index[t.name]]) > 1e6 * eps * scale]
        if not firm or max(firm) == 0:
            return
        reason = f"{abs(b.imbalance):.3g} W against flows of {max(firm):.3g} W"
    if not sim.case.steady and getattr(p, "mass_weights", None) is None:  # an enthalpy form
        atol = sim.case.nonlinear.atol
        floor = f", or nonlinear.atol = {atol:g}: it ends the iterations of small bodies early" if atol else ""
        raise NumericalError(f"{sim.case.source}: the heat balance does not close (relative imbalance "
                             f"{b.relative:.2g}: {reason}): the reported flows are meaningless; the nonlinear "
                             f"iterations stopped far from the solution (lower nonlinear.rtol{floor}), or the "
                             f"problem's scales exceed double precision")
    if sim.case.solver.rtol > LOOSE_RTOL:  # (the solves themselves stop far from the solution)
        raise CaseError(f"{sim.case.source}: the heat balance does not close (relative imbalance {b.relative:.2g}: "
                        f"{reason}): the linear solves stop at solver.rtol = {sim.case.solver.rtol:g}, too loose for "
                        f"the temperatures and flows to mean anything; lower it (the default is 1e-10)")
    through = "the heat through the dirichlet boundaries is" if p.dirichlet.names else \
        "the heat exchanged through the boundaries (an h or a flux many orders above the conduction?) is"
    raise NumericalError(f"{sim.case.source}: the heat balance does not close (relative imbalance "
                         f"{b.relative:.2g}: {reason}): {through} lost in "
                         f"round-off, and the reported flows are meaningless; the problem's scales exceed double "
                         f"precision (a conductivity, capacity, length or time step many orders of magnitude off, "
                         f"or in other units?)")


MOVES = 1e-6  # a step's heat, as a fraction of the energy held, that moves temperatures far above round-off


def _frozen(sim, b) -> str:
    """Why heat flowed over the steps (``b``: their balance) but no temperature changed. Where a
    step's heat is more than :data:`MOVES` of the energy the body holds, its temperatures should
    have moved by as much, far above round-off: the solves stopped at their tolerances before any
    iteration (a loose solver.rtol, an absolute tolerance above the residuals), which are named.
    Else the heat capacity, or the step, is too large or small for them to move."""
    c = sim.case
    flowed = max(abs(float(b.inflow.sum())), b.gross)
    whole = sim.balance.change  # the run's, with the heat the Dirichlet values brought at the start
    start = f" (the run's energy change of {whole:+.6g} J came at the start, when the Dirichlet values replaced the " \
            f"initial temperatures)" if whole != 0.0 and b.change == 0.0 else ""
    said = f"{c.source}: {flowed:.3g} J flowed in and out over the run but the steps changed no temperature{start}"
    share = flowed / max(b.steps, 1) / b.held if b.held > 0 else math.inf
    if share <= MOVES:
        return (f"{said}: the heat capacity (material.rho times material.c, or a latent heat) is so large, or "
                f"time.dt so small, that the temperatures cannot move within solver.rtol = {c.solver.rtol:g}; check "
                f"those values and their units, or lower solver.rtol")
    tolerances = [f"solver.rtol = {c.solver.rtol:g}"] + [f"solver.atol = {c.solver.atol:g}"] * (c.solver.atol > 0)
    if c.physics.nonlinear:
        tolerances += [f"nonlinear.rtol = {c.nonlinear.rtol:g}"]
        tolerances += [f"nonlinear.atol = {c.nonlinear.atol:g}"] * (c.nonlinear.atol > 0)
    nonlinear = ", nonlinear.rtol = 1e-9, nonlinear.atol = 0" if c.physics.nonlinear else ""
    return (f"{said}: each step's heat, {share:.2g} of the energy the body holds, should have moved them, but the "
            f"solves met their tolerances before any iteration ({', '.join(tolerances)}); tighten them (defaults: "
            f"solver.rtol = 1e-10, solver.atol = 0{nonlinear})")


def _load_magnitude(sim) -> float:
    """The largest magnitude sum_i |F_i| of the source's and the Neumann fluxes' load vectors, or,
    where Dirichlet values alone bring heat in, of the conduction into their rows (collective): a
    source or flux that cancels over the body (sin 2 pi x), or parts held at uniform temperatures,
    have nets of round-off, which cannot scale what the balance may miss."""
    p = sim.problem
    parts = p.load_parts(sim.t)
    gross = np.array([float(np.abs(parts[name]).sum()) if name in parts else 0.0
                      for name in ["source"] + [t.name for t in p.neumann]] + [0.0])
    sim.mesh.comm.Allreduce(MPI.IN_PLACE, gross)
    held_only = p.dirichlet.names and not (p.robin or p.radiation) and not gross.any()  # (the same on every rank)
    if held_only:  # the conduction into the dirichlet rows: parts held at uniform temperatures exchange round-off
        gross[-1] = _conduction_magnitude(sim)  # alone (where nothing else brings heat in: elsewhere it would hide
    return float(gross.max(initial=0.0))  # reactions lost in round-off)


def _conduction_magnitude(sim, start: bool = False) -> float:
    """The conduction into the Dirichlet rows, sum |K_ij| |u_j| (W, collective; 0 without a
    conductivity matrix); ``start``: of max(|u_j|, |u0_j|) with u0 the initial temperature, which
    the steady solve starts from (a body held at 0 C ends at round-off of the 20 C it started at)."""
    p = sim.problem
    K = getattr(p, "K_conduction", None)
    if K is None or not p.dirichlet.names:
        return 0.0
    n = sim.mesh.n_owned
    with np.errstate(all="ignore"):
        u = np.abs(sim.u)
        if start:
            u = np.maximum(u, np.abs(np.asarray(sim.case.physics.initial(sim.mesh.coords, 0.0), dtype=float)))
        conduction = np.array([float((abs(K) @ u)[p.dirichlet.mask[:n] > 0].sum())])
    sim.mesh.comm.Allreduce(MPI.IN_PLACE, conduction)
    return float(conduction[0])


def _exchange_magnitude(sim, start: bool = False) -> float:
    """The magnitude of the Robin and radiation exchanges at the steady solution, sum over their
    boundaries of int h (|T_inf| + |u|) N_i and int eps sigma (T_inf^4 + u^4) N_i (W, collective):
    a body at its ambient temperature exchanges their round-off, which nothing else scales.
    ``start``: of max(|u|, |u0|) with u0 the initial temperature, which the steady solve starts
    from (a body cooled to 0 C ends at round-off of the 100 C it started at)."""
    p, n = sim.problem, sim.mesh.n_owned
    total = 0.0
    with np.errstate(all="ignore"):
        u = sim.u
        if start:
            u = np.maximum(np.abs(u), np.abs(np.asarray(sim.case.physics.initial(sim.mesh.coords, 0.0), dtype=float)))
        parts = p.load_parts(sim.t) if p.robin else {}
        for term in p.robin:
            total += float(np.abs(parts[term.name]).sum()) + _uptake_scale(p, term, np.abs(u[:n]))
        gross = getattr(p, "radiation_gross", None)
        for term in p.radiation if gross is not None else ():
            total += float(gross(term, u, sim.t).sum())
    total = np.array([total])
    sim.mesh.comm.Allreduce(MPI.IN_PLACE, total)
    return float(total[0]) if np.isfinite(total[0]) else 0.0


def _conductance(sim):
    """The matrix of the flows out per kelvin (W/K, owned rows): a linear problem's conductivity
    matrix, or a nonlinear one's symmetric Jacobian of conduction and radiation at the last
    temperatures (their slopes lagged); None where the problem has neither."""
    p = sim.problem
    K = getattr(p, "K_conduction", None)
    if K is not None or not hasattr(p, "linearise"):
        return K
    with np.errstate(all="ignore"):
        return p.assembler.csr(p.linearise(sim.u, sim.t, 0.0, 1.0, newton=False).symmetric)


def _flows_beyond_round_off(sim, b) -> bool:
    """Whether heat really flowed over the steps (``b``: their balance): a source or flux brought
    some in, an exchange more than round-off of its magnitude over the time run (a body at its
    ambient temperature exchanges round-off: 2e-14 J on quadratic cells), or the Dirichlet
    reactions exceed what round-off makes of K u over the time run (a huge conductivity on a
    uniform field gives reactions of round-off alone) (collective)."""
    p = sim.problem
    n_dirichlet, n_firm = len(p.dirichlet.names), 1 + len(p.neumann)
    if np.any(b.inflow[:n_firm] != 0.0):
        return True
    exchanged = b.inflow[n_firm: len(b.terms) - n_dirichlet]
    if np.any(exchanged != 0.0):  # (every rank holds the same sums)
        round_off = 1e6 * np.finfo(float).eps * _exchange_magnitude(sim) * max(abs(sim.t), 1e-300)
        if np.any(np.abs(exchanged) > round_off):
            return True
    K = _conductance(sim)
    if K is None:
        return bool(np.any(b.inflow[len(b.terms) - n_dirichlet:] != 0.0))
    n = sim.mesh.n_owned
    with np.errstate(all="ignore"):
        rate = np.array([float((abs(K) @ np.abs(sim.u))[p.dirichlet.mask[:n] > 0].sum())])
    sim.mesh.comm.Allreduce(MPI.IN_PLACE, rate)
    round_off = 1e6 * np.finfo(float).eps * rate[0] * max(abs(sim.t), 1e-300)
    return abs(float(b.inflow.sum())) > round_off


def _uptake_scale(problem, term, u: np.ndarray) -> float:
    """This rank's int h N_i |u_i| over a Robin boundary at the steady solve's time (inf where h
    cannot be evaluated without a temperature: no flow of it is taken as beyond round-off)."""
    try:
        with np.errstate(all="ignore"):
            return float(np.dot(problem.robin_uptake(term, 0.0), u))
    except Exception:  # noqa: BLE001 - an h of T: left out of the judgement
        return float("inf")
