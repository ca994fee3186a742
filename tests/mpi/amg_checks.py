"""Checks of the distributed smoothed-aggregation AMG (solver.la.amg) on N ranks.

Usage: mpirun -n N python amg_checks.py [galerkin] [problems] [double] [sizes] [update]

* galerkin: every coarse matrix equals P^T A P formed serially from the gathered fine matrix
  and the gathered prolongator; Dirichlet rows are in no aggregate; the V-cycle is symmetric;
* problems (double: the same in double precision; sizes: one problem on three meshes):
  AMG-PCG iterations from x = 0 to rtol 1e-10 on a set of problems, with a right-hand side
  made from the canonical node ids (the same problem on any number of ranks), and the
  solution's distance to a direct solve of the gathered system;
* update: update() with the same matrix reproduces a fresh set-up exactly; with a new dt it
  gives the iterations and the solution of a fresh set-up.

Prints one JSON line on rank 0.
"""

import sys
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import tomli_w
from _guard import run
from mpi4py import MPI

from solver.case.load import load_case
from solver.fem.boundary import constrain
from solver.heat.simulation import Simulation
from solver.la.amg import AMG, AMGOptions, local_matrix
from solver.la.krylov import pcg
from solver.la.matrix import DistributedMatrix

RTOL = 1e-10
SIDES2 = ("left", "right", "bottom", "top")
SIDES3 = SIDES2 + ("front", "back")


def case(cell, n, dt=1e3, k=1.0, region_k=None, boundary="dirichlet", mesh_file=None, steady=False):
    dim = 3 if cell in ("tetrahedron", "hexahedron") else 2
    if mesh_file:
        mesh = {"file": mesh_file}
        sides = ("left", "right", "bottom", "top", "holes")
    else:
        mesh = {"type": "rectangle" if dim == 2 else "box", "cell": cell, "nx": n, "ny": n}
        if dim == 3:
            mesh["nz"] = n
        sides = SIDES2 if dim == 2 else SIDES3
    if boundary == "dirichlet":  # two cold sides, the others insulated
        bc = {"left": {"type": "dirichlet", "value": 0.0}, "bottom": {"type": "dirichlet", "value": 0.0}}
    else:  # convection everywhere: no Dirichlet row at all
        bc = {s: {"type": "robin", "h": 10.0, "T_inf": 0.0} for s in sides}
    values = {"mesh": mesh, "material": {"k": k, "rho": 1.0, "c": 1.0}, "initial": {"temperature": 0.0},
              "boundary": bc,
              "time": {"scheme": "steady"} if steady else {"scheme": "backward-euler", "dt": dt, "t_end": dt},
              "solver": {"preconditioner": "jacobi", "rtol": RTOL}}
    if region_k is not None:
        lo, hi = (0.25, 0.75)
        values["region"] = {"core": {"x": [lo, hi], "y": [lo, hi], "k": region_k}}
    return load_case(tomli_w.dumps(values), f"<amg check {cell} {n}>")


def file_case(path):
    """An input case as it is (steady heat sink: Robin and Neumann boundaries, two materials)."""
    from pathlib import Path
    return load_case(Path(path).read_text() + "\n", path)


def system(comm, c):
    sim = Simulation(c, comm)
    return sim, sim.stepper.system.A


def canonical_rhs(sim) -> np.ndarray:
    """A rough right-hand side from a hash of the canonical node ids: the same on any ranks."""
    ids = sim.mesh.node_ids[: sim.mesh.n_owned].astype(np.uint64)
    h = (ids * np.uint64(2654435761) + np.uint64(97)) % np.uint64(2 ** 32)
    return h.astype(np.float64) / 2.0 ** 32 + 0.5


def gather_global(comm, M: sp.spmatrix, row_ids, col_ids, shape) -> sp.csr_matrix:
    M = M.tocoo()
    parts = comm.allgather((row_ids[M.row], col_ids[M.col], M.data))
    r, c, v = (np.concatenate([p[i] for p in parts]) for i in range(3))
    return sp.csr_matrix((v, (r, c)), shape=shape)


def gather_vector(comm, values, ids, n):
    parts = comm.allgather((ids, values))
    out = np.zeros(n)
    for i, v in parts:
        out[i] = v
    return out


def solve(comm, A, amg, b):
    x = np.zeros(A.n_owned + A.offdiag_block.shape[1])
    info = pcg(A, b, x, amg, RTOL, max_iterations=500)
    return info, x[: A.n_owned]


# ---------------------------------------------------------------------------------- galerkin
def galerkin(comm):
    out = {}
    for name, c, kw in [("p1_2d", case("triangle", 96), {"precision": "double"}),
                        ("q1_3d_single", case("hexahedron", 14), {"precision": "single"}),
                        ("gmsh_p1_2d", case("triangle", 0, boundary="robin",
                                            mesh_file="inputs/geometry/plate_with_holes.msh"),
                         {"precision": "double"})]:
        sim, A = system(comm, c)
        amg = AMG(A, AMGOptions(max_coarse=40, rows_per_rank=400, **kw))
        errors, sym = [], []
        for i, lvl in enumerate(amg.levels[:-1]):
            nxt = amg.levels[i + 1]
            N, Nc = int(lvl.starts[-1]), int(nxt.starts[-1])
            Ag = gather_global(comm, local_matrix(lvl.A), lvl.gids, lvl.gids, (N, N))
            g = lvl.galerkin  # P in double, as the set-up made it (the V-cycle may keep float32)
            Pg = gather_global(comm, g.P_ext[: lvl.n], lvl.gids, g.ext_cols, (N, Nc))
            Acg = gather_global(comm, local_matrix(nxt.A), nxt.gids, nxt.gids, (Nc, Nc))
            ref = (Pg.T @ Ag @ Pg).tocsr()
            errors.append(float(abs(ref - Acg).max() / abs(ref).max()))
            sym.append(float(abs(Acg - Acg.T).max() / abs(Acg).max()))
            if i == 0:  # Dirichlet rows of the fine level have empty rows of P
                mask = sim.problem.dirichlet.mask[: A.n_owned]
                rows = np.diff(g.P_ext.indptr[: lvl.n + 1])
                empty_dirichlet = np.array([int(np.all(rows[mask] == 0)), int(mask.sum())])
                comm.Allreduce(MPI.IN_PLACE, empty_dirichlet)
        rng = np.random.default_rng(7 + comm.rank)
        r1, r2 = rng.standard_normal(A.n_owned), rng.standard_normal(A.n_owned)
        s = np.array([np.dot(r2, amg(r1)), np.dot(r1, amg(r2))])
        comm.Allreduce(MPI.IN_PLACE, s)
        st = amg.stats()
        out[name] = {"errors": errors, "coarse_asymmetry": sym, "levels": st.levels, "rows": list(st.rows),
                     "active_ranks": [lv.active_ranks for lv in st.per_level],
                     "dirichlet_rows_empty": int(empty_dirichlet[0]) == comm.size,
                     "dirichlet_rows": int(empty_dirichlet[1]),
                     "vcycle_asymmetry": float(abs(s[0] - s[1]) / abs(s[0])),
                     "messages": [list(lv.messages_per_rank) for lv in st.per_level],
                     "bytes": [list(lv.bytes_per_rank) for lv in st.per_level],
                     "operator_complexity": st.operator_complexity, "grid_complexity": st.grid_complexity,
                     "precision": st.precision}
    return out


# ---------------------------------------------------------------------------------- problems
PROBLEMS = {
    "poisson_p1_2d": lambda: case("triangle", 128, dt=1e3),
    # no mass at all: the interior rows sum to zero, so (A T) cancels exactly on an aggregate's
    # inner nodes, where P must keep T's entry
    "steady_p1_2d": lambda: case("triangle", 128, steady=True),
    "steady_q1_3d": lambda: case("hexahedron", 20, steady=True),
    "mass_p1_2d": lambda: case("triangle", 128, dt=1e-8),
    "anisotropic_q1_2d": lambda: case("quadrilateral", 128, dt=1e3, k=[1.0, 0.01]),
    "jump_p1_2d": lambda: case("triangle", 128, dt=1e3, region_k=1e4),
    "robin_q1_2d": lambda: case("quadrilateral", 128, dt=1e3, boundary="robin"),
    "p1_3d": lambda: case("tetrahedron", 20, dt=1e3),
    "q1_3d": lambda: case("hexahedron", 20, dt=1e3),
    "gmsh_heatsink_p1_3d": lambda: file_case("inputs/heatsink.toml"),
}
DOUBLE = ("poisson_p1_2d", "anisotropic_q1_2d", "jump_p1_2d", "q1_3d")
SIZES = {f"poisson_p1_2d_{n}": (lambda n=n: case("triangle", n, dt=1e3)) for n in (64, 128, 256)}


def problems(comm, which=PROBLEMS, precision="single"):
    """Iterations, levels, operator complexity, and (rank 0) the distance to a direct solve."""
    out = {}
    for name, make in which.items():
        sim, A = system(comm, make())
        b = canonical_rhs(sim)
        amg = AMG(A, AMGOptions(precision=precision))
        info, x = solve(comm, A, amg, b)
        st = amg.stats()
        row = {"dofs": sim.mesh.n_global_nodes, "its": info.iterations, "converged": info.converged,
               "levels": st.levels, "operator_complexity": st.operator_complexity}
        # distance to a direct solve of the gathered system (canonical numbering)
        ids = sim.mesh.node_ids
        N = sim.mesh.n_global_nodes
        Ag = gather_global(comm, local_matrix(A), ids[: A.n_owned], ids, (N, N))
        xg = gather_vector(comm, x, ids[: A.n_owned], N)
        bg = gather_vector(comm, b, ids[: A.n_owned], N)
        if comm.rank == 0:
            exact = spla.splu(Ag.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                              options={"SymmetricMode": True}).solve(bg)
            row["lu_error"] = float(np.linalg.norm(xg - exact) / np.linalg.norm(exact))
            row["residual"] = float(np.linalg.norm(bg - Ag @ xg) / np.linalg.norm(bg))
        out[name] = row
    return out


# ---------------------------------------------------------------------------------- update
def update(comm):
    c = case("triangle", 128, dt=1e-3)
    sim, A = system(comm, c)
    b = canonical_rhs(sim)
    p = sim.problem

    def matrix(dt):
        A_c, _, _ = constrain(sp.csr_matrix((p.M.data + dt * p.stiffness(0.0).data, p.M.indices, p.M.indptr), shape=p.M.shape),
                              p.dirichlet.mask)
        return DistributedMatrix(A_c, sim.mesh.halo)

    out = {}
    A = matrix(1e-3)  # the system's values, its products from the full CSR (as update()'s new matrix)
    for precision in ("double", "single"):
        kept = AMG(A, AMGOptions(precision=precision))
        same = AMG(A, AMGOptions(precision=precision))
        kept.update(matrix(1e-3))  # the same values: must be the same operator, bit for bit
        r = canonical_rhs(sim) - 1.0
        identical = np.array([int(np.array_equal(kept(r), same(r)))])
        comm.Allreduce(MPI.IN_PLACE, identical)
        A2 = matrix(1e-1)
        comm.Barrier()
        t = time.perf_counter()
        kept.update(A2)
        t_update = time.perf_counter() - t
        comm.Barrier()
        t = time.perf_counter()
        fresh = AMG(A2, AMGOptions(precision=precision))
        t_fresh = time.perf_counter() - t
        info_u, x_u = solve(comm, A2, kept, b)
        info_f, x_f = solve(comm, A2, fresh, b)
        diff = np.array([np.sum((x_u - x_f) ** 2), np.sum(x_f ** 2)])
        comm.Allreduce(MPI.IN_PLACE, diff)
        out[precision] = {"identical_after_same_update": int(identical[0]) == comm.size,
                          "its_update": info_u.iterations, "its_fresh": info_f.iterations,
                          "converged": info_u.converged and info_f.converged,
                          "solution_difference": float(np.sqrt(diff[0] / diff[1])),
                          "t_update": t_update, "t_fresh": t_fresh}
    return out


def main(comm):
    parts = sys.argv[1:] or ["galerkin", "problems", "double", "sizes", "update"]
    result = {"ranks": comm.size}
    for part in parts:
        if part == "galerkin":
            result[part] = galerkin(comm)
        elif part == "problems":
            result[part] = problems(comm)
        elif part == "double":
            result[part] = problems(comm, {k: PROBLEMS[k] for k in DOUBLE}, precision="double")
        elif part == "sizes":
            result[part] = problems(comm, SIZES)
        elif part == "update":
            result[part] = update(comm)
    return result


run(main)
