"""The end record of a run: how it ended, written as root attributes of its results file when it
closes (a file still saying ``status = "running"`` was never closed: its run was killed).

Every record has the ``status`` (``complete``, ``stopped`` or ``failed``), ``complete`` and the
``exit_status`` the run exited with; a failed one its ``error`` line. A run that ended by itself
adds its steps, iterations, preconditioner, heat balance (``balance_<term>``) and wall times
(``wall_time_<phase>``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

COMPLETE, STOPPED, FAILED = "complete", "stopped", "failed"


@dataclass(frozen=True)
class RunFigures:
    """What a run that ended by itself (complete or stopped) reports of its work."""

    steps: int
    dt: float
    linear_iterations: int
    steps_rejected: int
    nonlinear_iterations: int
    temperature_unit: str
    checkpoint: str  # the last checkpoint written ("" for none)
    preconditioner: str
    preconditioner_stats: dict | None = None  # what the preconditioner reports (written as JSON)
    balance: dict = field(default_factory=dict)  # the heat balance's figures by name
    wall_times: dict = field(default_factory=dict)  # seconds by phase


@dataclass(frozen=True)
class EndRecord:
    status: str  # complete | stopped | failed
    exit_status: int
    error: str | None = None  # a failed run's message
    steps: int | None = None  # a failed run's steps so far
    figures: RunFigures | None = None

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE

    def attrs(self) -> dict:
        """The root attributes of the results file."""
        out = {"complete": self.complete, "status": self.status, "exit_status": self.exit_status}
        if self.error is not None:
            out["error"] = self.error
        if self.steps is not None:
            out["steps"] = self.steps
        f = self.figures
        if f is None:
            return out
        out = {f"wall_time_{k}": v for k, v in f.wall_times.items()} | out
        out |= {"steps": f.steps, "dt": f.dt, "linear_iterations": f.linear_iterations,
                "steps_rejected": f.steps_rejected, "nonlinear_iterations": f.nonlinear_iterations,
                "temperature_unit": f.temperature_unit, "checkpoint": f.checkpoint,
                "preconditioner": f.preconditioner}
        if f.preconditioner_stats:
            out["preconditioner_stats"] = json.dumps(f.preconditioner_stats)
        return out | {f"balance_{k}": v for k, v in f.balance.items()}
