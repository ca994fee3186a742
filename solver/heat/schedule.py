"""When a run steps and when it writes: the number of fixed steps in a span of time (computed
here and nowhere else), the steps a case will take (known before any set-up, for estimates),
and the snapshot schedule.

Snapshots are written at step 0, then every ``output.every`` steps, or at the times of
``output.interval`` / ``output.times``: adaptive steps land on those times exactly, fixed steps
must fall on them (explicit Euler's ``time.dt = "auto"`` is known only once the stable limit is).
The last step is always written.
"""

from __future__ import annotations

import math

import numpy as np

from solver.case.load import shared_step_message
from solver.case.records import MAX_OUTPUT_TIMES, MAX_STEPS, OutputSpec, TimeSpec, shared_step, whole_steps
from solver.errors import CaseError


def fixed_steps(span: float, dt: float) -> int:
    """The number of steps of ``dt`` in ``span`` (a whole number of them, checked on input)."""
    return int(round(span / dt))


def auto_steps(t_end: float, dt_limit: float) -> int:
    """Steps of ``time.dt = "auto"``: the fewest equal steps of at most 90% of the stable limit (at
    most MAX_STEPS: else a CaseError), and at least one, however large the limit."""
    steps = t_end / (0.9 * dt_limit)
    if not math.isfinite(steps) or steps > MAX_STEPS:
        raise CaseError(f"time.dt = \"auto\": 90% of the stable limit {dt_limit:.3g} s takes {steps:.3g} steps to "
                        f"t_end = {t_end:.6g} s: at most {MAX_STEPS:.0e} (a coarser mesh, an implicit scheme, or a "
                        f"shorter time.t_end)")
    return max(1, math.ceil(steps - 1e-9))  # (a limit beyond 1e9 t_end rounded to no step, and dt = t_end / 0)


def check_auto_snapshots(output: OutputSpec, steps: int) -> None:
    """The snapshots of output.every over explicit Euler's ``time.dt = "auto"`` steps: at most
    MAX_OUTPUT_TIMES, as over a fixed dt's (checked on input); a CaseError once the steps are known."""
    if output.times:
        return
    snapshots = steps / output.every
    if snapshots > MAX_OUTPUT_TIMES:
        raise CaseError(f"output.every = {output.every} writes {snapshots:.3g} snapshots over the {steps:.3g} steps "
                        f"of time.dt = \"auto\" to time.t_end; at most {MAX_OUTPUT_TIMES:,} (a larger output.every, "
                        f"or output.interval)")


def planned_steps(time: TimeSpec, dt_limit: float) -> int | None:
    """The steps a run of ``time`` takes: 0 for a steady case, None with adaptive steps (not known
    in advance), explicit Euler's "auto" from its stable limit ``dt_limit``, else fixed."""
    if time.steady:
        return 0
    if time.adaptive is not None:
        return None
    if time.dt == "auto":
        return auto_steps(time.t_end, dt_limit) if math.isfinite(dt_limit) else None
    return fixed_steps(time.t_end, time.dt)


def solves_per_matrix(time: TimeSpec, new_matrix_each_step: bool) -> int:
    """How many solves one matrix serves (what ``solver.preconditioner = "auto"`` weighs): one
    when it changes every step (or Newton iteration), a few on the ladder of adaptive steps, else
    every step of the run (0: not known before explicit Euler's stable limit)."""
    if time.steady or new_matrix_each_step:
        return 1
    if time.adaptive is not None:
        return 5
    return max(1, fixed_steps(time.t_end, time.dt)) if time.dt != "auto" else 0


class SnapshotSchedule:
    """``due(step, t)``: whether the snapshot of this step is written by the schedule (the caller
    adds the last step)."""

    def __init__(self, output: OutputSpec, source: str, dt: float, adaptive: bool, start: float = 0.0):
        """``dt``: the fixed step, counted from t = ``start`` (0, or the checkpoint of a restart
        that its steps count from); the times after ``start`` must be whole numbers of them (a time
        off them would never be written)."""
        self.every = output.every
        self.times = np.array(output.times)
        if len(self.times) and not adaptive:
            slack = 1e-12 * max(abs(start), 1.0)
            later = [t for t in self.times if t > start + slack]
            off = [t for t in later if not whole_steps(t - start, dt)]
            key = "times" if output.interval is None else "interval"
            since = f" from the checkpoint's t = {start:.6g} s" if start else ""
            if off:
                raise CaseError(f"{source}: output.{key}: t = {off[0]:g} s is not a whole number of steps of "
                                f"dt = {dt:.6g} s{since}; give times on the steps or a fixed time.dt that divides "
                                f"them")
            pair = shared_step(later, dt, start)  # (two times on one step: one snapshot)
            if pair is not None:
                raise CaseError(f"{source}: {shared_step_message(key, pair, dt, since)}")
        self.tolerance = 0.0 if adaptive else 1e-9 * dt

    def due(self, step: int, t: float) -> bool:
        times = self.times
        if not len(times):
            return step % self.every == 0
        i = int(np.searchsorted(times, t))
        near = [times[j] for j in (i - 1, i) if 0 <= j < len(times)]
        return any(abs(t - time) <= self.tolerance for time in near)
