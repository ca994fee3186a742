"""Nonlinear heat transfer against closed forms, with its heat balance, on any number of ranks.

Usage: mpirun -n N python nonlinear_checks.py
Prints JSON on rank 0:
* "radiation": the steady slab with a fixed end and a radiating end (closed form), the relative
  error of the radiating end's temperature, Newton's iterations and the heat balance;
* "stefan": the one-phase Stefan problem, relative front errors at three times against
  Neumann's solution, and the balance;
* "combined": a transient case with k(T) from a table, convection-radiation, a melting region
  and Crank-Nicolson; its temperatures in coordinate order (compared across rank counts by the
  test) and its balance.
"""

import math

import numpy as np
from _guard import run
from scipy.optimize import brentq

from solver.case.load import load_case
from solver.heat.simulation import Simulation

SIGMA = 5.670374419e-8

RADIATION = """
temperature_unit = "C"
[mesh]
type = "rectangle"
cell = "quadrilateral"
nx = 40
ny = 3
lengths = [0.1, 0.01]
[material]
k = 10.0
rho = 1000.0
c = 500.0
[initial]
temperature = 20.0
[boundary.left]
type = "dirichlet"
value = 500.0
[boundary.right]
type = "radiation"
epsilon = 0.8
T_inf = 20.0
[time]
scheme = "steady"
[nonlinear]
rtol = 1e-12
[solver]
rtol = 1e-12
"""

STEFAN = """
[mesh]
type = "rectangle"
cell = "quadrilateral"
nx = 400
ny = 2
lengths = [1.0, 0.005]
[material]
k = 1.0
rho = 1.0
c = 1.0
latent_heat = 1.0
solidus = 0.0
liquidus = 0.01
[initial]
temperature = 0.0
[boundary.left]
type = "dirichlet"
value = 1.0
[time]
scheme = "backward-euler"
dt = 0.001
t_end = 0.1
mass = "lumped"
[solver]
rtol = 1e-12
"""

COMBINED = """
temperature_unit = "C"
[mesh]
type = "rectangle"
cell = "triangle"
nx = 24
ny = 16
lengths = [0.06, 0.04]
[material]
k = { table = [[0.0, 200.0], [300.0, 230.0], [600.0, 210.0]] }
rho = 2700.0
c = "880 + 0.45*T"
[region.core]
x = [0.02, 0.04]
y = [0.01, 0.03]
k = ["60 * (1 + 1e-3*T)", 40.0]
latent_heat = 4.0e5
solidus = 550.0
liquidus = 610.0
[initial]
temperature = "700 if (x > 0.02 and x < 0.04 and y > 0.01 and y < 0.03) else 600"
[boundary.left]
type = "convection-radiation"
h = 25.0
epsilon = { table = [[0.0, 0.1], [700.0, 0.3]] }
T_inf = 20.0
[boundary.top]
type = "radiation"
epsilon = 0.9
T_inf = 20.0
[boundary.bottom]
type = "neumann"
flux = 2000.0
[time]
scheme = "crank-nicolson"
dt = 2.0
t_end = 20.0
[solver]
rtol = 1e-12
[nonlinear]
rtol = 1e-11
"""


def gathered(sim) -> list:
    """Owned (x, y, T) of every rank, in coordinate order (rank-independent)."""
    m = sim.mesh
    rows = np.column_stack([m.coords[: m.n_owned], sim.u[: m.n_owned]])
    rows = np.vstack(m.comm.allgather(rows))
    order = np.lexsort((rows[:, 1], rows[:, 0]))
    return rows[order, 2].tolist()


def radiation(comm) -> dict:
    sim = Simulation(load_case(RADIATION, "<radiation slab>"), comm)
    sim.solve_steady()
    k, L, T0, Ti, eps = 10.0, 0.1, 500.0 + 273.15, 20.0 + 273.15, 0.8
    exact = brentq(lambda T: k * (T0 - T) / L - eps * SIGMA * (T ** 4 - Ti ** 4), Ti, T0) - 273.15
    m = sim.mesh
    right = np.isclose(m.coords[: m.n_owned, 0], 0.1)
    values = np.concatenate(comm.allgather(sim.u[: m.n_owned][right]))
    return {"error": float(np.max(np.abs(values - exact)) / abs(exact)), "newton": sim.nonlinear_iterations,
            "imbalance": sim.balance.relative}


def stefan(comm) -> dict:
    sim = Simulation(load_case(STEFAN, "<stefan>"), comm)
    melt = 0.005  # the middle of the melting range: where the liquid fraction is 1/2
    St = (1.0 - melt) / 1.0
    lam = brentq(lambda x: x * math.exp(x * x) * math.erf(x) - St / math.sqrt(math.pi), 1e-6, 5.0)
    errors = {}
    m = sim.mesh
    while sim.step_index < sim.n_steps:
        sim.advance()
        if sim.step_index in (25, 50, 100):
            x = m.coords[: m.n_owned, 0]
            rows = np.vstack(comm.allgather(np.column_stack([x, sim.u[: m.n_owned]])))
            rows = rows[np.argsort(rows[:, 0], kind="stable")]
            xs, Ts = rows[::2, 0], rows[::2, 1]  # two nodes per x: one of each
            j = int(np.flatnonzero(Ts < melt)[0])
            front = xs[j - 1] + (melt - Ts[j - 1]) / (Ts[j] - Ts[j - 1]) * (xs[j] - xs[j - 1])
            exact = 2.0 * lam * math.sqrt(sim.t)
            errors[f"{sim.t:.3f}"] = abs(front - exact) / exact
    return {"front_errors": errors, "imbalance": sim.balance.relative, "newton": sim.nonlinear_iterations}


def combined(comm) -> dict:
    sim = Simulation(load_case(COMBINED, "<combined>"), comm)
    while sim.step_index < sim.n_steps:
        sim.advance()
    fl = sim.fields()["liquid_fraction"]
    return {"temperatures": gathered(sim), "imbalance": sim.balance.relative, "newton": sim.nonlinear_iterations,
            "liquid_fraction_range": [float(comm.allreduce(fl.min() if len(fl) else 1.0, op=_min())),
                                      float(comm.allreduce(fl.max() if len(fl) else 0.0, op=_max()))]}


def _min():
    from mpi4py import MPI
    return MPI.MIN


def _max():
    from mpi4py import MPI
    return MPI.MAX


def main(comm):
    return {"radiation": radiation(comm), "stefan": stefan(comm), "combined": combined(comm)}


run(main)
