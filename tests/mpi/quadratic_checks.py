"""Quadratic meshes on N ranks: structured P2/Q2 meshes (every cell type) and a Gmsh mesh given
quadratic cells (P1 file, midpoints added on rank 0) or read with them (second-order file).

Usage: mpirun -n N python quadratic_checks.py [gmsh_p1.msh gmsh_p2.msh]
For each mesh: every canonical node owned by exactly one rank, the ghosts' coordinates and ids
those of their owners (a halo update changes nothing), each node's coordinates those of the
one-rank mesh (so the numbering does not depend on the ranks), and the p-multigrid's coarse
space: one owner per vertex, P reproduces constants at every local node, and linear fields on
straight cells (curved ones: linear in the reference coordinates). Prints JSON on rank 0.
"""

import sys

import numpy as np
from _guard import run
from mpi4py import MPI

from solver.fem.coarsening import linear_coarsening
from solver.mesh.cells import CELLS
from solver.mesh.files import distributed_mesh
from solver.mesh.structured import structured_mesh

STRUCTURED = {"triangle": (5, 4), "quadrilateral": (4, 5), "tetrahedron": (3, 2, 3), "hexahedron": (2, 3, 2)}


def canonical(comm, mesh) -> np.ndarray | None:
    """The coordinates of every node by canonical id, gathered on rank 0 from the owners (each id
    once: counted)."""
    ids = comm.gather(mesh.node_ids[: mesh.n_owned], root=0)
    xyz = comm.gather(mesh.coords[: mesh.n_owned], root=0)
    if comm.rank:
        return None
    ids, xyz = np.concatenate(ids), np.concatenate(xyz)
    assert len(ids) == mesh.n_global_nodes and len(np.unique(ids)) == len(ids), "a node owned twice or never"
    out = np.empty((len(ids), xyz.shape[1]))
    out[ids] = xyz
    return out


def check(comm, build) -> dict:
    mesh = build(comm)
    assert CELLS[mesh.cell_type].degree == 2
    for values in (mesh.coords.copy(), mesh.node_ids.astype(float)):
        again = values.copy()
        mesh.halo.update(again)
        assert np.array_equal(again, values), "a ghost differs from its owner"
    here = canonical(comm, mesh)
    alone = canonical(MPI.COMM_SELF, build(MPI.COMM_SELF)) if comm.rank == 0 else None
    same = bool(comm.bcast(np.array_equal(here, alone) if comm.rank == 0 else None, root=0))
    P, n_owned = linear_coarsening(mesh)
    owned = comm.allreduce(n_owned)
    linear = mesh.coords @ np.array([1.0, -2.0, 0.5][: mesh.dim]) + 3.0  # a linear field at every node
    ref = CELLS[mesh.cell_type]
    vertex = np.zeros(mesh.n_local, dtype=bool)
    vertex[mesh.cells[:, : ref.n_corners].ravel()] = True
    coarse = np.zeros(P.shape[1])
    rows = P.tocoo()
    at_vertex = rows.data == 1.0
    coarse[rows.col[at_vertex]] = linear[rows.row[at_vertex]]
    comm.Allreduce(MPI.IN_PLACE, coarse, op=MPI.MAX)  # (the values are positive: 3 + small)
    reproduced = float(np.abs(P @ coarse - linear).max())
    constant = float(np.abs(np.asarray(P.sum(axis=1)).ravel() - 1.0).max())
    return {"nodes": mesh.n_global_nodes, "cell": mesh.cell_type, "same_as_one_rank": same,
            "coarse_owned": owned, "vertices": int(comm.allreduce(int(vertex[: mesh.n_owned].sum()))),
            "linear_error": comm.allreduce(reproduced, op=MPI.MAX), "constant_error": comm.allreduce(constant, op=MPI.MAX),
            "affine": mesh.affine}


def main(comm):
    out = {}
    for cell, n in STRUCTURED.items():
        out[cell] = check(comm, lambda c, cell=cell, n=n: structured_mesh(c, cell, n, [1.0, 2.0, 0.5][: len(n)],
                                                                         [0.0, -1.0, 0.5][: len(n)], degree=2))
    for path in sys.argv[1:]:
        out[path] = check(comm, lambda c, path=path: distributed_mesh(c, path, "rcb", degree=2))
    return {"ranks": comm.size, "meshes": out}


run(main)
