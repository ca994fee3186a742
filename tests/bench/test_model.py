"""The scaling model (solver.bench.model) on a synthetic hierarchy: its terms behave as the
formula says, and a profile extrapolated beyond 16 ranks agglomerates as the multigrid does."""

import math

import pytest

from solver.bench.model import LevelProfile, Machine, extrapolate, iteration_time, level_bytes

LEVELS = [LevelProfile(1_000_000, 7_000_000, 2, 1, 0, 0), LevelProfile(150_000, 2_000_000, 2, 1, 0, 0),
          LevelProfile(2_000, 30_000, 0, 1, 0, 0)]


def flat_machine(**kw) -> Machine:
    """A node whose bandwidth grows linearly with its cores (no saturation)."""
    return Machine(stream={1: 10.0, 16: 160.0}, **kw)


def test_one_rank_is_memory_traffic_only():
    t = iteration_time(LEVELS, 1, flat_machine(), eta=0.5)
    assert t["exchanges"] == 0 and t["reductions"] == 0
    assert t["total"] == pytest.approx(t["memory"]) and t["memory"] > 0


def test_memory_time_follows_the_node_bandwidth():
    """Without saturation, P ranks on one node move their share P times faster; with a node that
    saturates, the time follows its STREAM curve."""
    distributed = [LevelProfile(lv.rows, lv.nnz, lv.degree, 4, 0, 0) for lv in LEVELS[:2]] + [LEVELS[2]]
    flat = flat_machine()
    one = iteration_time(LEVELS, 1, flat, 0.5)["memory"]
    four = iteration_time(distributed, 4, flat, 0.5)["memory"]
    coarsest = level_bytes(LEVELS[2], 4, True) / (10e9 * 0.5)  # on one rank, at one core's bandwidth
    assert four == pytest.approx((one - coarsest) / 4 + coarsest, rel=1e-9)
    saturated = Machine(stream={1: 10.0, 4: 20.0, 16: 40.0})
    assert iteration_time(distributed, 4, saturated, 0.5)["memory"] > four


def test_messages_and_reductions_cost_latency():
    levels = [LevelProfile(lv.rows, lv.nnz, lv.degree, 64, 36, 100_000) for lv in LEVELS[:2]] + [LEVELS[2]]
    m = flat_machine()
    on_node = iteration_time(levels, 16, m, 0.5)
    across = iteration_time(levels, 64, m, 0.5, ranks_per_node=16)
    assert across["reductions"] == pytest.approx(4 * math.ceil(math.log2(64)) * m.net_latency)
    assert on_node["reductions"] == pytest.approx(4 * 4 * m.shm_latency)
    assert across["exchanges"] > on_node["exchanges"] > 0


def test_extrapolation_agglomerates_small_levels():
    measured = [LevelProfile(4_000_000, 28_000_000, 2, 16, 40, 200_000),
                LevelProfile(80_000, 1_200_000, 2, 16, 40, 50_000),
                LevelProfile(9_000, 140_000, 2, 4, 20, 10_000), LevelProfile(1_100, 19_000, 0, 1, 0, 0)]
    at = extrapolate(measured, 1024, dim=2)
    assert [lv.active for lv in at] == [1024, 40, 4, 1]
    assert at[0].bytes == pytest.approx(200_000 * (1 / 64) ** 0.5, rel=0.01)  # the surface of a smaller part
    assert at[-1].messages == 0
