"""Memory per rank is O(N/P): the same run of the reference problem (500K DOFs, multigrid,
results and a checkpoint written) on 1 and on 8 oversubscribed ranks (tests/mpi/memory_checks.py).

Every rank's peak resident set, less what its process held before the run (modules, MPI, the
compiled kernels: measured in the same process after a tiny warm-up run, about 200 MB), is at
most 1.3 / P of one rank's plus a fixed 40 MB. The fixed part is MPI-IO's collective buffering:
the ranks that aggregate a collective write (rank 0 among them) hold up to Open MPI's
``io_ompio_bytes_per_agg`` (32 MiB) of the file's bytes at once, whatever the problem's size.
A rank holding one array of global length (8 bytes per DOF: 4 MB here) for each of a few fields
exceeds it."""

import pytest
from conftest import run_script

RANKS = 8
N = 707  # cells per side: 501,264 DOFs
SLACK, FIXED_MB = 1.3, 40.0


@pytest.fixture(scope="module")
def peaks(tmp_path_factory):
    out = tmp_path_factory.mktemp("memory")
    return {p: run_script(p, "memory_checks.py", str(N), str(out / f"np{p}"), timeout=300) for p in (1, RANKS)}


def test_memory_per_rank_shrinks_with_ranks(peaks):
    one = peaks[1]["per_rank"][0]
    data_one = one["peak_MB"] - one["base_MB"]
    assert data_one > 300  # the problem's data dominates one rank's peak (about 470 MB)
    bound = data_one / RANKS * SLACK + FIXED_MB
    for rank, r in enumerate(peaks[RANKS]["per_rank"]):
        assert r["peak_MB"] - r["base_MB"] <= bound, (rank, r, data_one, bound)


def test_ranks_other_than_the_first_need_no_fixed_part(peaks):
    """Without the MPI-IO aggregation of rank 0, a rank's data is within 1.3 / P of one rank's."""
    one = peaks[1]["per_rank"][0]
    data_one = one["peak_MB"] - one["base_MB"]
    data = sorted(r["peak_MB"] - r["base_MB"] for r in peaks[RANKS]["per_rank"])
    assert data[len(data) // 2] <= data_one / RANKS * SLACK, (data, data_one)
