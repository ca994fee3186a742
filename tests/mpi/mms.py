"""Manufactured-solution convergence study for one cell type (space) or the time schemes.

Usage: mpirun -n N python mms.py space CELL | time
Prints the errors, observed orders and heat imbalances as JSON on rank 0.
"""

import sys

from _guard import run

from solver.bench.verify import space_study, time_study

LEVELS = {"triangle": (8, 16, 32), "quadrilateral": (8, 16, 32),
          "tetrahedron": (4, 8, 16), "hexahedron": (4, 8, 16)}


def main(comm):
    if sys.argv[1] == "space":
        cell = sys.argv[2]
        pc = "bjacobi" if cell in ("triangle", "quadrilateral") else "amg"
        out = {}
        for scheme in ("crank-nicolson", "steady"):
            rows, l2, h1 = space_study(cell, LEVELS[cell], comm, scheme, pc)
            out[scheme] = {"l2": [r[2] for r in rows], "h1": [r[3] for r in rows], "l2_orders": l2,
                           "h1_orders": h1, "imbalance": [r[4] for r in rows]}
        return out
    out = {}
    for scheme in ("backward-euler", "crank-nicolson", "bdf2"):
        rows, orders = time_study("quadrilateral", scheme, n=8, comm=comm)
        out[scheme] = {"differences": [r[1] for r in rows], "orders": orders}
    return out


run(main)
