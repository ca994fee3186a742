"""Manufactured-solution studies: observed convergence orders in space and time.

The manufactured solution on the unit square/cube is

    u = exp(-t) cos(pi x/2 + 0.3) cos(pi y/2 + 0.2) [cos(pi z/2 + 0.1)]

with an anisotropic conductivity ``k = diag(kx, ky[, kz])``, so the source is
``f = (sum_a k_a pi^2/4 - rho c) u``. Every kind of boundary condition is exercised with
the exact data: left Dirichlet (time-dependent), right Neumann ``q = k du/dn``, bottom and
top Robin with ``T_inf = u + (k/h) du/dn``, and in 3D front Neumann and back Robin. The time
studies use a time-dependent ``h = 2 (1 + 5 t)``, so the matrix changes every step.

* space: meshes n, 2n, 4n with dt proportional to h (Crank-Nicolson, or BDF2), so time and
  space errors fall together; L2 and H1 errors at t_end against the exact solution (the
  steady variant drops exp(-t) and solves K u = F); with quadratic elements (P2/Q2: L2 order 3,
  H1 order 2) dt falls as h^1.5, so that the second-order time error still follows h^3;
* time: one mesh, dt halved repeatedly; differences of successive solutions fall as dt^p,
  which isolates the time error from the space error;
* curved boundaries (:mod:`solver.bench.curved`): quadratic elements on a ring meshed by Gmsh,
  its midpoints on the circles (isoparametric) or on the chords (straight): order 3 against 2.

The nonlinear variant (``nonlinear=True``) takes the same u with ``k_a(T) = kappa_a (1 + BETA T)``
and ``c(T) = c (1 + GAMMA T)`` (expressions of T in the case), so that
``f = rho c(u) u_t - sum_a kappa_a ((1 + BETA u) u_aa + BETA u_a^2)`` and the boundary fluxes carry
k(u); Newton solves each step, and its residual ratios show its quadratic convergence.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import tomli_w
from mpi4py import MPI

from solver.case.expressions import Expression
from solver.case.load import load_case
from solver.case.shown import counted
from solver.fem.geometry import CellGeometry
from solver.heat.simulation import Simulation

RHO, C, H = 2.0, 1.0, 2.0
KAPPA = (1.5, 0.8, 1.2)
PHASE = (0.3, 0.2, 0.1)
T_END = 0.1
H_OF_T = f"{H!r}*(1 + 5*t)"  # Robin coefficient of the time studies
ORDERS = {"backward-euler": 1.0, "crank-nicolson": 2.0, "bdf2": 2.0}
BETA, GAMMA = 0.5, 0.3  # k(T) = kappa (1 + BETA T), c(T) = C (1 + GAMMA T) of the nonlinear variant
CELLS_BY_DIM = {2: ("triangle", "quadrilateral"), 3: ("tetrahedron", "hexahedron")}
RTOL = 1e-12  # the linear solver's tolerance: far below the discretisation errors measured


class Manufactured:
    """Exact solution, gradient, source and boundary data as expression strings."""

    def __init__(self, dim: int, steady: bool = False, h: str = repr(H), nonlinear: bool = False):
        self.dim, self.h, self.nonlinear = dim, h, nonlinear
        axes = "xyz"[:dim]
        decay = "" if steady else "exp(-t)*"
        c = {a: f"cos(pi*{a}/2+{p})" for a, p in zip(axes, PHASE)}
        s = {a: f"sin(pi*{a}/2+{p})" for a, p in zip(axes, PHASE)}
        self.u = decay + "*".join(c.values())
        self.grad = [f"-(pi/2)*{decay}{s[a]}*" + "*".join(c[b] for b in axes if b != a) for a in axes]
        lam = sum(KAPPA[:dim]) * math.pi ** 2 / 4
        if not nonlinear:
            self.f = f"{lam!r}*{self.u}" if steady else f"({lam!r} - {RHO * C!r})*{self.u}"
            return
        u = f"({self.u})"
        squares = " + ".join(f"{KAPPA[i]!r}*({g})**2" for i, g in enumerate(self.grad))
        self.f = f"{lam!r}*(1 + {BETA!r}*{u})*{u} - {BETA!r}*({squares})"
        if not steady:  # rho c(u) u_t with u_t = -u
            self.f += f" - {RHO * C!r}*(1 + {GAMMA!r}*{u})*{u}"

    def material(self) -> dict:
        if not self.nonlinear:
            return {"k": list(KAPPA[: self.dim]), "rho": RHO, "c": C}
        return {"k": [f"{k!r}*(1 + {BETA!r}*T)" for k in KAPPA[: self.dim]], "rho": RHO,
                "c": f"{C!r}*(1 + {GAMMA!r}*T)"}

    def boundaries(self) -> dict:
        scale = f"*(1 + {BETA!r}*({self.u}))" if self.nonlinear else ""

        def dudn(axis, sign):  # k(u) du/dn with n = sign * e_axis
            return f"({sign}{KAPPA[axis]!r})*({self.grad[axis]}){scale}"
        def robin(axis, sign):
            return {"type": "robin", "h": self.h, "T_inf": f"{self.u} + ({dudn(axis, sign)})/({self.h})"}
        bc = {"left": {"type": "dirichlet", "value": self.u},
              "right": {"type": "neumann", "flux": dudn(0, "+")},
              "bottom": robin(1, "-"), "top": robin(1, "+")}
        if self.dim == 3:
            bc["front"] = {"type": "neumann", "flux": dudn(2, "-")}
            bc["back"] = robin(2, "+")
        return bc


def mms_case(cell: str, n: int, scheme: str, steps: int = 1, preconditioner: str = "bjacobi",
             mesh_file: str | None = None, **variant):
    """The manufactured-solution case on an n^d structured mesh, or on ``mesh_file`` (the unit
    square/cube with boundary groups left, right, bottom, top[, front, back]); ``variant``: the
    keywords ``h`` and ``nonlinear`` of :class:`Manufactured`, and ``degree`` of the elements."""
    values = mms_values(cell, n, scheme, steps, preconditioner, mesh_file, **variant)
    return load_case(tomli_w.dumps(values), f"<manufactured solution, {cell}, n={n}, {scheme}>")


def mms_values(cell: str, n: int, scheme: str, steps: int = 1, preconditioner: str = "bjacobi",
               mesh_file: str | None = None, **variant) -> dict:
    """The values of :func:`mms_case`'s case (a case file's contents)."""
    dim = 2 if cell in CELLS_BY_DIM[2] else 3
    degree = variant.pop("degree", 1)
    ms = Manufactured(dim, steady=scheme == "steady", **variant)
    mesh = {"file": mesh_file} if mesh_file else \
        {"type": "rectangle" if dim == 2 else "box", "cell": cell, "nx": n, "ny": n, **({"nz": n} if dim == 3 else {})}
    values = {
        "mesh": mesh,
        "element": {"degree": degree},
        "material": ms.material(),
        "initial": {"temperature": ms.u.replace("exp(-t)*", "")},
        "source": {"f": ms.f},
        "boundary": ms.boundaries(),
        "time": {"scheme": scheme} if scheme == "steady" else
                {"scheme": scheme, "dt": T_END / steps, "t_end": T_END},
        "solver": {"preconditioner": preconditioner, "rtol": RTOL},
        **({"nonlinear": {"rtol": 1e-11}} if ms.nonlinear else {}),
    }
    return values


def errors(sim: Simulation, ms: Manufactured, degree: int = 6) -> tuple[float, float]:
    """(L2 error, H1-seminorm error) of the current solution, over all ranks."""
    mesh = sim.mesh
    cells = mesh.owned_cells
    g = CellGeometry(mesh.cell_type, mesh.coords, cells, degree)
    uh = sim.u[cells] @ g.N.T  # (nc, nq)
    e2 = np.sum((uh - Expression(ms.u)(g.points, sim.t)) ** 2 * g.wdet)
    grad_h = np.einsum("ci,cqia->cqa", sim.u[cells], g.grad)  # (nc, nq|1, dim)
    h1 = 0.0
    for a, text in enumerate(ms.grad):
        h1 += np.sum((grad_h[..., a] - Expression(text)(g.points, sim.t)) ** 2 * g.wdet)
    buf = np.array([e2, h1])
    mesh.comm.Allreduce(MPI.IN_PLACE, buf)
    return float(np.sqrt(buf[0])), float(np.sqrt(buf[1]))


def solve(case, comm) -> Simulation:
    sim = Simulation(case, comm)
    if case.steady:
        sim.solve_steady()
    while sim.step_index < sim.n_steps:
        sim.advance()
    return sim


def orders(h, e) -> list[float]:
    return [math.log(e[i] / e[i + 1]) / math.log(h[i] / h[i + 1]) for i in range(len(e) - 1)]


def space_study(cell: str, levels=(8, 16, 32), comm=MPI.COMM_WORLD, scheme: str = "crank-nicolson",
                preconditioner: str = "bjacobi", nonlinear: bool = False, degree: int = 1):
    """Rows (n, DOFs, L2, H1, heat imbalance) and observed (L2, H1) orders, with elements of
    ``degree`` (the steps of the time schemes: n, or n^1.5 for quadratic elements)."""
    rows = []
    for n in levels:
        steps = n if degree == 1 else math.ceil(n ** 1.5)
        case = mms_case(cell, n, scheme, steps, preconditioner, nonlinear=nonlinear, degree=degree)
        sim = solve(case, comm)
        l2, h1 = errors(sim, Manufactured(sim.mesh.dim, case.steady, nonlinear=nonlinear))
        rows.append((n, sim.mesh.n_global_nodes, l2, h1, sim.balance.relative))
    hs = [1.0 / r[0] for r in rows]
    return rows, orders(hs, [r[2] for r in rows]), orders(hs, [r[3] for r in rows])


def time_study(cell: str, scheme: str, n: int = 8, steps=(16, 32, 64, 128), comm=MPI.COMM_WORLD,
               nonlinear: bool = False, degree: int = 1):
    """Rows (dt, ||u_dt - u_dt/2||_2 over nodes) and the observed orders, on one mesh."""
    solutions = []
    for s in steps:
        sim = solve(mms_case(cell, n, scheme, s, h=H_OF_T, nonlinear=nonlinear, degree=degree), comm)
        solutions.append(sim.u[: sim.mesh.n_owned].copy())
    diffs = []
    for a, b in zip(solutions, solutions[1:]):
        buf = np.array([np.sum((a - b) ** 2)])
        comm.Allreduce(MPI.IN_PLACE, buf)
        diffs.append(math.sqrt(buf[0]))
    dts = [T_END / s for s in steps[:-1]]
    return list(zip(dts, diffs)), orders(dts, diffs)


def newton_ratios(comm=MPI.COMM_WORLD, cell: str = "triangle", n: int = 32, degree: int = 1) -> list[float]:
    """Newton's residual ratios ``||G_k+1|| / ||G_k||`` on the first backward-Euler step of the
    nonlinear manufactured solution (an initial guess far enough to show the convergence), down
    to round-off."""
    case = mms_case(cell, n, "backward-euler", 1, nonlinear=True, degree=degree)
    sim = Simulation(case, comm)
    sim.advance()
    report = sim.stepper.last
    floor = 1e-13 * report.residuals[0]
    return [b / a for a, b in zip(report.residuals[:-1], report.residuals[1:]) if b > floor]


TOLERANCE = {1: 0.2, 2: 0.15}  # |observed - expected order| allowed, by the elements' degree
LEVELS = {(2, 1): (8, 16, 32), (3, 1): (4, 8, 16), (2, 2): (4, 8, 16), (3, 2): (4, 8, 16)}
QUADRATIC_NAMES = {"triangle": "P2 triangle", "quadrilateral": "Q2 quadrilateral", "tetrahedron": "P2 tetrahedron",
                   "hexahedron": "Q2 hexahedron"}


def verify_command(args, comm=MPI.COMM_WORLD, out=None) -> int:
    """``python -m solver verify``: convergence tables; non-zero exit when an order misses."""
    failures = []

    def say(text=""):
        if comm.rank == 0:
            print(text, file=out or sys.stdout, flush=True)

    dims, degrees = [args.dim] if args.dim else [2, 3], args.degree or [1, 2]
    say(f"manufactured solution u = {Manufactured(3).u}  (k = diag{KAPPA}, rho*c = {RHO * C})")
    say(f"boundaries: left dirichlet, right neumann, bottom/top robin h = {H:g} (3D: front neumann, back robin); "
        f"time studies: h = {H_OF_T}")
    say(f"{counted(comm.size, 'rank')}; pass when |observed - expected| <= "
        + ", ".join(f"{TOLERANCE[d]} (degree {d})" for d in degrees) + "\n")
    cells = [c for d in dims for c in CELLS_BY_DIM[d] if not args.element or c in args.element]
    for degree in degrees:
        for cell in cells:
            failures += _space_tables(args, comm, say, cell, degree)
    cell = "quadrilateral" if "quadrilateral" in cells else cells[0]
    for degree in degrees:
        failures += _time_tables(comm, say, cell, degree)
    if 2 in degrees and 2 in dims and (not args.element or "triangle" in args.element):
        from solver.bench.curved import curved_study

        failures += curved_study(comm, say, TOLERANCE[2])
    if 2 in dims and (not args.element or "triangle" in args.element):
        failures += _nonlinear(comm, say, degrees, args.levels)
    if failures:
        say("FAILED: " + "; ".join(failures))
        return 1
    say("all observed orders match the theory")
    return 0


def _space_tables(args, comm, say, cell: str, degree: int) -> list[str]:
    """The space studies of one kind of cell (Crank-Nicolson and steady); returns the failures."""
    failures, dim = [], 2 if cell in CELLS_BY_DIM[2] else 3
    levels = args.levels or LEVELS[(dim, degree)]
    name = cell if degree == 1 else QUADRATIC_NAMES[cell]
    for scheme in ("crank-nicolson", "steady"):
        pc = "bjacobi" if dim == 2 else "amg"
        rows, o2, o1 = space_study(cell, levels, comm, scheme, pc, degree=degree)
        say(f"space: {name}, {scheme}")
        say(f"  {'h':>8} {'DOFs':>9} {'L2 error':>11} {'order':>6} {'H1 error':>11} {'order':>6} {'heat imbal.':>11}")
        for i, (n, dofs, l2, h1, imb) in enumerate(rows):
            p2 = f"{o2[i - 1]:6.2f}" if i else " " * 6
            p1 = f"{o1[i - 1]:6.2f}" if i else " " * 6
            say(f"  {1 / n:8.5f} {dofs:9d} {l2:11.3e} {p2} {h1:11.3e} {p1} {imb:11.1e}")
        # the finest pair decides (coarser pairs are pre-asymptotic in 3D)
        for norm, observed, expected in (("L2", o2[-1], degree + 1.0), ("H1", o1[-1], float(degree))):
            if abs(observed - expected) > TOLERANCE[degree]:
                failures.append(f"{name} {scheme} {norm} order {observed:.2f} (expected {expected:g})")
        say()
    return failures


def _time_tables(comm, say, cell: str, degree: int) -> list[str]:
    """The time studies of every scheme (quadratic elements: the second-order ones) on one mesh."""
    failures, two_d = [], cell in CELLS_BY_DIM[2]
    name = cell if degree == 1 else QUADRATIC_NAMES[cell]
    for scheme, expected in ORDERS.items():
        if degree > 1 and expected < 2:
            continue
        rows, o = time_study(cell, scheme, n=(8 if two_d else 4) // degree, comm=comm, degree=degree)
        say(f"time: {scheme} on {name} (differences of successive dt halvings)")
        say(f"  {'dt':>10} {'difference':>11} {'order':>6}")
        for i, (dt, diff) in enumerate(rows):
            say(f"  {dt:10.5f} {diff:11.3e} {'' if i == 0 else f'{o[i - 1]:6.2f}'}")
        if abs(o[-1] - expected) > TOLERANCE[degree]:
            failures.append(f"{name} {scheme} time order {o[-1]:.2f} (expected {expected:g})")
        say()
    return failures


def _nonlinear(comm, say, degrees, levels=None) -> list[str]:
    """The nonlinear variant: with linear elements, space orders on triangles (Crank-Nicolson) and
    time orders on quadrilaterals; with quadratic ones, steady space orders on triangles (k(T) at
    the quadrature points), on ``levels`` where given; and Newton's residual ratios for each degree.
    Returns the failures."""
    failures = []
    say(f"nonlinear: k_a(T) = kappa_a (1 + {BETA:g} T), c(T) = {C:g} (1 + {GAMMA:g} T), Newton")
    studies = {1: ("triangle", (8, 16, 32), "crank-nicolson"), 2: ("triangle6", (4, 8, 16), "steady")}
    for degree in degrees:
        name, default, scheme = studies[degree]
        rows, o2, o1 = space_study("triangle", levels or default, comm, scheme, "bjacobi", nonlinear=True,
                                   degree=degree)
        say(f"  space ({name}, {scheme}): L2 errors {', '.join(f'{r[2]:.3e}' for r in rows)}; "
            f"orders L2 {', '.join(f'{p:.2f}' for p in o2)}, H1 {', '.join(f'{p:.2f}' for p in o1)}; "
            f"heat imbalance <= {max(r[4] for r in rows):.1e}")
        for norm, observed, expected in (("L2", o2[-1], degree + 1.0), ("H1", o1[-1], float(degree))):
            if abs(observed - expected) > TOLERANCE[degree]:
                failures.append(f"nonlinear {name} {norm} order {observed:.2f} (expected {expected:g})")
    if 1 in degrees:
        for scheme, expected in ORDERS.items():
            _, o = time_study("quadrilateral", scheme, n=8, comm=comm, nonlinear=True)
            say(f"  time ({scheme}): orders {', '.join(f'{p:.2f}' for p in o)}")
            if abs(o[-1] - expected) > TOLERANCE[1]:
                failures.append(f"nonlinear {scheme} time order {o[-1]:.2f} (expected {expected:g})")
    for degree in degrees:
        n = 32 if degree == 1 else 16
        ratios = newton_ratios(comm, n=n, degree=degree)
        say(f"  Newton residual ratios ||G_k+1|| / ||G_k|| (first step, {studies[degree][0]} n = {n}): "
            + ", ".join(f"{r:.2e}" for r in ratios) + "  (quadratic: each about the square of the one before)")
        if len(ratios) < 2 or any(math.log(b) / math.log(a) < 1.6 for a, b in zip(ratios, ratios[1:])):
            failures.append(f"Newton did not converge quadratically ({studies[degree][0]})")
    say()
    return failures
