"""Range checks of the values known only at run time: a property or boundary parameter given as
an expression (of T, t or x, y, z) must stay, wherever and whenever it is evaluated, in the range
its key gives a number (the ``low``, ``high`` and ``positive`` of its :class:`~solver.case.schema.Key`).

Each evaluation site hands its values to the problem's :class:`RangeMonitor`, which keeps the
first value out of range on its rank (a minimum and a maximum per array; no communication). The
flags are reduced collectively: with the residual norm of every nonlinear iteration (the same
``Allreduce``), after each step (:func:`check_step`, one small ``Allreduce`` when some expression
depends on t or T) and at the initial state (:func:`check_initial`). A violation then stops
every rank together with one line naming the key, the value, the time and the point: exit 3
(:class:`~solver.errors.RangeError`) during the run, exit 2 at the initial state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from solver.case.expressions import Expression
from solver.case.records import Physics, RadiationBC, RobinBC
from solver.case.schema import BOUNDARY_SCHEMA, REGION_SCHEMA, SCHEMA, Key
from solver.case.shown import cut, shown
from solver.errors import CaseError, RangeError


@dataclass(frozen=True)
class Bounds:
    """The range of a key: inclusive ``low`` and ``high``, ``positive`` (> 0)."""

    low: float | None = None
    high: float | None = None
    positive: bool = False

    @classmethod
    def of(cls, key: Key) -> "Bounds":
        return cls(key.low, key.high, key.positive)

    @property
    def bounded(self) -> bool:
        return self.positive or self.low is not None or self.high is not None

    def first_outside(self, values) -> int | None:
        """The flat index of the first value outside the range (NaN included), or None."""
        v = np.asarray(values, dtype=float)
        if v.size == 0:
            return None
        lo, hi = v.min(), v.max()  # NaN if any is
        ok = lo == lo and np.isfinite(hi) and np.isfinite(lo) and (not self.positive or lo > 0) \
            and (self.low is None or lo >= self.low)
        if ok and (self.high is None or hi <= self.high):
            return None
        inside = np.isfinite(v)
        if self.positive:
            inside &= v > 0
        if self.low is not None:
            inside &= v >= self.low
        if self.high is not None:
            inside &= v <= self.high
        return int(np.argmin(inside))

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in [{self.low:g}, {self.high:g}]"
        parts = (["> 0"] if self.positive else []) + ([f">= {self.low:g}"] if self.low is not None else []) \
            + ([f"<= {self.high:g}"] if self.high is not None else [])
        return "finite and " + " and ".join(parts)


@dataclass(frozen=True)
class Violation:
    """The first value of a key found out of its range on a rank."""

    key: str
    value: float
    point: tuple[float, ...]
    bounds: Bounds
    expression: str
    t: float | None = None  # None: a property of T alone, evaluated without a time
    T: float | None = None  # the temperature there, when the expression depends on it

    def describe(self, on: str = "") -> str:
        """One line; ``on``: where the point lies besides its coordinates (" on rank 2")."""
        at = ", ".join(f"{c:.6g}" for c in self.point)
        when = "" if self.t is None else f", t = {self.t:.6g}"
        temperature = "" if self.T is None else f", T = {self.T:.6g}"
        digits = 6  # as many as show it out of range (not 1 for 1.000003)
        while digits < 17 and self.bounds.first_outside([float(f"{self.value:.{digits}g}")]) is None:
            digits += 1
        value = f"{self.value:.{digits}g}"
        return (f"{self.key} = {value} at ({at}){on}{when}{temperature}, but it must be {self.bounds}: "
                f"keep its expression {shown(self.expression)} in range over the temperatures and times the run "
                f"reaches (e.g. with min() and max())")


def ranged_expressions(physics: Physics) -> list[tuple[Expression, str, Bounds]]:
    """Every expression of the case whose key has a range, with its key's name and range."""
    out = []

    def add(name, p, spec, axis=""):
        if isinstance(p, tuple):
            for d, q in enumerate(p):
                add(name, q, spec, f" (k{'xyz'[d]})")
        elif isinstance(p, Expression) and Bounds.of(spec).bounded:
            out.append((p, name + axis, Bounds.of(spec)))

    m = physics.material
    for key in ("k", "rho", "c"):
        add(f"material.{key}", getattr(m, key), SCHEMA["material"][key])
    for r in physics.regions:
        for key in ("k", "rho", "c"):
            add(f"region.{cut(r.name)}.{key}", getattr(r, key), REGION_SCHEMA[key])
    for bc in physics.boundaries:
        if isinstance(bc, RobinBC):
            add(f"boundary.{bc.name}.h", bc.h, BOUNDARY_SCHEMA["h"])
        elif isinstance(bc, RadiationBC):
            add(f"boundary.{bc.name}.epsilon", bc.epsilon, BOUNDARY_SCHEMA["epsilon"])
    return out


class RangeMonitor:
    """The ranged expressions of a case (by identity) and the first violation on this rank."""

    def __init__(self, comm, ranged: list[tuple[Expression, str, Bounds]] = ()):
        self.comm = comm
        self.entries = {id(p): (p, name, bounds) for p, name, bounds in ranged}
        # values that may change from step to step: checked after each step
        self.changing = any(p.depends_on_time or p.depends_on_temperature for p, _, _ in ranged)
        self.violation: Violation | None = None

    @classmethod
    def of(cls, physics: Physics, comm) -> "RangeMonitor":
        return cls(comm, ranged_expressions(physics))

    @property
    def active(self) -> bool:
        """Some expression has a range (the same on every rank)."""
        return bool(self.entries)

    def check(self, p, values, t: float | None, where, T=None) -> None:
        """Record the first value of ``p`` out of its range (nothing if ``p`` has none, or once a
        violation is recorded). ``where``: the points of the values (shape ``values.shape +
        (gdim,)``) or a function of a value's index giving its point; ``T``: the temperatures."""
        entry = self.entries.get(id(p))
        if entry is None or self.violation is not None:
            return
        _, name, bounds = entry
        values = np.asarray(values)
        i = bounds.first_outside(values)
        if i is None:
            return
        index = np.unravel_index(i, values.shape)
        point = where(index) if callable(where) else np.asarray(where)[index]
        temperature = None
        if T is not None and p.depends_on_temperature:
            temperature = float(np.broadcast_to(T, values.shape)[index])
        self.violation = Violation(name, float(values[index]), tuple(float(c) for c in np.ravel(point)), bounds,
                                   p.text, None if t is None else float(t), temperature)

    def evaluate(self, p: Expression, points: np.ndarray, t: float) -> np.ndarray:
        """``p`` at the points and time t, checked."""
        values = p(points, t)
        self.check(p, values, t, points)
        return values

    @property
    def flag(self) -> float:
        """1 when this rank holds a violation (for a collective sum or maximum)."""
        return 0.0 if self.violation is None else 1.0

    def raise_found(self, context: str, error=RangeError) -> None:
        """Collective, once the flags show a violation somewhere: raise the first rank's on every rank."""
        found = self.comm.allgather(self.violation)
        self.violation = None
        rank, v = next((r, v) for r, v in enumerate(found) if v is not None)
        on = f" on rank {rank}" if len(found) > 1 else ""
        raise error(f"{context}: {v.describe(on)}")

    def check_collectively(self, context: str, error=RangeError) -> None:
        """One ``Allreduce`` of the flags; raise (every rank) if some rank holds a violation."""
        flag = np.array([self.flag])
        self.comm.Allreduce(MPI.IN_PLACE, flag, op=MPI.MAX)
        if flag[0]:
            self.raise_found(context, error)


def check_step(problem, context: str) -> None:
    """After a step (collective): stop every rank if an expression left its range on some rank;
    nothing to do when no ranged expression depends on t or T."""
    ranges = problem.ranges
    if ranges.changing:
        ranges.check_collectively(context)


def check_initial(source: str, problem, u: np.ndarray, linearise=None) -> None:
    """Refuse (exit 2) a case whose ranged expressions leave their range at the initial
    temperature ``u`` and t = 0 (collective): a nonlinear problem evaluates its properties once
    there (``linearise``: its method); the linear one's h was evaluated by the input checks."""
    ranges = problem.ranges
    if not ranges.active:
        return
    if linearise is not None:
        linearise(u, 0.0, 1.0, 1.0, jacobian=False)
    ranges.check_collectively("at the initial state", lambda message: CaseError(f"{source}: {message}"))
