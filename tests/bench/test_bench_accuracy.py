"""``bench --accuracy``: P1 and P2 series of the steady manufactured solution as whole processes,
their errors falling at the orders of the elements, the time at a target error interpolated
between runs, and the plot (no timing is asserted)."""

import json
import math
import subprocess
import sys

import pytest

from conftest import mpi_env
from solver.bench.accuracy import compare_at, time_at


def rows(*pairs):
    return [{"rel_l2_error": e, "whole_s": s, "solver_s": s / 2} for e, s in pairs]


def test_the_time_at_an_error_is_interpolated_log_log_between_the_runs_around_it():
    series = rows((1e-4, 1.0), (1e-6, 100.0), (1e-8, 1e4))
    assert time_at(series, 1e-5) == pytest.approx(10.0)
    assert time_at(series, 1e-6) == pytest.approx(100.0)
    assert time_at(series, 1e-3) is None and time_at(series, 1e-9) is None
    p1, p2 = rows((1e-5, 2.0), (1e-7, 50.0)), rows((1e-4, 1.0), (1e-8, 3.0))
    cmp2 = compare_at(p1, p2, 2)
    assert cmp2["target_error"] == 1e-6 and cmp2["p1_s"] == pytest.approx(10.0)
    assert cmp2["p1_over_p2"] == pytest.approx(10.0 / math.sqrt(3.0))
    assert cmp2["own_clock_p1_s"] == pytest.approx(5.0)
    assert cmp2["own_clock_p1_over_p2"] == pytest.approx(cmp2["p1_over_p2"])
    cmp3 = compare_at(p1, p2, 3)  # 3D: at the smallest error P1 reaches, P1's own time
    assert cmp3["target_error"] == 1e-7 and cmp3["p1_s"] == 50.0 and cmp3["p2_s"] == pytest.approx(3.0 ** 0.75)


def test_accuracy_series_run_as_whole_processes_and_are_plotted(tmp_path):
    env = {k: v for k, v in mpi_env().items() if not k.startswith(("OMPI_COMM_WORLD", "PMIX_", "PMI_"))}
    out = tmp_path / "accuracy.json"
    proc = subprocess.run([sys.executable, "-m", "solver", "bench", "--accuracy", "--dim", "2", "--p1", "8", "16",
                           "--p2", "4", "8", "--repeat", "1", "--json", str(out), "--plot", str(tmp_path / "a.png")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(out.read_text())
    p1, p2 = r["series"]["2"]["P1"], r["series"]["2"]["P2"]
    assert [x["dofs"] for x in p1] == [81, 289] and [x["dofs"] for x in p2] == [81, 289]
    assert all(0 < x["solver_s"] < x["whole_s"] for x in p1 + p2)
    assert math.log2(p1[0]["rel_l2_error"] / p1[1]["rel_l2_error"]) == pytest.approx(2.0, abs=0.3)
    assert math.log2(p2[0]["rel_l2_error"] / p2[1]["rel_l2_error"]) == pytest.approx(3.0, abs=0.3)
    assert p2[1]["rel_l2_error"] < p1[1]["rel_l2_error"] / 10  # same DOFs, far smaller error
    assert "time to accuracy" in proc.stdout and "P2" in proc.stdout
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("bench-accuracy-")]  # scratch removed
