"""The one time-marching driver of every run and every study sample: it advances a
:class:`~solver.heat.simulation.Simulation` over its schedule (fixed steps, adaptive steps, or
one steady solve), checks each step, and tells its observers.

At each step boundary, in this order:

1. the step (:meth:`Simulation.advance`), then every observer's :meth:`Observer.after_solve`
   (the tests' fault injection acts here, before the checks);
2. one agreement among the ranks (:class:`StepVote`): whether a temperature went bad anywhere
   and, in a run (:class:`solver.app.control.RunControl`), whether to stop or checkpoint: one
   small ``Allreduce`` in all;
3. the checks: a non-finite heat balance (naming its term), an expression evaluated out of its
   key's range (:mod:`solver.heat.ranges`) and a NaN or a temperature out of
   ``run.temperature_range`` on any rank stop every rank with one message (exit 3);
4. every observer's :meth:`Observer.after_step` with the :class:`StepEvent` (snapshot due by the
   schedule or the last step; checkpoint due by the vote or the last step);
5. a stop asked for by the vote ends the march at this boundary.

An error of a step or of its checks is one line that starts with the case file and the step:
"case.toml: step 6 (t = 60): the linear solver did not converge ..." (:func:`named`).

A steady case is one solve, checked the same way and reported as the event of step 0 at t = 0.
Observers see :meth:`Observer.begin` before the first step and :meth:`Observer.end` after the
last. The driver itself writes nothing: results, probes, checkpoints and progress are observers.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from solver.errors import ConvergenceError, NumericalError, OutputError, SolverExit
from solver.heat.checks import boundary_temperatures_change, check_balance, check_boundary_temperatures, check_step
from solver.heat.ranges import check_step as check_ranges
from solver.heat.simulation import Simulation
from solver.la.krylov import SolveInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Votes:
    """What the ranks agreed on at a step boundary (the same on every rank)."""

    unhealthy: bool = False  # some rank's temperature is NaN, Inf or out of range
    stop: bool = False  # a stop was asked for (signal, wall limit): checkpoint and end here
    checkpoint: bool = False  # a checkpoint is due (cadence, wall interval, stop)
    reason: str = ""  # why it stops


class StepVote:
    """The agreement of the ranks after each step: here only their health (one ``Allreduce``);
    :class:`solver.app.control.RunControl` adds stops and checkpoints to the same reduction."""

    def __init__(self, comm):
        self.comm = comm

    def begin(self) -> None:
        """Before the first step (a run installs its signal handlers here)."""

    def end(self) -> None:
        """After the last step, also when the march fails."""

    def vote(self, step: int, seconds: float, unhealthy: bool) -> Votes:
        """Collective: the agreement after ``step``, which took ``seconds``."""
        flag = np.array([int(unhealthy)], dtype=np.int64)
        self.comm.Allreduce(MPI.IN_PLACE, flag, op=MPI.MAX)
        return Votes(unhealthy=bool(flag[0]))


@dataclass(frozen=True)
class StepEvent:
    """A checked step boundary (step 0 at t = 0 for a steady solve)."""

    step: int
    t: float
    solve: SolveInfo
    snapshot: bool  # the schedule writes this step (the last step always)
    checkpoint: bool  # a checkpoint is due
    last: bool  # the march ends here (t_end reached, a stop, or the steady solve)


@dataclass(frozen=True)
class Outcome:
    """How a march ended."""

    stopped: bool  # by a signal or the wall limit, before t_end
    reason: str = ""
    first_step: int = 0  # the step it started from (after a restart: the checkpoint's)


class Observer:
    """A participant of the march; every hook does nothing unless overridden."""

    def begin(self, sim: Simulation) -> None:
        """Before the first step (with the initial or restarted state)."""

    def after_solve(self, sim: Simulation) -> None:
        """Right after a step's solve, before the checks."""

    def after_step(self, sim: Simulation, event: StepEvent) -> None:
        """After a checked step."""

    def end(self, sim: Simulation, outcome: Outcome) -> None:
        """After the last step of a march that did not fail."""


def march(sim: Simulation, observers: list[Observer], vote: StepVote | None = None) -> Outcome:
    """Advance ``sim`` to t_end (or to a stop the vote agrees on), telling ``observers``."""
    vote = vote or StepVote(sim.comm)
    for o in observers:
        o.begin(sim)
    outcome = _steady(sim, observers, vote) if sim.case.steady else _transient(sim, observers, vote)
    for o in observers:
        o.end(sim, outcome)
    return outcome


@contextmanager
def named(source: str):
    """Every error of a step and of its checks (not of the observers' writes, which name their
    files) is one line that starts with the case file: "case.toml: step 6 (t = 60): ...". The
    steps and checks give "step 6 (t = 60): ..."; the file is put in front here, once."""
    try:
        yield
    except SolverExit as exc:
        if not isinstance(exc, OutputError) and not str(exc).startswith(f"{source}: "):
            exc.args = (f"{source}: {exc}",)
        raise


def _explained(sim: Simulation, advance, context: str):
    """``advance()``; a failed solve (raised on every rank) whose inputs left their range on some
    rank (a convection coefficient turned negative: the system is then indefinite) is reported as
    that value, which names the key, not as the solver's failure (collective then)."""
    try:
        return advance()
    except (NumericalError, ConvergenceError):
        check_ranges(sim.problem, context)
        raise


def _steady(sim: Simulation, observers: list[Observer], vote: StepVote) -> Outcome:
    with named(sim.case.source):
        solve = _explained(sim, sim.solve_steady, "the steady solve")
        unhealthy = vote.vote(0, 0.0, sim.unhealthy() is not None or sim.stalled(solve)).unhealthy
        check_ranges(sim.problem, "the steady solve")
        check_health(sim, unhealthy, solve)
        check_balance(sim)  # before the snapshot: a steady state the balance refuses is not written
    event = StepEvent(0, 0.0, solve, snapshot=True, checkpoint=False, last=True)
    for o in observers:
        o.after_step(sim, event)
    return Outcome(stopped=False)


def _transient(sim: Simulation, observers: list[Observer], vote: StepVote) -> Outcome:
    schedule = sim.snapshot_schedule()
    first = sim.step_index
    unit = sim.case.physics.temperature_unit
    boundary_temperatures = boundary_temperatures_change(sim.problem)
    vote.begin()
    try:
        while not sim.finished:
            start = MPI.Wtime()
            with named(sim.case.source):
                # (an adaptive step's dt is not known before it is taken: the time it starts from)
                reach = f"from t = {sim.t:.6g}" if sim.adaptive is not None else f"t = {sim.t + sim.stepper.dt:.6g}"
                solve = _explained(sim, sim.advance, f"step {sim.step_index + 1} ({reach})")
                for o in observers:
                    o.after_solve(sim)
                votes = vote.vote(sim.step_index, MPI.Wtime() - start,
                                  sim.unhealthy() is not None or sim.stalled(solve))
                where = f"step {sim.step_index} (t = {sim.t:.6g})"
                check_step(sim.problem, sim.balance, where)
                check_ranges(sim.problem, where)
                if boundary_temperatures:
                    check_boundary_temperatures(sim.case.source, sim.problem, sim.t, unit, where)
                check_health(sim, votes.unhealthy, solve)
            stop = votes.stop and not sim.finished
            event = StepEvent(sim.step_index, sim.t, solve, schedule.due(sim.step_index, sim.t) or sim.finished,
                              votes.checkpoint or sim.finished, sim.finished or stop)
            for o in observers:
                o.after_step(sim, event)
            if stop:
                log.warning(f"stopping at step {sim.step_index} (t = {sim.t:.6g}): {votes.reason}")
                return Outcome(True, votes.reason, first)
    finally:
        vote.end()
    return Outcome(False, "", first)


def raise_stalled(sim: Simulation, solve: SolveInfo) -> None:
    """The linear (or nonlinear) solver met its tolerance (relative to ||b||, or to the first
    residual) with corrections of degrees still due at some nodes: a system whose right-hand side is
    dominated by a few huge rows (collective)."""
    worst = np.array([solve.correction])
    sim.comm.Allreduce(MPI.IN_PLACE, worst, op=MPI.MAX)
    when = "the steady solve" if sim.case.steady else f"step {sim.step_index} (t = {sim.t:.6g})"
    if sim.nonlinear:  # (its residual judged against the first, which round-off of huge rows may dominate)
        c = sim.case.nonlinear
        met, atol = f"the nonlinear solve met nonlinear.rtol = {c.rtol:g} relative to its first residual", \
            "nonlinear.atol"
    else:
        met, atol = f"the linear solver met solver.rtol = {sim.solver.rtol:g} relative to the right-hand side " \
            f"after {solve.iterations} iterations", "solver.atol"
    raise NumericalError(f"{sim.case.source}: {when}: {met}, with corrections "
                         f"of up to {worst[0]:.3g} degrees still due at some nodes: the system is badly scaled (a "
                         f"convection coefficient, conductivity, density or time step many orders of magnitude "
                         f"from the others, or {atol} too large); check the values and their units")


def check_health(sim: Simulation, bad_anywhere: bool, solve: SolveInfo) -> None:
    """Raise NumericalError (on every rank) when some rank's solution went bad at this step."""
    if not bad_anywhere:
        return
    case = sim.case
    lo, hi = case.run.temperature_range
    local = sim.unhealthy((lo, hi))
    found = sim.comm.allgather(None if local is None else (sim.comm.rank, *local))
    if all(f is None for f in found):  # no bad temperature: the solve stopped before it was done
        raise_stalled(sim, solve)
    rank, value, where = next(f for f in found if f is not None)
    at = ", ".join(f"{c:.6g}" for c in where)
    what = "NaN" if np.isnan(value) else ("Inf" if np.isinf(value) else f"{value:.6g}, outside [{lo:.10g}, {hi:.10g}]")
    if case.time.scheme == "explicit-euler" and case.time.dt != "auto":
        cause = "an explicit time step at or near the stability limit (try time.dt = \"auto\" or an implicit scheme)"
    elif not solve.converged or solve.residual > 1e-3:
        cause = "a diverging linear solver (try solver.preconditioner = \"bjacobi\")"
    else:
        cause = ("a sign error or a huge value in a heat flux, source or convection coefficient "
                 "(boundary.*.flux, source.f, boundary.*.h), an undershoot at a sudden change of temperature "
                 "(time.mass = \"lumped\", a smaller time.dt or a finer mesh damp it), or run.temperature_range "
                 "too narrow for this case")
    when = "the steady solve" if case.steady else f"step {sim.step_index} (t = {sim.t:.6g})"
    raise NumericalError(f"{when}: temperature {what} at ({at}) on rank {rank}; likely cause: {cause}; "
                         f"the results file keeps the output up to the last good step")
