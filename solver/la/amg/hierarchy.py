"""The multigrid hierarchy (pyamg's ``multilevel`` stage): its set-up level by level, the
update of its matrices, the V-cycle and the statistics.

* **Set-up**: from the fine level down, each level gets its smoother, aggregates its owned
  rows, and the next level's rows are laid out on ranks (agglomeration), the prolongator is
  built (tentative, then smoothed), and the next matrix is the Galerkin product. Coarsening
  stops at ``max_coarse`` rows (the coarsest level is then factorised), at ``max_levels``, or
  when aggregation no longer reduces the rows by 10% (no strong couplings left, e.g. a
  mass-dominated matrix: that level is only smoothed).
* **Update** (new values, same pattern): the aggregates, prolongators and transfers stay;
  the Galerkin products, the smoothers' diagonals and eigenvalue estimates and the coarsest
  factorisation are redone.
* **V-cycle**: pre-smoothing from zero, restriction of its residual, the next level's cycle,
  prolongation of its correction, post-smoothing; on the coarsest level the exact solve (or
  smoothing alone). In single precision the input is scaled by a power of two (exact, the
  same on every rank) so that its largest entry is about 1, far from float32's underflow and
  overflow; CG and its vectors stay in double.

Set-up uses O(P) collectives; the V-cycle only neighbour exchanges (and one ``Allgatherv``
among the coarsest level's ranks when there are several).
"""

from __future__ import annotations

import math
import time

import numpy as np
from mpi4py import MPI

from solver.la.amg.agglomerate import coarse_layout
from solver.la.amg.aggregate import aggregate
from solver.la.amg.coarse import CoarseSolve
from solver.la.amg.fixed import CoarseSpace, fixed_layout, fixed_prolongator
from solver.la.amg.galerkin import GalerkinProduct
from solver.la.amg.level import Level
from solver.la.amg.numbering import allsum, global_ids
from solver.la.amg.options import AMGOptions
from solver.la.amg.smooth import smoothed_prolongator
from solver.la.amg.sparse import local_matrix
from solver.la.amg.tentative import tentative_prolongator
from solver.la.amg.transfer import build_transfer
from solver.la.matrix import DistributedMatrix
from solver.la.preconditioner import LevelStats, MultigridStats

__all__ = ["AMG"]


class AMG:
    """Smoothed-aggregation AMG V-cycle for a :class:`DistributedMatrix` (SPD), ``z = amg(r)``,
    tuned by ``options`` (:class:`~solver.la.amg.options.AMGOptions`, its defaults when None).
    ``levels``: the :class:`~solver.la.amg.level.Level` list, fine to coarse; each but the
    coarsest holds its ``transfer`` and ``galerkin`` (P in double) to the next."""

    name = "amg"
    updatable = True  # update(): new Galerkin products on the same aggregates

    def __init__(self, A: DistributedMatrix, options: AMGOptions | None = None,
                 coarse_space: CoarseSpace | None = None):
        """``coarse_space``: a first coarse level given by the discretisation (p-multigrid,
        :mod:`~solver.la.amg.fixed`), aggregation below it."""
        t0 = time.perf_counter()
        try:
            import pyamg.amg_core  # noqa: F401  (the serial aggregation kernel)
        except ImportError:
            raise ImportError("solver.preconditioner = \"amg\" needs pyamg: pip install pyamg "
                              "(a dependency of the solver)") from None
        self.comm = A.halo.pattern.comm
        self.options = AMGOptions() if options is None else options
        self.precision = self.options.working_precision(A, self.comm)
        self.dtype = np.dtype(np.float64 if self.precision == "double" else np.float32)
        self._build(A, coarse_space)
        self.setup_time = time.perf_counter() - t0
        self.update_time = None

    # ------------------------------------------------------------------ set-up
    def _build(self, A: DistributedMatrix, coarse_space: CoarseSpace | None) -> None:
        comm, options = self.comm, self.options
        gids, starts = global_ids(A, comm)
        level = Level(A, gids, starts, comm.size, self.dtype)
        self.levels = [level]
        B = np.ones(A.n_owned)  # near-null space candidate on the owned rows
        given = 0  # levels the discretisation gives (their strength thresholds are not used)
        if coarse_space is not None:  # p-multigrid: the linear elements first (P reproduces constants)
            self._smoother(0)
            level = self._coarsen_fixed(level, coarse_space)
            starts = level.starts
            self.levels.append(level)
            B = np.ones(level.n)
            given = 1
        while True:
            n_global = int(starts[-1])
            if n_global <= options.max_coarse or len(self.levels) == options.max_levels:
                break
            self._smoother(len(self.levels) - 1)
            agg, n_agg = aggregate(level.A, options.level_theta(len(self.levels) - 1 - given), options.strength)
            counts = np.empty(comm.size, dtype=np.int64)
            comm.Allgather(np.array([n_agg], dtype=np.int64), counts)
            n_c = int(counts.sum())
            if n_c == 0 or n_c > 0.9 * n_global:  # no coarsening possible: stop here
                break
            level, B = self._coarsen(level, agg, n_agg, counts, B)
            starts = level.starts
            self.levels.append(level)
        # the coarsest level is factorised, unless coarsening stopped early on a big level (no
        # strong couplings left, e.g. a mass-dominated matrix): then it is only smoothed
        self.coarse = CoarseSolve(comm, self.levels[-1]) if int(self.levels[-1].starts[-1]) <= \
            4 * options.max_coarse else None
        if self.coarse is None:
            self._smoother(len(self.levels) - 1)

    def _smoother(self, k: int) -> None:
        options = self.options
        self.levels[k].set_smoother(self.comm, options.level_degree(k), options.lower, options.upper,
                                    options.lanczos_steps)

    def _coarsen(self, level: Level, agg: np.ndarray, n_agg: int, counts: np.ndarray, B: np.ndarray):
        """The next level from this level's aggregates (``counts``: every rank's number), and
        the next level's near-null space candidate."""
        comm = self.comm
        layout = coarse_layout(comm, counts, level.active, self.options.rows_per_rank)
        t_col, t_val, B_c = tentative_prolongator(level, agg, n_agg, B, layout)
        A_loc = local_matrix(level.A)
        prolongator = smoothed_prolongator(A_loc, level.dinv, level.lam, t_col, t_val)
        del t_col, t_val
        level.transfer = build_transfer(comm, prolongator, layout, self.dtype)
        galerkin = GalerkinProduct.from_prolongator(comm, level.halo, prolongator, layout)
        del prolongator
        A_c, galerkin.ghosts = galerkin.coarse_matrix(comm, level.A, A_loc=A_loc)
        del A_loc
        level.galerkin = galerkin
        halo_c, coarse_gids = galerkin.coarse_numbering(comm)
        return Level(DistributedMatrix(A_c, halo_c), coarse_gids, layout.starts, layout.active, self.dtype), B_c

    def _coarsen_fixed(self, level: Level, space: CoarseSpace) -> Level:
        """The next level of a coarse space the discretisation gives (P not smoothed)."""
        comm = self.comm
        layout = fixed_layout(comm, space)
        prolongator = fixed_prolongator(space, level.n)
        level.transfer = build_transfer(comm, prolongator, layout, self.dtype)
        galerkin = GalerkinProduct.from_prolongator(comm, level.halo, prolongator, layout)
        A_c, galerkin.ghosts = galerkin.coarse_matrix(comm, level.A)
        level.galerkin = galerkin
        halo_c, coarse_gids = galerkin.coarse_numbering(comm)
        return Level(DistributedMatrix(A_c, halo_c), coarse_gids, layout.starts, layout.active, self.dtype)

    # ------------------------------------------------------------------ update
    def update(self, A: DistributedMatrix) -> None:
        """New values of the fine matrix (same sparsity pattern and halo): keep the aggregates
        and prolongators, redo the Galerkin products, the smoothers' diagonals and eigenvalue
        estimates, and the coarsest factorisation."""
        t0 = time.perf_counter()
        comm = self.comm
        self.levels[0].set_matrix(A)
        for i, (lvl, nxt) in enumerate(zip(self.levels[:-1], self.levels[1:])):
            g = lvl.galerkin
            self._smoother(i)
            A_c, ghosts = g.coarse_matrix(comm, lvl.A, g.ghosts)
            if A_c is None:  # the coarse pattern grew (an exact cancellation before): new halo
                A_c, g.ghosts = g.coarse_matrix(comm, lvl.A)
                halo, gids = g.coarse_numbering(comm)
                nxt.set_columns(gids)
            else:
                halo = nxt.halo
            nxt.set_matrix(DistributedMatrix(A_c, halo))
        if self.coarse is not None:
            self.coarse.factor(self.levels[-1].A)
        else:
            self._smoother(len(self.levels) - 1)
        self.update_time = time.perf_counter() - t0

    # ------------------------------------------------------------------ the V-cycle
    def apply(self, r: np.ndarray) -> np.ndarray:
        """One V-cycle: ``z = M^-1 r`` on the owned rows."""
        return self(r)

    def __call__(self, r: np.ndarray) -> np.ndarray:
        lvl = self.levels[0]
        if self.dtype == r.dtype:
            self._cycle(0, r, lvl.x)
            return lvl.x[: lvl.n].copy()
        # single precision: scale r by a power of two (exact, the same on every rank) so that
        # its largest entry is about 1, far from float32's underflow and overflow
        m = np.array([max(r.max(initial=0.0), -r.min(initial=0.0))])
        self.comm.Allreduce(MPI.IN_PLACE, m, op=MPI.MAX)
        z = np.empty(lvl.n, dtype=r.dtype)
        if m[0] == 0.0 or not np.isfinite(m[0]):
            z.fill(0.0 if m[0] == 0.0 else np.nan)
            return z
        # (the scaling back in float64: a float32 product underflowed to 0 for a residual below
        # 1e-38, a field decayed toward 0, and CG took that for an indefinite system)
        exponent = -math.frexp(m[0])[1]
        np.ldexp(r, exponent, out=lvl.b, casting="same_kind")
        self._cycle(0, lvl.b, lvl.x)
        z[:] = lvl.x[: lvl.n]
        return np.ldexp(z, -exponent, out=z)

    def _cycle(self, k: int, b: np.ndarray, x: np.ndarray) -> None:
        lvl = self.levels[k]
        if k == len(self.levels) - 1:
            if self.coarse is not None:
                self.coarse.solve(b, x)
            else:
                lvl.smooth_from_zero(b, x, lvl.r)
                lvl.smooth(b, x)
            return
        r = lvl.r
        lvl.smooth_from_zero(b, x, r)
        nxt = self.levels[k + 1]
        lvl.transfer.restrict(r, nxt.b)
        self._cycle(k + 1, nxt.b, nxt.x)
        lvl.transfer.prolong_add(nxt.x[: nxt.n], x[: lvl.n])
        lvl.smooth(b, x)

    # ------------------------------------------------------------------ statistics
    def stats(self) -> MultigridStats:
        """Levels, global rows and nonzeros per level, operator and grid complexities, set-up
        time, and per level the messages and bytes each rank sends per V-cycle (collective)."""
        comm = self.comm
        rows, nnz, per_level = [], [], []
        n_levels = len(self.levels)
        for i, lvl in enumerate(self.levels):
            g = allsum(comm, [lvl.n, lvl.A.diag_block.nnz + lvl.A.offdiag_block.nnz])
            rows.append(int(g[0]))
            nnz.append(int(g[1]))
            if i < n_levels - 1:  # pre-smoothing (its last product gives the residual), post-smoothing
                m, by = lvl.messages(2 * lvl.degree)
                tm, tb = lvl.transfer.messages()
                m, by = m + tm, by + tb
            elif self.coarse is not None:
                m, by = self.coarse.messages()
            else:
                m, by = lvl.messages(4 * lvl.degree)
            mine = np.array([m, by, lvl.n > 0], dtype=np.int64)
            every = np.empty((comm.size, 3), dtype=np.int64)
            comm.Allgather(mine, every)
            per_level.append(LevelStats(rows[-1], nnz[-1], int(every[:, 2].sum()), lvl.degree, lvl.lam,
                                        tuple(every[:, 0].tolist()), tuple(every[:, 1].tolist())))
        setup = allsum(comm, [self.setup_time])[0] / comm.size
        times = np.array([self.setup_time, self.update_time or 0.0])
        comm.Allreduce(MPI.IN_PLACE, times, op=MPI.MAX)
        return MultigridStats(n_levels, tuple(rows), tuple(nnz), self.precision, sum(nnz) / nnz[0],
                              sum(rows) / rows[0], float(times[0]), float(setup),
                              float(times[1]) if self.update_time is not None else None, tuple(per_level))
