"""The heat equation: materials, boundary terms and Dirichlet data of a case (:class:`HeatProblem`),
the constrained linear systems, time stepping with one skeleton for every multistep scheme, the
steady solve, the heat balance, and :class:`Simulation`, which steps a case without I/O.
"""

from solver.heat.balance import HeatBalance, HeatFlows
from solver.heat.problem import HeatProblem
from solver.heat.simulation import Simulation, Timers
from solver.heat.stepping import (BACKWARD_EULER, BDF2, ExplicitEulerStepper, ImplicitStepper, Multistep,
                                  SteadySolver, auto_steps, make_stepper, stable_explicit_dt, theta_method)

__all__ = ["BACKWARD_EULER", "BDF2", "ExplicitEulerStepper", "HeatBalance", "HeatFlows", "HeatProblem",
           "ImplicitStepper", "Multistep", "Simulation", "SteadySolver", "Timers", "auto_steps", "make_stepper",
           "stable_explicit_dt", "theta_method"]
