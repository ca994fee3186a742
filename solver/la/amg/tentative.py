"""The tentative prolongator T and the next level's near-null space (pyamg's
``aggregation.tentative`` stage, ``fit_candidates`` with one candidate).

The candidate ``B`` is the constant on the fine level, then the coarse candidates ``B_c`` of
each level. On an aggregate, T's column is B restricted to it and normalised:
``T_i = B_i / ||B on the aggregate||``; the norm is the coarse candidate of that aggregate, so
``T B_c = B``. T has at most one entry per fine row (none in rows outside every aggregate). Its
ghost rows come through the level's halo (a ghost node's aggregate is a global coarse id owned
by its owner's coarse rank), so that P can be smoothed locally; the coarse candidates go to
the rank that owns the coarse rows (:mod:`~solver.la.amg.agglomerate`), in coarse id order.
"""

from __future__ import annotations

import numpy as np

from solver.la.amg.agglomerate import CoarseLayout
from solver.la.amg.level import Level
from solver.parallel.routing import Route

__all__ = ["tentative_prolongator"]


def tentative_prolongator(level: Level, agg: np.ndarray, n_agg: int, B: np.ndarray,
                          layout: CoarseLayout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """T on the level's local rows, as the global coarse column of each row (-1: none) and its
    value, and the coarse candidates of the rows this rank will own (collective)."""
    comm, n = level.halo.pattern.comm, level.n
    aggregated = agg >= 0
    norms = np.sqrt(np.bincount(agg[aggregated], weights=B[aggregated] ** 2, minlength=n_agg))
    t_col = np.full(level.n_local, -1, dtype=np.int64)
    t_val = np.zeros(level.n_local)
    t_col[:n][aggregated] = layout.first + agg[aggregated]
    t_val[:n][aggregated] = B[aggregated] / norms[agg[aggregated]]
    level.halo.update(t_col)
    level.halo.update(t_val)
    B_c = Route(comm, np.full(n_agg, layout.target, dtype=np.int64)).send(norms)
    return t_col, t_val, B_c
