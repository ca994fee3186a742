"""Studies (python -m solver study): the same samples and statistics whatever the number of ranks
and the group size, Monte Carlo statistics that match the exact ones, failed samples recorded,
a stopped study continued to the same statistics, and bad study files refused with one line."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import ROOT, mpi_env, mpirun_command, run_script, run_solver

from solver.errors import CaseError
from solver.app.study.rows import read_rows, rows_path
from solver.app.study.sampling import sample_table
from solver.app.study.spec import load_study

WALL = ROOT / "inputs" / "layered_wall.toml"
WALL_STUDY = """
[study]
case = "{case}"
method = "monte-carlo"
samples = 64
seed = 11
[parameters]
"region.insulation.k" = {{ distribution = "lognormal", mu = -3.2189, sigma = 0.25 }}
"boundary.right.h" = {{ distribution = "uniform", low = 10.0, high = 40.0 }}
[outputs]
thresholds = [18.5]
"""
TRANSIENT_CASE = """
[mesh]
type = "rectangle"
cell = "quadrilateral"
nx = 10
ny = 2
lengths = [0.1, 0.02]
[material]
k = 1.0
rho = 1000.0
c = 1000.0
[initial]
temperature = 20.0
[boundary.left]
type = "dirichlet"
value = 100.0
[time]
scheme = "backward-euler"
dt = 10.0
t_end = 100.0
[output]
every = 5
directory = "{out}"
"""
TRANSIENT_STUDY = """
[study]
case = "base.toml"
samples = 12
seed = 7
[parameters]
"material.k" = { distribution = "normal", mean = 1.0, std = 0.6 }
[outputs]
thresholds = [50.0]
"""


def study(nprocs, args, cwd, env=None, wait=True):
    cmd = mpirun_command(nprocs) + [sys.executable, "-m", "solver", "study", *map(str, args)]
    if not wait:
        return subprocess.Popen(cmd, cwd=cwd, env={**mpi_env(grace=True), **(env or {})}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=cwd, env={**mpi_env(), **(env or {})}, capture_output=True, text=True,
                          timeout=120)


def wall_case(folder: Path) -> Path:
    case = folder / "wall.toml"
    case.write_text(WALL.read_text() + f'\ndirectory = "{folder}"\n')  # [output] is the file's last table
    return case


@pytest.fixture(scope="module")
def wall_studies(tmp_path_factory):
    """The wall study on 4 ranks in groups of 1, 2 and 4: each file's contents."""
    out = {}
    folder = tmp_path_factory.mktemp("wall")
    spec = folder / "wall_mc.toml"
    spec.write_text(WALL_STUDY.format(case=wall_case(folder)))
    for r in (1, 2, 4):
        proc = study(4, [spec, "--ranks-per-case", r, "--quiet", "--overwrite"], folder)
        assert proc.returncode == 0, proc.stderr
        with h5py.File(folder / "wall_mc" / "wall_mc.study.h5", "r") as f:
            out[r] = {name: f[name][()] for name in ("samples/values", "samples/status", "statistics/mean/000000",
                                                     "statistics/std/000000", "statistics/min/000000",
                                                     "statistics/max/000000", "statistics/above_0/000000",
                                                     "outputs/max_temperature", "mesh/geometry")}
            out[r]["attrs"] = dict(f.attrs)
            out[r]["message_bytes"] = f["samples/message"].dtype.itemsize
    out["spec"] = load_study(spec)
    return out


def test_the_same_samples_and_statistics_for_every_group_size(wall_studies):
    one = wall_studies[1]
    assert np.array_equal(one["samples/values"], sample_table(wall_studies["spec"]))
    assert np.all(one["samples/status"] == 0) and one["attrs"]["count"] == 64
    assert one["message_bytes"] == 1  # no failure: the message column takes a byte per sample
    for r in (2, 4):
        other = wall_studies[r]
        assert other["attrs"]["ranks_per_case"] == r
        assert np.array_equal(other["samples/values"], one["samples/values"])  # the seed alone decides
        for name in ("statistics/mean/000000", "statistics/std/000000", "statistics/min/000000",
                     "statistics/max/000000", "statistics/above_0/000000", "outputs/max_temperature"):
            scale = max(np.abs(one[name]).max(), 1.0)
            assert np.abs(other[name] - one[name]).max() <= 1e-12 * scale, name


def inner_surface(k, h):
    """Exact inner-surface temperature of the layered wall (U-value formula, see the case file)."""
    return 20.0 - 30.0 / (1 / 8 + 0.2 / 0.8 + 0.1 / k + 1 / h) / 8


def test_monte_carlo_statistics_match_the_exact_ones(wall_studies):
    """At the inner surface the solution is exact (piecewise linear), so the sample statistics
    differ from the exact mean and standard deviation by sampling error only: within 3 standard
    errors. The exact moments come from 4M draws of the closed form (standard error 1e-3 of ours)."""
    one = wall_studies[1]
    x = one["mesh/geometry"]
    inner = np.isclose(x[:, 0], 0.0)
    mean, std = one["statistics/mean/000000"][inner], one["statistics/std/000000"][inner]
    k, h = one["samples/values"].T
    assert np.allclose(mean, inner_surface(k, h).mean(), rtol=0, atol=1e-8)  # the statistics of these samples
    rng = np.random.default_rng(0)
    draws = inner_surface(np.exp(rng.normal(-3.2189, 0.25, 4_000_000)), rng.uniform(10, 40, 4_000_000))
    exact_mean, exact_std, n = draws.mean(), draws.std(), 64
    assert np.all(np.abs(mean - exact_mean) < 3 * exact_std / np.sqrt(n))
    assert np.all(np.abs(std - exact_std) < 3 * exact_std / np.sqrt(2 * (n - 1)))
    p = one["statistics/above_0/000000"][inner]
    assert np.allclose(p, np.mean(inner_surface(k, h) > 18.5))


def rank_pids(marker: str) -> list[int]:
    """The solver processes (not the launcher) whose command line holds ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if entry.name.isdigit() and argv and argv[0].decode(errors="replace").endswith(("python", "python3")) \
                and marker.encode() in b" ".join(argv):
            pids.append(int(entry.name))
    return pids


def test_failed_samples_are_recorded_and_a_stopped_study_continues_to_the_same_statistics(tmp_path):
    (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=tmp_path / "out"))
    spec = tmp_path / "mc.toml"
    spec.write_text(TRANSIENT_STUDY)
    result = tmp_path / "out" / "mc" / "mc.study.h5"
    proc = study(2, [spec], tmp_path, {"SOLVER_TEST_STEP_DELAY": "0.04"}, wait=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stdout.readline()
        if line.startswith("sample "):
            break
    for pid in rank_pids(str(spec)):
        os.kill(pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err
    with h5py.File(result, "r") as f:
        status = f["samples/status"][()]
        assert f.attrs["status"] == "stopped" and 0 < np.sum(status != -1) < 12
        first_segment = float(f.attrs["wall_time"])
    proc = study(2, [spec, "--restart", "latest", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(result, "r") as f:
        restarted = {name: f[name][()] for name in ("samples/status", "samples/message", "statistics/mean/000002",
                                                    "statistics/std/000002", "statistics/above_0/000002")}
        assert f.attrs["status"] == "complete"
        both = float(f.attrs["wall_time"])
    assert both > first_segment
    assert study(2, [spec, "--restart", "latest", "--quiet"], tmp_path).returncode == 0  # nothing left to run
    with h5py.File(result, "r") as f:  # every segment's time (it was the last one's alone: 0.2 s for 0.9 s)
        assert f.attrs["wall_time"] >= both
    k = sample_table(load_study(spec))[:, 0]
    assert np.any(k <= 0)  # the seed draws a conductivity <= 0: that sample fails, the others finish
    assert np.array_equal(restarted["samples/status"], np.where(k > 0, 0, 2))
    assert all(b"material.k must be > 0" in m for m in restarted["samples/message"][k <= 0])
    proc = study(3, [spec, "--overwrite", "--quiet"], tmp_path)  # uninterrupted, on another number of ranks
    assert proc.returncode == 0, proc.stderr
    with h5py.File(result, "r") as f:
        for name in ("statistics/mean/000002", "statistics/std/000002", "statistics/above_0/000002"):
            assert np.abs(f[name][()] - restarted[name]).max() <= 1e-12 * np.abs(restarted[name]).max(), name


BAD_STUDIES = {
    "unknown key": ('[study]\ncase = "{case}"\nsamples = 4\nwhat = 1\n[parameters]\n'
                    '"material.k" = {{ distribution = "uniform", low = 1.0, high = 2.0 }}\n', "unknown key study.what"),
    "non-numeric key": ('[study]\ncase = "{case}"\nsamples = 4\n[parameters]\n'
                        '"time.scheme" = {{ distribution = "uniform", low = 1.0, high = 2.0 }}\n',
                        "parameters.time.scheme: not a numeric key"),
    "missing key": ('[study]\ncase = "{case}"\nsamples = 4\n[parameters]\n'
                    '"material.q" = {{ distribution = "uniform", low = 1.0, high = 2.0 }}\n',
                    "parameters.material.q: not a key of the base case"),
    "bad distribution parameter": ('[study]\ncase = "{case}"\nsamples = 4\n[parameters]\n'
                                   '"material.k" = {{ distribution = "normal", mean = 1.0, std = -2.0 }}\n',
                                   "parameters.material.k.std: must be > 0"),
    "unknown distribution": ('[study]\ncase = "{case}"\nsamples = 4\n[parameters]\n'
                             '"material.k" = {{ distribution = "weibull", a = 1.0 }}\n',
                             "distribution: expected one of"),
    "sobol not a power of 2": ('[study]\ncase = "{case}"\nmethod = "sobol"\nsamples = 10\n[parameters]\n'
                               '"material.k" = {{ distribution = "uniform", low = 1.0, high = 2.0 }}\n',
                               "sobol needs a power of 2"),
    "mesh key with fields": ('[study]\ncase = "{case}"\nmethod = "grid"\n[parameters]\n'
                             '"mesh.nx" = {{ values = [10.0, 20.0] }}\n', "changes the mesh or the output times"),
    "element degree with fields": ('[study]\ncase = "{case}"\nmethod = "grid"\n[parameters]\n'
                                   '"element.degree" = {{ values = [1, 2] }}\n',
                                   "parameters.element.degree: changes the mesh or the output times"),
    "element degree with thresholds": ('[study]\ncase = "{case}"\nmethod = "grid"\n[parameters]\n'
                                       '"element.degree" = {{ values = [1, 2] }}\n[outputs]\nfields = false\n'
                                       'thresholds = [30.0]\n', "parameters.element.degree: changes the mesh"),
    "threshold below absolute zero": ('[study]\ncase = "{case}"\nsamples = 4\n[parameters]\n'
                                      '"material.k" = {{ distribution = "uniform", low = 1.0, high = 2.0 }}\n'
                                      '[outputs]\nthresholds = [20.0, -500.0]\n',
                                      r"outputs.thresholds: -500 C is below absolute zero \(-273.15 C\)"),
    "huge samples": ('[study]\ncase = "{case}"\nsamples = 1000000000000000000000000000000\n[parameters]\n'
                     '"material.k" = {{ distribution = "uniform", low = 1.0, high = 2.0 }}\n',
                     "study.samples: expected an integer below 2"),
    **{f"name {name}": (f'[study]\ncase = "{{case}}"\nname = "{name}"\nsamples = 4\n[parameters]\n'
                        '"material.k" = {{ distribution = "uniform", low = 1.0, high = 2.0 }}\n',
                        "study.name must be 1 to 100 letters.*not starting with '-' or '.'")
       for name in ("..", ".", ".hidden")},
    "unquoted dotted key": ('[study]\ncase = "{case}"\nsamples = 4\n[parameters]\n'
                            'material.k = {{ distribution = "normal", mean = 1.0, std = 0.1 }}\n',
                            'parameters.material: a dotted key must be quoted.*"material.k" = '),
    "table for a number": ('[study]\ncase = "{case}"\nsamples = 4\nseed = {{ a = 1 }}\n[parameters]\n'
                           '"material.k" = {{ distribution = "uniform", low = 1.0, high = 2.0 }}\n',
                           r"study.seed: expected an integer, got \{ a = 1 \}$"),
    "missing case": ('[study]\ncase = "nowhere.toml"\nsamples = 4\n[parameters]\n'
                     '"material.k" = {{ distribution = "uniform", low = 1.0, high = 2.0 }}\n', "study.case:"),
}


@pytest.mark.parametrize("name", BAD_STUDIES)
def test_bad_study_files_are_refused_with_the_key(tmp_path, name):
    text, expected = BAD_STUDIES[name]
    path = tmp_path / "bad.toml"
    path.write_text(text.format(case=WALL))
    with pytest.raises(CaseError, match=expected) as info:
        load_study(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("key, held", [
    ("material.k", "a table of 3 (T, value) points from k.csv"),
    ("region.hot.c.table", "[[0.0, 1.0], [50.0, 2.0]]"),
    ("region.hot.k", "'1 + T/100'"),
])
def test_a_parameter_on_a_table_of_the_base_case_names_what_it_holds(tmp_path, monkeypatch, key, held):
    """A key holding a table was shown as Python's repr of its points and file, cut at 60
    characters: {'table': [[0.0, 1.0], [50.0, 2.0], [100.0, 3."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "k.csv").write_text("T,k\n0,1\n50,2\n100,3\n")
    (tmp_path / "case.toml").write_text(
        '[mesh]\nnx = 4\nny = 4\n[material]\nk = { file = "k.csv" }\nrho = 1.0\nc = 1.0\n[region.hot]\n'
        'x = [0.0, 0.5]\nk = "1 + T/100"\nc = { table = [[0.0, 1.0], [50.0, 2.0]] }\n[boundary.left]\n'
        'type = "dirichlet"\nvalue = 1.0\n[time]\ndt = 0.1\nt_end = 0.2\n')
    (tmp_path / "study.toml").write_text(f'[study]\ncase = "case.toml"\nmethod = "grid"\n[parameters]\n'
                                         f'"{key}" = {{ values = [1.0, 2.0] }}\n')
    with pytest.raises(CaseError) as info:
        load_study(tmp_path / "study.toml")
    assert str(info.value) == (f"{tmp_path / 'study.toml'}: parameters.{key}: not a numeric key (it holds {held}); "
                               f"a study varies case keys that hold a number, such as material.k")


def test_a_grid_too_large_is_refused_before_its_values_are_held(tmp_path):
    """Three keys of a million values each: 5.6 s and 255 MB before the product was refused; the
    grid's size is checked as each key adds to it (the third, a bad one, is never read), and a
    million values are built at once."""
    grid = "".join(f'"{key}" = {{ low = 1.0, high = 2.0, count = 1000000 }}\n' for key in ("material.k", "material.rho"))
    path = tmp_path / "grid.toml"
    path.write_text(f'[study]\ncase = "{WALL}"\nmethod = "grid"\n[parameters]\n{grid}'
                    f'"material.c" = {{ low = 2.0, high = 1.0, count = 3 }}\n[outputs]\nfields = false\n')
    with pytest.raises(CaseError, match="the grid has 1,000,000,000,000 samples or more .from its first 2 keys"):
        load_study(path)
    path.write_text("".join(line for line in path.read_text().splitlines(True) if "material.rho" not in line
                            and "material.c" not in line))
    k = load_study(path).parameters[0].values  # a million: within the limit
    assert len(k) == 1_000_000 and k[0] == 1.0 and k[-1] == 2.0 and k[1] == 1.0 + 1.0 * 1 / 999_999


@pytest.mark.parametrize("scheme, dt", [("bdf2", '"adaptive"'), ("explicit-euler", '"auto"')])
def test_fields_over_steps_a_sample_chooses_are_refused_unless_the_output_times_are_fixed(tmp_path, scheme, dt):
    """Adaptive or "auto" steps written every N steps give each sample its own output times: field
    statistics over them are refused up front (they combined fields at different times, or failed
    the samples by the order they ran in); fixed output times, or no fields, are accepted."""
    case = TRANSIENT_CASE.format(out=tmp_path).replace("dt = 10.0", f"dt = {dt}")
    case = case.replace('scheme = "backward-euler"', f'scheme = "{scheme}"')
    (tmp_path / "base.toml").write_text(case)
    path = tmp_path / "study.toml"
    path.write_text(TRANSIENT_STUDY)
    with pytest.raises(CaseError, match=f"study.case: time.dt = {dt} with output.every = 5: each sample writes"):
        load_study(path)
    path.write_text(TRANSIENT_STUDY.replace("thresholds = [50.0]", "fields = false"))
    assert not load_study(path).fields
    (tmp_path / "base.toml").write_text(case.replace("every = 5", "times = [50.0, 100.0]"))
    path.write_text(TRANSIENT_STUDY)
    assert load_study(path).fields


def test_a_key_whose_name_is_no_bare_toml_key_is_varied(tmp_path):
    """A region named with an "=" or a blank is varied as the study names it (every sample failed:
    the name was cut at its "=")."""
    (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=tmp_path)
                                        + '[region."hot=zone 1"]\nx = [0.0, 0.05]\nk = 2.0\n')
    path = tmp_path / "study.toml"
    path.write_text(TRANSIENT_STUDY.replace('"material.k"', '"region.hot=zone 1.k"')
                    .replace('distribution = "normal", mean = 1.0, std = 0.6', 'distribution = "uniform", low = 1.0, '
                             'high = 4.0'))
    case = load_study(path).case_for([3.0])
    assert case.values["region"]["hot=zone 1"]["k"] == 3.0


def test_bad_study_command_lines_exit_2_with_one_line(tmp_path):
    spec = tmp_path / "ok.toml"
    spec.write_text(WALL_STUDY.format(case=wall_case(tmp_path)))
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_STUDIES["non-numeric key"][0].format(case=WALL))
    divisor = "--ranks-per-case 3: must be a positive divisor"
    for nprocs, args, expected in ((2, [spec, "--ranks-per-case", "3"], divisor),
                                   (2, [bad], "not a numeric key")):
        proc = study(nprocs, args, tmp_path)
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1 and expected in errors[0], proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_study_stops_before_its_wall_limit(tmp_path):
    """--wall-limit: the groups stop taking samples when the next one (twice the longest so far)
    and a safety margin would not fit, write the study file and exit 75."""
    (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=tmp_path / "out"))
    spec = tmp_path / "mc.toml"
    spec.write_text(TRANSIENT_STUDY)
    proc = study(2, [spec, "--wall-limit", "7", "--quiet"], tmp_path, {"SOLVER_TEST_STEP_DELAY": "0.04"})
    assert proc.returncode == 75, proc.stderr
    assert "study stopping (wall-time limit)" in proc.stderr and "--restart latest" in proc.stderr
    with h5py.File(tmp_path / "out" / "mc" / "mc.study.h5", "r") as f:
        assert f.attrs["status"] == "stopped" and np.sum(f["samples/status"][()] == -1) > 0
        pending = np.sum(f["samples/status"][()] == -1)
    # a limit too short for any sample: each group still does one (a requeued chain made no progress)
    proc = study(2, [spec, "--restart", "latest", "--wall-limit", "1", "--quiet"], tmp_path)
    with h5py.File(tmp_path / "out" / "mc" / "mc.study.h5", "r") as f:
        left = np.sum(f["samples/status"][()] == -1)
    assert left < pending and proc.returncode == (75 if left else 0), proc.stderr
    while left:
        study(2, [spec, "--restart", "latest", "--quiet"], tmp_path)
        with h5py.File(tmp_path / "out" / "mc" / "mc.study.h5", "r") as f:
            left = np.sum(f["samples/status"][()] == -1)
    proc = study(2, [spec, "--restart", "latest", "--wall-limit", "1", "--quiet"], tmp_path)  # nothing left: complete
    assert proc.returncode == 0 and "stopping" not in proc.stderr, proc.stderr


def test_integer_keys_take_rounded_values(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(f'[study]\ncase = "{WALL}"\nmethod = "grid"\n[parameters]\n'
                    f'"mesh.nx" = {{ values = [10.4, 20.6] }}\n"material.k" = {{ values = [0.5] }}\n'
                    f'[outputs]\nfields = false\n')
    spec = load_study(path)
    table = sample_table(spec)
    assert table.tolist() == [[10.0, 0.5], [21.0, 0.5]]
    case = spec.case_for(table[1])
    assert case.values["mesh"]["nx"] == 21 and isinstance(case.values["mesh"]["nx"], int)
    assert case.values["material"]["k"] == 0.5


@pytest.mark.parametrize("ranks, per_case", [(3, 1), (4, 2)])
def test_a_killed_study_keeps_its_finished_samples_and_continues_to_the_same_statistics(tmp_path, ranks, per_case):
    """SIGKILL on every rank of a 3-rank study (groups of 1) or a 4-rank one (groups of 2): the
    samples its groups finished are in their partial files, which a run of the same name leaves
    alone (its --overwrite moved them with its checkpoints); a fresh start refuses to replace them;
    --restart latest on 2 ranks continues from them to the statistics of an uninterrupted run."""
    (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=tmp_path / "out"))
    spec = tmp_path / "mc.toml"
    spec.write_text(TRANSIENT_STUDY)
    folder = tmp_path / "out" / "mc"
    env = {"SOLVER_TEST_STEP_DELAY": "0.03", "SOLVER_TEST_RECORD_SECONDS": "0"}
    proc = study(ranks, [spec, "--ranks-per-case", per_case], tmp_path, env, wait=False)
    finished, deadline = 0, time.monotonic() + 90
    while finished < 5 and time.monotonic() < deadline and proc.poll() is None:
        finished += proc.stdout.readline().startswith("sample ")
    assert finished == 5
    for pid in rank_pids(str(spec)):
        os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    partials = sorted((folder / "study_groups").glob("mc.group*.study.h5"))
    assert partials and not (folder / "mc.study.h5").exists()
    kept, counts = 0, []
    for path in partials:  # the group's finished samples only, with their numbers, in its rows file
        with h5py.File(path, "r") as f:
            rows = read_rows(rows_path(path), int(f.attrs["rows"]))
        status, index = rows.table.status, rows.table.index
        assert np.all(status != -1) and len(index) == len(status) and np.all(index < 12)
        kept += len(status)
        counts.append(len(status))
    assert kept >= 2
    if ranks == 3:  # a rows file cut short by hand: its group's samples run again, its statistics are left out
        cut = int(np.argmax(counts))
        with open(rows_path(partials[cut]), "r+b") as f:
            f.truncate(10)  # (inside its first block's header: none of the rows its partial file counts is left)
        kept -= counts[cut]
    info = subprocess.run([sys.executable, "-m", "solver", "info", str(partials[0])], capture_output=True, text=True)
    assert info.returncode == 2 and "the finished samples of one group of a study" in info.stderr, info.stderr
    if ranks == 3:  # a run of the same name shares the folder: its --overwrite moves its checkpoints, not these
        for extra in ([], ["--overwrite"]):
            run_solver(1, [tmp_path / "base.toml", "--set", "output.name=mc", "--quiet", *extra], cwd=tmp_path)
        assert sorted((folder / "study_groups").glob("mc.group*.study.h5")) == partials

    fresh = study(2, [spec, "--quiet"], tmp_path)
    assert fresh.returncode == 2 and "--restart latest" in fresh.stderr and "Traceback" not in fresh.stderr
    assert len([line for line in fresh.stderr.splitlines() if line.startswith("error:")]) == 1, fresh.stderr

    proc = study(2, [spec, "--restart", "latest"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("sample ") == 12 - kept  # the kept samples are not run again
    assert not list((folder / "study_groups").glob("mc.group*.study.h5"))
    names = ("samples/status", "outputs/max_temperature", "statistics/mean/000002", "statistics/std/000002",
             "statistics/above_0/000002")
    with h5py.File(folder / "mc.study.h5", "r") as f:
        assert f.attrs["status"] == "complete" and f.attrs["count"] == 11
        restarted = {name: f[name][()] for name in names}
    proc = study(2, [spec, "--overwrite", "--quiet"], tmp_path)  # uninterrupted
    assert proc.returncode == 0, proc.stderr
    if ranks == 3:  # the run's checkpoints are not the study's to move aside
        assert (folder / "checkpoint.h5").is_symlink() and any((folder / "checkpoints").glob("step_*.h5"))
    # samples solved on groups of 2 ranks agree with those on 1 rank to the solver's tolerance (1e-10)
    tolerance = 1e-12 if per_case == 1 else 1e-9
    with h5py.File(folder / "mc.study.h5", "r") as f:
        assert np.array_equal(f["samples/status"][()], restarted["samples/status"])
        for name in names[1:]:
            scale = np.nanmax(np.abs(restarted[name]))
            assert np.nanmax(np.abs(f[name][()] - restarted[name])) <= tolerance * scale, name


def test_a_study_stops_within_a_step_of_the_sample_in_flight(tmp_path):
    """SIGTERM while a long sample runs: the study stops at that sample's next step (not at its
    end) with status 75, keeps the samples done, and runs the interrupted one on --restart latest."""
    (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=tmp_path / "out"))
    spec = tmp_path / "slow.toml"
    spec.write_text(TRANSIENT_STUDY.replace("samples = 12", "samples = 3"))
    proc = study(1, [spec], tmp_path, {"SOLVER_TEST_STEP_DELAY": "0.6"}, wait=False)  # 10 steps: 6 s a sample
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not proc.stdout.readline().startswith("sample "):
        pass
    time.sleep(0.3)  # the next sample is in flight
    signalled = time.monotonic()
    for pid in rank_pids(str(spec)):
        os.kill(pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err
    assert time.monotonic() - signalled < 4.0  # a step (0.6 s) and the study file, not the 6-s sample
    with h5py.File(tmp_path / "out" / "slow" / "slow.study.h5", "r") as f:
        status = f["samples/status"][()]
    assert np.sum(status != -1) == 1 and status[1] == -1 and status[2] == -1
    proc = study(1, [spec, "--restart", "latest", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(tmp_path / "out" / "slow" / "slow.study.h5", "r") as f:
        assert np.all(f["samples/status"][()] != -1) and f.attrs["status"] == "complete"


def _two_sample_study_started(tmp_path, name: str, step_delay: str):
    """A study of two transient samples whose steps each take ``step_delay`` s, started in the
    background and past its first line (the samples running): (process, study file, status file)."""
    (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=tmp_path / "out"))
    spec = tmp_path / f"{name}.toml"
    spec.write_text(TRANSIENT_STUDY.replace("samples = 12", "samples = 2"))
    status = tmp_path / "status"
    proc = subprocess.Popen([sys.executable, "-m", "solver", "study", str(spec)], cwd=tmp_path,
                            env={**mpi_env(grace=True), "SOLVER_TEST_STEP_DELAY": step_delay,
                                 "SOLVER_STATUS_FILE": str(status)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None and not proc.stdout.readline().startswith("study "):
        pass  # the samples start
    return proc, spec, status


def test_a_second_ctrl_c_stops_a_study_at_once_with_130(tmp_path):
    """Ctrl-C twice while a sample's step runs: 130 at once, with the status recorded, as a run
    (the second waited for the step, 30 s here, and the study exited 75)."""
    proc, spec, status = _two_sample_study_started(tmp_path, "slow", step_delay="30")
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    err = proc.communicate(timeout=90)[1]
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert time.monotonic() - signalled < 20  # not after the 30-s step
    assert "stopped at once by Ctrl-C (SIGINT): the study keeps the samples" in err
    assert status.read_text().startswith("130")


def test_a_hang_up_stops_a_study_as_sigterm_does(tmp_path):
    """SIGHUP (the terminal closed) while a sample runs: the study stops at its next step with 75
    and the status recorded (it was killed, 129, with nothing recorded), and continues."""
    proc, spec, status = _two_sample_study_started(tmp_path, "hup", step_delay="0.5")
    proc.send_signal(signal.SIGHUP)
    err = proc.communicate(timeout=90)[1]
    assert proc.returncode == 75 and "study stopping (SIGHUP)" in err and "Traceback" not in err, err
    assert status.read_text().startswith("75 stopped")
    proc = study(1, [spec, "--restart", "latest", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_a_stop_that_reaches_one_group_stops_the_others_at_their_sample_s_end(tmp_path):
    """SIGTERM to one rank of a 3-group study: its group stopped at once, and the other groups ran
    every remaining sample before the study exited 75. They now take no further sample."""
    (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=tmp_path / "out"))
    spec = tmp_path / "mc.toml"
    spec.write_text(TRANSIENT_STUDY.replace("samples = 12", "samples = 24"))
    proc = study(3, [spec], tmp_path, {"SOLVER_TEST_STEP_DELAY": "0.1"}, wait=False)  # 10 steps: 1 s a sample
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not proc.stdout.readline().startswith("sample "):
        pass
    os.kill(rank_pids(str(spec))[-1], signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 75, err
    with h5py.File(tmp_path / "out" / "mc" / "mc.study.h5", "r") as f:
        status = f["samples/status"][()]
    assert np.sum(status == -1) >= 12, status  # each group finished at most its sample in flight


@pytest.mark.parametrize("law", [
    'distribution = "lognormal", mu = 1000.0, sigma = 1.0',
    'distribution = "truncated-normal", mean = 0.0, std = 1e-300, low = 1e10, high = 1e11'])
def test_a_distribution_that_gives_no_finite_value_is_refused(tmp_path, law):
    """Parameters valid one by one whose distribution overflows (exp(1000)) or is undefined: exit 2
    naming the key (every sample failed, and the study exited 0)."""
    path = tmp_path / "bad.toml"
    path.write_text(f'[study]\ncase = "{WALL}"\nsamples = 4\n[parameters]\n"material.k" = {{ {law} }}\n')
    with pytest.raises(CaseError, match="parameters.material.k: its .* distribution gives") as info:
        sample_table(load_study(path))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("law, reaches", [
    ('distribution = "uniform", low = -10.0, high = 40.0', "its uniform distribution from -10 to 40 takes values"),
    ('distribution = "truncated-normal", mean = 5.0, std = 3.0, low = -1.0, high = 9.0',
     "its truncated-normal distribution from -1 to 9 takes values"),
    ('distribution = "uniform", low = -2.0, high = -1.0', "its uniform distribution from -2 to -1 takes values")])
def test_a_parameter_beyond_its_key_s_range_is_refused_up_front(tmp_path, law, reaches):
    """h uniform in [-10, 40]: a fifth of the samples failed (h < 0), and the study exited 0 with
    statistics of the others. Bounded laws are checked at their ends; an end the key only touches
    (k uniform from 0: no sample falls on it), an unbounded law and values listed (each its own
    sample, failed and recorded) pass."""
    path = tmp_path / "bad.toml"
    path.write_text(f'[study]\ncase = "{WALL}"\nsamples = 4\n[parameters]\n"boundary.right.h" = {{ {law} }}\n')
    with pytest.raises(CaseError, match=re.escape(f"parameters.boundary.right.h: {reaches} that the case refuses "
                                                  f"(boundary.right.h must be >= 0.0); keep it")):
        load_study(path)
    path.write_text(f'[study]\ncase = "{WALL}"\nsamples = 4\n[parameters]\n'
                    f'"material.k" = {{ distribution = "uniform", low = 0.0, high = 1.0 }}\n'
                    f'"boundary.right.h" = {{ distribution = "normal", mean = 10.0, std = 40.0 }}\n')
    load_study(path)
    path.write_text(f'[study]\ncase = "{WALL}"\nmethod = "grid"\n[parameters]\n'
                    f'"boundary.right.h" = {{ values = [10.0, -5.0, 20.0] }}\n')
    load_study(path)


def test_a_study_signalled_while_it_starts_stops_with_75_and_continues(tmp_path):
    """SIGTERM while the study still imports or reads its case (it died of the signal, 143, with
    no status recorded, and a batch script did not requeue it): 75, the status recorded, and the
    study goes on with --restart latest, but not with other thresholds (it mixed two)."""
    (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=tmp_path / "out"))
    spec = tmp_path / "early.toml"
    spec.write_text(TRANSIENT_STUDY.replace("samples = 12", "samples = 3"))
    status = tmp_path / "status"
    proc = subprocess.Popen([sys.executable, "-m", "solver", "study", str(spec), "--quiet"], cwd=tmp_path,
                            env={**os.environ, "SOLVER_STATUS_FILE": str(status)}, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 75 and "Traceback" not in err, err
    assert status.read_text().startswith("75 stopped")
    spec.write_text(TRANSIENT_STUDY.replace("samples = 12", "samples = 3").replace("[50.0]", "[60.0]"))
    proc = study(1, [spec, "--restart", "latest", "--quiet"], tmp_path)  # statistics of two thresholds: refused
    assert proc.returncode == 2 and "outputs.thresholds changed since the study was stopped" in proc.stderr
    spec.write_text(TRANSIENT_STUDY.replace("samples = 12", "samples = 3"))
    proc = study(1, [spec, "--restart", "latest", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_a_study_whose_every_sample_failed_exits_3(tmp_path):
    """Every sample below absolute zero: the study file records them, and the study ends with 3
    (it ended with 0, as if its empty statistics were a result)."""
    (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=tmp_path / "out"))
    spec = tmp_path / "cold.toml"
    spec.write_text(TRANSIENT_STUDY.replace("samples = 12", "samples = 3").replace(
        '"material.k" = { distribution = "normal", mean = 1.0, std = 0.6 }',
        '"boundary.left.value" = { distribution = "normal", mean = -1000.0, std = 10.0 }'))  # (unbounded: not
    # refused up front as a uniform law beyond the key's range is)
    proc = study(1, [spec, "--quiet"], tmp_path)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 3 and len(errors) == 1 and "every one of the 3 samples failed" in errors[0], proc.stderr
    with h5py.File(tmp_path / "out" / "cold" / "cold.study.h5", "r") as f:
        assert f.attrs["status"] == "complete" and f.attrs["exit_status"] == 3 and f.attrs["failed"] == 3


def test_a_study_that_cannot_fit_on_its_disk_is_refused_up_front(tmp_path):
    """The study file and the groups' files of field statistics are estimated before the first
    sample (it failed mid-way, naming a temporary group file, with no way forward)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=disk).replace("nx = 10", "nx = 400")
                                            .replace("ny = 2", "ny = 40"))
        spec = tmp_path / "big.toml"
        spec.write_text(TRANSIENT_STUDY)
        proc = study(1, [spec, "--quiet"], tmp_path)
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert proc.returncode == 74 and len(errors) == 1 and "the study needs about" in errors[0], proc.stderr
        assert not (disk / "big").exists()
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_base_mesh_that_cannot_fit_in_memory_is_refused_up_front(tmp_path):
    """A base case of 10^10 nodes: the study built its mesh before any check, and ended with an
    internal error (a MemoryError, exit 1) where the run of the same case is refused with 2."""
    (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=tmp_path / "out").replace("nx = 10", "nx = 100000")
                                        .replace("ny = 2", "ny = 100000"))
    spec = tmp_path / "huge.toml"
    spec.write_text(TRANSIENT_STUDY)
    for nprocs in (1, 3):
        proc = study(nprocs, [spec, "--quiet"], tmp_path)
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert proc.returncode == 2 and len(errors) == 1 and "base.toml: mesh 100000 x 100000" in errors[0], \
            proc.stderr
        assert "internal error" not in proc.stderr and not (tmp_path / "out" / "huge").exists()


def test_a_sample_that_a_run_would_refuse_after_its_march_fails(tmp_path):
    """k = 1e30: run alone, the case ends with 3 (its heat balance lost in round-off); as a study's
    sample it was "done", its meaningless heat flows in the statistics."""
    (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=tmp_path / "out"))
    spec = tmp_path / "listed.toml"
    spec.write_text('[study]\ncase = "base.toml"\nmethod = "list"\n[parameters]\n"material.k" = { values = [1.0, 1e30] }\n')
    proc = study(1, [spec, "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(tmp_path / "out" / "listed" / "listed.study.h5", "r") as f:
        assert f["samples/status"][()].tolist() == [0, 3]
        assert "the heat balance does not close" in f["samples/message"][1].decode()


def test_overwrite_moves_nothing_when_the_new_study_is_refused(tmp_path):
    """A study run again with --overwrite and a distribution that gives no finite value: its
    earlier study file was moved to .bak (an older .bak replaced) before the check refused it."""
    case = wall_case(tmp_path)
    good = tmp_path / "s.toml"
    good.write_text(f'[study]\ncase = "{case}"\nname = "s"\nsamples = 2\n[parameters]\n'
                    f'"boundary.right.h" = {{ distribution = "uniform", low = 10.0, high = 40.0 }}\n')
    assert study(1, [good, "--quiet"], tmp_path).returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text().replace('distribution = "uniform", low = 10.0, high = 40.0',
                                            'distribution = "lognormal", mu = 1000.0, sigma = 1.0'))
    proc = study(1, [bad, "--overwrite"], tmp_path)
    assert proc.returncode == 2 and "its lognormal distribution gives inf" in proc.stderr, proc.stderr
    assert (tmp_path / "s" / "s.study.h5").is_file() and not list((tmp_path / "s").glob("*.bak"))


def test_overwrite_keeps_the_saved_runs_with_the_study_file_it_moves(tmp_path):
    """With output.save_runs, --overwrite moved the study file to .bak and wrote the new samples'
    runs over the old ones: the backup described runs that no longer existed."""
    case = wall_case(tmp_path)
    spec = tmp_path / "s.toml"
    spec.write_text(f'[study]\ncase = "{case}"\nname = "s"\nmethod = "list"\n[parameters]\n'
                    f'"boundary.right.h" = {{ values = [10.0] }}\n[outputs]\nsave_runs = true\n')
    assert study(1, [spec, "--quiet"], tmp_path).returncode == 0
    again = study(1, [spec, "--quiet"], tmp_path)  # a study's name is study.name (no output.name)
    assert again.returncode == 2 and "or another study.name" in again.stderr, again.stderr
    first = {p.name: p.read_bytes() for p in (tmp_path / "s" / "samples").iterdir()}
    spec.write_text(spec.read_text().replace("values = [10.0]", "values = [40.0]"))
    assert study(1, [spec, "--quiet", "--overwrite"], tmp_path).returncode == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / "s" / "samples.bak").iterdir()} == first
    assert (tmp_path / "s" / "s.study.h5.bak").is_file() and list((tmp_path / "s" / "samples").iterdir())
    assert ">s.study.h5.bak:/" in (tmp_path / "s" / "s.study.xdmf.bak").read_text()
    (tmp_path / "s" / "samples" / "mine.csv").write_text("1,2")  # the next --overwrite deleted it with samples.bak
    assert study(1, [spec, "--quiet", "--overwrite"], tmp_path).returncode == 0
    assert study(1, [spec, "--quiet", "--overwrite"], tmp_path).returncode == 0
    assert (tmp_path / "s" / "samples.bak.kept" / "mine.csv").read_text() == "1,2"
    assert [p.name for p in (tmp_path / "s" / "samples.bak.kept").iterdir()] == ["mine.csv"]


def test_a_new_study_does_not_write_its_saved_runs_over_files_already_there(tmp_path):
    """A study started afresh beside a samples folder (its study file gone, or a file of the
    user's named as a sample's run) wrote the runs over them (exit 0, "mine" became HDF5): refused
    in one line, and --overwrite sets the folder aside as samples.bak."""
    case = wall_case(tmp_path)
    spec = tmp_path / "s.toml"
    spec.write_text(f'[study]\ncase = "{case}"\nname = "s"\nmethod = "list"\n[parameters]\n'
                    f'"boundary.right.h" = {{ values = [10.0] }}\n[outputs]\nsave_runs = true\n')
    samples = tmp_path / "s" / "samples"
    samples.mkdir(parents=True)
    name = "case_000000.h5"  # (the name of the saved run of sample 0)
    (samples / name).write_text("mine")
    proc = study(1, [spec, "--quiet"], tmp_path)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and f"holds 1 file already ({name}, ...)" in errors[0], proc.stderr
    assert (samples / name).read_text() == "mine" and not (tmp_path / "s" / "s.study.h5").exists()
    assert study(1, [spec, "--quiet", "--overwrite"], tmp_path).returncode == 0
    assert (tmp_path / "s" / "samples.bak" / name).read_text() == "mine" and (samples / name).is_file()


def test_a_sample_s_extremes_count_every_step_not_only_the_written_ones(tmp_path):
    """A heater on for the first 10 s of 600, and snapshots at 0 and 600 s only: max_temperature
    was the largest written value (the final 36 C, where the peak was 45 C). It is the largest over
    every step: that of the same run written at every step."""
    case = tmp_path / "pulse.toml"
    case.write_text(
        '[mesh]\nnx = 8\nny = 2\nlengths = [0.1, 0.02]\n[material]\nk = 50.0\nrho = 7800.0\nc = 500.0\n'
        '[initial]\ntemperature = 20.0\n[source]\nf = "where(t <= 10, 1e7, 0)"\n[boundary.right]\ntype = "robin"\n'
        f'h = 50.0\nT_inf = 20.0\n[time]\ndt = 5.0\nt_end = 600.0\n[output]\ndirectory = "{tmp_path}"\nevery = 1000\n')
    spec = tmp_path / "s.toml"
    spec.write_text(f'[study]\ncase = "{case}"\nname = "s"\nmethod = "list"\n[parameters]\n'
                    f'"boundary.right.h" = {{ values = [50.0] }}\n')
    assert study(1, [spec, "--quiet"], tmp_path).returncode == 0
    run_solver(1, [str(case), "--quiet", "--set", "output.every=1"], cwd=tmp_path)
    with h5py.File(tmp_path / "pulse" / "pulse.h5", "r") as f:
        fields = f["fields/temperature"]
        peak = max(float(fields[key][()].max()) for key in fields)
        final = float(fields[sorted(fields)[-1]][()].max())
    with h5py.File(tmp_path / "s" / "s.study.h5", "r") as f:
        assert f["outputs/max_temperature"][0] == pytest.approx(peak, rel=1e-12)
        assert f["outputs/final_max_temperature"][0] == pytest.approx(final, rel=1e-12)
    assert peak > final + 1.0


def test_the_wall_limit_of_a_study_takes_the_forms_of_run_wall_limit():
    """study --wall-limit 1:00:00 was refused where run.wall_limit = "1:00:00" is taken."""
    import argparse

    from solver.app.commands import positive_seconds

    assert (positive_seconds("1:00:00"), positive_seconds("90"), positive_seconds("1-00:00:01")) == (3600, 90, 86401)
    for bad in ("abc", "0", "-5", "inf"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_seconds(bad)


def test_a_restart_refuses_a_base_case_whose_table_or_mesh_file_changed(tmp_path):
    """The restart compared the base case's text alone: a table file or the mesh file changed
    between two segments gave a study whose samples came from two problems (heat in 1.98e6 J,
    then 5.37e6 J), complete, exit 0. Refused now, naming what changed; restored, it goes on."""
    import meshio

    points = np.array([[x, y] for y in (0.0, 0.02) for x in (0.0, 0.05, 0.1)])
    cells = [("line", np.array([[0, 3]])), ("quad", np.array([[0, 1, 4, 3], [1, 2, 5, 4]]))]
    mesh = meshio.Mesh(points, cells, cell_data={"gmsh:physical": [np.array([1]), np.array([2, 2])],
                                                 "gmsh:geometrical": [np.array([1]), np.array([1, 1])]},
                       field_data={"left": np.array([1, 1]), "body": np.array([2, 2])})
    meshio.write(tmp_path / "m.msh", mesh, file_format="gmsh22", binary=False)
    table = tmp_path / "c.csv"
    table.write_text("T,c\n0,1000\n200,1000\n")
    case = TRANSIENT_CASE.format(out=tmp_path / "out").replace("c = 1000.0", 'c = { file = "c.csv" }')
    case = case.replace('type = "rectangle"\ncell = "quadrilateral"\nnx = 10\nny = 2\nlengths = [0.1, 0.02]',
                        'file = "m.msh"')
    (tmp_path / "base.toml").write_text(case)
    spec = tmp_path / "mc.toml"
    spec.write_text(TRANSIENT_STUDY.replace("samples = 12", "samples = 6"))
    proc = study(1, [spec, "--wall-limit", "1", "--quiet"], tmp_path, {"SOLVER_TEST_STEP_DELAY": "0.2"})
    assert proc.returncode == 75, proc.stderr
    table.write_text("T,c\n0,2000\n200,2000\n")
    proc = study(1, [spec, "--restart", "latest", "--quiet"], tmp_path)
    assert proc.returncode == 2 and "a file that the base case" in proc.stderr and "(a table) changed" in proc.stderr
    table.write_text("T,c\n0,1000\n200,1000\n")
    meshio.write(tmp_path / "m.msh", meshio.Mesh(2 * points, cells, cell_data=mesh.cell_data,
                                                 field_data=mesh.field_data), file_format="gmsh22", binary=False)
    proc = study(1, [spec, "--restart", "latest", "--quiet"], tmp_path)
    assert proc.returncode == 2 and "the contents of the base case's mesh.file = m.msh changed" in proc.stderr
    meshio.write(tmp_path / "m.msh", mesh, file_format="gmsh22", binary=False)
    proc = study(1, [spec, "--restart", "latest", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(tmp_path / "out" / "mc" / "mc.study.h5", "r") as f:
        assert f.attrs["status"] == "complete" and np.all(f["samples/status"][()] == 0)


def test_a_restart_refuses_a_study_whose_parameters_were_renamed(tmp_path):
    """The same values under another key gave the same sample table, and the restart filed the
    samples run with material.k under material.rho (complete, exit 0)."""
    (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=tmp_path / "out"))
    spec = tmp_path / "mc.toml"
    text = ('[study]\ncase = "base.toml"\nmethod = "list"\n[parameters]\n'
            '"material.k" = { values = [1.0, 2.0, 3.0, 4.0] }\n')
    spec.write_text(text)
    proc = study(1, [spec, "--wall-limit", "1", "--quiet"], tmp_path, {"SOLVER_TEST_STEP_DELAY": "0.2"})
    assert proc.returncode == 75, proc.stderr
    spec.write_text(text.replace("material.k", "material.rho"))
    proc = study(1, [spec, "--restart", "latest", "--quiet"], tmp_path)
    assert proc.returncode == 2 and "the study's parameters changed since it was stopped (were material.k)" \
        in proc.stderr, proc.stderr


@pytest.mark.parametrize("ranks", [1, 3])
def test_samples_with_their_own_output_times_keep_their_probes_and_times(tmp_path, ranks):
    case = tmp_path / "base.toml"
    case.write_text(TRANSIENT_CASE.format(out=tmp_path) + "probes = [[0.02, 0.01], [0.08, 0.01]]\n")
    path = tmp_path / "tend.toml"
    path.write_text('[study]\ncase = "base.toml"\nmethod = "list"\n[parameters]\n'
                    '"time.t_end" = { values = [50.0, 100.0, 30.0] }\n[outputs]\nfields = false\n')
    proc = study(ranks, [path, "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(tmp_path / "tend" / "tend.study.h5", "r") as f:
        probes, times, count = (f[f"outputs/{k}"][()] for k in ("probes", "probe_times", "probe_count"))
    assert count.tolist() == [2, 3, 2] and probes.shape == (3, 3, 2) and times.shape == (3, 3)
    for i, (t_end, n) in enumerate(zip((50.0, 100.0, 30.0), (2, 3, 2))):
        assert np.all(np.isfinite(probes[i, :n])) and np.all(np.isnan(probes[i, n:])), probes[i]
        assert times[i, n - 1] == pytest.approx(t_end) and np.all(np.isnan(times[i, n:]))


def test_a_partial_file_with_longer_probe_series_is_merged_whole():
    from solver.app.study.partial import merge_partial
    from solver.app.study.studyfile import SampleTable, StudyContents

    def contents(status, probes):
        n = len(status)
        table = SampleTable(np.zeros((n, 1)), np.array(status), np.zeros(n), np.full(n, "", dtype=object))
        return StudyContents({}, table, {"probes": probes, "probe_times": probes[..., 0]})

    data = contents([0, -1], np.array([[[1.0], [2.0]], [[np.nan], [np.nan]]]))
    part = contents([-1, 0], np.array([[[np.nan]] * 3, [[4.0], [5.0], [6.0]]]))
    merged = merge_partial(data, part, Path("part.h5")).outputs
    assert merged["probes"][1, :, 0].tolist() == [4.0, 5.0, 6.0]
    assert merged["probes"][0, :2, 0].tolist() == [1.0, 2.0] and np.isnan(merged["probes"][0, 2, 0])


def test_field_statistics_that_would_not_fit_in_memory_are_refused_up_front(tmp_path, monkeypatch):
    from mpi4py import MPI

    from solver.app.study import driver

    (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=tmp_path).replace("t_end = 100.0", "t_end = 3e5")
                                        .replace("every = 5", "every = 1"))
    path = tmp_path / "big.toml"
    path.write_text(TRANSIENT_STUDY.replace("[50.0]", str([float(t) for t in range(16)])))
    spec = load_study(path)
    monkeypatch.setattr(driver, "memory_available", lambda: 2**29)
    with pytest.raises(CaseError, match="field statistics need about .* outputs.fields = false") as info:
        driver.check_statistics_memory(spec, MPI.COMM_WORLD, 1, 33)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    monkeypatch.setattr(driver, "memory_available", lambda: 2**40)
    driver.check_statistics_memory(spec, MPI.COMM_WORLD, 1, 33)  # (30001 times x 33 nodes x 20 fields: 0.5 GiB)


def test_a_restart_refuses_a_study_whose_save_runs_changed(tmp_path):
    (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=tmp_path))
    path = tmp_path / "runs.toml"
    text = ('[study]\ncase = "base.toml"\nmethod = "list"\n[parameters]\n"material.k" = { values = [1.0, 2.0] }\n'
            '[outputs]\nfields = false\nsave_runs = false\n')
    path.write_text(text)
    assert study(1, [path, "--quiet"], tmp_path).returncode == 0
    path.write_text(text.replace("save_runs = false", "save_runs = true"))
    proc = study(1, [path, "--restart", "latest", "--quiet"], tmp_path)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "outputs.save_runs changed" in errors[0], proc.stderr


def test_a_group_s_record_appends_only_the_samples_since_the_one_before(tmp_path):
    """A group's record appends the samples finished since its last one to its rows file and keeps
    no other in memory; its partial study file holds no rows (it held every finished sample, written
    whole at each record: 100 MB every 5 s at 1e6 samples). Rows appended after the partial file was
    last written (a kill between the two), and a torn last block, are not read."""
    from mpi4py import MPI

    from solver.app.study.driver import GroupShare
    from solver.app.study.partial import partial_path, read_partial, record_partial
    from solver.app.study.sample import SampleResult

    (tmp_path / "base.toml").write_text(TRANSIENT_CASE.format(out=tmp_path / "out"))
    path = tmp_path / "mc.toml"
    path.write_text(TRANSIENT_STUDY.replace("samples = 12", "samples = 20000").replace("[outputs]", "[outputs]\n"
                                                                                      "fields = false"))
    spec = load_study(path)
    table = sample_table(spec)
    share, partial = GroupShare([], None, None, 0, False), partial_path(tmp_path / "out" / "mc", "mc", 0)
    sizes = []
    for batch in (range(0, 2000), range(2000, 4000), range(4000, 4001)):
        share.records += [SampleResult(i, 0 if i % 7 else 3, "" if i % 7 else f"no {i}", 0.5,
                                       {"max_temperature": float(i)}) for i in batch]
        record_partial(partial, MPI.COMM_SELF, "gathered", spec, table, {}, share, 22)
        sizes.append((rows_path(partial).stat().st_size, partial.stat().st_size))
        assert share.records == []
    assert share.rows == 4001
    assert sizes[2][0] - sizes[1][0] < (sizes[1][0] - sizes[0][0]) / 20  # one sample's block, not 4001 rows
    assert sizes[2][1] == sizes[1][1] == sizes[0][1]  # no rows in the partial file: its size does not grow
    part = read_partial(partial, MPI.COMM_SELF, "gathered", None)
    assert part.table.index.tolist() == list(range(4001))
    assert np.array_equal(part.outputs["max_temperature"], np.arange(4001.0))
    assert part.table.message[7] == "no 7" and part.table.status[7] == 3 and part.table.message[8] == ""
    assert np.array_equal(part.table.values, table[:4001])
    share.records.append(SampleResult(4001, 0, "", 0.5, {"max_temperature": 1.0}))
    record_partial(partial, MPI.COMM_SELF, "gathered", spec, table, {}, share, 22)
    with h5py.File(partial, "r+") as f:  # as if killed after the append and before the partial file's write
        f.attrs["rows"] = 4001
    with open(rows_path(partial), "ab") as f:  # and a block torn by a kill
        f.write(b"SOLVROW1" + (1000).to_bytes(8, "little") + b"\0" * 100)
    assert len(read_partial(partial, MPI.COMM_SELF, "gathered", None).table.index) == 4001
    assert len(read_rows(rows_path(partial)).table.index) == 4002


@pytest.mark.parametrize("ranks", [1, 3])
def test_a_stopped_study_s_tables_are_written_by_rank_0_and_not_sent_to_the_others(tmp_path, ranks):
    """A stop writes the study file's tables (a row per sample) from rank 0, which builds them;
    they were broadcast whole, pickled, to every rank (18 MB at 2e5 samples, seconds of a stop at
    1e6): the other ranks now receive the datasets' shapes and dtypes, and the whole run's
    collectives send a few kB whatever the number of samples."""
    found = run_script(ranks, "study_stop_checks.py", tmp_path, 200000, timeout=120)
    assert found["status"] == 75 and found["attrs"] == ["stopped", ranks], found
    assert found["done"] == list(range(ranks)) and found["rows"] == [200000] * 4
    assert found["values"] and found["pending_nan"]
    assert np.allclose(found["max_temperature"], 100.0, rtol=1e-12)
    assert max(sum(sent.values()) for sent in found["sent"]) < 1 << 16, found["sent"]


@pytest.mark.parametrize("ranks", [1, 3])
def test_a_restart_keeps_the_study_s_tables_on_rank_0(tmp_path, ranks):
    """A restart read the study file's tables and the partial files' rows on rank 0 and pickled
    them whole to every rank (18 MB at 2e5 samples, 100 MB per rank at 1e6): rank 0 now reads,
    checks and merges them, and the others receive the runs of the samples left to run, the
    counts and the datasets' shapes; a stop, a kill before the study file and a restart that
    merges both keep every sample done."""
    found = run_script(ranks, "study_restart_checks.py", tmp_path, 200000, timeout=120)
    assert found["status"] == [75, 75] and found["partials"] == ranks, found
    assert found["attrs"] == ["stopped", 3 * ranks] and found["done"] == list(range(3 * ranks))
    assert found["rows"] == [200000] * 4 and found["values"] and found["pending_nan"]
    assert np.allclose(found["max_temperature"], 100.0, rtol=1e-12)
    assert max(sum(sent.values()) for sent in found["sent"]) < 1 << 16, found["sent"]
