"""Connected components of a distributed mesh (cells that share a node are connected), found
without gathering the mesh: each rank labels the components of its own cells (ghost cells
included) at once, then labels spread over the halo until no rank changes one.

Every local node gets its component's label: the smallest canonical id of the component's nodes
(the same on every rank, for any number of ranks). A rank holds every cell around the nodes it
owns, so a cell linking two nodes is on both owners' ranks, and each round carries a label one
rank further along a path: the rounds are as many as the ranks a component crosses, each an
exchange with the neighbours and one ``Allreduce`` of a flag.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI
from scipy.sparse.csgraph import connected_components


def local_components(n_nodes: int, cells: np.ndarray) -> np.ndarray:
    """Component of each of ``n_nodes`` nodes in the graph of ``cells`` (node rows) alone."""
    n_cells, width = cells.shape
    incidence = sp.csr_matrix((np.ones(cells.size, dtype=np.int8), cells.ravel().astype(np.int64),
                               np.arange(0, cells.size + 1, width)), shape=(n_cells, n_nodes))
    graph = sp.bmat([[None, incidence], [incidence.T, None]], format="csr")  # cells, then nodes
    return connected_components(graph, directed=False)[1][n_cells:]


def component_labels(mesh, marked: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For every local node: the label of its component (the smallest canonical id of its nodes)
    and whether any node of the component is ``marked`` (a local mask, consistent on ghosts);
    collective."""
    local = local_components(mesh.n_local, mesh.cells)  # 0, 1, ...: every component has nodes
    order = np.argsort(local, kind="stable")
    starts = np.searchsorted(local[order], np.arange(local.max() + 1 if len(local) else 0))
    state = np.empty((mesh.n_local, 2), dtype=np.int64)  # label, -1 if marked (both spread as minima)
    state[:, 0] = mesh.node_ids
    state[:, 1] = 0 if marked is None else -np.asarray(marked, dtype=np.int64)
    while True:
        new = np.minimum.reduceat(state[order], starts, axis=0)[local] if len(local) else state.copy()
        changed = np.array([np.any(new[: mesh.n_owned] != state[: mesh.n_owned])], dtype=np.int8)
        state = new
        mesh.halo.update(state)
        mesh.comm.Allreduce(MPI.IN_PLACE, changed, op=MPI.MAX)
        if not changed[0]:
            return state[:, 0], state[:, 1] < 0
