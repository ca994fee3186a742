"""Explicit Euler against backward Euler (both with the lumped mass) at small dt: both are first
order in time, so their difference falls linearly with dt. Prints the relative differences for
dt and dt/2, and the difference to backward Euler with the consistent mass (a space error)."""

import numpy as np
from _guard import run
from mpi4py import MPI

from solver.case.load import load_case
from solver.heat.simulation import Simulation

CASE = """
[mesh]
cell = "triangle"
nx = 12
ny = 10
lengths = [0.2, 0.1]
[material]
k = 45.0
rho = 7850.0
c = 460.0
[initial]
temperature = "20 + 80 * exp(-((x - 0.1)**2 + (y - 0.05)**2) / 0.001)"
[boundary.left]
type = "dirichlet"
value = 20.0
[boundary.top]
type = "robin"
h = 25.0
T_inf = 20.0
[time]
scheme = "explicit-euler"
dt = "auto"
t_end = 40.0
[solver]
rtol = 1e-12
"""


def final(comm, overrides):
    case = load_case(CASE, "explicit.toml", overrides)
    sim = Simulation(case, comm)
    while sim.step_index < sim.n_steps:
        sim.advance()
    return sim


def main(comm):
    auto = final(comm, [])
    limit = auto.stepper.dt_limit
    diffs = []
    for n in (400, 800):
        dt = 40.0 / n
        assert dt < limit
        ex = final(comm, [f"time.dt={dt}"])
        be = final(comm, ["time.scheme=\"backward-euler\"", "time.mass=\"lumped\"", f"time.dt={dt}"])
        diffs.append(relative_difference(comm, ex, be))
    consistent = final(comm, ["time.scheme=\"backward-euler\"", "time.dt=0.05"])
    return {"dt_limit": limit, "auto_dt": auto.dt, "auto_steps": auto.n_steps, "differences": diffs,
            "lumping_difference": relative_difference(comm, ex, consistent), "imbalance": auto.balance.relative}


def relative_difference(comm, a, b):
    n = a.mesh.n_owned
    d = np.array([np.sum((a.u[:n] - b.u[:n]) ** 2), np.sum((b.u[:n] - 20.0) ** 2)])
    comm.Allreduce(MPI.IN_PLACE, d)
    return float(np.sqrt(d[0] / d[1]))


run(main)
