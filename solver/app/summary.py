"""The summary a run prints when it ends: what was solved and how, the adaptive steps, the
multigrid, the wall time by phase and where the results are."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.case.shown import counted
from solver.parallel.collective import max_over_ranks


@dataclass(frozen=True)
class StepSummary:
    """What the adaptive steps of a run (since its start or restart) came to."""

    accepted: int
    rejected: int
    failed_solves: int
    dt_min: float
    dt_median: float
    dt_max: float
    setups: int  # preconditioner set-ups
    updates: int  # ... and updates for new matrices
    setup_seconds: float  # in both, the slowest rank's

    @classmethod
    def of(cls, sim) -> "StepSummary":
        """Of an adaptive simulation (collective)."""
        c, st = sim.adaptive.controller, sim.stepper
        dts = np.array(sim.step_sizes) if sim.step_sizes else np.array([sim.dt])
        setup = max_over_ranks(sim.comm, {"s": st.setup_seconds})["s"]
        return cls(c.accepted, c.rejected, c.failed_solves, float(dts.min()), float(np.median(dts)),
                   float(dts.max()), st.rebuilds, st.updates, setup)


def summary(r, case) -> str:
    """The lines of a run's summary (``r``: its :class:`~solver.app.run.RunResult`)."""
    t = r.timings
    per_step = r.iterations / max(r.steps, 1)
    what = "steady solve" if case.steady else f"{counted(r.steps, 'step')} of {case.time.scheme}"
    if r.stopped:
        what = f"stopped after {counted(r.steps, 'step')} of {case.time.scheme} (exit status 75)"
    if r.restarted_from is not None:  # (the progress lines count the steps since the restart)
        what += f" ({r.steps - r.first_step} since the restart), restarted from {r.restarted_from}"
    lines = [
        f"done: {r.n_dofs} DOFs on {counted(r.ranks, 'rank')}, {what}, "
        f"{r.iterations} {'linear' if r.nonlinear_iterations else 'CG'} iterations ("
        + ("" if case.steady else f"{per_step:.1f} per step, ") + f"preconditioner {r.preconditioner})"]
    if r.nonlinear_iterations:
        lines[0] += f"; {r.nonlinear_iterations} {case.nonlinear.method} iterations" + (
            "" if case.steady else f" ({r.nonlinear_iterations / max(r.steps, 1):.1f} per step)")
    if r.steps_in_parts:
        since = " (since the restart)" if r.restarted_from is not None else ""
        lines[0] += (f"; {counted(r.steps_in_parts, 'step')} taken again in parts of backward Euler after "
                     f"{case.nonlinear.method} failed{since}")
    a = r.time_steps
    if a is not None:
        lines.append(f"time steps: {a.accepted} accepted, {a.rejected} rejected by the error estimate"
                     + (f", {a.failed_solves} cut after a failed solve" if a.failed_solves else "")
                     + f"; dt min {a.dt_min:.3g} s, median {a.dt_median:.3g} s, max {a.dt_max:.3g} s"
                     + (" since the restart" if r.restarted_from is not None else "") + "; "
                     f"{counted(a.setups, 'preconditioner set-up')} and {counted(a.updates, 'update')} "
                     f"({a.setup_seconds:.3f} s, "
                     f"{100 * a.setup_seconds / max(t.get('solve', 0.0), 1e-300):.0f}% of the solve time)")
    p = r.preconditioner_report
    if p is not None:
        s = p.stats
        lines.append(f"multigrid: {counted(s.levels, 'level')}, operator complexity {s.operator_complexity:.2f}, "
                     f"grid complexity {s.grid_complexity:.2f}, set-up {s.setup_time:.3f} s"
                     + (f", {p.updates} updates for new matrices" if p.updates else ""))
    return "\n".join(lines + [
        f"wall time: mesh {t.get('mesh', 0):.3f} s, assembly {t.get('assembly', 0):.3f} s, "
        f"solve {t.get('solve', 0):.3f} s, output {t.get('output', 0):.3f} s, total {t.get('total', 0):.3f} s"
        + (f" (compiling kernels: {t['compile']:.3f} s)" if t.get("compile", 0.0) > 0 else ""),
        f"results: {r.h5_path}",
        f"         {r.xdmf_path}  (open in ParaView)",
    ])
