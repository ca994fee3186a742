"""Manufactured solution on unstructured meshes read from files (uniformly refined twice).

Usage: mpirun -n N python mms_file.py CELL MESH0 MESH1 MESH2
Prints the L2/H1 errors and observed orders (h halves from one mesh to the next).
"""

import sys

from _guard import run

from solver.bench.verify import Manufactured, errors, mms_case, orders, solve


def main(comm):
    cell, files = sys.argv[1], sys.argv[2:]
    l2, h1, imbalance = [], [], []
    for i, path in enumerate(files):
        case = mms_case(cell, 0, "crank-nicolson", 4 * 2 ** i, "amg", mesh_file=path)
        sim = solve(case, comm)
        a, b = errors(sim, Manufactured(sim.mesh.dim))
        l2.append(a)
        h1.append(b)
        imbalance.append(sim.balance.relative)
    hs = [2.0 ** -i for i in range(len(files))]
    return {"l2": l2, "h1": h1, "l2_orders": orders(hs, l2), "h1_orders": orders(hs, h1), "imbalance": imbalance,
            "partition": sim.mesh.partition.as_dict()}


run(main)
