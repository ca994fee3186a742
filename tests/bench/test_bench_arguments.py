"""``bench``'s five forms on one parser: each form's defaults, and the options of another form
refused with one line (before anything runs)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import mpi_env

from solver.app.commands import build_parser
from solver.errors import CaseError


def parse(*words):
    return build_parser().parse_args(["bench", *words])


def test_each_form_gets_its_own_defaults():
    machine = parse()
    assert machine.ranks is None and machine.repeat is None and machine.steps is None  # chosen by the sizes
    assert machine.dolfinx == "auto" and machine.dolfinx_repeat == 1 and machine.dolfinx_json == []
    assert machine.json == Path("outputs/bench/bench.json") and parse("--ranks", "3").ranks == 3
    solvers = parse("--solvers")
    assert solvers.ranks == [1, 2] and solvers.repeat == 3 and solvers.dim == 2 and solvers.n is None
    assert solvers.set == [] and solvers.iteration_ranks == [] and solvers.block3d_steps == 50
    assert solvers.timeout == 3600.0 and solvers.json == Path("outputs/bench/solvers.json")
    assert parse("--solvers", "--ranks", "1", "2", "4").ranks == [1, 2, 4]
    study = parse("--study")
    assert (study.ranks, study.repeat, study.n, study.steps) == (2, 3, 80, 80)
    assert study.json == Path("outputs/bench/study.json") and parse("--study", "--ranks", "4").ranks == 4
    accuracy = parse("--accuracy")
    assert (accuracy.ranks, accuracy.repeat, accuracy.dim, accuracy.p1, accuracy.p2) == (1, 3, None, None, None)
    assert accuracy.plot == Path("outputs/bench/accuracy.png") and accuracy.json == Path("outputs/bench/accuracy.json")


def test_defaults_are_fresh_lists():
    parse("--solvers").set.append("x")
    assert parse("--solvers").set == []


@pytest.mark.parametrize("words, message", [
    (["--solvers", "--quick"], "--quick: only with the machine figures, not with --solvers"),
    (["--study", "--dim", "3"], "--dim: only with --solvers or --accuracy, not with --study"),
    (["--n", "8"], "--n: only with --solvers or --study, not with the machine figures"),
    (["--solvers", "--steps", "3"], "--steps: only with the machine figures or --study, not with --solvers"),
    (["--ranks", "1", "2"], "--ranks 1 2: one number of ranks (a list with --solvers)"),
    (["--only", "stream,spmv"], "--only stream,spmv: unknown parts ['spmv']"),
    (["--solvers", "--study"], "not allowed with argument --solvers"),
    (["--accuracy", "--p1", "8", "16"], "--p1/--p2: with one --dim"),
    (["--accuracy", "--degree", "2"], "--degree: only with --solvers, not with --accuracy"),
])
def test_options_of_another_form_are_refused(words, message):
    with pytest.raises(CaseError, match="command line: ") as info:
        parse(*words)
    assert message in str(info.value)


def test_an_hdf5_file_or_a_fifo_is_never_a_target_or_an_input_of_bench(tmp_path):
    """--json onto a results file replaced it with the figures (exit 0); --dolfinx-json of a FIFO
    blocked for ever."""
    import os

    import h5py

    results = tmp_path / "run.h5"
    with h5py.File(results, "w") as f:
        f["time"] = [0.0]
    fifo = tmp_path / "peer.json"
    os.mkfifo(fifo)
    for words, message in ((["--json", str(results)], "is an HDF5 file (results, a study or a checkpoint?)"),
                           (["--accuracy", "--plot", str(results)], "is an HDF5 file"),
                           (["--dolfinx-json", str(fifo)], "is a FIFO, not a regular file")):
        with pytest.raises(CaseError, match="command line: ") as info:
            parse(*words)
        assert message in str(info.value)


RUN = {"dim": 2, "N": 32, "degree": 1, "ranks": 1, "t_matrix_create": 0.01, "t_matrix_values": 0.02,
       "t_matrix_reassemble": 0.015, "t_mesh": 0.5, "t_setup": 1.0, "t_assemble_matrix": 0.03, "t_solver_setup": 0.01}


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"\x89HDF\r\n\x1a\n" + bytes(64), "is an HDF5 file, not the JSON lines dolfinx_heat.py prints"),
    (b'{"t_matrix_create": 0.1, "t_ma\xff', "not text (byte 30 is not UTF-8)"),
    (b'log\n{"dim": 2, "N": 32, "t_matrix_create": 0.01, "t_ma\n', "line 2: not valid JSON (Unterminated string "
                                                                   "starting at column 46)"),
    (json.dumps({k: v for k, v in RUN.items() if k != "t_mesh"}).encode(), "line 1: lacks t_mesh"),
    (json.dumps({**RUN, "ranks": 0}).encode(), "line 1: ranks 0: from 1 to 4096"),
    (json.dumps({**RUN, "dim": 4}).encode(), "line 1: dim 4: 2 or 3"),
    (json.dumps({**RUN, "t_matrix_values": float("nan")}).encode(), "line 1: t_matrix_values nan: seconds"),
    (json.dumps({**RUN, "t_matrix_create": "fast"}).encode(), "line 1: t_matrix_create fast: seconds"),
    (b'{"t_matrix_create": ' + b"[" * 100_000 + b"\n", "line 1: not valid JSON (nested too deep)"),
    (b'a log\n{"other": 1}\n', "no run of dolfinx_heat.py in it"),
])
def test_a_dolfinx_json_file_is_read_with_the_command_line(tmp_path, content, message):
    """A missing, binary or truncated file, or runs without the figures compared, failed after
    every measurement (exit 1 on every rank: FileNotFoundError, UnicodeDecodeError, KeyError)."""
    path = tmp_path / "dolfinx.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CaseError, match="command line: --dolfinx-json ") as info:
        parse("--quick", "--dolfinx-json", str(path))
    assert f"{path}: {message}" in str(info.value), info.value
    path.write_text("a log line\n" + json.dumps(RUN) + "\n")
    assert parse("--quick", "--dolfinx-json", str(path)).dolfinx_json == [str(path)]


def test_a_missing_dolfinx_json_file_ends_bench_before_any_measurement(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "solver", "bench", "--quick", "--ranks", "2", "--dolfinx-json",
                           "nowhere.jsonl", "--json", str(tmp_path / "b.json")], cwd=tmp_path, env=mpi_env(),
                          capture_output=True, text=True, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "--dolfinx-json nowhere.jsonl: no such file" in errors[0]
    assert "bench on" not in proc.stderr and "Traceback" not in proc.stderr and not list(tmp_path.iterdir())


@pytest.mark.parametrize("ranks, option", [(1, "--cells"), (3, "--cells"), (3, "--stream")])
def test_sizes_beyond_the_machine_s_memory_end_bench_before_any_measurement(tmp_path, ranks, option):
    """--cells 1e9 (within its range) built its meshes until the machine ran out of memory. (--stream
    1e9 takes 24 GB a rank: on 3 ranks beyond any machine this suite runs on, else skipped.)"""
    from solver.bench.fits import STREAM_BYTES
    from solver.parallel.memory import memory_available

    if option == "--stream" and 1e9 * STREAM_BYTES * ranks <= (memory_available() or 0):
        pytest.skip("this machine holds --stream 1e9 on 3 ranks")
    proc = subprocess.run([sys.executable, "-m", "solver", "bench", "--quick", "--ranks", str(ranks), option, "1e9",
                           "--json", str(tmp_path / "b.json")], cwd=tmp_path, env=mpi_env(), capture_output=True,
                          text=True, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and f"{option} 1e+09: needs about" in errors[0], proc.stderr
    assert "GiB available; give a smaller" in errors[0] and "bench on" not in proc.stderr, proc.stderr


def test_the_default_sizes_of_bench_need_a_few_gib():
    from solver.bench.arguments import FULL, PARTS, QUICK
    from solver.bench.fits import largest_need

    assert largest_need(QUICK, PARTS, 3)[0] < 2 << 30 and largest_need(FULL, PARTS, 2)[0] < 8 << 30
    assert largest_need(dict(FULL, cells=1e9), ("assembly",), 1) == (2.5e12, "--cells")


def test_a_plot_target_is_checked_before_any_measurement(tmp_path):
    """--plot x.txt ran every measurement, then failed in matplotlib with a traceback (exit 1)."""
    for target in (tmp_path / "x.txt", "outputs/bench/x.txt"):
        with pytest.raises(CaseError, match="command line: --plot .*x.txt: unknown extension '.txt'"):
            parse("--accuracy", "--plot", str(target))
    assert parse("--accuracy", "--plot", str(tmp_path / "a")).plot == tmp_path / "a.png"


def test_a_bad_override_of_bench_solvers_is_one_line_before_any_run(tmp_path):
    """It was a 33-line traceback of the first run's failure (exit 1)."""
    import subprocess
    import sys

    from conftest import ROOT, mpi_env

    proc = subprocess.run([sys.executable, "-m", "solver", "bench", "--solvers", "--no-peer", "--set", "mesh.nx=-1",
                           "--json", str(tmp_path / "s.json")], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env=mpi_env())
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith("mesh.nx must be a positive integer, got -1")


def test_a_failed_process_is_its_status_and_its_own_error_line():
    """A bench run that failed (after its checks passed) was a RuntimeError with 2,000 characters of
    its standard error: an internal error (exit 1) for an input error of the run."""
    from solver.errors import ProcessFailed

    failed = ProcessFailed("bench: the run of reference.toml", 2, "solver 0.5.0 ...\nerror: x.toml: mesh.nx must be "
                                                                 "a positive integer, got -1\n")
    assert failed.exit_status == 2 and str(failed) == ("bench: the run of reference.toml failed with exit status 2: "
                                                       "x.toml: mesh.nx must be a positive integer, got -1")
    assert ProcessFailed("bench: DOLFINx's run", 139, "Segmentation fault\n").exit_status == 1
