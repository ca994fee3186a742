"""Adaptive time steps in whole runs: the same steps and results on 1-4 ranks, restarts that
continue bit for bit on the same ranks and to 1e-10 on others, the /steps table, its plot and info."""

import shutil

import h5py
import numpy as np
import pytest
from conftest import ROOT, run_solver

CASE = str(ROOT / "inputs" / "heater_pulse.toml")
BASE = ["--set", "mesh.nx=30", "--set", "mesh.ny=6", "--set", "solver.rtol=1e-12", "--set", "checkpoint.every=7",
        "--quiet"]
WHOLE = ["--set", "time.t_end=40.0", "--set", "output.times=[1.0, 2.0, 18.0, 30.0]"]
FIRST = ["--set", "time.t_end=18.0", "--set", "output.times=[1.0, 2.0, 18.0]"]


def args(directory, *extra):
    return [CASE, *BASE, "--set", f"output.directory={directory}", *extra]


def read(directory):
    with h5py.File(directory / "heater_pulse" / "heater_pulse.h5", "r") as f:
        names = sorted(f["fields/temperature"])
        return {"T": np.array([f["fields/temperature"][n][()] for n in names]), "time": f["time"][()],
                "steps_t": f["steps/time"][()], "steps_dt": f["steps/dt"][()], "probes": f["probes/values"][()],
                "attrs": dict(f.attrs)}


@pytest.fixture(scope="module")
def whole_on_one_rank(tmp_path_factory):
    d = tmp_path_factory.mktemp("whole1")
    run_solver(1, args(d, *WHOLE), cwd=d)
    return read(d)


def test_outputs_land_exactly_and_steps_are_recorded(whole_on_one_rank):
    r = whole_on_one_rank
    assert r["time"].tolist() == [0.0, 1.0, 2.0, 18.0, 30.0, 40.0]  # exactly: the steps land on them
    assert np.allclose(np.cumsum(r["steps_dt"]), r["steps_t"], rtol=1e-12)
    assert len(r["probes"]) == len(r["steps_t"]) + 1  # a probe row at t = 0 and at every accepted step
    assert r["attrs"]["steps"] == len(r["steps_t"]) and r["attrs"]["balance_relative_imbalance"] < 1e-9


@pytest.mark.parametrize("nprocs", [2, 3, 4])
def test_ranks_agree(tmp_path, nprocs, whole_on_one_rank):
    run_solver(nprocs, args(tmp_path, *WHOLE), cwd=tmp_path)
    r, ref = read(tmp_path), whole_on_one_rank
    assert np.array_equal(r["time"], ref["time"])
    assert len(r["steps_t"]) == len(ref["steps_t"])
    assert np.allclose(r["steps_t"], ref["steps_t"], rtol=1e-8)
    assert np.max(np.abs(r["T"] - ref["T"])) <= 1e-8 * np.max(np.abs(ref["T"]))


@pytest.mark.parametrize("nprocs", [1, 3])
def test_restart_continues_bitwise_on_the_same_ranks(tmp_path, nprocs):
    whole, split = tmp_path / "whole", tmp_path / "split"
    run_solver(nprocs, args(whole, *WHOLE), cwd=tmp_path)
    run_solver(nprocs, args(split, *FIRST), cwd=tmp_path)
    run_solver(nprocs, args(split, *WHOLE, "--restart", "latest"), cwd=tmp_path)
    a, b = read(whole), read(split)
    assert np.array_equal(a["T"], b["T"]) and np.array_equal(a["time"], b["time"])
    assert np.array_equal(a["steps_t"], b["steps_t"]) and np.array_equal(a["probes"], b["probes"])
    assert b["attrs"]["complete"]


def test_restart_on_other_ranks_within_1e10(tmp_path, whole_on_one_rank):
    first = tmp_path / "first"
    run_solver(3, args(first, *FIRST), cwd=tmp_path)
    for n in (1, 2):
        d = tmp_path / f"np{n}"
        shutil.copytree(first, d)
        run_solver(n, args(d, *WHOLE, "--restart", "latest"), cwd=tmp_path)
        r, ref = read(d), whole_on_one_rank
        assert np.array_equal(r["time"], ref["time"])
        assert np.max(np.abs(r["T"] - ref["T"])) <= 1e-10 * np.max(np.abs(ref["T"]))


def test_plot_draws_dt_against_t(tmp_path, whole_on_one_rank):
    d = tmp_path / "p"
    run_solver(1, args(d, *FIRST), cwd=tmp_path)
    h5 = d / "heater_pulse" / "heater_pulse.h5"
    proc = run_solver(1, ["plot", str(h5), "--dt"], cwd=tmp_path)
    png = h5.with_name("heater_pulse_dt.png")
    assert png.exists() and png.stat().st_size > 10_000, proc.stdout
    info = run_solver(1, ["info", str(h5)], cwd=tmp_path).stdout
    assert "time steps" in info and "rejected (adaptive)" in info and "(plot --dt)" in info, info


PULSE_IN_A_CORNER = """
[mesh]
type = "rectangle"
cell = "quadrilateral"
lengths = [1.0, 1.0]
nx = 6
ny = 6
[material]
k = 1.0
rho = 1.0
c = 1.0
[source]
f = "where(x > 0.6 and y < 0.3, 1000*exp(-((t - 300)/2)**2), 0)"
[boundary.left]
type = "robin"
h = 0.1
T_inf = 0
[time]
scheme = "bdf2"
dt = "adaptive"
t_end = 500.0
tolerance = 1e-2
[output]
times = [500.0]
"""


def test_an_abrupt_change_is_found_alike_on_any_number_of_ranks(tmp_path):
    """The input is sampled at points that do not depend on the partition (rank 0 decides): the
    warning and the steps kept short over a pulse in a corner are the same on 1 and 3 ranks."""
    (tmp_path / "corner.toml").write_text(PULSE_IN_A_CORNER)
    found = []
    for n in (1, 3):
        proc = run_solver(n, ["corner.toml", "--quiet", "--set", f"output.directory=np{n}"], cwd=tmp_path)
        warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
        with h5py.File(tmp_path / f"np{n}" / "corner" / "corner.h5", "r") as f:
            found.append((warnings, f["steps/time"][()]))
    (w1, t1), (w3, t3) = found
    assert len(w1) == 1 and "source.f changes abruptly at t = 296.4" in w1[0] and w1 == w3
    assert len(t1) == len(t3) and np.allclose(t1, t3, rtol=1e-9)
