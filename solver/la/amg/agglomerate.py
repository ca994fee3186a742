"""Agglomeration: which ranks own the next level's rows.

Each rank's aggregates become consecutive coarse rows. While a coarse level averages at least
``rows_per_rank`` rows per active rank, every rank keeps its own aggregates; below that, the
rows move onto ``p_next = ceil(n / rows_per_rank)`` ranks: rank ``r`` hands its aggregates to
rank ``r * p_next // p``, and ranks left without rows idle on that level (they still call the
neighbour collectives, with nothing to send). Coarse rows stay numbered in rank order, so a
coarse row's owner is found from the first coarse row of every rank (``starts``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CoarseLayout", "coarse_layout"]


@dataclass(frozen=True)
class CoarseLayout:
    """The next level's rows as this rank sees them."""

    starts: np.ndarray  # first global coarse row of every rank, and the total (size + 1)
    active: int  # ranks that own coarse rows
    first: int  # global coarse id of this rank's first aggregate
    n_owned: int  # coarse rows this rank owns
    target: int  # the rank that owns this rank's aggregates
    rank: int  # this rank

    @property
    def owned_range(self) -> tuple[int, int]:
        """Global ids ``[lo, hi)`` of the coarse rows this rank owns."""
        return int(self.starts[self.rank]), int(self.starts[self.rank + 1])


def coarse_layout(comm, counts: np.ndarray, active: int, rows_per_rank: int) -> CoarseLayout:
    """The coarse rows' owners, from every rank's number of aggregates (``counts``) and the
    ranks ``active`` on the fine level."""
    rank = comm.rank
    n_c = int(counts.sum())
    p = active
    p_next = p if n_c >= rows_per_rank * p else max(1, min(p, math.ceil(n_c / rows_per_rank)))
    target = (np.arange(comm.size) * p_next) // p
    target[p:] = comm.size  # inactive ranks own nothing (and have no aggregates)
    c_counts = np.bincount(target[target < comm.size], weights=counts[target < comm.size],
                           minlength=comm.size).astype(np.int64)
    c_starts = np.zeros(comm.size + 1, dtype=np.int64)
    np.cumsum(c_counts, out=c_starts[1:])
    return CoarseLayout(starts=c_starts, active=p_next, first=int(counts[:rank].sum()),
                        n_owned=int(c_counts[rank]), target=int(target[rank]) if rank < p else rank, rank=rank)
