"""The heat equation: materials, boundary terms and Dirichlet data of a case (:class:`HeatProblem`),
the constrained linear systems, time stepping with one skeleton for every multistep scheme, the
steady solve, the nonlinear problem (temperature-dependent properties, radiation) with its Newton
steps, the heat balance, :class:`Simulation`, which steps a case without I/O, its restart state
(:mod:`.state`), its schedule (:mod:`.schedule`), and :func:`march`, the one time-marching driver
that runs and study samples share, with its observers.
"""

from solver.lazy import exports

WHERE = {
    "auto_steps": "schedule",
    "Discretisation": "simulation",
    "march": "march",
    "Observer": "march",
    "RunState": "state",
    "StepEvent": "march",
    "StepVote": "march",
    "BACKWARD_EULER": "stepping",
    "BDF2": "stepping",
    "ExplicitEulerStepper": "stepping",
    "HeatBalance": "balance",
    "HeatFlows": "balance",
    "HeatProblem": "problem",
    "ImplicitStepper": "stepping",
    "make_nonlinear_stepper": "nonlinear_stepping",
    "make_stepper": "stepping",
    "NonlinearHeatProblem": "nonlinear",
    "NonlinearStepper": "nonlinear_stepping",
    "NonlinearSteadySolver": "nonlinear_stepping",
    "Multistep": "stepping",
    "Simulation": "simulation",
    "stable_explicit_dt": "stepping",
    "SteadySolver": "stepping",
    "theta_method": "stepping",
    "Timers": "simulation",
}
__all__ = sorted(WHERE)
__getattr__ = exports(__name__, WHERE)
