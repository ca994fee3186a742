"""Manufactured-solution studies: observed convergence orders in space and time.

The manufactured solution ``u = exp(-t) cos(pi x) cos(pi y) [cos(pi z)]`` on the unit
square/cube has zero normal derivative on every side, so the insulated (natural) boundaries
are exercised; the left side carries its exact, time-dependent Dirichlet value. With
``rho*c`` and ``k`` below the source is ``f = (k d pi^2 - rho*c) u``.

* space: meshes n, 2n, 4n with Crank-Nicolson and ``dt`` proportional to ``h``, so time
  and space errors both fall as h^2; L2 error at t_end against the exact solution;
* time: one mesh, dt halved repeatedly; differences of successive solutions fall as
  dt^p (p = 1 for backward Euler, 2 for Crank-Nicolson), which isolates the time error.
"""

from __future__ import annotations

import math

import numpy as np
import tomli_w
from mpi4py import MPI

from solver.assembly import l2_error
from solver.config import load_case
from solver.expressions import Expression
from solver.simulation import Simulation

RHO, C, K = 2.0, 1.0, 1.5
T_END = 0.1


def exact_text(dim: int) -> str:
    return "exp(-t)*" + "*".join(f"cos(pi*{v})" for v in "xyz"[:dim])


def mms_case(cell: str, n: int, scheme: str, steps: int, preconditioner: str = "bjacobi",
             rtol: float = 1e-12):
    dim = 2 if cell in ("triangle", "quadrilateral") else 3
    u = exact_text(dim)
    left = "exp(-t)*" + "*".join(f"cos(pi*{v})" for v in "yz"[: dim - 1])
    values = {
        "mesh": {"type": "rectangle" if dim == 2 else "box", "cell": cell, "nx": n, "ny": n,
                 **({"nz": n} if dim == 3 else {})},
        "material": {"k": K, "rho": RHO, "c": C},
        "initial": {"temperature": u.replace("exp(-t)*", "")},
        "source": {"f": f"({K * dim * math.pi ** 2!r} - {RHO * C!r})*{u}"},
        "boundary": {"left": {"type": "dirichlet", "value": left}},
        "time": {"scheme": scheme, "dt": T_END / steps, "t_end": T_END},
        "solver": {"preconditioner": preconditioner, "rtol": rtol},
    }
    return load_case(tomli_w.dumps(values), f"<manufactured solution, {cell}, n={n}>")


def final_error(case, comm) -> tuple[float, np.ndarray, Simulation]:
    sim = Simulation(case, comm)
    while sim.step_index < case.n_steps:
        sim.advance()
    err = l2_error(sim.mesh, sim.u, Expression(exact_text(case.dim)), sim.t)
    return err, sim.u, sim


def orders(h, e) -> list[float]:
    return [math.log(e[i] / e[i + 1]) / math.log(h[i] / h[i + 1]) for i in range(len(e) - 1)]


def space_study(cell: str, levels=(8, 16, 32), comm=MPI.COMM_WORLD, steps_per_cell: float = 1.0,
                preconditioner: str = "bjacobi"):
    """Rows (n, DOFs, L2 error) and the observed orders."""
    rows = []
    for n in levels:
        case = mms_case(cell, n, "crank-nicolson", max(1, int(round(steps_per_cell * n))), preconditioner)
        err, _, sim = final_error(case, comm)
        rows.append((n, sim.mesh.n_global_nodes, err))
    return rows, orders([1.0 / n for n, _, _ in rows], [e for _, _, e in rows])


def time_study(cell: str, scheme: str, n: int = 8, steps=(4, 8, 16, 32), comm=MPI.COMM_WORLD):
    """Rows (dt, ||u_dt - u_dt/2||) and the observed orders, on one mesh."""
    solutions = []
    for s in steps:
        _, u, sim = final_error(mms_case(cell, n, scheme, s), comm)
        solutions.append(u[: sim.mesh.n_owned].copy())
    diffs = []
    for a, b in zip(solutions, solutions[1:]):
        buf = np.array([np.sum((a - b) ** 2)])
        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        diffs.append(math.sqrt(buf[0]))
    dts = [T_END / s for s in steps[:-1]]
    return list(zip(dts, diffs)), orders(dts, diffs)
