"""The assembly figures of ``bench``: per structured mesh (P1, Q1 and P2, 2D and 3D) the sparsity
pattern, the first assembly of the system matrix M + dt K and its reassembly, in seconds per
million cells per rank; the set-up of the reference problem; and both beside DOLFINx's figures of
the same meshes (its runs: :mod:`solver.bench.peers`)."""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from solver.bench.cases import DT, REFERENCE
from solver.bench.peers import dolfinx_figures
from solver.bench.timing import alone, best_time


# (name, cell, dimension, cells per square or cube, degree of the elements)
ASSEMBLY_MESHES = (("P1 2D", "triangle", 2, 2, 1), ("Q1 2D", "quadrilateral", 2, 1, 1),
                   ("P1 3D", "tetrahedron", 3, 6, 1), ("Q1 3D", "hexahedron", 3, 1, 1),
                   ("P2 2D", "triangle", 2, 2, 2), ("P2 3D", "tetrahedron", 3, 6, 2))
DOLFINX_MESHES = tuple((name, dim, degree) for name, cell, dim, _, degree in ASSEMBLY_MESHES if cell in
                       ("triangle", "tetrahedron"))  # DOLFINx's runs: its unit square and cube of simplices


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
    for name, cell, dim, per_cube, degree in ASSEMBLY_MESHES:
        if meshes and name not in meshes:
            continue
        n = assembly_side(cells if dim == 2 else cells_3d, per_cube, dim)
        mesh = create_mesh(comm, StructuredMeshSpec("rectangle" if dim == 2 else "box", cell, (n,) * dim,
                                                    (1.0,) * dim, (0.0,) * dim), degree)
        k = np.ones((len(mesh.cells), dim))
        rhoc = np.ones(len(mesh.cells))
        a = Assembler(mesh)
        if a.compiled:  # compiled or loaded now, not in the first assembly
            from solver.fem.kernels import warm_up

            warm_up(mesh.cell_type, mesh.cells.dtype, a.indices.dtype, mesh.affine)
        t_pattern = best_time(comm, lambda: Assembler(mesh), repeat)
        first = {}
        t_first = best_time(comm, lambda: first.update(A=a.bilinear(mass=rhoc, conductivity=DT * k)), 1)
        data = first["A"].data
        t_re = best_time(comm, lambda: a.bilinear(mass=rhoc, conductivity=DT * k, out=data), repeat)
        t_K = best_time(comm, lambda: a.stiffness(k), repeat)
        t_M = best_time(comm, lambda: a.mass(rhoc), repeat)
        local = comm.allreduce(len(mesh.owned_cells), op=MPI.MAX) / 1e6
        t_old = t_pattern + t_K + t_M
        out[name] = {"n": n, "degree": degree, "cells": mesh.n_global_cells, "dofs": mesh.n_global_nodes,
                     "nnz": comm.allreduce(a.nnz), "compiled": a.compiled,
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

    text = REFERENCE[dim].read_text()
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



def compare_with_dolfinx(comm, r: dict, runs: list[dict], report) -> dict:
    """Our P1 and P2 assembly beside DOLFINx's, and the reference set-up (P1), per (dim, degree,
    ranks) of its runs."""
    out = {}
    for name, dim, degree in DOLFINX_MESHES:
        for ranks, label in ((1, "1"), (comm.size, "N")):
            mine = [x for x in runs if x["dim"] == dim and x.get("degree", 1) == degree and x["ranks"] == ranks]
            if not mine or name not in r["assembly"]:
                continue
            theirs = dolfinx_figures(mine)
            ours_asm = r["assembly_1" if label == "1" else "assembly"][name]
            ratio = {k: ours_asm["per_million"][k] / theirs["per_million"][k] for k in theirs["per_million"]}
            setup = None
            if degree == 1:
                setup = alone(comm, lambda c: reference_setup(c, dim, theirs["N"])) if label == "1" else \
                    reference_setup(comm, dim, theirs["N"])
                ratio["setup"] = setup["setup_s"] / theirs["setup_s"]
            out[f"{name} {label}"] = {"mesh": name, "ranks": ranks, "dolfinx": theirs, "ours_setup": setup,
                                      "ratio": ratio}
            report(f"  DOLFINx {name} on {ranks} rank(s) compared")
    return out

