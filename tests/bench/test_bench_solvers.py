"""``bench --solvers``'s figures from its runs: speed-ups round by round and between the best runs
(the runs themselves are stood in for; no timing is asserted)."""

from argparse import Namespace

import pytest

from solver.bench import solvers as bench_solvers


def test_speedups_round_by_round_and_between_the_best_runs(monkeypatch, tmp_path):
    seconds = {1: [0.32, 0.31, 0.40], 2: [0.20, 0.16, 0.18]}  # a noisy third round on 1 rank
    calls = []

    def run_ours(ranks, n, dim, directory, extra, timeout):
        calls.append(ranks)
        return {"whole_s": 1.0, "solve_per_step_s": seconds[ranks][calls.count(ranks) - 1], "setup_s": 0.5,
                "iterations_per_step": 8.0, "peak_rss_MB": 100.0, "dofs": 1000, "rel_l2_error": 1e-3,
                "preconditioner": "amg", "preconditioner_stats": {}}

    monkeypatch.setattr(bench_solvers, "run_ours", run_ours)
    args = Namespace(ranks=[1, 2], repeat=3, n=8, dim=2, set=[], timeout=10.0)
    out = bench_solvers.compare(args, tmp_path, peer=False, say=lambda line: None)
    assert calls == [1, 2, 1, 2, 1, 2]  # in rounds
    rounds = out["2"]["speedup_solve_per_step"]
    assert rounds["runs"] == pytest.approx([1.6, 0.31 / 0.16, 0.40 / 0.18])
    assert rounds["median"] == pytest.approx(0.31 / 0.16)
    assert out["2"]["speedup_best_runs"] == pytest.approx(0.31 / 0.16)
    assert "speedup_best_runs" not in out["1"]
    text = bench_solvers.table({"dim": 2, "n": 8, "dofs": 1000, "repeat": 3, "reference": out})
    assert "speed-up of the time loop (round by round)" in text
    assert "speed-up of the time loop (best runs)" in text and "1.94" in text


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/clear_refs"), reason="Linux /proc only")
def test_a_timed_command_does_not_report_the_bench_process_peak(tmp_path):
    """Linux counts the launching process's peak in a child's; a bench that has held a large
    array (a 3D results file) must still report a small run as small."""
    import os
    import sys

    import numpy as np

    from solver.bench.memory import rss

    held = np.ones(50_000_000)  # 400 MB, touched
    del held
    now_mb = rss()[0] / 2 ** 20  # what this process holds still (a long test session: a few hundred MB)
    _, peak_mb, proc = bench_solvers.timed([sys.executable, "-c", "pass"], dict(os.environ), tmp_path, 60.0)
    assert proc.returncode == 0
    assert peak_mb < now_mb + 200.0  # not now_mb + 400: the array's peak is not counted


def test_a_command_past_its_timeout_is_said_to_have_timed_out(tmp_path):
    """A run killed by --timeout was reported as "exit status -9: no message"."""
    import os
    import sys

    from solver.errors import ProcessFailed

    _, _, proc = bench_solvers.timed([sys.executable, "-c", "import time; time.sleep(30)"], dict(os.environ),
                                     tmp_path, 0.5)
    message = str(ProcessFailed("bench: the run", proc.returncode, proc.stderr))
    assert proc.returncode == -9 and message.endswith("stopped after its --timeout of 0.5 s"), message
