"""The Galerkin product ``A_c = P^T A P``: the next level's matrix, distributed as its
coarse rows are (pyamg's ``multilevel`` coarse operator, here with its communication).

* **Ghost rows of P**: A's owned rows reach the ghost columns, so ``A P`` needs P's rows of
  the ghost nodes: their owners send them (row lengths, then flat column and value buffers,
  columns as global coarse ids). ``P_ext``, P on all local fine rows, keeps them; its columns
  are the sorted global coarse ids ``ext_cols`` it uses.
* **Product**: ``A P`` is formed locally, then ``P^T (A P)`` over the owned fine rows. Its
  entries belong to coarse rows owned anywhere: they are sent to the owners of their rows
  (flat buffers) and summed there. A coarse level numbers its columns
  ``[owned coarse..., ghost coarse...]``, ghosts sorted by global id (so grouped by owner),
  and gets its own :class:`HaloExchange` and :class:`DistributedMatrix`.

:class:`GalerkinProduct` keeps what the product needs, so that an update of A's values redoes
only this stage (and the smoothers): P, the aggregates and the transfers stay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from solver.compiled import index_dtype
from solver.la.amg.agglomerate import CoarseLayout
from solver.la.amg.numbering import owner
from solver.la.amg.smooth import LocalProlongator
from solver.la.amg.sparse import local_matrix
from solver.la.matrix import DistributedMatrix
from solver.parallel.exchange import HaloExchange
from solver.parallel.routing import Route

__all__ = ["GalerkinProduct", "exchange_rows"]


def exchange_rows(halo: HaloExchange, comm, indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray):
    """The ghost rows (halo order) of a row-distributed sparse matrix whose owned rows are
    ``(indptr, cols, vals)`` (cols: global ids): row lengths, then flat column and value buffers."""
    pattern = halo.pattern
    rows = halo.send_indices
    dest = np.repeat(pattern.send_ranks.astype(np.int64), pattern.send_counts)
    lengths = (indptr[rows + 1] - indptr[rows]).astype(np.int64)
    ghost_lengths = Route(comm, dest).send(lengths)
    offsets = np.zeros(len(rows), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    entries = np.repeat(indptr[rows].astype(np.int64) - offsets, lengths) + np.arange(int(lengths.sum()))
    route = Route(comm, np.repeat(dest, lengths), items=entries)
    g_indptr = np.zeros(len(ghost_lengths) + 1, dtype=np.int64)
    np.cumsum(ghost_lengths, out=g_indptr[1:])
    return g_indptr, route.send(cols), route.send(vals)


@dataclass
class GalerkinProduct:
    """What ``A_c = P^T A P`` needs, from one level to the next."""

    P_ext: sp.csr_matrix  # P (float64) on the local fine rows [owned, ghosts], columns ext_cols
    ext_cols: np.ndarray  # global coarse ids of P_ext's columns, sorted
    c_starts: np.ndarray  # first global coarse row of every rank, and the total
    n_c_owned: int  # coarse rows this rank owns
    ghosts: np.ndarray | None = None  # A_c's ghost columns (global coarse ids, sorted)

    @classmethod
    def from_prolongator(cls, comm, halo: HaloExchange, prolongator: LocalProlongator,
                         layout: CoarseLayout) -> "GalerkinProduct":
        """P_ext from this rank's rows of P and the ghost rows its neighbours send (the fine
        level's ``halo``)."""
        P, ucols, p_cols = prolongator.P, prolongator.columns, prolongator.used_columns
        P_gcols = ucols[P.indices]
        g_indptr, g_cols, g_vals = exchange_rows(halo, comm, P.indptr, P_gcols, P.data)
        del P_gcols
        ext_cols = np.union1d(p_cols, g_cols)
        to_ext = np.zeros(len(ucols), dtype=np.int64)
        to_ext[prolongator.used] = np.searchsorted(ext_cols, p_cols)
        n_local = P.shape[0] + len(g_indptr) - 1  # owned rows, then the ghost rows received
        ie = index_dtype(len(P.data) + len(g_vals), len(ext_cols), n_local)
        ext_indptr = np.concatenate([P.indptr, P.indptr[-1] + g_indptr[1:]]).astype(ie)
        ext_indices = np.concatenate([to_ext[P.indices], np.searchsorted(ext_cols, g_cols)]).astype(ie)
        P_ext = sp.csr_matrix((np.concatenate([P.data, g_vals]), ext_indices, ext_indptr),
                              shape=(n_local, len(ext_cols)))
        return cls(P_ext=P_ext, ext_cols=ext_cols, c_starts=layout.starts, n_c_owned=layout.n_owned)

    def coarse_matrix(self, comm, A: DistributedMatrix, ghosts: np.ndarray | None = None, A_loc=None):
        """Owned rows of ``P^T A P`` on the next level (columns [owned, ghosts]) and the ghost
        columns: local ``P^T (A P)`` with the ghost rows of P, entries sent to the owners of
        their rows. With ``ghosts`` given (update), the coarse ghost columns are those; returns
        None for the matrix if an entry falls outside them. ``A_loc``: ``local_matrix(A)``, when
        the caller has it."""
        rank = comm.rank
        P_ext = self.P_ext
        AP = (local_matrix(A) if A_loc is None else A_loc) @ P_ext
        PtAP = (P_ext[: A.n_owned].T @ AP).tocoo()  # rows and columns: the columns of P_ext
        del AP
        rows = self.ext_cols[PtAP.row]
        cols = self.ext_cols[PtAP.col]
        c_starts, n_c = self.c_starts, self.n_c_owned
        route = Route(comm, owner(c_starts, rows))
        rows, cols, vals = route.send(rows), route.send(cols), route.send(PtAP.data)
        lo = int(c_starts[rank])
        own = (cols >= lo) & (cols < lo + n_c)
        if ghosts is None:
            ghosts = np.unique(cols[~own])
        outside = cols[~own]
        pos = np.searchsorted(ghosts, outside)
        found = pos < len(ghosts)
        found[found] = ghosts[pos[found]] == outside[found]
        ok = np.array([int(found.all())])
        comm.Allreduce(MPI.IN_PLACE, ok, op=MPI.MIN)
        if not ok[0]:
            return None, ghosts
        local_cols = np.empty(len(cols), dtype=np.int64)
        local_cols[own] = cols[own] - lo
        local_cols[~own] = n_c + pos
        A_c = sp.csr_matrix((vals, (rows - lo, local_cols)), shape=(n_c, n_c + len(ghosts)))
        A_c.sum_duplicates()
        return A_c, ghosts

    def coarse_numbering(self, comm) -> tuple[HaloExchange, np.ndarray]:
        """The next level's halo and the global ids of its local columns ``[owned..., ghosts...]``
        (``ghosts`` set)."""
        lo = int(self.c_starts[comm.rank])
        own = np.arange(lo, lo + self.n_c_owned, dtype=np.int64)
        halo = HaloExchange(comm, self.n_c_owned, own, owner(self.c_starts, self.ghosts), self.ghosts)
        return halo, np.concatenate([own, self.ghosts])
