"""The nonlinear manufactured solution (k(T), c(T)): space and time orders, heat imbalance, and
Newton's residual ratios on a step of the finest transient run; the steady space orders and
Newton's ratios with quadratic triangles.

Usage: mpirun -n N python nonlinear_mms.py [SCHEME ...]   (the time schemes; default all three)
Prints JSON on rank 0.
"""

import sys

from _guard import run

from solver.bench.verify import newton_ratios, space_study, time_study


def main(comm):
    out = {"space": {}, "time": {}}
    for scheme in ("crank-nicolson", "steady"):
        rows, l2, h1 = space_study("triangle", (8, 16, 32), comm, scheme, "bjacobi", nonlinear=True)
        out["space"][scheme] = {"l2_orders": l2, "h1_orders": h1, "imbalance": [r[4] for r in rows]}
    for scheme in sys.argv[1:] or ("backward-euler", "crank-nicolson", "bdf2"):
        out["time"][scheme] = time_study("quadrilateral", scheme, n=8, comm=comm, nonlinear=True)[1]
    out["newton_ratios"] = newton_ratios(comm)
    # quadratic triangles, k(T) at the quadrature points
    rows, l2, h1 = space_study("triangle", (4, 8, 16), comm, "steady", "bjacobi", nonlinear=True, degree=2)
    out["quadratic"] = {"l2_orders": l2, "h1_orders": h1, "imbalance": [r[4] for r in rows],
                        "newton_ratios": newton_ratios(comm, n=16, degree=2)}
    return out


run(main)
