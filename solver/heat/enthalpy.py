"""The enthalpy ``H(T) = int_anchor^T C dT`` of a heat capacity C(T) given by expressions, tabulated once.

An expression may step (``where(T < 50, 1, 2)``) or peak narrowly anywhere in the temperatures
a run may reach, so one quadrature rule over ``[0, T]`` can be far off (an 80% error in H for a
peak 5 degrees wide) while the energy balance, booked with the same H, still closes. The table
covers absolute zero to the default upper end of ``run.temperature_range``: pieces half a degree
wide over the first 5000 degrees, then 2% wider each. Each piece is integrated by 6-point
Gauss-Legendre and split in two while its two halves disagree with it by more than 1e-12
relative, down to a billionth of its temperature (a jump), within a budget of pieces (an
expression that never settles keeps its last pieces). ``H(T)`` is then the table's sum up to the
piece of T plus one Gauss rule over the rest of it: accurate to the table's tolerance for any
piecewise-smooth C, at the cost of one rule per evaluation as before. The sums run outwards from
the anchor, a temperature the run holds (:class:`solver.heat.properties.Capacity`): a C that is
huge near absolute zero (``a + b T + c / T^2`` of data tables), or a cryogenic run far below 0 C,
then has H moderate where the run is, not a huge number whose changes are lost in round-off.

The samples also give the temperatures where C is not > 0 or not finite (*bad* intervals): a
node whose temperature crosses one within a step has passed through temperatures where the
material is not physical, which its values at the step's ends do not show.
Costs: about 10^4 pieces and 2 x 10^5 evaluations of the expressions, once per material set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GAUSS_X, GAUSS_W = np.polynomial.legendre.leggauss(6)
FINE_WIDTH = 0.5  # degrees, the pieces over the first FINE_SPAN degrees above the start
FINE_SPAN = 5000.0
GROWTH = 1.02  # beyond: each piece this much wider than the one before
REL_TOL = 1e-12  # a piece whose halves agree with it to this is kept
SMALLEST = 1e-9  # relative to max(1, |T|): no piece is split below this width
MAX_PIECES = 200_000
MAX_LEVELS = 60


@dataclass(frozen=True)
class EnthalpyTable:
    """Pieces [breaks[i], breaks[i+1]] of the integral of C, and where C is not > 0."""

    breaks: np.ndarray  # (n + 1,) increasing temperatures
    cumulative: np.ndarray  # (n + 1,) int_anchor^breaks[i] C (pieces that are not finite count 0)
    bad: np.ndarray  # (m, 2) disjoint increasing intervals with a sample of C not > 0 or not finite
    bad_at: np.ndarray  # (m,) a temperature of each bad interval where C is not > 0 or not finite

    def crossed(self, T0: np.ndarray, T1: np.ndarray) -> np.ndarray:
        """Indices of the values whose range [min(T0, T1), max(T0, T1)] meets a bad interval."""
        if not len(self.bad):
            return np.zeros(0, dtype=np.int64)
        lo, hi = np.minimum(T0, T1), np.maximum(T0, T1)
        j = np.searchsorted(self.bad[:, 1], lo, side="left")
        inside = j < len(self.bad)
        hit = np.zeros(len(lo), dtype=bool)
        hit[inside] = self.bad[j[inside], 0] <= hi[inside]
        return np.flatnonzero(hit)

    def interval_of(self, T0: float, T1: float) -> int:
        """The first bad interval met by [min, max] of T0, T1."""
        return int(np.searchsorted(self.bad[:, 1], min(T0, T1), side="left"))


def starting_points(start: float, end: float, fixed) -> np.ndarray:
    """The pieces' ends before any split: fine near the start, growing beyond, and ``fixed``."""
    fine_end = min(end, start + FINE_SPAN)
    points = [np.linspace(start, fine_end, int(np.ceil((fine_end - start) / FINE_WIDTH)) + 1)]
    if end > fine_end:
        n = int(np.ceil(np.log((end - start) / (fine_end - start)) / np.log(GROWTH)))
        points.append(np.minimum(start + (fine_end - start) * GROWTH ** np.arange(1, n + 1), end))
    return np.unique(np.concatenate(points + [np.asarray(fixed, dtype=float)]))


def _rule(C, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int_a^b C by 6-point Gauss-Legendre, the samples (n, 6))."""
    half, mid = 0.5 * (b - a), 0.5 * (b + a)
    with np.errstate(all="ignore"):
        samples = np.asarray(C(mid[:, None] + half[:, None] * GAUSS_X), dtype=float)
        samples = np.broadcast_to(samples, (len(a), len(GAUSS_X)))
        return half * (samples @ GAUSS_W), samples


def _lowest(samples: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether some sample is not > 0 or not finite, and the point of the worst one."""
    key = np.where(np.isfinite(samples), samples, -np.inf)
    worst = np.argmin(key, axis=1)
    rows = np.arange(len(samples))
    return ~(key[rows, worst] > 0), points[rows, worst]


def tabulate(C, start: float, end: float, fixed=(), anchor: float = 0.0) -> EnthalpyTable:
    """The table of ``C`` (a function of an array of temperatures) over [start, end] (with
    ``anchor``, where H = 0, and the ``fixed`` temperatures among its breaks)."""
    points = starting_points(start, end, list(fixed) + [anchor])
    a, b = points[:-1], points[1:]
    whole, samples = _rule(C, a, b)
    flagged, where = _lowest(samples, 0.5 * (a + b)[:, None] + 0.5 * (b - a)[:, None] * GAUSS_X)
    kept = []  # (a, b, value, bad, where) of the pieces that are done
    for _ in range(MAX_LEVELS):
        if not len(a):
            break
        m = 0.5 * (a + b)
        left, s_left = _rule(C, a, m)
        right, s_right = _rule(C, m, b)
        both = left + right
        with np.errstate(all="ignore"):
            agree = np.abs(whole - both) <= REL_TOL * (np.abs(left) + np.abs(right))
        narrow = (b - a) <= SMALLEST * np.maximum(1.0, np.abs(m))
        x_left = 0.5 * (a + m)[:, None] + 0.5 * (m - a)[:, None] * GAUSS_X
        x_right = 0.5 * (m + b)[:, None] + 0.5 * (b - m)[:, None] * GAUSS_X
        flag_left, where_left = _lowest(s_left, x_left)
        flag_right, where_right = _lowest(s_right, x_right)
        # each half keeps its own samples' verdict and the parent's, when the parent's bad point is in it
        flag_left, where_left = flag_left | (flagged & (where < m)), np.where(flagged & (where < m), where, where_left)
        flag_right, where_right = flag_right | (flagged & (where >= m)), \
            np.where(flagged & (where >= m), where, where_right)
        flagged = flag_left | flag_right
        where = np.where(flag_left, where_left, where_right)
        done = agree | narrow | ~np.isfinite(both)  # (not finite: bad, whatever its width)
        if sum(len(p[0]) for p in kept) + len(a) + np.count_nonzero(~done) > MAX_PIECES:
            done[:] = True  # the budget: what is left keeps its two halves' sum
        kept.append((a[done], b[done], both[done], flagged[done], where[done]))
        split = ~done
        a, b = np.concatenate([a[split], m[split]]), np.concatenate([m[split], b[split]])
        whole = np.concatenate([left[split], right[split]])
        flagged = np.concatenate([flag_left[split], flag_right[split]])
        where = np.concatenate([where_left[split], where_right[split]])
    kept.append((a, b, whole, flagged, where))
    a, b, value, flagged, where = (np.concatenate(part) for part in zip(*kept))
    order = np.argsort(a)
    a, b, value, flagged, where = a[order], b[order], value[order], flagged[order], where[order]
    value = np.where(np.isfinite(value), value, 0.0)
    breaks = np.append(a, b[-1])
    # summed outwards from the anchor: a C huge near absolute zero (2e7 / T^2, 1e30 exp(-T)), summed
    # from there, left H at the run's temperatures a huge number whose steps were lost in round-off
    zero = int(np.searchsorted(breaks, anchor))
    cumulative = np.zeros(len(breaks))
    cumulative[zero + 1:] = np.cumsum(value[zero:])
    cumulative[:zero] = -np.cumsum(value[:zero][::-1])[::-1]
    return EnthalpyTable(breaks, cumulative, *_merged(a[flagged], b[flagged], where[flagged]))


def _merged(lo: np.ndarray, hi: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Adjacent bad pieces joined into intervals (and one temperature of each)."""
    if not len(lo):
        return np.zeros((0, 2)), np.zeros(0)
    starts = np.concatenate([[True], lo[1:] > hi[:-1]])
    first = np.flatnonzero(starts)
    last = np.append(first[1:] - 1, len(lo) - 1)
    return np.column_stack([lo[first], hi[last]]), where[first]
