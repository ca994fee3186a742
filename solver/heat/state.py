"""The restart state of a run: what a checkpoint keeps so that a run continues bit for bit, as
typed records per stage, and their one translation to and from a checkpoint's datasets and
attributes (:mod:`solver.io.checkpoint`).

* :class:`MultistepState`: a multistep scheme's memory (BDF2's previous solution, the sizes and
  energies of the last steps, the balance's storage lag);
* :class:`SystemCacheState`: with variable steps, the matrix the multigrid hierarchy was set up
  from and the keys of the cached systems, so that a restart sets up the same hierarchy;
* :class:`MultigridState`: on the nonlinear problem, the Jacobians the multigrid was set up and
  last updated from;
* :class:`AdaptiveState`: the step-size controller and the predictor's earlier solutions;
* :class:`RunState`: the temperature, step, time, iteration count and heat balance, with the above.

Vectors are local (ghosts current); a checkpoint stores them in canonical order under the
dataset names of :data:`VECTOR_NAMES`, the numbers as JSON (``stepper_state``), so that files
written by earlier versions (which lack some of the numbers) still restart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

LEVELS = 2  # the adaptive predictor's earlier solutions a checkpoint keeps: u_-1, u_-2


@dataclass(frozen=True)
class MultistepState:
    """The memory of a multistep scheme (None: not recorded in the checkpoint, derived again)."""

    previous: np.ndarray | None = None  # u_-1 of a two-step scheme (BDF2)
    earlier_dt: tuple[float, ...] | None = None  # sizes of the steps that ended at u0, u_-1, ...
    earlier_energy: tuple[float, ...] | None = None  # energies of u_-1, ...
    balance_lag: float = 0.0


@dataclass(frozen=True)
class SystemCacheState:
    """Variable steps: the key (a0, c, t) of the matrix multigrid was set up from, of the cached
    systems (oldest first), and of the recent matrices with their iterations."""

    setup_from: tuple[float, ...] | None
    systems: tuple[tuple[float, ...], ...]
    seen: tuple[tuple[float, float, float, int], ...]


@dataclass(frozen=True)
class JacobianOrigin:
    """A Jacobian by what it was linearised at: the temperature and the step's t, a0 and c."""

    temperature: np.ndarray
    t: float
    a0: float
    c: float

    def numbers(self) -> list[float]:
        return [self.t, self.a0, self.c]


@dataclass(frozen=True)
class MultigridState:
    """Nonlinear steps: the Jacobians multigrid was set up and last updated from, whether it is
    fresh for the current step, and the iterations of its first solve since."""

    origin: JacobianOrigin
    update: JacobianOrigin | None
    fresh: bool
    base_iterations: int | None


@dataclass(frozen=True)
class StepperState:
    multistep: MultistepState
    systems: SystemCacheState | None = None
    multigrid: MultigridState | None = None
    nonlinear_iterations: int = 0  # Newton (or Picard) iterations of the run so far


@dataclass
class Controller:
    """The step-size controller's state (what a restart needs besides the solutions)."""

    dt: float  # the next step to try (before landing on an output time)
    error_previous: float | None = None  # E of the last accepted step
    rejected_last: bool = False
    accepted: int = 0
    rejected: int = 0
    failed_solves: int = 0
    history_dt: list = field(default_factory=list)  # sizes of the last accepted steps, newest first


@dataclass(frozen=True)
class AdaptiveState:
    controller: Controller
    levels: tuple[np.ndarray, ...]  # owned values of u_-1, u_-2


@dataclass(frozen=True)
class BalanceState:
    terms: tuple[str, ...]
    energy_start: float
    inflow: np.ndarray
    gross: float = 0.0


@dataclass(frozen=True)
class RunState:
    """Everything a run continues from (every vector local, ghosts current)."""

    temperature: np.ndarray
    step: int
    t: float
    iterations: int
    balance: BalanceState
    stepper: StepperState
    adaptive: AdaptiveState | None = None
    origin: tuple[int, float] | None = None  # fixed steps: (step, t) they count from, if not (0, 0)

    def vectors(self) -> dict[str, np.ndarray]:
        """The checkpoint's datasets: name -> local vector."""
        out = {"temperature": self.temperature}
        s = self.stepper
        if s.multistep.previous is not None:
            out["previous"] = s.multistep.previous
        if s.multigrid is not None:
            out["multigrid_origin"] = s.multigrid.origin.temperature
            if s.multigrid.update is not None:
                out["multigrid_update"] = s.multigrid.update.temperature
        if self.adaptive is not None:
            out |= {f"adaptive_level{i + 1}": level for i, level in enumerate(self.adaptive.levels)}
        return out

    def numbers(self) -> dict:
        """The checkpoint's ``stepper_state`` (JSON): the stepper's and the controller's numbers."""
        s, m = self.stepper, self.stepper.multistep
        stepper = {"earlier_dt": list(m.earlier_dt or ()), "earlier_energy": list(m.earlier_energy or ()),
                   "balance_lag": m.balance_lag, "nonlinear_iterations": int(s.nonlinear_iterations)}
        if s.systems is not None:
            stepper |= {"setup_from": s.systems.setup_from and list(s.systems.setup_from),
                        "systems": [list(k) for k in s.systems.systems], "seen": [list(k) for k in s.systems.seen]}
        if s.multigrid is not None:
            g = s.multigrid
            stepper |= {"multigrid_origin": g.origin.numbers(), "multigrid_fresh": g.fresh,
                        "multigrid_base": g.base_iterations}
            if g.update is not None:
                stepper["multigrid_update"] = g.update.numbers()
        out = {"stepper": stepper} | ({"adaptive": asdict(self.adaptive.controller)} if self.adaptive else {})
        return out | ({"fixed_origin": [int(self.origin[0]), float(self.origin[1])]} if self.origin else {})


def from_checkpoint(attrs, vectors: dict[str, np.ndarray], n_owned: int) -> RunState:
    """The run state of a checkpoint: its attributes (:class:`solver.io.checkpoint.CheckpointAttrs`)
    and its vectors read as local vectors (``n_owned``: the owned length of this rank's)."""
    numbers = attrs.stepper or {}
    stepper = numbers.get("stepper", {})
    adaptive = None
    if "adaptive" in numbers:
        levels = tuple(vectors[f"adaptive_level{i + 1}"][:n_owned] for i in range(LEVELS)
                       if f"adaptive_level{i + 1}" in vectors)
        adaptive = AdaptiveState(Controller(**numbers["adaptive"]), levels)
    return RunState(vectors["temperature"], int(attrs.step), float(attrs.t), int(attrs.iterations),
                    BalanceState(tuple(attrs.balance_terms), float(attrs.balance_energy_start),
                                 np.array(attrs.balance_inflow, dtype=float), float(attrs.balance_gross)),
                    StepperState(_multistep(stepper, vectors), _systems(stepper), _multigrid(stepper, vectors),
                                 _count(stepper.get("nonlinear_iterations", 0))),
                    adaptive, _origin(numbers.get("fixed_origin")))


def _origin(numbers) -> tuple[int, float] | None:
    return None if numbers is None else (int(numbers[0]), float(numbers[1]))


def _count(value) -> int:
    """A count of the checkpoint's numbers: a whole number >= 0 (else 0: counted from here)."""
    return int(value) if isinstance(value, (int, float)) and 0 <= value < 2**53 and value == int(value) else 0


def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _multistep(numbers: dict, vectors: dict) -> MultistepState:
    return MultistepState(vectors.get("previous"),
                          _floats(numbers["earlier_dt"]) if "earlier_dt" in numbers else None,
                          _floats(numbers["earlier_energy"]) if "earlier_energy" in numbers else None,
                          float(numbers.get("balance_lag", 0.0)))


def _systems(numbers: dict) -> SystemCacheState | None:
    if "systems" not in numbers:
        return None
    setup_from = numbers["setup_from"] and _floats(numbers["setup_from"])
    return SystemCacheState(setup_from, tuple(_floats(k) for k in numbers["systems"]),
                            tuple((*_floats(k[:3]), int(k[3])) for k in numbers["seen"]))


def _multigrid(numbers: dict, vectors: dict) -> MultigridState | None:
    if "multigrid_origin" not in vectors or "multigrid_origin" not in numbers:
        return None
    origin = JacobianOrigin(vectors["multigrid_origin"], *_floats(numbers["multigrid_origin"]))
    update = None
    if "multigrid_update" in vectors and "multigrid_update" in numbers:
        update = JacobianOrigin(vectors["multigrid_update"], *_floats(numbers["multigrid_update"]))
    base = numbers.get("multigrid_base")
    return MultigridState(origin, update, bool(numbers.get("multigrid_fresh", False)),
                          None if base is None else int(base))
