"""The machine figures of ``bench``, each measured beside its reference in the same run: a
STREAM-like triad (the memory bandwidth), the sparse matrix-vector product against it, the
distributed product against the local one, a PCG iteration against a product, the time loop of
the bench plate with its peak memory per DOF, and an output step through parallel HDF5 against a
plain write of the same bytes. The assembly figures: :mod:`solver.bench.assembly`."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from solver.bench.cases import simulation
from solver.bench.memory import reset_peak, rss
from solver.bench.timing import best_time


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
    from solver.io.results_writer import ResultsWriter

    sim = simulation(comm, 2, dofs, 1, "jacobi")
    n_bytes = 8 * sim.mesh.n_global_nodes
    results = ResultsWriter(directory, f"bench_{comm.size}", sim.mesh, driver="auto")
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

