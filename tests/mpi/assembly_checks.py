"""The compiled assembly against the NumPy reference path on N ranks, for every cell type, linear
and quadratic (curved: the midpoints move with the other nodes), with the quadratic cells' affine
kernels on the undistorted quadratic meshes too.

Usage: mpirun -n N python assembly_checks.py
For a case with regions (a box of other conductivity and rho c), anisotropic conductivity, a
source f(x, t), a Neumann flux q(x, t), a Robin boundary with h(t) and T_inf(x), and a Dirichlet
boundary, on a mesh whose nodes are moved by a smooth field: HeatProblem with the kernels and
HeatProblem with the NumPy path (``kernels.AVAILABLE`` off) give the same M, K, K + K_R(t),
load vectors and constrained system; an Assembler with coefficients per quadrature point too.
Prints the worst relative difference (max |a - b| / max |b| over the ranks) as JSON on rank 0.
"""

import numpy as np
from _guard import run
from mpi4py import MPI

from solver.case.load import load_case
import solver.compiled
from solver.fem import kernels
from solver.fem.assembly import Assembler
from solver.fem.boundary import constrain
from solver.heat.problem import HeatProblem
from solver.mesh.build import create_mesh

CELLS = {"triangle": (11, 7), "quadrilateral": (9, 6), "tetrahedron": (5, 3, 4), "hexahedron": (5, 4, 3),
         "triangle6": (6, 4), "quadrilateral9": (5, 4), "tetrahedron10": (3, 2, 3), "hexahedron27": (3, 2, 2),
         "triangle6-affine": (6, 4), "tetrahedron10-affine": (3, 2, 3), "quadrilateral9-affine": (5, 4)}
DEGREE = {"triangle6": 2, "quadrilateral9": 2, "tetrahedron10": 2, "hexahedron27": 2}
LINEAR = {"triangle6": "triangle", "quadrilateral9": "quadrilateral", "tetrahedron10": "tetrahedron",
          "hexahedron27": "hexahedron"}


def case_text(name, n):
    cell, _, _ = name.partition("-")
    degree, cell = DEGREE.get(cell, 1), LINEAR.get(cell, cell)
    dim = len(n)
    size = "\n".join(f"n{a} = {v}" for a, v in zip("xyz", n))
    k = [1.0, 2.5, 0.7][:dim]
    return f"""
[mesh]
type = "{'rectangle' if dim == 2 else 'box'}"
cell = "{cell}"
{size}
lengths = {[1.0, 0.8, 0.6][:dim]}
[element]
degree = {degree}
[material]
k = {k}
rho = 2.0
c = 3.0
[region.inclusion]
x = [0.3, 0.65]
k = 40.0
rho = 5.0
[source]
f = "sin(pi*x) * exp(-t) + 3*y"
[initial]
temperature = 0.0
[boundary.left]
type = "dirichlet"
value = "100*exp(-t)"
[boundary.right]
type = "robin"
h = "10 + 5*t"
T_inf = "20 + y"
[boundary.top]
type = "neumann"
flux = "5 + t*x"
[time]
scheme = "crank-nicolson"
dt = 0.1
t_end = 0.2
"""


def distort(mesh, n):
    """Move the nodes by a smooth field of their position (so the same on every rank): the cells
    are no longer affine."""
    x = mesh.coords
    mesh.coords = x + 0.04 * np.sin(3.0 * x[:, ::-1] + np.arange(x.shape[1])) / np.array(n)
    mesh.affine = False


def relative(comm, a, b) -> float:
    a = a.toarray() if hasattr(a, "toarray") else np.asarray(a)
    b = b.toarray() if hasattr(b, "toarray") else np.asarray(b)
    diff = comm.allreduce(float(np.abs(a - b).max(initial=0.0)), op=MPI.MAX)
    scale = comm.allreduce(float(np.abs(b).max(initial=0.0)), op=MPI.MAX)
    return diff / scale if scale else diff


solver.compiled.FORCED = True  # these small meshes would otherwise take the NumPy path too


def reference_problem(mesh, physics):
    kernels.AVAILABLE = False
    try:
        return HeatProblem(mesh, physics)
    finally:
        kernels.AVAILABLE = True


def check(comm, cell, n):
    case = load_case(case_text(cell, n), f"<assembly checks {cell}>")
    mesh = create_mesh(comm, case.mesh, case.element.degree)
    if not cell.endswith("-affine"):
        distort(mesh, n)
    fast = HeatProblem(mesh, case.physics)
    ref = reference_problem(mesh, case.physics)
    assert fast.assembler.compiled and not ref.assembler.compiled
    assert fast.time_dependent_matrix and len(fast.robin) == 1 and len(fast.neumann) == 1
    diffs = {"M": relative(comm, fast.M, ref.M), "K": relative(comm, fast.K_conduction, ref.K_conduction),
             "mass_weights": relative(comm, fast.mass_weights, ref.mass_weights)}
    for t in (0.0, 0.3):
        diffs[f"K+K_R({t})"] = relative(comm, fast.stiffness(t), ref.stiffness(t))
        parts, parts_ref = fast.load_parts(t), ref.load_parts(t)
        assert list(parts) == list(parts_ref) == ["source", "top", "right"]
        for name in parts:
            diffs[f"{name}({t})"] = relative(comm, parts[name], parts_ref[name])
        for term, term_ref in zip(fast.robin, ref.robin):
            diffs[f"uptake({t})"] = relative(comm, fast.robin_uptake(term, t), ref.robin_uptake(term_ref, t))
    # the constrained system matrix M + dt/2 (K + K_R), the Dirichlet rows eliminated
    A = fast.assembler.csr(fast.M.data + 0.05 * fast.stiffness(0.1).data)
    A_ref = ref.assembler.csr(ref.M.data + 0.05 * ref.stiffness(0.1).data)
    Ac, lift, diag = constrain(A, fast.dirichlet.mask)
    kernels.AVAILABLE = False
    try:
        Ac_ref, lift_ref, diag_ref = constrain(A_ref, ref.dirichlet.mask)
    finally:
        kernels.AVAILABLE = True
    diffs["constrained"] = relative(comm, Ac, Ac_ref)
    diffs["lift"] = relative(comm, lift, lift_ref)
    diffs["diag"] = relative(comm, diag, diag_ref)
    diffs["lumped"] = relative(comm, fast.assembler.lumped(fast.M), fast.assembler.lumped(ref.M))
    # coefficients at the quadrature points (k(T) of the next issue): k and rho c of x there
    a, b = Assembler(mesh), Assembler(mesh, compiled=False)
    x = a.quadrature_points()
    k_q = 1.0 + x[..., 0] ** 2 + 0.5 * x[..., 1]
    k_qd = np.stack([k_q * (1 + d) for d in range(mesh.dim)], axis=-1)
    diffs["k(x_q)"] = relative(comm, a.stiffness(k_q), b.stiffness(k_q))
    diffs["k_d(x_q)"] = relative(comm, a.stiffness(k_qd), b.stiffness(k_qd))
    diffs["M + K(x_q)"] = relative(comm, a.bilinear(mass=k_q, conductivity=0.1 * k_qd),
                                   b.bilinear(mass=k_q, conductivity=0.1 * k_qd))
    return diffs


def main(comm):
    results, worst = {}, 0.0
    for cell, n in CELLS.items():
        diffs = check(comm, cell, n)
        results[cell] = diffs
        worst = max(worst, max(diffs.values()))
    return {"ok": True, "ranks": comm.size, "cells": sorted(results), "worst": worst, "diffs": results}


run(main)
