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

from solver.post.bench_cases import case_text
from solver.post.memory import reset_peak, rss

QUICK = {"stream": 2 ** 24, "dofs_2d": 250_000, "dofs_3d": 60_000, "cells": 250_000, "steps": 3, "repeat": 3}
FULL = {"stream": 2 ** 25, "dofs_2d": 1_000_000, "dofs_3d": 1_000_000, "cells": 1_000_000, "steps": 5, "repeat": 5}


# ---------------------------------------------------------------------------------- helpers
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


def side(dofs: float, dim: int) -> int:
    """Cells per side of a P1 mesh with about ``dofs`` nodes."""
    return max(2, round(dofs ** (1.0 / dim)) - 1)


def simulation(comm, dim: int, dofs: float, steps: int, preconditioner: str = "amg"):
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


ASSEMBLY_MESHES = (("P1 2D", "triangle", 2, 2), ("Q1 2D", "quadrilateral", 2, 1),
                   ("P1 3D", "tetrahedron", 3, 6), ("Q1 3D", "hexahedron", 3, 1))
DT = 1e-3  # the system matrix M + dt K of the reference problem


def assembly_side(cells: float, per_cube: int, dim: int) -> int:
    """Cells per side of a structured mesh of about ``cells`` cells (``per_cube`` per square/cube)."""
    return max(2, round((cells / per_cube) ** (1.0 / dim)))


def assembly(comm, cells: float, cells_3d: float, repeat: int, meshes=None) -> dict:
    """Per mesh: the pattern (Assembler), the first assembly of the system matrix M + dt K (into a
    new data array) and its reassembly (into the same one), and the old figure pattern + K + M;
    seconds and seconds per million cells per rank (slowest rank). Kernels are compiled (or loaded
    from the cache) before anything is timed."""
    from solver.case.records import StructuredMeshSpec
    from solver.fem.assembly import Assembler
    from solver.mesh.build import create_mesh

    out = {}
    for name, cell, dim, per_cube in ASSEMBLY_MESHES:
        if meshes and name not in meshes:
            continue
        n = assembly_side(cells if dim == 2 else cells_3d, per_cube, dim)
        mesh = create_mesh(comm, StructuredMeshSpec("rectangle" if dim == 2 else "box", cell, (n,) * dim,
                                                    (1.0,) * dim, (0.0,) * dim))
        k = np.ones((len(mesh.cells), dim))
        rhoc = np.ones(len(mesh.cells))
        a = Assembler(mesh)
        if a.compiled:  # compiled or loaded now, not in the first assembly
            from solver.fem.kernels import warm_up

            warm_up(cell, mesh.cells.dtype, a.indices.dtype)
        t_pattern = best_time(comm, lambda: Assembler(mesh), repeat)
        first = {}
        t_first = best_time(comm, lambda: first.update(A=a.bilinear(mass=rhoc, conductivity=DT * k)), 1)
        data = first["A"].data
        t_re = best_time(comm, lambda: a.bilinear(mass=rhoc, conductivity=DT * k, out=data), repeat)
        t_K = best_time(comm, lambda: a.stiffness(k), repeat)
        t_M = best_time(comm, lambda: a.mass(rhoc), repeat)
        local = comm.allreduce(len(mesh.owned_cells), op=MPI.MAX) / 1e6
        t_old = t_pattern + t_K + t_M
        out[name] = {"n": n, "cells": mesh.n_global_cells, "nnz": comm.allreduce(a.nnz), "compiled": a.compiled,
                     "pattern_s": t_pattern, "first_s": t_first, "reassembly_s": t_re, "stiffness_s": t_K,
                     "mass_s": t_M, "seconds": t_old,
                     "per_million": {"pattern": t_pattern / local, "first": t_first / local,
                                     "reassembly": t_re / local, "pattern_K_M": t_old / local},
                     "cells_per_s_per_rank": local * 1e6 / t_old, "s_per_million_cells_per_rank": t_old / local}
    return out


def reference_setup(comm, dim: int, n: int) -> dict:
    """The set-up of the reference problem (inputs/reference*.toml, N per side, jacobi): mesh,
    assembly and solver set-up, as DOLFINx's t_mesh + t_setup + t_assemble_matrix + t_solver_setup."""
    from solver.case.load import load_case
    from solver.heat.simulation import Simulation, Timers

    root = Path(__file__).resolve().parents[2]
    text = (root / "inputs" / ("reference3d.toml" if dim == 3 else "reference.toml")).read_text()
    sizes = [f"mesh.{a}={n}" for a in "xyz"[:dim]]
    case = load_case(text, "<bench reference>", [s.replace("mesh.", "mesh.n") for s in sizes] +
                     ['solver.preconditioner="jacobi"'])
    timers = Timers()
    comm.Barrier()
    t0 = MPI.Wtime()
    Simulation(case, comm, timers)
    comm.Barrier()
    seconds = comm.allreduce(MPI.Wtime() - t0, op=MPI.MAX)
    return {"n": n, "setup_s": seconds, **{f"{k}_s": comm.allreduce(v, op=MPI.MAX) for k, v in timers.seconds.items()}}


# ---------------------------------------------------------------------------------- DOLFINx
def launcher_free_environment() -> dict:
    """This environment without what an MPI launcher set for its ranks, plus what a local mpirun
    needs: a rank can start another mpirun with it (DOLFINx's runs)."""
    from solver.parallel.launcher import mpirun_environment

    launcher = ("OMPI_MCA_orte", "OMPI_MCA_ess", "OMPI_MCA_pmix", "OMPI_MCA_initial_wdir", "OMPI_MCA_shmem",
                "OMPI_MCA_mpi_oversubscribe")
    env = {k: v for k, v in mpirun_environment().items()
           if not k.startswith(("PMIX_", "PMI_")) and not k.startswith(launcher)
           and not (k.startswith("OMPI_") and not k.startswith(("OMPI_MCA_", "OMPI_ALLOW_RUN_AS_ROOT")))}
    env["OMP_NUM_THREADS"] = "1"
    return env


def dolfinx_available(script: Path) -> bool:
    """/usr/bin/python3 imports dolfinx (asked from outside this MPI job) and the script exists."""
    import subprocess

    from solver.post.bench_solvers import PEER_PYTHON

    if not script.is_file() or not Path(PEER_PYTHON).exists():
        return False
    probe = subprocess.run([PEER_PYTHON, "-c", "import dolfinx"], env=launcher_free_environment(),
                           capture_output=True)
    return probe.returncode == 0


def dolfinx_run(ranks: int, n: int, dim: int, script: Path, directory: Path, timeout: float = 1800) -> dict:
    """DOLFINx's figures of the reference problem (no time step, jacobi): its one JSON line. Its
    form cache (FFCx's compiled forms) is kept in ``directory``."""
    import subprocess

    from solver.parallel.launcher import mpirun_command

    from solver.post.bench_solvers import PEER_PYTHON

    cmd = [*mpirun_command(ranks), PEER_PYTHON, str(script), str(n), "0", str(DT), "0", "--pc", "jacobi",
           "--dim", str(dim)]
    directory.mkdir(parents=True, exist_ok=True)
    env = {**launcher_free_environment(), "PEERS_DIR": str(directory)}
    proc = subprocess.run(cmd, env=env, cwd=directory, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"DOLFINx run failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def dolfinx_figures(runs: list[dict]) -> dict:
    """The assembly and set-up figures of DOLFINx runs of one (dim, ranks): medians, ranges, and
    per million cells per rank."""
    import statistics

    r = runs[0]
    cells = (2 * r["N"] ** 2 if r["dim"] == 2 else 6 * r["N"] ** 3) / r["ranks"] / 1e6
    keys = {"pattern": "t_matrix_create", "first": "t_matrix_values", "reassembly": "t_matrix_reassemble"}
    out = {"N": r["N"], "dim": r["dim"], "ranks": r["ranks"], "runs": len(runs), "per_million": {}, "range": {}}
    for name, key in keys.items():
        values = [x[key] for x in runs]
        out[name + "_s"] = statistics.median(values)
        out["per_million"][name] = statistics.median(values) / cells
        out["range"][name] = [min(values) / cells, max(values) / cells]  # per million cells per rank
    setups = [x["t_mesh"] + x.get("t_setup", 0.0) + x["t_assemble_matrix"] + x["t_solver_setup"] for x in runs]
    out["setup_s"] = statistics.median(setups)
    out["range"]["setup"] = [min(setups), max(setups)]
    return out


def dolfinx_json(paths: list[str]) -> list[dict]:
    """The JSON lines of dolfinx_heat.py runs saved in files (other lines are skipped)."""
    runs = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if line.startswith("{") and '"t_matrix_create"' in line:
                runs.append(json.loads(line))
    return runs


def compare_with_dolfinx(comm, r: dict, runs: list[dict], report) -> dict:
    """Our P1 assembly and the reference set-up beside DOLFINx's, per (dim, ranks) of its runs."""
    out = {}
    for dim, name in ((2, "P1 2D"), (3, "P1 3D")):
        for ranks, label in ((1, "1"), (comm.size, "N")):
            mine = [x for x in runs if x["dim"] == dim and x["ranks"] == ranks]
            if not mine or name not in r["assembly"]:
                continue
            theirs = dolfinx_figures(mine)
            ours_asm = r["assembly_1" if label == "1" else "assembly"][name]
            setup = alone(comm, lambda c: reference_setup(c, dim, theirs["N"])) if label == "1" else \
                reference_setup(comm, dim, theirs["N"])
            ratio = {k: ours_asm["per_million"][k] / theirs["per_million"][k] for k in theirs["per_million"]}
            ratio["setup"] = setup["setup_s"] / theirs["setup_s"]
            out[f"{name} {label}"] = {"mesh": name, "ranks": ranks, "dolfinx": theirs, "ours_setup": setup,
                                      "ratio": ratio}
            report(f"  DOLFINx {name} on {ranks} rank(s) compared")
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
PARTS = ("steps", "stream", "linalg", "assembly", "hdf5")


def measure(comm, sizes: dict, directory: Path, report, parts=PARTS, peer: dict | None = None) -> dict:
    r = {"ranks": comm.size, "sizes": sizes, "host": os.uname().nodename, "cores": os.cpu_count(),
         "parts": list(parts)}
    repeat = sizes["repeat"]
    report(f"bench on {comm.size} ranks ({os.cpu_count()} cores): sizes {sizes}")
    if "steps" in parts:
        time_step_figures(comm, sizes, r, report)
    if "stream" in parts or "linalg" in parts:
        r["stream_1"] = alone(comm, lambda c: stream(c, sizes["stream"], repeat))
        r["stream_N"] = stream(comm, sizes["stream"], repeat)
        report("  stream done")
    if "linalg" in parts:
        r["linalg_1"] = alone(comm, lambda c: linear_algebra(c, sizes["dofs_2d"], repeat, r["stream_1"]["daxpy_GBs"]))
        r["linalg_N"] = linear_algebra(comm, sizes["dofs_2d"], repeat, r["stream_N"]["daxpy_GBs"])
        report("  linear algebra done")
    if "assembly" in parts:
        cells_3d = sizes.get("cells_3d") or sizes["cells"]
        meshes = sizes.get("meshes")
        r["assembly_1"] = alone(comm, lambda c: assembly(c, sizes["cells"], cells_3d, repeat, meshes))
        r["assembly"] = assembly(comm, sizes["cells"], cells_3d, repeat, meshes)
        report("  assembly done")
        runs = list((peer or {}).get("runs", []))
        if peer and peer.get("script"):  # rank 0 launches DOLFINx while the others wait (sleeping)
            script, cache = Path(peer["script"]), Path(peer["cache"])
            for dim, name in ((2, "P1 2D"), (3, "P1 3D")):
                if name not in r["assembly"]:
                    continue
                n = r["assembly"][name]["n"]
                alone(comm, lambda c: dolfinx_run(1, 4, dim, script, cache))  # its forms compiled, untimed
                for ranks in sorted({1, comm.size}):
                    for _ in range(peer.get("repeat", 1)):
                        runs.append(alone(comm, lambda c: dolfinx_run(ranks, n, dim, script, cache)))
                report(f"  DOLFINx {name} done")
        if runs:
            r["dolfinx"] = compare_with_dolfinx(comm, r, runs, report)
    if "hdf5" in parts:
        r["hdf5"] = hdf5_write(comm, sizes["dofs_2d"], repeat, directory)
    return r


def time_step_figures(comm, sizes: dict, r: dict, report) -> None:
    for dim, key in ((2, "dofs_2d"), (3, "dofs_3d")):  # memory-sensitive parts first
        pc = "amg"  # the distributed multigrid: iterations independent of the ranks
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


def table(r: dict) -> str:
    N = r["ranks"]
    lines = [f"solver bench: {r['host']}, {r['cores']} cores, 1 and {N} ranks", "",
             f"{'figure':58s} {'1 rank':>12s} {f'{N} ranks':>12s}  target"]
    if "stream_1" in r:
        s1, sN = r["stream_1"], r["stream_N"]
        lines += [f"{'STREAM-like triad, NumPy (GB/s, all ranks)':58s} {s1['numpy_GBs']:12.2f} {sN['numpy_GBs']:12.2f}",
                  f"{'STREAM-like triad, BLAS daxpy (GB/s, all ranks)':58s} {s1['daxpy_GBs']:12.2f} "
                  f"{sN['daxpy_GBs']:12.2f}"]
    if "linalg_1" in r:
        l1, lN = r["linalg_1"], r["linalg_N"]
        lines += [f"{'CSR SpMV, 2D P1 ' + format(lN['dofs'], ',') + ' DOFs (GB/s)':58s} {l1['spmv_GBs']:12.2f} "
                  f"{lN['spmv_GBs']:12.2f}",
                  f"{'  SpMV bandwidth / NumPy triad':58s} {l1['spmv_GBs'] / s1['numpy_GBs']:12.0%} "
                  f"{lN['spmv_GBs'] / sN['numpy_GBs']:12.0%}  >= 60%",
                  f"{'  SpMV bandwidth / fused (daxpy) triad':58s} {l1['spmv_GBs'] / s1['daxpy_GBs']:12.0%} "
                  f"{lN['spmv_GBs'] / sN['daxpy_GBs']:12.0%}  >= 60%",
                  f"{'distributed SpMV (halo) / local SpMV - 1':58s} {l1['halo_overhead']:12.1%} "
                  f"{lN['halo_overhead']:12.1%}  <= 15%",
                  f"{'one PCG-Jacobi iteration / one SpMV':58s} {l1['pcg_iteration_over_spmv']:12.2f} "
                  f"{lN['pcg_iteration_over_spmv']:12.2f}  <= 2.5"]
    if "assembly" in r:
        lines += assembly_lines(r)
    for key, label in (("steps_2d", "2D P1"), ("steps_2d_jacobi", "2D P1"), ("steps_3d", "3D P1")):
        if key not in r:
            continue
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
    h = r.get("hdf5")
    lines += [] if h is None else [f"{'HDF5 output step, ' + h['driver'] + ' (GB/s)':58s} {'':12s} {h['hdf5_GBs']:12.3f}",
              f"{'plain sequential write of the same bytes (GB/s)':58s} {'':12s} {h['plain_GBs']:12.3f}",
              f"{'  HDF5 / plain':58s} {'':12s} {h['hdf5_fraction_of_plain']:12.0%}  >= 50%"]
    return "\n".join(lines)



def assembly_lines(r: dict) -> list[str]:
    """The assembly figures (s per million cells per rank), DOLFINx's beside them when measured."""
    N = r["ranks"]
    lines = []
    for name, many in r["assembly"].items():
        one = r["assembly_1"][name]
        path = "" if many["compiled"] else ", NumPy path"
        lines.append(f"{'assembly ' + name + ', ' + format(many['cells'], ',') + ' cells' + path:58s}"
                     f" {'':12s} {'':12s}  (s per million cells per rank)")
        for key, label in (("pattern", "pattern (Assembler)"), ("first", "first assembly of M + dt K"),
                           ("reassembly", "reassembly of M + dt K"), ("pattern_K_M", "pattern + K + M")):
            target = {("P1 2D", "pattern_K_M"): "  < 1.5", ("Q1 3D", "pattern_K_M"): "  <= 2"}.get((name, key), "")
            lines.append(f"{'  ' + label:58s} {one['per_million'][key]:12.3f} {many['per_million'][key]:12.3f}"
                         + target)
            for which, ranks in (("1", 1), ("N", N)):
                cmp = r.get("dolfinx", {}).get(f"{name} {which}")
                if cmp and key in cmp["ratio"]:
                    d = cmp["dolfinx"]
                    lo, hi = d["range"][key]
                    lines.append(f"{'    DOLFINx ' + str(ranks) + ' rank(s), N = ' + str(d['N']):58s} "
                                 + (f"{d['per_million'][key]:12.3f} {'':12s}" if which == "1" else
                                    f"{'':12s} {d['per_million'][key]:12.3f}")
                                 + f"  ours/DOLFINx {cmp['ratio'][key]:.2f} <= 1 (DOLFINx {d['runs']} run(s), "
                                 f"{lo:.3f}-{hi:.3f})")
    if r.get("dolfinx"):
        lines.append(f"{'reference problem set-up, jacobi (s): ours, DOLFINx':58s} {'ours':>12s} {'DOLFINx':>12s}")
    for cmp in r.get("dolfinx", {}).values():
        d, mine = cmp["dolfinx"], cmp["ours_setup"]
        label = f"  {cmp['mesh']}, N = {d['N']}, {cmp['ranks']} rank(s)"
        lines.append(f"{label:58s} {mine['setup_s']:12.2f} {d['setup_s']:12.2f}  ours/DOLFINx "
                     f"{cmp['ratio']['setup']:.2f} <= 0.5 (DOLFINx {d['range']['setup'][0]:.2f}-"
                     f"{d['range']['setup'][1]:.2f}: mesh + set-up + matrix + solver set-up)")
    return lines


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m solver bench", description=__doc__.split("\n\n")[0],
                                epilog="Whole processes side by side: bench --solvers (linear solvers, against "
                                       "DOLFINx) and bench --study (study throughput); each has its own --help.")
    p.add_argument("--quick", action="store_true", help=f"small sizes, under two minutes: {QUICK}")
    p.add_argument("--dofs-2d", type=float, help=f"DOFs of the 2D P1 problems (default {FULL['dofs_2d']:g})")
    p.add_argument("--dofs-3d", type=float, help=f"DOFs of the 3D P1 problem (default {FULL['dofs_3d']:g})")
    p.add_argument("--cells", type=float, help=f"cells of the assembly meshes (default {FULL['cells']:g})")
    p.add_argument("--cells-3d", type=float, help="cells of the 3D assembly meshes (default: --cells)")
    p.add_argument("--meshes", help="comma-separated assembly meshes, of P1-2D,Q1-2D,P1-3D,Q1-3D (default: all)")
    p.add_argument("--only", help=f"comma-separated parts to measure, of {','.join(PARTS)} (default: all)")
    p.add_argument("--dolfinx", choices=("auto", "yes", "no"), default="auto",
                   help="run DOLFINx (dolfinx_heat.py with /usr/bin/python3) on the P1 assembly meshes, 1 and N "
                        "ranks, and show its figures beside ours: auto = when it is installed")
    p.add_argument("--dolfinx-script", help="the peer script dolfinx_heat.py (default: shared/peers/ beside the "
                   "project)")
    p.add_argument("--dolfinx-repeat", type=int, default=1, help="DOLFINx runs per mesh and rank count (medians)")
    p.add_argument("--dolfinx-json", action="append", default=[],
                   help="a file of dolfinx_heat.py JSON lines to compare with instead of (or besides) running it")
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
    for key in ("dofs_2d", "dofs_3d", "cells", "cells_3d", "stream", "steps", "repeat"):
        value = getattr(args, key)
        if value is not None:
            sizes[key] = int(value)
    if args.meshes:
        sizes["meshes"] = [m.replace("-", " ") for m in args.meshes.split(",")]
    parts = tuple(PARTS if not args.only else args.only.split(","))
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"bench: unknown parts {sorted(unknown)}; choose among {', '.join(PARTS)}")
    peer = {"runs": dolfinx_json(args.dolfinx_json), "repeat": args.dolfinx_repeat,
            "cache": str(Path(args.json).resolve().parent / "dolfinx_cache")}
    if args.dolfinx != "no" and "assembly" in parts:
        from solver.post.bench_solvers import PEER_SCRIPT

        script = Path(args.dolfinx_script) if args.dolfinx_script else PEER_SCRIPT
        found = comm.bcast(dolfinx_available(script) if comm.rank == 0 else None, root=0)
        if found:
            peer["script"] = str(script)
        elif args.dolfinx == "yes":
            raise SystemExit(f"bench: DOLFINx not found (needs /usr/bin/python3 with dolfinx and {script})")
    path = Path(args.json)

    def report(text):
        if comm.rank == 0:
            print(text, file=sys.stderr, flush=True)

    if comm.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
    scratch = comm.bcast(tempfile.mkdtemp(prefix="bench-", dir=path.parent) if comm.rank == 0 else None)
    try:
        r = measure(comm, sizes, Path(scratch), report, parts, peer)
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
