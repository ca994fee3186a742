"""``python -m solver bench``: how close the solver runs to what the machine can do.

Every figure is measured in the same run and reported as a ratio to a reference measured
beside it: the sparse matrix-vector product against a STREAM-like triad, the distributed
product against the local one, a PCG iteration against a product, parallel HDF5 against a
plain file write, two ranks against one. Run it on the ranks to compare with (default: all
cores; ``python -m solver bench`` launches ``mpirun`` itself), e.g.::

    python -m solver bench --quick                   # small sizes, under two minutes
    python -m solver bench --dofs-2d 1e6 --dofs-3d 1e6 --json outputs/bench.json

"1 rank" figures run on rank 0 alone while the other ranks sleep (not spin); "N ranks" figures
run on all ranks at once. Times are the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

QUICK = {"stream": 2 ** 24, "dofs_2d": 250_000, "dofs_3d": 60_000, "cells": 250_000, "steps": 3, "repeat": 3}
FULL = {"stream": 2 ** 25, "dofs_2d": 1_000_000, "dofs_3d": 1_000_000, "cells": 1_000_000, "steps": 5, "repeat": 5}


# ---------------------------------------------------------------------------------- helpers
def rss() -> tuple[float, float]:
    """(current, peak since the last reset) resident set size of this process, bytes."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) * 1024.0, int(fields["VmHWM"].split()[0]) * 1024.0


def reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: restart VmHWM from the current RSS
    except OSError:
        pass


def best_time(comm, fn, repeat: int) -> float:
    """Best over ``repeat`` runs of the slowest rank's time of ``fn()``."""
    best = math.inf
    for _ in range(repeat):
        comm.Barrier()
        t0 = MPI.Wtime()
        fn()
        t = comm.allreduce(MPI.Wtime() - t0, op=MPI.MAX)
        best = min(best, t)
    return best


def alone(comm, fn):
    """``fn(MPI.COMM_SELF)`` on rank 0 while the others sleep in a polled barrier (so that they
    take no core from it); the result on every rank."""
    result = fn(MPI.COMM_SELF) if comm.rank == 0 else None
    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(0.002)
    return comm.bcast(result, root=0)


def case_text(dim: int, n: int, cell: str, steps: int, preconditioner: str) -> str:
    size = f"nx = {n}\nny = {n}" + (f"\nnz = {n}" if dim == 3 else "")
    lengths = "[0.2, 0.2]" if dim == 2 else "[0.2, 0.2, 0.2]"
    return f"""
[mesh]
type = "{'rectangle' if dim == 2 else 'box'}"
cell = "{cell}"
{size}
lengths = {lengths}
[material]
k = 45.0
rho = 7850.0
c = 460.0
[initial]
temperature = 20.0
[boundary.left]
type = "dirichlet"
value = 100.0
[boundary.right]
type = "robin"
h = 25.0
T_inf = 20.0
[time]
scheme = "crank-nicolson"
dt = 5.0
t_end = {5.0 * steps}
[solver]
preconditioner = "{preconditioner}"
rtol = 1e-8
"""


def side(dofs: float, dim: int) -> int:
    """Cells per side of a P1 mesh with about ``dofs`` nodes."""
    return max(2, round(dofs ** (1.0 / dim)) - 1)


def simulation(comm, dim: int, dofs: float, steps: int, preconditioner: str = "bjacobi"):
    from solver.case.load import load_case
    from solver.heat.simulation import Simulation

    cell = "triangle" if dim == 2 else "tetrahedron"
    case = load_case(case_text(dim, side(dofs, dim), cell, steps, preconditioner), f"<bench {dim}D>")
    return Simulation(case, comm)


# ---------------------------------------------------------------------------------- figures
def stream(comm, n: int, repeat: int) -> dict:
    """Triad a = b + s c: NumPy (two passes, so it really moves 40 bytes per element) and BLAS
    daxpy (one fused pass, b += s c), both counted as 24 bytes per element as STREAM does;
    aggregate GB/s over the ranks taking part. The fused figure is the machine's bandwidth."""
    from scipy.linalg.blas import daxpy

    a, b, c = np.zeros(n), np.full(n, 1.0), np.full(n, 2.0)

    def numpy_triad():
        np.multiply(c, 3.0, out=a)
        a.__iadd__(b)

    def blas_triad():
        daxpy(c, b, a=3.0)  # b += 3 c in place: reads c and b, writes b

    t_np = best_time(comm, numpy_triad, repeat)
    t_blas = best_time(comm, blas_triad, repeat)
    total = 24.0 * n * comm.size
    return {"numpy_GBs": total / t_np / 1e9, "daxpy_GBs": total / t_blas / 1e9}


def spmv_bytes(A) -> int:
    """Bytes a CSR product moves at least: the matrix arrays, x once and y once."""
    return A.data.nbytes + A.indices.nbytes + A.indptr.nbytes + 8 * (A.shape[1] + A.shape[0])


def linear_algebra(comm, dofs: float, repeat: int, stream_GBs: float) -> dict:
    """Local SpMV, distributed SpMV with the halo exchange, one PCG-Jacobi iteration; 2D P1
    system matrix M + dt/2 K of a Crank-Nicolson step."""
    from solver.la.krylov import pcg
    from solver.la.preconditioners import Jacobi

    sim = simulation(comm, 2, dofs, 1, "jacobi")
    A = sim.stepper.system.A
    # this rank's owned rows as one CSR matrix over its local columns
    rows = sp.hstack([A.diag_block, A.offdiag_block], format="csr") if A.has_offdiag else A.diag_block
    x = np.random.default_rng(comm.rank).random(sim.mesh.n_local)
    t_local = t_dist = math.inf
    for _ in range(max(20, repeat * 10)):  # single products, alternated: the best of each
        t_local = min(t_local, best_time(comm, lambda: rows @ x, 1))
        t_dist = min(t_dist, best_time(comm, lambda: A.matvec(x), 1))
    moved = comm.allreduce(spmv_bytes(rows))
    b = np.ones(sim.mesh.n_owned)
    precond = Jacobi(A)

    def iterations(k):
        x0 = np.zeros(sim.mesh.n_local)
        return lambda: pcg(A, b, x0, precond, rtol=0.0, max_iterations=k)

    t_short = best_time(comm, iterations(5), repeat)
    t_long = best_time(comm, iterations(45), repeat)
    t_iter = (t_long - t_short) / 40
    return {"dofs": sim.mesh.n_global_nodes, "nnz": comm.allreduce(rows.nnz), "spmv_s": t_local,
            "spmv_GBs": moved / t_local / 1e9, "spmv_fraction_of_fused_triad": moved / t_local / 1e9 / stream_GBs,
            "dist_spmv_s": t_dist, "halo_overhead": t_dist / t_local - 1.0,
            "pcg_iteration_s": t_iter, "pcg_iteration_over_spmv": t_iter / t_dist}


def assembly(comm, cells: float, repeat: int) -> dict:
    """Sparsity pattern + stiffness + mass of a structured mesh of about ``cells`` cells."""
    from solver.case.records import StructuredMeshSpec
    from solver.fem.assembly import Assembler
    from solver.mesh.build import create_mesh

    out = {}
    for name, cell, dim, per_cube in (("P1 2D", "triangle", 2, 2), ("Q1 2D", "quadrilateral", 2, 1),
                                      ("P1 3D", "tetrahedron", 3, 6), ("Q1 3D", "hexahedron", 3, 1)):
        n = max(2, round((cells / per_cube) ** (1.0 / dim)))
        mesh = create_mesh(comm, StructuredMeshSpec("rectangle" if dim == 2 else "box", cell, (n,) * dim,
                                                    (1.0,) * dim, (0.0,) * dim))
        k = np.ones((len(mesh.cells), dim))
        rhoc = np.ones(len(mesh.cells))

        def assemble():
            a = Assembler(mesh)
            a.stiffness(k)
            a.mass(rhoc)

        t = best_time(comm, assemble, max(1, repeat - 2))
        local_cells = comm.allreduce(len(mesh.owned_cells), op=MPI.MAX)
        out[name] = {"cells": mesh.n_global_cells, "seconds": t, "cells_per_s_per_rank": local_cells / t,
                     "s_per_million_cells_per_rank": t / local_cells * 1e6}
    return out


def time_steps(comm, dim: int, dofs: float, steps: int, preconditioner: str) -> dict:
    """Set-up and time loop of a Crank-Nicolson case; memory per DOF of this rank."""
    reset_peak()
    before = rss()[0]
    comm.Barrier()
    t0 = MPI.Wtime()
    sim = simulation(comm, dim, dofs, steps, preconditioner)
    comm.Barrier()
    t1 = MPI.Wtime()
    iterations = 0
    while sim.step_index < sim.n_steps:
        iterations += sim.advance().iterations
    comm.Barrier()
    t2 = MPI.Wtime()
    current, peak = rss()
    n = max(sim.mesh.n_owned, 1)
    per_dof = comm.allreduce((peak - before) / n, op=MPI.MAX)
    lu = getattr(sim.stepper.system.precond, "lu", None)  # factors: 8-byte values, 4-byte indices
    factors = comm.allreduce(12.0 * lu.nnz / n if lu is not None else 0.0, op=MPI.MAX)
    return {"dofs": sim.mesh.n_global_nodes, "ranks": comm.size, "preconditioner": preconditioner,
            "factor_bytes_per_dof": factors,
            "setup_s": t1 - t0, "step_s": (t2 - t1) / steps, "loop_s": t2 - t1,
            "iterations_per_step": iterations / steps,
            "peak_rss_MB": comm.allreduce(peak, op=MPI.MAX) / 2 ** 20, "bytes_per_dof": per_dof}


def hdf5_write(comm, dofs: float, repeat: int, directory: Path) -> dict:
    """One output step through the results writer (collective mpio) against a plain
    sequential write of the same bytes by one process, to the same disk; both fsync'ed."""
    from solver.io.results_file import ResultsFile

    sim = simulation(comm, 2, dofs, 1, "jacobi")
    n_bytes = 8 * sim.mesh.n_global_nodes
    results = ResultsFile(directory, f"bench_{comm.size}", sim.mesh, {}, "auto")
    h5 = results.backend.file if hasattr(results.backend, "file") else None

    def parallel():
        results.write(sim.u, 0.0, 0)
        if h5 is not None:
            h5.flush()
        comm.Barrier()
        if comm.rank == 0:  # fsync of any descriptor of the file flushes all of its dirty pages
            fd = os.open(results.h5_path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)

    t_par = best_time(comm, parallel, repeat)
    results.close()
    data = np.random.default_rng(0).random(sim.mesh.n_global_nodes) if comm.rank == 0 else None
    plain = directory / "plain.bin"

    def sequential():
        if comm.rank == 0:
            with open(plain, "wb") as f:
                f.write(data.tobytes())
                f.flush()
                os.fsync(f.fileno())

    t_seq = best_time(comm, sequential, repeat)
    return {"bytes": n_bytes, "hdf5_s": t_par, "plain_s": t_seq, "hdf5_GBs": n_bytes / t_par / 1e9,
            "plain_GBs": n_bytes / t_seq / 1e9, "hdf5_fraction_of_plain": t_seq / t_par,
            "driver": results.driver}


# ---------------------------------------------------------------------------------- driver
def measure(comm, sizes: dict, directory: Path, report) -> dict:
    r = {"ranks": comm.size, "sizes": sizes, "host": os.uname().nodename, "cores": os.cpu_count()}
    repeat = sizes["repeat"]
    report(f"bench on {comm.size} ranks ({os.cpu_count()} cores): sizes {sizes}")
    for dim, key in ((2, "dofs_2d"), (3, "dofs_3d")):  # memory-sensitive parts first
        pc = "bjacobi" if dim == 2 else "amg"
        one = alone(comm, lambda c: time_steps(c, dim, sizes[key], sizes["steps"], pc))
        many = time_steps(comm, dim, sizes[key], sizes["steps"], pc)
        r[f"steps_{dim}d"] = {"1": one, "N": many, "speedup_step": one["step_s"] / many["step_s"],
                              "speedup_with_setup": (one["setup_s"] + one["loop_s"]) /
                              (many["setup_s"] + many["loop_s"])}
        report(f"  time steps {dim}D done")
        if dim == 2:
            oneJ = alone(comm, lambda c: time_steps(c, 2, sizes[key], sizes["steps"], "jacobi"))
            manyJ = time_steps(comm, 2, sizes[key], sizes["steps"], "jacobi")
            r["steps_2d_jacobi"] = {"1": oneJ, "N": manyJ, "speedup_step": oneJ["step_s"] / manyJ["step_s"]}
    r["stream_1"] = alone(comm, lambda c: stream(c, sizes["stream"], repeat))
    r["stream_N"] = stream(comm, sizes["stream"], repeat)
    report("  stream done")
    r["linalg_1"] = alone(comm, lambda c: linear_algebra(c, sizes["dofs_2d"], repeat, r["stream_1"]["daxpy_GBs"]))
    r["linalg_N"] = linear_algebra(comm, sizes["dofs_2d"], repeat, r["stream_N"]["daxpy_GBs"])
    report("  linear algebra done")
    r["assembly"] = assembly(comm, sizes["cells"], repeat)
    report("  assembly done")
    r["hdf5"] = hdf5_write(comm, sizes["dofs_2d"], repeat, directory)
    return r


def table(r: dict) -> str:
    N = r["ranks"]
    s1, sN = r["stream_1"], r["stream_N"]
    l1, lN = r["linalg_1"], r["linalg_N"]
    lines = [f"solver bench: {r['host']}, {r['cores']} cores, 1 and {N} ranks", "",
             f"{'figure':58s} {'1 rank':>12s} {f'{N} ranks':>12s}  target",
             f"{'STREAM-like triad, NumPy (GB/s, all ranks)':58s} {s1['numpy_GBs']:12.2f} {sN['numpy_GBs']:12.2f}",
             f"{'STREAM-like triad, BLAS daxpy (GB/s, all ranks)':58s} {s1['daxpy_GBs']:12.2f} {sN['daxpy_GBs']:12.2f}",
             f"{'CSR SpMV, 2D P1 ' + format(lN['dofs'], ',') + ' DOFs (GB/s)':58s} {l1['spmv_GBs']:12.2f} "
             f"{lN['spmv_GBs']:12.2f}",
             f"{'  SpMV bandwidth / NumPy triad':58s} {l1['spmv_GBs'] / s1['numpy_GBs']:12.0%} "
             f"{lN['spmv_GBs'] / sN['numpy_GBs']:12.0%}  >= 60%",
             f"{'  SpMV bandwidth / fused (daxpy) triad':58s} {l1['spmv_GBs'] / s1['daxpy_GBs']:12.0%} "
             f"{lN['spmv_GBs'] / sN['daxpy_GBs']:12.0%}  >= 60%",
             f"{'distributed SpMV (halo) / local SpMV - 1':58s} {l1['halo_overhead']:12.1%} "
             f"{lN['halo_overhead']:12.1%}  <= 15%",
             f"{'one PCG-Jacobi iteration / one SpMV':58s} {l1['pcg_iteration_over_spmv']:12.2f} "
             f"{lN['pcg_iteration_over_spmv']:12.2f}  <= 2.5"]
    for name, a in r["assembly"].items():
        lines.append(f"{'assembly ' + name + ', s per million cells per rank':58s} {'':12s} "
                     f"{a['s_per_million_cells_per_rank']:12.2f}" + ("  < 1.5" if name == "P1 2D" else ""))
    for key, label in (("steps_2d", "2D P1"), ("steps_2d_jacobi", "2D P1"), ("steps_3d", "3D P1")):
        st = r[key]
        one, many = st["1"], st["N"]
        what = f"{label} {format(one['dofs'], ',')} DOFs, {one['preconditioner']}"
        lines += [f"{'time step, ' + what + ' (s)':58s} {one['step_s']:12.3f} {many['step_s']:12.3f}",
                  f"{'  CG iterations per step':58s} {one['iterations_per_step']:12.1f} "
                  f"{many['iterations_per_step']:12.1f}",
                  f"{'  set-up (mesh, assembly, factorisation) (s)':58s} {one['setup_s']:12.2f} {many['setup_s']:12.2f}",
                  f"{'  speed-up of the time loop':58s} {'':12s} {st['speedup_step']:12.2f}  >= 1.7",
                  f"{'  peak RSS per rank (MB)':58s} {one['peak_rss_MB']:12.0f} {many['peak_rss_MB']:12.0f}",
                  f"{'  bytes per DOF per rank (peak growth)':58s} {one['bytes_per_dof']:12.0f} "
                  f"{many['bytes_per_dof']:12.0f}" + ("  <= 1024" if key == "steps_2d" else "")]
        if one["factor_bytes_per_dof"]:
            lines.append(f"{'    of which LU factors (L + U, SuperLU)':58s} {one['factor_bytes_per_dof']:12.0f} "
                         f"{many['factor_bytes_per_dof']:12.0f}")
    h = r["hdf5"]
    lines += [f"{'HDF5 output step, ' + h['driver'] + ' (GB/s)':58s} {'':12s} {h['hdf5_GBs']:12.3f}",
              f"{'plain sequential write of the same bytes (GB/s)':58s} {'':12s} {h['plain_GBs']:12.3f}",
              f"{'  HDF5 / plain':58s} {'':12s} {h['hdf5_fraction_of_plain']:12.0%}  >= 50%"]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m solver bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=f"small sizes, under two minutes: {QUICK}")
    p.add_argument("--dofs-2d", type=float, help=f"DOFs of the 2D P1 problems (default {FULL['dofs_2d']:g})")
    p.add_argument("--dofs-3d", type=float, help=f"DOFs of the 3D P1 problem (default {FULL['dofs_3d']:g})")
    p.add_argument("--cells", type=float, help=f"cells of the assembly meshes (default {FULL['cells']:g})")
    p.add_argument("--stream", type=float, help=f"elements per triad array (default {FULL['stream']:g})")
    p.add_argument("--steps", type=int, help="time steps timed per case")
    p.add_argument("--repeat", type=int, help="repetitions (the best is kept)")
    p.add_argument("--ranks", type=int, help="ranks to launch when started without mpirun "
                   "(default: the cores of this machine)")
    p.add_argument("--json", default="outputs/bench/bench.json", help="where to write the figures")
    return p


def bench_command(argv, comm=MPI.COMM_WORLD) -> int:
    args = build_parser().parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    for key in ("dofs_2d", "dofs_3d", "cells", "stream", "steps", "repeat"):
        value = getattr(args, key)
        if value is not None:
            sizes[key] = int(value)
    path = Path(args.json)

    def report(text):
        if comm.rank == 0:
            print(text, file=sys.stderr, flush=True)

    if comm.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
    scratch = comm.bcast(tempfile.mkdtemp(prefix="bench-", dir=path.parent) if comm.rank == 0 else None)
    try:
        r = measure(comm, sizes, Path(scratch), report)
    except BaseException:  # no collective here: the error ends the run (cli aborts the others)
        if comm.rank == 0:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(scratch, ignore_errors=True)
    if comm.rank == 0:
        print(table(r), flush=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(r, indent=1))
        tmp.replace(path)
        print(f"\nfigures: {path}", flush=True)
    return 0
