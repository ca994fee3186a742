"""The linear elements inside the quadratic ones, as the multigrid's first coarse level
(p-multigrid, :mod:`solver.la.amg.fixed`): the vertex nodes numbered contiguously per rank, and
the interpolation of a linear field to every local node of a quadratic mesh.

Each local node (ghosts included: every one is a node of a local cell) takes its row from one of
its cells: the linear shape functions of the cell's corners at the node's reference coordinates
(a vertex: its own corner; an edge midpoint: 1/2 and 1/2; a Q2 face or cell centre: 1/4 or 1/8 of
each corner). The vertices' global ids reach the ghosts through the mesh's halo. Vectorised over
the cells; memory a few arrays of the local nodes.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from solver.mesh.cells import CELLS
from solver.mesh.distributed import DistributedMesh


def linear_coarsening(mesh: DistributedMesh) -> tuple[sp.csr_matrix, int]:
    """(P on the local nodes [owned, ghosts] with the vertices' global ids as columns, the vertices
    this rank owns) of a mesh of quadratic cells (collective)."""
    ref = CELLS[mesh.cell_type]
    corners = ref.n_corners
    cells = mesh.cells
    vertex = np.zeros(mesh.n_local, dtype=bool)
    vertex[cells[:, :corners].ravel()] = True
    owned = np.flatnonzero(vertex[: mesh.n_owned])
    offset = mesh.comm.exscan(len(owned)) if mesh.comm.size > 1 else 0
    ids = np.full(mesh.n_local, -1, dtype=np.int64)
    ids[owned] = (offset or 0) + np.arange(len(owned))
    mesh.halo.update(ids)
    weights = ref.linear.shape(ref.vertices)  # (nodes, corners): the linear field at each node
    nodes, first = np.unique(cells.ravel(), return_index=True)  # every local node, and one cell of it
    cell, position = np.divmod(first, cells.shape[1])
    rows = np.repeat(nodes, corners)
    cols = ids[cells[cell, :corners]].ravel()
    vals = weights[position].ravel()
    keep = vals != 0.0
    n_coarse = int(mesh.comm.allreduce(len(owned)))
    P = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(mesh.n_local, n_coarse))
    return P, len(owned)
