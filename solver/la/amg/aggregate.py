"""Aggregation: each rank groups its owned rows into aggregates, the rows of the next level
(pyamg's ``aggregation.aggregate`` stage).

Only the owned-owned block takes part (no aggregate crosses a rank boundary, so no
communication): its strong couplings (:mod:`~solver.la.amg.strength`) go to pyamg's serial
standard aggregation kernel, a greedy MIS-2-like pass. Rows without strong neighbours
(Dirichlet rows: identity-like, decoupled) stay out of every aggregate; their rows of P are
zero and the smoother, exact on them, deals with them (as PETSc GAMG drops singletons).
"""

from __future__ import annotations

import numpy as np

from solver.la.amg.strength import strong_connections
from solver.la.matrix import DistributedMatrix

__all__ = ["aggregate"]


def aggregate(A: DistributedMatrix, theta: float, measure: str) -> tuple[np.ndarray, int]:
    """Aggregate of each owned row (-1: none) from the strong couplings of the owned-owned
    block (pyamg's standard aggregation kernel), and their number."""
    from pyamg import amg_core

    n = A.n_owned
    if n == 0:
        return np.empty(0, dtype=np.int64), 0
    Sp, Sj = strong_connections(A.diag_block, theta, measure)
    agg = np.empty(n, dtype=np.int32)
    cpts = np.empty(n, dtype=np.int32)
    n_agg = amg_core.standard_aggregation(n, Sp, Sj, agg, cpts)
    return agg.astype(np.int64), int(n_agg)
