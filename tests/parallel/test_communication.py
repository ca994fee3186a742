"""Communication that stays bounded as ranks are added: the reference problem at 10K DOFs per
rank on 1 to 16 (oversubscribed) ranks, every MPI call of its set-up and of three time steps
counted (tests/mpi/comm_checks.py). Only counts are read, never times. The time step shrinks with
h^2 (dt = 1e-3 at 10K DOFs), so that every size solves an operator of the same conditioning."""

from functools import lru_cache

import pytest

from conftest import run_script

RANKS = (1, 2, 4, 8, 16)
PER_RANK = 10000


@lru_cache(maxsize=None)
def counts(ranks: int, per_rank: int = PER_RANK) -> dict:
    result = run_script(ranks, "comm_checks.py", str(per_rank), "3", str(PER_RANK), timeout=300)
    assert result["ranks"] == ranks
    return result


def solve(rank: dict) -> dict:
    return rank["phases"]["solve"]


@pytest.mark.parametrize("ranks", RANKS[1:])
def test_solve_talks_to_neighbours_only(ranks):
    """In the time steps a rank sends only to its neighbours (at most one message per neighbour
    and exchange) and takes part in scalar reductions: no gather, all-to-all or point-to-point."""
    r = counts(ranks)
    for rank in r["per_rank"]:
        phase = solve(rank)
        assert set(phase) <= {"neighbour", "reduction"}, phase
        calls, messages, _ = phase["neighbour"]
        degree = max([rank["fine_neighbours"], *rank["level_neighbours"]])
        assert messages <= calls * degree, rank
        assert degree <= 8, rank  # a 2D partition: a part touches a few others, however many ranks
        reductions, _, nbytes = phase["reduction"]
        assert nbytes <= 16 * reductions  # a number or two each


def test_reductions_per_iteration_do_not_grow_with_ranks():
    """Three dot products and the V-cycle's scaling per CG iteration, two per solve: the same on
    every number of ranks."""
    for ranks in RANKS:
        r = counts(ranks)
        its, steps = sum(r["iterations"]), len(r["iterations"])
        for rank in r["per_rank"]:
            reductions = solve(rank).get("reduction", (0, 0, 0))[0]
            assert reductions == 4 * its + 3 * steps, (ranks, reductions, its)


def test_iterations_stay_near_one_rank():
    """Weak scaling at a fixed dt/h^2: iterations per step on P ranks within +20% of one rank's at
    10K DOFs, and within +20% of one rank's on the same global problem (partitioning cuts
    aggregates at part boundaries)."""
    one = counts(1)["iterations"][0]
    for ranks in RANKS[1:]:
        its = counts(ranks)["iterations"][0]
        same_size = counts(1, PER_RANK * ranks)["iterations"][0]
        assert its <= 1.2 * one, (ranks, its, one)
        assert its <= 1.2 * same_size, (ranks, its, same_size)


def test_coarse_levels_are_agglomerated():
    """The coarsest level lives on one rank and stays small; coarse levels use fewer ranks."""
    for ranks in RANKS:
        r = counts(ranks)
        active = r["active_ranks"]
        assert active[-1] == 1 and r["rows"][-1] <= 2000, r
        assert active == sorted(active, reverse=True), r


def test_setup_collectives_grow_with_levels_not_ranks():
    """Collective calls of the whole set-up (mesh, partition, assembly, multigrid): at most 40 per
    multigrid level (about 30 today), and as many on 2 as on 8 ranks when the levels are as many."""
    by_levels = {}
    for ranks in RANKS[1:]:
        r = counts(ranks)
        for rank in r["per_rank"]:
            setup = rank["phases"]["setup"]
            collectives = sum(setup.get(k, (0,))[0] for k in ("reduction", "gather", "alltoall"))
            assert collectives <= 40 * r["levels"], (ranks, r["levels"], collectives)
            by_levels.setdefault(r["levels"], []).append(collectives)
    assert all(max(c) - min(c) <= 8 for c in by_levels.values()), by_levels
