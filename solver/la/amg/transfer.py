"""The transfer between a level and the next: prolongation ``x += P x_c`` and restriction
``r_c = P^T r``, each one neighbour exchange.

P's owned fine rows live on this rank; its columns are coarse rows owned here or elsewhere.
The coarse vectors this rank's rows of P see are laid out ``[coarse rows this rank owns...,
other coarse columns of its P rows, grouped by owner]``; a :class:`HaloExchange` updates the
latter from their owners (prolongation) and, reversed, returns their sums to them
(restriction: several neighbours may send to one owned entry, summed by a 0/1 "gather"
matrix). The products go through SciPy's ``csr_matvec`` into preallocated buffers, in the
hierarchy's working precision (P and ``R = P^T`` copied to it).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from solver.la.amg.agglomerate import CoarseLayout
from solver.la.amg.numbering import owner
from solver.la.amg.smooth import LocalProlongator
from solver.la.csr import axpy_matvec, canonical_csr
from solver.parallel.exchange import HaloExchange

__all__ = ["Transfer", "build_transfer"]


class Transfer:
    """P between a level (owned fine rows) and the next (coarse rows owned as that level says),
    with ``gids`` the global coarse ids of the layout above and ``P_loc``'s columns numbered
    in it. The V-cycle arrays (P, R = P^T, buffers) are of the hierarchy's working precision."""

    def __init__(self, comm, P_loc: sp.csr_matrix, gids: np.ndarray, n_c_owned: int, coarse_starts, dtype):
        self.n_c = n_c_owned
        self.gids = gids
        ghosts = gids[n_c_owned:]
        self.halo = HaloExchange(comm, n_c_owned, gids[:n_c_owned], owner(coarse_starts, ghosts), ghosts)
        self.P = canonical_csr(P_loc, dtype)
        self.R = canonical_csr(P_loc.T, dtype)
        self.reverse = self.halo.pattern.reversed()
        # restriction: sum what arrives into owned entries (several neighbours may send to one)
        m = len(self.halo.send_indices)
        self.gather = canonical_csr(sp.csr_matrix((np.ones(m), (self.halo.send_indices, np.arange(m))),
                                                  shape=(n_c_owned, m)), dtype)
        self.x = np.zeros(len(gids), dtype=dtype)  # prolongation buffer
        self.y = np.zeros(len(gids), dtype=dtype)  # restriction buffer
        self.recv = np.zeros(m, dtype=dtype)

    def restrict(self, r: np.ndarray, out: np.ndarray) -> None:
        """``out = P^T r`` (owned coarse rows)."""
        y = self.y
        y.fill(0.0)
        axpy_matvec(self.R, r, y)
        self.reverse.exchange(y[self.n_c:], self.recv)
        np.copyto(out, y[: self.n_c])
        axpy_matvec(self.gather, self.recv, out)

    def prolong_add(self, xc: np.ndarray, x: np.ndarray) -> None:
        """``x += P xc`` (xc: owned coarse values)."""
        np.copyto(self.x[: self.n_c], xc)
        self.halo.update(self.x)
        axpy_matvec(self.P, self.x, x)

    def messages(self) -> tuple[int, int]:
        """(messages, bytes) this rank sends per V-cycle: one restriction + one prolongation."""
        p, q = self.halo.pattern, self.reverse
        size = self.x.itemsize
        return len(p.send_ranks) + len(q.send_ranks), size * (p.n_send + q.n_send)


def build_transfer(comm, prolongator: LocalProlongator, layout: CoarseLayout, dtype) -> Transfer:
    """The transfer of a smoothed prolongator: its columns renumbered into the transfer's
    layout (owned coarse rows, then the other columns of P grouped by owner = gid order)."""
    P, used, p_cols = prolongator.P, prolongator.used, prolongator.used_columns
    own_lo, own_hi = layout.owned_range
    mine = (p_cols >= own_lo) & (p_cols < own_hi)
    other = p_cols[~mine]
    xfer_gids = np.concatenate([np.arange(own_lo, own_hi, dtype=np.int64), other])
    to_xfer = np.zeros(len(prolongator.columns), dtype=np.int64)
    to_xfer[used] = np.where(mine, p_cols - own_lo, layout.n_owned + np.searchsorted(other, p_cols))
    P_loc = sp.csr_matrix((P.data, to_xfer[P.indices], P.indptr), shape=(P.shape[0], len(xfer_gids)))
    return Transfer(comm, P_loc, xfer_gids, layout.n_owned, layout.starts, dtype)
