"""A first coarse level given by the discretisation rather than by aggregation: p-multigrid's
step from quadratic (P2/Q2) to linear (P1/Q1) elements on the same mesh, as p-multigrid codes
take it before an algebraic multigrid of the linear operator.

The coarse unknowns are the vertex nodes, owned where the fine mesh owns them and numbered
contiguously per rank. P interpolates a linear field into the quadratic space: a vertex takes
its own value, an edge midpoint the mean of its two vertices, a Q2 face or cell centre the mean
of its corners (the linear shape functions at the node). The discretisation gives P on every
local fine row, ghosts included (:class:`CoarseSpace`); the Galerkin product ``P^T A P`` of the
linear elements' stiffness is then the linear discretisation itself (on straight cells), and
the hierarchy goes on from it by aggregation. P is exact and not smoothed: the fine level's
Chebyshev smoother deals with what the linear space cannot represent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from solver.la.amg.agglomerate import CoarseLayout
from solver.la.amg.smooth import LocalProlongator

__all__ = ["CoarseSpace", "fixed_layout", "fixed_prolongator"]


@dataclass(frozen=True)
class CoarseSpace:
    """A coarse space on this rank: ``P`` (n_local fine rows [owned, ghosts], columns the global
    coarse ids) and the coarse rows this rank owns (``n_owned``, consecutive global ids)."""

    P: sp.csr_matrix
    n_owned: int


def fixed_layout(comm, space: CoarseSpace) -> CoarseLayout:
    """The coarse rows' owners: every rank keeps its own (collective)."""
    counts = np.empty(comm.size, dtype=np.int64)
    comm.Allgather(np.array([space.n_owned], dtype=np.int64), counts)
    starts = np.zeros(comm.size + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    return CoarseLayout(starts=starts, active=comm.size, first=int(starts[comm.rank]), n_owned=space.n_owned,
                        target=comm.rank, rank=comm.rank)


def fixed_prolongator(space: CoarseSpace, n_owned_fine: int) -> LocalProlongator:
    """The prolongator on this rank's owned fine rows, columns numbered by the sorted global
    coarse ids they use (as the smoothed prolongators are)."""
    P = space.P[:n_owned_fine].tocsr()
    columns, local = np.unique(P.indices, return_inverse=True)
    P = sp.csr_matrix((P.data, local.astype(P.indices.dtype), P.indptr), shape=(n_owned_fine, len(columns)))
    return LocalProlongator(P=P, columns=columns, used=np.ones(len(columns), dtype=bool), used_columns=columns)
