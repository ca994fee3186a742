"""Manufactured-solution convergence study for one cell type (space) or scheme (time).

Usage: mpirun -n N python mms.py space CELL | time SCHEME
Prints {"errors": [...], "orders": [...]} on rank 0.
"""

import sys

from _guard import run

from solver.verification import space_study, time_study

LEVELS = {"triangle": (8, 16, 32), "quadrilateral": (8, 16, 32),
          "tetrahedron": (8, 16, 32), "hexahedron": (8, 16, 32)}


def main(comm):
    kind, what = sys.argv[1], sys.argv[2]
    if kind == "space":
        pc = "bjacobi" if what in ("triangle", "quadrilateral") else "jacobi"
        rows, orders = space_study(what, LEVELS[what], comm, preconditioner=pc)
        return {"errors": [r[2] for r in rows], "dofs": [r[1] for r in rows], "orders": orders}
    rows, orders = time_study("quadrilateral", what, n=8, steps=(16, 32, 64, 128), comm=comm)
    return {"differences": [r[1] for r in rows], "orders": orders}


run(main)
