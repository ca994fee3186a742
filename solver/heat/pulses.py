"""Abrupt changes in time of the inputs of t that no comparison of t announces: a pulse written
as ``1000*exp(-((t - 300)/2)**2)``, ``max(0, 1 - abs(t - 300))`` or a tanh box, a steep ramp, a
smooth step. Adaptive steps grown long in the quiet spell before one step over it (its heat is
lost, and the balance still closes), and fixed steps longer than it sample it at one time or none.

Before the march every input of t is sampled at a few points (:func:`sample_points`: the same
on any number of ranks) at :data:`SAMPLES` times over [0, t_end], in one vectorised evaluation
per input. At each point the values are scaled by their range over the run. A *change* starts
where they leave (by :data:`FLAT` of the range) a level they kept for at least :data:`QUIET`
times the change's *rise*, and goes on to move by :data:`LARGE` of the range within
:data:`WINDOW` of t_end; its rise is the time from its start to that half-way crossing, and it
ends at the last sample where the values still move by :data:`SETTLED` of the range per rise. A
smooth periodic input (never flat for long beside its swings), a slow ramp (no large change
within the window) and a change in the first steps (no quiet spell before it) are not changes;
nor is one that holds a number that t is compared with (the steps land there,
:func:`~solver.heat.simulation.adaptive_stops`). A change narrower than the samples' spacing
(t_end / 8192) may be missed.

Adaptive steps land on :data:`LEAD` rises before each change's start and take at most
:data:`CUT` of its rise until its end (:meth:`Change.guard`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import maximum_filter1d, minimum_filter1d

from solver.case.expressions import Expression

SAMPLES = 8192  # times sampled over [0, t_end]
WINDOW = 0.01  # a change moves by LARGE of the range within this part of t_end
LARGE = 0.5
FLAT = 0.05  # a level: values within this part of the range
QUIET = 2.0  # a change follows a level kept for this many of its rises
SETTLED = 0.1  # a change has ended where its values move by less than this part of the range per rise
LEAD, CUT = 4.0, 0.25  # adaptive steps: at most CUT rise from LEAD rises before the start to the end
POINTS = 32  # mesh nodes sampled, besides the bounding box's corners and centre
RUNS = 4096  # the most stretches of large changes examined per input


@dataclass(frozen=True)
class Change:
    """An abrupt change of the input ``key``: it leaves its level at ``start``, crosses half of
    its range ``rise`` later, and ends (moves slowly again) at ``end`` (seconds). ``jump``: it
    crosses half its range between two samples (a jump, somewhere in [start, start + rise])."""

    key: str
    start: float
    rise: float
    end: float
    jump: bool = False

    def guard(self) -> tuple[float, float, float]:
        """(from, to, longest step): adaptive steps land on ``from`` (where the input has not yet
        moved) and take at most a quarter of the rise until the change has ended."""
        return max(0.0, self.start - LEAD * self.rise), self.end, CUT * self.rise


def sample_points(mesh) -> np.ndarray | None:
    """On rank 0: the corners and centre of the mesh's bounding box and about :data:`POINTS`
    nodes picked by a hash of their canonical ids, spread over the mesh and the same whatever
    the partition (rows ordered by id); None on the other ranks (collective)."""
    comm, n = mesh.comm, mesh.n_owned
    coords = mesh.coords[:n]
    lo = coords.min(axis=0) if n else np.full(mesh.dim, np.inf)
    hi = coords.max(axis=0) if n else np.full(mesh.dim, -np.inf)
    box = np.concatenate([lo, -hi])
    comm.Allreduce(MPI.IN_PLACE, box, op=MPI.MIN)
    lo, hi = box[: mesh.dim], -box[mesh.dim:]
    ids = mesh.node_ids[:n].astype(np.uint64)
    share = min(1.0, POINTS / max(mesh.n_global_nodes, 1))
    picked = (ids * np.uint64(2654435761)) % np.uint64(2**32) < np.uint64(int(share * 2**32))
    gathered = comm.gather((mesh.node_ids[:n][picked], coords[picked]), root=0)
    if comm.rank != 0:
        return None
    node_ids = np.concatenate([g[0] for g in gathered])
    nodes = np.concatenate([g[1] for g in gathered]).reshape(-1, mesh.dim)[np.argsort(node_ids, kind="stable")]
    corners = np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(mesh.dim, -1).T
    return np.concatenate([corners, (0.5 * (lo + hi))[None, :], nodes[:POINTS]])


def abrupt_changes(values: np.ndarray, times: np.ndarray) -> list[tuple[float, float, float]]:
    """(start, rise, end) of the abrupt changes (module docstring) of ``values`` (shape
    ``(len(times), points)``) on the evenly spaced ``times``, those at all points merged where
    their guarded spans overlap, earliest first."""
    n = len(times)
    spacing = (times[-1] - times[0]) / (n - 1)
    m = max(2, math.ceil(WINDOW * (times[-1] - times[0]) / spacing - 1e-9))
    m += m % 2  # even: the filters' windows of m + 1 are centred
    g = np.asarray(values, dtype=float).T
    g = g[sorted({row.tobytes(): i for i, row in enumerate(g)}.values())]  # the distinct rows (t alone: one)
    with np.errstate(all="ignore"):
        lo, hi = np.min(g, axis=1), np.max(g, axis=1)
        span = hi - lo
        kept = np.isfinite(span) & (span > 1e-9 * np.maximum(np.abs(lo), np.abs(hi)))
    if not kept.any():
        return []
    h = np.round((g[kept] - lo[kept, None]) / span[kept, None], 12)
    h = h[sorted({row.tobytes(): i for i, row in enumerate(h)}.values())]  # distinct (most differ by a factor)
    ahead = np.concatenate([h, np.repeat(h[:, -1:], m, axis=1)], axis=1)  # the last value held past t_end
    top = maximum_filter1d(ahead, m + 1, axis=1, mode="nearest")[:, m // 2: m // 2 + n]  # max of h[i .. i + m]
    bottom = minimum_filter1d(ahead, m + 1, axis=1, mode="nearest")[:, m // 2: m // 2 + n]
    large = np.maximum(top - h, h - bottom) >= LARGE * (1 - 1e-9)
    edge = np.zeros((len(h), 1), dtype=bool)
    rows, first = np.nonzero(large & ~np.concatenate([edge, large[:, :-1]], axis=1))
    _, last = np.nonzero(large & ~np.concatenate([large[:, 1:], edge], axis=1))
    rows, first, last = rows[:RUNS], first[:RUNS], last[:RUNS]
    if not len(rows):
        return []
    window = sliding_window_view(ahead, m + 1, axis=1)[rows, first]  # h[i .. i + m] of each stretch's first i
    away = np.abs(window - window[:, :1])
    start = first + np.argmax(away > FLAT, axis=1) - 1  # the last sample at the level
    rise = first + np.argmax(away >= LARGE * (1 - 1e-9), axis=1) - start
    back = math.ceil(QUIET * m) + 1
    before = np.concatenate([np.full((len(h), back), np.nan), h], axis=1)
    level = sliding_window_view(before, back + 1, axis=1)[rows, start][:, ::-1]  # h[s], h[s - 1], ...
    # the level is the stretch's first value (h[start] lies up to FLAT off it: a smooth pulse's tail
    # before it, at the level, would be found to leave it)
    left = ~(np.abs(level - window[:, :1]) <= FLAT)  # (before t = 0: left)
    quiet = np.where(left.any(axis=1), np.argmax(left, axis=1), back + 1) - 1
    found = []
    moving = np.abs(np.diff(ahead, axis=1))
    flagged = quiet >= np.maximum(1, QUIET * rise)
    for r, s, w, j in zip(rows[flagged], start[flagged], rise[flagged], last[flagged]):
        fast = np.flatnonzero(moving[r, s: j + m] >= SETTLED / w)
        end = min(s + (fast[-1] + 1 if len(fast) else w), n - 1)
        found.append((float(times[s]), float(w * spacing), float(times[end])))
    merged: list[list[float]] = []
    for s, w, e in sorted(found, key=lambda c: c[0] - LEAD * c[1]):
        if merged and s - LEAD * w <= merged[-1][2]:
            merged[-1][1] = min(merged[-1][1], w)
            merged[-1][2] = max(merged[-1][2], e)
        else:
            merged.append([s, w, e])
    return [tuple(c) for c in merged]


def find_changes(case, mesh) -> tuple[Change, ...]:
    """The abrupt changes of every input of t of a transient case (module docstring), earliest
    first; the same on every rank, whatever their number (rank 0 samples; collective)."""
    from solver.heat.checks import inputs_of_time

    named = [(key, value) for key, value in inputs_of_time(case.physics)
             if isinstance(value, Expression) and value.depends_on_time]
    if not named or case.steady:
        return ()
    points = sample_points(mesh)
    changes: list[Change] = []
    if mesh.comm.rank == 0:
        times = np.linspace(0.0, case.time.t_end, SAMPLES)
        with np.errstate(all="ignore"):
            temperature = np.asarray(case.physics.initial(points, 0.0), dtype=float)
        for key, value in named:
            found = abrupt_changes(value.over_time(points, times, temperature), times)
            switches = value.switch_times()
            spacing = times[1] - times[0]
            found = [c for c in found if not any(c[0] - LEAD * c[1] - spacing <= s <= c[2] + spacing
                                                 for s in switches)]
            changes += [Change(key, s, w, e, w <= spacing * (1 + 1e-9)) for s, w, e in found]
    return tuple(sorted(mesh.comm.bcast(changes, root=0), key=lambda c: (c.start, c.key)))
