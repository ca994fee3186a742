"""Field statistics over samples, accumulated online (Welford) on a block of the canonical node
numbering and combined across groups with the pairwise update of Chan, Golub and LeVeque."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.parallel.routing import Route, block_rank, block_starts


@dataclass
class Moments:
    """Statistics of ``count`` samples at ``n_times`` output times on a block of nodes:
    mean, sum of squared deviations ``m2``, min, max, and per threshold the number of samples
    above it (``above``, shape (thresholds, times, nodes))."""

    count: int
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray
    above: np.ndarray
    thresholds: np.ndarray

    @classmethod
    def empty(cls, n_times: int, n_nodes: int, thresholds) -> "Moments":
        shape = (n_times, n_nodes)
        th = np.asarray(thresholds, dtype=float)
        return cls(0, np.zeros(shape), np.zeros(shape), np.full(shape, np.inf), np.full(shape, -np.inf),
                   np.zeros((len(th),) + shape), th)

    def add(self, x: np.ndarray) -> None:
        """One sample's fields ``x`` (times, nodes)."""
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)
        np.minimum(self.min, x, out=self.min)
        np.maximum(self.max, x, out=self.max)
        self.above += x[None] > self.thresholds[:, None, None]

    def merge(self, other: "Moments") -> None:
        """Fold in the statistics of other samples (same block)."""
        if other.count == 0:
            return
        if self.count == 0:
            self.count, self.mean, self.m2 = other.count, other.mean.copy(), other.m2.copy()
            self.min, self.max, self.above = other.min.copy(), other.max.copy(), other.above.copy()
            return
        n = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * (other.count / n)
        self.m2 += other.m2 + delta ** 2 * (self.count * other.count / n)
        np.minimum(self.min, other.min, out=self.min)
        np.maximum(self.max, other.max, out=self.max)
        self.above += other.above
        self.count = n

    @property
    def std(self) -> np.ndarray:
        """Sample standard deviation (NaN with fewer than two samples)."""
        if self.count < 2:
            return np.full_like(self.mean, np.nan)
        return np.sqrt(np.maximum(self.m2, 0.0) / (self.count - 1))

    def probability_above(self) -> np.ndarray:
        return self.above / self.count if self.count else np.full_like(self.above, np.nan)

    def pack(self) -> np.ndarray:
        """(nodes, columns) rows: everything but the count, node by node."""
        parts = [self.mean, self.m2, self.min, self.max, *self.above]
        return np.concatenate([p.T for p in parts], axis=1)

    @classmethod
    def unpack(cls, count: int, rows: np.ndarray, n_times: int, thresholds) -> "Moments":
        cols = [rows[:, k * n_times:(k + 1) * n_times].T.copy() for k in range(rows.shape[1] // n_times)]
        return cls(count, cols[0], cols[1], cols[2], cols[3],
                   np.array(cols[4:]).reshape(-1, n_times, rows.shape[0]), np.asarray(thresholds, dtype=float))


def to_world_blocks(groups, start: int, rows: np.ndarray, n_global: int) -> list:
    """Each group (:class:`~solver.app.study.groups.StudyGroups`) holds ``rows`` of a canonical
    numbering in blocks over its own ranks (this rank: from ``start``); returns, per group in
    group order, this world rank's block of the world's block distribution of the same numbering
    (one Alltoall of counts and one Alltoallv)."""
    world, group_index, n_groups = groups.world, groups.index, groups.count
    starts = block_starts(n_global, world.size)
    ids = start + np.arange(len(rows), dtype=np.int64)
    route = Route(world, block_rank(starts, ids))
    got_ids = route.send(ids)
    got_groups = route.send(np.full(len(rows), group_index, dtype=np.int64))
    got = route.send(np.ascontiguousarray(rows))
    lo, hi = int(starts[world.rank]), int(starts[world.rank + 1])
    blocks = []
    for g in range(n_groups):
        mine = got_groups == g
        block = np.empty((hi - lo,) + rows.shape[1:], dtype=rows.dtype)
        block[got_ids[mine] - lo] = got[mine]
        blocks.append(block)
    return blocks


def combine(groups, start: int, local: Moments, n_global: int, earlier: Moments | None = None) -> Moments:
    """The statistics of every group (and of ``earlier`` samples, a world block already) on this
    world rank's block, merged in group order (so the same N and R give the same bits)."""
    world, n_groups = groups.world, groups.count
    counts = world.allgather(local.count)[::world.size // n_groups]
    blocks = to_world_blocks(groups, start, local.pack(), n_global)
    n_times, th = local.mean.shape[0], local.thresholds
    total = earlier if earlier is not None else Moments.empty(n_times, len(blocks[0]), th)
    for g in range(n_groups):
        total.merge(Moments.unpack(counts[g], blocks[g], n_times, th))
    return total
