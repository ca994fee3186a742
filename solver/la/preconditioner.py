"""What a preconditioner offers the solvers (:class:`Preconditioner`), and the records of what it
reports of itself: the multigrid's hierarchy and communication (:class:`MultigridStats`), with the
set-ups and updates of the run around it (:class:`PreconditionerReport`).

Every preconditioner is set up from a :class:`~solver.la.matrix.DistributedMatrix` when it is
made (:func:`solver.la.preconditioners.make_preconditioner`); ``apply`` (also its ``__call__``)
gives ``z = M^-1 r`` on the owned rows; one that ``updatable`` takes a new matrix of the same
sparsity with ``update`` (multigrid: new Galerkin products on its aggregates), cheaper than a new
set-up; ``stats`` says what it is, collectively (None where there is nothing to say).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class LevelStats:
    """One multigrid level: its global size, its smoother, and what each rank sends per V-cycle."""

    rows: int
    nnz: int
    active_ranks: int
    chebyshev_degree: int
    lam_max: float
    messages_per_rank: tuple[int, ...]
    bytes_per_rank: tuple[int, ...]


@dataclass(frozen=True)
class MultigridStats:
    """The multigrid hierarchy: levels, complexities, precision and set-up times."""

    levels: int
    rows: tuple[int, ...]
    nnz: tuple[int, ...]
    precision: str
    operator_complexity: float
    grid_complexity: float
    setup_time: float  # the slowest rank's
    setup_time_mean: float
    update_time: float | None  # of the last update (None: never updated)
    per_level: tuple[LevelStats, ...]


@dataclass(frozen=True)
class PreconditionerReport:
    """What a run reports of its preconditioner: its statistics, and how often it was set up and
    updated for a new matrix."""

    stats: MultigridStats
    rebuilds: int
    updates: int

    def as_dict(self) -> dict:
        """Plain data (JSON: the results file's ``preconditioner_stats``)."""
        return _plain(asdict(self.stats)) | {"rebuilds": self.rebuilds, "updates": self.updates}


def _plain(value):
    """Tuples as lists (JSON arrays), recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class Preconditioner(Protocol):
    """A preconditioner of CG (symmetric positive definite) or GMRES."""

    name: str
    updatable: bool  # True when update() takes a new matrix of the same sparsity

    def apply(self, r: np.ndarray) -> np.ndarray:
        """``z = M^-1 r`` on the owned rows."""

    def __call__(self, r: np.ndarray) -> np.ndarray:
        """The same as :meth:`apply`."""

    def update(self, A) -> None:
        """Take the new values of the matrix (same sparsity and halo)."""

    def stats(self) -> MultigridStats | None:
        """What it reports of itself (collective), or None."""
