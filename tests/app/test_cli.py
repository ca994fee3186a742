"""Command line: the default case, progress and summary, and every kind of bad input."""

import os
import re
import subprocess
import sys
import time

import pytest
from conftest import ROOT, one_error, run_solver

from solver.app.commands import COMMANDS, Launch, build_parser, command_line

BAD = [
    (["--set", "mesh.nx=-3"], "mesh.nx must be a positive integer, got -3"),
    (["--set", "mesh.nx=4.5"], "mesh.nx must be a positive integer, got 4.5"),
    (["--set", "mesh.colour=1"], "unknown key mesh.colour (allowed:"),
    (["--set", "material.k=-1"], "material.k must be > 0, got -1.0"),
    (["--set", "time.scheme=\"rk4\""], "time.scheme must be one of backward-euler, crank-nicolson, theta"),
    (["--set", "boundary.north.type=dirichlet"], "unknown boundary 'north' for a rectangle"),
    (["--set", "boundary.left.value=\"__import__('os').system('true')\""], "boundary.left.value:"),
    (["--set", "mesh.nx=1", "--set", "mesh.ny=1"], "cannot be split among"),
    (["--set", "mesh.nx\n.foo=3"], "--set mesh.nx\\n.foo=3: nx is not a table"),
    (["--set", "output.name=2024"], "TOML reads 2024 as a number, and output.name takes a string: quote it, "
                                    "--set 'output.name=\"2024\"'"),
    (["--set", "material.k={file=\"k.csv\"}"], "material.k: k.csv:3: ['', '1000'] is not two numbers"),
]


@pytest.mark.parametrize("nprocs", [1, 3])
@pytest.mark.parametrize("args, message", BAD, ids=[m.split()[0] for _, m in BAD])
def test_bad_input_exit_2_with_one_message(tmp_path, nprocs, args, message):
    if "cannot be split" in message and nprocs == 1:
        pytest.skip("a 1x1 mesh fits on one rank")
    (tmp_path / "k.csv").write_text("T,k\n0,1\n,1000\n100,2\n")  # a row without its temperature
    start = time.monotonic()
    proc = run_solver(nprocs, [str(ROOT / "inputs" / "plate.toml"), *args], cwd=tmp_path, check=False,
                      timeout=30)
    assert time.monotonic() - start < 30
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "plate.toml: " in errors[0]  # (the split of a structured mesh named no file)
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_transient_case_runs_steady_with_set_whatever_its_output_times(tmp_path, nprocs):
    """--set cannot remove output.times: a steady run leaves it unused, as it does time.dt."""
    case = (ROOT / "inputs" / "plate.toml").read_text().replace("nx = 120", "nx = 12").replace("ny = 60", "ny = 6")
    (tmp_path / "plate.toml").write_text(re.sub(r"\nevery = 12 .*", "\ntimes = [600.0, 1800.0]", case))
    proc = run_solver(nprocs, ["plate.toml", "--set", "time.scheme=steady"], cwd=tmp_path, check=False, timeout=60)
    assert proc.returncode == 0 and "steady solve" in proc.stdout, proc.stderr
    info = run_solver(1, ["info", "outputs/plate/plate.h5"], cwd=tmp_path, timeout=60)
    assert "snapshots   1 (the steady state)" in info.stdout, info.stdout


@pytest.mark.parametrize("nprocs", [1, 3])
def test_missing_or_unreadable_case_file(tmp_path, nprocs):
    proc = run_solver(nprocs, ["no/such/case.toml"], cwd=tmp_path, check=False, timeout=30)
    assert proc.returncode == 2 and "no/such/case.toml: cannot read case file" in proc.stderr
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00garbage")
    proc = run_solver(nprocs, ["bin.toml"], cwd=tmp_path, check=False, timeout=30)
    assert proc.returncode == 2 and "bin.toml: not a text file" in proc.stderr
    proc = run_solver(nprocs, [str(tmp_path)], cwd=tmp_path, check=False, timeout=30)
    assert proc.returncode == 2 and "is a directory" in proc.stderr
    proc = run_solver(nprocs, ["--bogus"], cwd=tmp_path, check=False, timeout=30)
    assert proc.returncode == 2 and "command line: unrecognized arguments: --bogus" in proc.stderr


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_case_named_beyond_the_console_s_encoding_runs(tmp_path, nprocs, monkeypatch):
    """A case file named in UTF-8 on an ASCII console (PYTHONIOENCODING, the locale) ended with
    "internal error: UnicodeEncodeError" (exit 1) at its first line: the name is shown escaped."""
    (tmp_path / "wänd.toml").write_text((ROOT / "inputs" / "layered_wall.toml").read_text())
    monkeypatch.setenv("PYTHONIOENCODING", "ascii")
    proc = run_solver(nprocs, ["wänd.toml"], cwd=tmp_path, check=False, timeout=60)
    assert proc.returncode == 0 and "w\\xe4nd.toml" in proc.stdout, proc.stderr
    assert (tmp_path / "outputs" / "wand" / "wand.h5").is_file()


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_word_that_is_not_utf8_is_refused_before_anything_moves(tmp_path, nprocs):
    """A case file named with a byte UTF-8 cannot decode ran with --overwrite, moved the earlier
    results to .bak, then ended with an internal error writing the command line into the results
    (exit 1): such a word is refused up front, shown escaped."""
    text = (ROOT / "inputs" / "layered_wall.toml").read_text()
    (tmp_path / "wall.toml").write_text(text)
    run_solver(1, ["wall.toml", "--set", "time.t_end=60"], cwd=tmp_path)
    before = sorted(p.name for p in (tmp_path / "outputs").iterdir())
    (tmp_path / "wall\udcff.toml").write_text(text)  # (the file name's byte 0xff)
    proc = run_solver(nprocs, ["wall\udcff.toml", "--set", "output.name=wall", "--overwrite"], cwd=tmp_path,
                      check=False, timeout=60)
    assert one_error(proc, 2).startswith("error: wall\\xff.toml: not UTF-8 text")
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == before


def test_default_case_prints_progress_summary_and_paths(tmp_path):
    proc = run_solver(2, [], cwd=tmp_path)
    out = proc.stdout
    assert "mesh: 861 nodes, 800 quadrilateral cells on 2 ranks" in out
    assert out.count("step ") >= 10 and "iterations" in out and "residual" in out
    assert "DOFs on 2 ranks" in out and "wall time: mesh" in out and "solve" in out
    h5 = tmp_path / "outputs" / "default" / "default.h5"
    assert "results: outputs/default/default.h5" in out and h5.exists()
    assert h5.with_suffix(".xdmf").exists()


def test_non_convergence_is_reported_with_step_and_advice(tmp_path):
    proc = run_solver(3, [str(ROOT / "inputs" / "plate.toml"), "--set", "solver.preconditioner=none",
                          "--set", "solver.max_iterations=2", "--set", f"output.directory={tmp_path}"],
                      cwd=tmp_path, check=False, timeout=60)
    assert proc.returncode == 3
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {ROOT / 'inputs' / 'plate.toml'}: step 1 (t = 5): ")  # the file, the step
    assert "did not converge in 2 iterations" in errors[0]
    assert "solver.preconditioner" in errors[0]
    logged = (tmp_path / "plate" / "plate.log").read_text().splitlines()  # everything printed goes there too
    assert logged[-1].endswith(errors[0]) and " ERROR " in logged[-1], logged[-3:]


def plan_of(*words):
    args = build_parser().parse_args(command_line(words))
    return COMMANDS[args.command].plan(args)


def test_the_default_command_is_run():
    assert command_line([]) == ["run"]
    assert command_line(["case.toml", "--quiet"]) == ["run", "case.toml", "--quiet"]
    assert command_line(["--set", "mesh.nx=8"]) == ["run", "--set", "mesh.nx=8"]
    assert command_line(["run", "case.toml"]) == ["run", "case.toml"]
    assert command_line(["info", "x.h5"]) == ["info", "x.h5"]
    for option in ("--help", "-h", "--version"):
        assert command_line([option]) == [option]


@pytest.mark.parametrize("nprocs", [1, 3])
@pytest.mark.parametrize("option", [("--set", "output.every=1"), ("--at", "0.1,0.1")], ids=["set", "probe"])
def test_a_command_line_of_too_many_words_is_refused_before_parsing(tmp_path, nprocs, option):
    """argparse's time grows with the square of the options (30,000 --set took 27 s to parse)."""
    command = ["probe", "x.h5"] if option[0] == "--at" else []
    start = time.monotonic()
    proc = run_solver(nprocs, [*command, *option * 5_000], cwd=tmp_path, check=False, timeout=60)
    assert time.monotonic() - start < 20
    assert "words, more than the 4,096 allowed" in one_error(proc, 2)
    assert "Traceback" not in proc.stderr
    assert plan_of("probe", "x.h5", *["--at", "0.1,0.1"] * 2000).handler  # 2,000 points: accepted


def test_an_option_given_twice_with_the_same_value_is_one():
    """A requeued job adds its own --restart latest after the user's (jobs/requeue.slurm)."""
    args = build_parser().parse_args(["run", "case.toml", "--restart", "latest", "--restart", "latest"])
    assert args.restart == "latest" and not hasattr(args, "_options_given")


def test_a_repeated_verify_element_or_degree_runs_once():
    """verify --element triangle --element triangle --degree 1 --degree 1 ran each study twice."""
    args = build_parser().parse_args(["verify", "--element", "triangle", "--element", "quadrilateral", "--element",
                                      "triangle", "--degree", "2", "--degree", "1", "--degree", "2"])
    assert args.element == ["triangle", "quadrilateral"] and args.degree == [2, 1]
    assert build_parser().parse_args(["verify"]).degree is None


def test_where_each_command_line_runs_is_decided_from_its_arguments():
    assert plan_of("case.toml").launch is Launch.MPI and plan_of("case.toml", "--quiet").quiet
    assert plan_of("study", "s.toml").launch is Launch.MPI and plan_of("verify").launch is Launch.MPI
    for command in ("info", "plot", "probe", "export"):
        words = {"probe": ["--at", "0,0"], "export": ["--format", "csv"]}.get(command, [])
        assert plan_of(command, "x.h5", *words).launch is Launch.SERIAL
    assert plan_of("bench", "--solvers").launch is Launch.PROCESSES
    assert plan_of("bench", "--study", "--ranks", "3").launch is Launch.PROCESSES
    machine = plan_of("bench", "--ranks", "4")
    assert machine.launch is Launch.MPI and machine.ranks == 4  # relaunched on 4 when no launcher started it
    assert [c.name for c in COMMANDS.values() if c.records_status] == ["run", "study"]


@pytest.mark.parametrize("args, message", [
    (["study", "s.toml", "--bogus"], "unrecognized arguments: --bogus"),
    (["verify", "--dim", "4"], "argument --dim: invalid choice"),
    (["verify", "--levels", "50"], "at least two mesh sizes"),
    (["verify", "--levels", "0", "8"], "cells per side from 1 to 96 (3D meshes; with --dim 2, up to 1024)"),
    (["verify", "--levels", "16", "8"], "increasing sizes"),
    (["verify", "--dim", "2", "--levels", "512", "1024"], "degree 2 would take 1.4e+11 DOF-steps"),
    (["verify", "--dim", "3", "--element", "triangle"], "--element triangle: a 2D cell, not with --dim 3"),
    (["verify", "--element", "hexahedron", "--levels", "2", "1024"], "cells per side from 1 to 96"),
    (["bench", "--stream", "1e30"], "--stream 1e+30: from 1000 to 1e+09"),
    (["study", "s.toml", "--wall-limit", "nan"], "must be a finite number of seconds > 0, got nan"),
    (["study", "s.toml", "--wall-limit", "-1"], "must be a finite number of seconds > 0, got -1"),
    (["bench", "--dofs-2d", "nan"], "--dofs-2d nan: from 100 to 1e+09"),
    (["bench", "--repeat", "0"], "--repeat 0: from 1 to 1000"),
    (["bench", "--meshes", "XX"], "--meshes XX: unknown meshes"),
    (["bench", "--json", "/dev/null"], "--json /dev/null: not a regular file"),
    (["bench", "--solvers", "--timeout", "-1"], "--timeout -1: from 1 to 1e+06"),
    (["bench", "--only", "spmv"], "--only spmv: unknown parts"),
    (["bench", "--solvers", "--quick"], "--quick: only with the machine figures"),
    (["bench", "--solvers", "--block3d", "0"], "--block3d 0: cells per side from 2 to 1000"),
    (["bench", "--solvers", "--iteration-ranks", "0"], "--iteration-ranks 0: from 1 to 4096 ranks"),
    (["bench", "--accuracy", "--dim", "2", "--p1", "8", "4"], "--p1 8 4: at least two increasing sizes"),
    (["bench", "--only="], "an empty argument for --only"),
    (["run", ""], "an empty argument for case"),  # (not ".", the current directory)
    (["info", ""], "an empty argument for results"),
    (["s.toml", "--set", ""], "an empty argument for --set"),
    (["export", "r.h5", "--format", "csv", "-o", ""], "an empty argument for --output"),
    (["probe", "r.h5", "--at", "0,0", "--field", "a", "--field", "b"], "--field given twice, with two values"),
    (["s.toml", "--restart", "latest", "--restart", "c.h5"], "--restart given twice"),
])
def test_bad_command_lines_of_every_command_give_one_line_from_rank_0(tmp_path, args, message):
    """Parsed before MPI starts, on every rank: rank 0 gives the line, the others leave quietly."""
    proc = run_solver(3, args, cwd=tmp_path, check=False, timeout=30)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and re.search(r"\(see python -m solver( [a-z]+)? --help\)", errors[0])


@pytest.mark.parametrize("nprocs", [1, 3])
def test_an_unknown_value_of_solver_numba_is_refused(tmp_path, monkeypatch, nprocs):
    """SOLVER_NUMBA=bogus was taken as "the run chooses", silently."""
    monkeypatch.setenv("SOLVER_NUMBA", "bogus")
    proc = run_solver(nprocs, [str(ROOT / "inputs" / "plate.toml"), "--dry-run"], cwd=tmp_path, check=False,
                      timeout=30)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "SOLVER_NUMBA: got 'bogus'; allowed: 0" in errors[0], \
        proc.stderr


def test_run_may_be_named(tmp_path):
    proc = run_solver(1, ["run", ROOT / "inputs" / "plate.toml", "--dry-run"], cwd=tmp_path)
    assert "DOFs" in proc.stdout and not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("nprocs", [1, 3])
def test_the_dry_run_refuses_an_output_directory_that_cannot_be_created(tmp_path, nprocs):
    """output.directory under a file (/dev/null, the case file itself): the dry run said "output:
    about 70 KiB in /dev/null/plate" and exit 0, and the run was then refused."""
    proc = run_solver(nprocs, [str(ROOT / "inputs" / "plate.toml"), "--dry-run", "--set", "mesh.nx=12", "--set",
                               "mesh.ny=6", "--set", 'output.directory="/dev/null"'], cwd=tmp_path, check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "/dev/null/plate: cannot create the output directory (/dev/null is not a folder)" in errors[0]


@pytest.mark.parametrize("dry", [True, False])
def test_an_output_directory_behind_a_dangling_link_is_named_so(tmp_path, dry):
    """output.directory a link to a folder that does not exist: "cannot create the output directory
    (File exists)" from the run, "(... is not a folder)" from the dry run."""
    (tmp_path / "out").symlink_to(tmp_path / "gone")
    proc = run_solver(1, [str(ROOT / "inputs" / "plate.toml"), "--set", "mesh.nx=4", "--set", "mesh.ny=2", "--set",
                          f'output.directory="{tmp_path / "out"}"', *(["--dry-run"] if dry else [])], cwd=tmp_path,
                      check=False)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert f"cannot create the output directory ({tmp_path / 'out'} is a link to {tmp_path / 'gone'}, which does " \
           f"not exist)" in errors[0], errors
    assert not (tmp_path / "gone").exists()


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_checkpoints_folder_that_cannot_be_written_is_refused_before_the_steps(tmp_path, nprocs):
    """outputs/NAME/checkpoints a folder no one may write (immutable): the run computed its steps
    and wrote its snapshots, then failed at its first checkpoint (and a restart at its last)."""
    folder = tmp_path / "outputs" / "plate" / "checkpoints"
    folder.mkdir(parents=True)
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        proc = run_solver(nprocs, [str(ROOT / "inputs" / "plate.toml"), "--set", "mesh.nx=12", "--set", "mesh.ny=6"],
                          cwd=tmp_path, check=False)
    finally:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "checkpoints: the checkpoints' folder is not writable" in errors[0]
    assert not (folder.parent / "plate.h5").exists() and "step 1" not in proc.stdout


class _Rank0:
    rank = 0


@pytest.mark.parametrize("kind", ["new", "regular", "symlink", "fifo", "directory"])
def test_status_file_of_every_kind(tmp_path, monkeypatch, capsys, kind):
    """The status file is replaced atomically when regular (through a symbolic link, its target);
    a FIFO or a directory is left as it is, with a warning (a FIFO would block the run)."""
    from solver.app.cli import write_status
    from solver.app.statusfile import STATUS_FILE

    target = tmp_path / "status"
    path = target
    if kind == "regular":
        target.write_text("old\n")
    elif kind == "symlink":
        target.write_text("old\n")
        path = tmp_path / "link"
        path.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    monkeypatch.setenv(STATUS_FILE, str(path))
    assert write_status(_Rank0(), 75, "stopped by SIGTERM\nmore") == 75
    if kind in ("new", "regular", "symlink"):
        assert target.read_text() == "75 stopped stopped by SIGTERM\n"
        assert path.is_symlink() == (kind == "symlink")
        assert "warning" not in capsys.readouterr().err
    else:
        assert (target.is_fifo() if kind == "fifo" else target.is_dir())
        assert "cannot write the status file" in capsys.readouterr().err


def test_status_file_on_a_character_device(monkeypatch, capsys):
    from solver.app.cli import write_status
    from solver.app.statusfile import STATUS_FILE

    monkeypatch.setenv(STATUS_FILE, "/dev/null")
    assert write_status(_Rank0(), 0) == 0
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    assert "warning" not in capsys.readouterr().err


def test_a_status_file_on_standard_output_keeps_the_job_s_log(tmp_path):
    """SOLVER_STATUS_FILE=/dev/stdout in a job whose output goes to a file: that file (the job's
    log) was replaced by the status line; a status written through a reopened descriptor would
    have been overwritten by what the shell wrote next."""
    import subprocess
    import sys

    from conftest import mpi_env

    log = tmp_path / "job.log"
    script = (f"echo before; SOLVER_STATUS_FILE=/dev/stdout {sys.executable} -m solver "
              f"{ROOT / 'inputs' / 'plate.toml'} --set mesh.nx=8 --set mesh.ny=4 --set time.t_end=60 "
              f"--set output.directory={tmp_path} --quiet; echo after")
    subprocess.run(["bash", "-c", f"({script}) > {log} 2>&1"], env=mpi_env(), timeout=60, check=True)
    assert log.read_text().splitlines() == ["before", "0 complete", "after"]


def test_a_run_whose_output_reader_goes_away_completes(tmp_path):
    """python -m solver case.toml | head -2: the run ended with an internal error (BrokenPipeError,
    exit 1) and its results said killed. It goes on, and its log file keeps everything."""
    import subprocess
    import sys

    from conftest import mpi_env

    run = (f"{sys.executable} -m solver {ROOT / 'inputs' / 'plate.toml'} --set mesh.nx=16 --set mesh.ny=8 "
           f"--set output.directory={tmp_path}")
    proc = subprocess.run(["bash", "-c", f"{run} | head -2; exit ${{PIPESTATUS[0]}}"], env=mpi_env(), timeout=120,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 2 and "internal error" not in proc.stderr, \
        proc.stderr
    assert "results: " in (tmp_path / "plate" / "plate.log").read_text()


def test_a_run_whose_console_is_on_a_full_disk_completes(tmp_path):
    """python -m solver case.toml > log, the log on a full disk (/dev/full: every write ENOSPC):
    the run ended with an internal error (exit 1), its results said killed and its reserve file
    stayed. It goes on with one warning, and its log file keeps everything."""
    import subprocess
    import sys

    import h5py

    from conftest import mpi_env

    run = (f"{sys.executable} -m solver {ROOT / 'inputs' / 'plate.toml'} --set mesh.nx=16 --set mesh.ny=8 "
           f"--set time.t_end=60 --set output.directory={tmp_path}")
    proc = subprocess.run(["bash", "-c", f"{run} > /dev/full"], env=mpi_env(), timeout=120, capture_output=True,
                          text=True)
    assert proc.returncode == 0 and "internal error" not in proc.stderr, proc.stderr
    assert proc.stderr.count("cannot write the console output") == 1, proc.stderr
    log = (tmp_path / "plate" / "plate.log").read_text()
    assert "cannot write the console output" in log and "results: " in log
    with h5py.File(tmp_path / "plate" / "plate.h5", "r") as f:
        assert f.attrs["status"] == "complete"
    assert not list((tmp_path / "plate").glob(".*.reserve"))


def test_a_command_whose_output_is_on_a_full_disk_ends_with_74(tmp_path):
    """verify (or a study) > file, the file on a full disk: an internal error (exit 1); its output
    is what it makes, so it ends as a reading command does: one line, exit 74."""
    import subprocess
    import sys

    from conftest import mpi_env

    verify = f"{sys.executable} -m solver verify --dim 2 --element triangle --degree 1 --levels 4 8"
    proc = subprocess.run(["bash", "-c", f"{verify} > /dev/full"], env=mpi_env(), timeout=120, capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 74 and "internal error" not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines() == ["error: cannot write the output (No space left on device)"], proc.stderr


@pytest.mark.parametrize("args", [["bench", "--help"], ["--help"], ["--version"]])
def test_help_and_version_are_printed_once_on_many_ranks(tmp_path, args):
    proc = run_solver(3, args, cwd=tmp_path, timeout=30)
    first = proc.stdout.splitlines()[0]
    assert proc.stdout.count(first) == 1 and proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("steps, every, snapshots", [(360, 12, 31), (365, 12, 32), (10, 1, 11), (7, 10, 2)])
def test_the_dry_run_counts_the_snapshots_a_run_writes(steps, every, snapshots):
    """Step 0, every N-th step, and the last step when N does not divide the steps."""
    from types import SimpleNamespace

    from solver.app.run import expected_snapshots
    assert expected_snapshots(SimpleNamespace(times=None, every=every), steps) == snapshots


def test_start_up_signals_record_a_status_for_runs_and_studies_only():
    """The commands whose start-up stop signals are kept for a graceful stop (and recorded at once
    in the status file) are runs and studies: every other command is named in signals.OTHER_COMMANDS."""
    from solver.app import signals
    from solver.app.commands import COMMANDS

    assert set(signals.OTHER_COMMANDS) == {name for name, c in COMMANDS.items() if not c.graceful_stop}
    for argv, records in ((["solver"], True), (["solver", "case.toml", "--set", "a=1"], True),
                          (["solver", "--quiet", "run", "c.toml"], True), (["solver", "plot", "r.h5"], False),
                          (["solver", "study", "s.toml"], True), (["solver", "info", "r.h5"], False)):
        signals.defer(argv)
        assert signals.records_status == records, argv
    signals.release()


def _catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` (its SigCgt mask in /proc)."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        pass
    return False


@pytest.mark.parametrize("presses, status", [(1, 75), (2, 130)])
def test_ctrl_c_during_start_up(tmp_path, presses, status):
    """One Ctrl-C while the run starts up is a graceful stop at the first step (75), as SIGTERM
    is; a second one stops at once (130); never a traceback (it was a KeyboardInterrupt wherever
    it landed, in an import or in the mesh)."""
    import signal
    import subprocess
    import sys
    import time

    recorded = tmp_path / "status"
    env = {**os.environ, "SOLVER_TEST_START_DELAY": "2", "SOLVER_STATUS_FILE": str(recorded)}
    proc = subprocess.Popen([sys.executable, "-m", "solver", str(ROOT / "inputs" / "plate.toml"), "--quiet",
                             "--set", "mesh.nx=8", "--set", "mesh.ny=4", "--set", f"output.directory={tmp_path}"],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30  # until its own handlers are in (Python's start-up, slow on a busy machine)
    while time.monotonic() < deadline and not _catches(proc.pid, signal.SIGTERM):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    if presses == 2:  # once the first is taken (its status recorded): two at once may arrive as one
        while time.monotonic() < deadline and "SIGINT" not in (recorded.read_text() if recorded.exists() else ""):
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == status and "Traceback" not in err, err
    assert ("signal SIGINT" in err) if presses == 1 else ("stopped at once" in err), err


def test_a_second_ctrl_c_while_a_checkpoint_is_written_leaves_no_unfinished_one(tmp_path):
    """Ctrl-C twice while a checkpoint is written: 130 at once, and its unfinished ``.h5.tmp`` is
    removed (it stayed in the checkpoints' folder)."""
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "SOLVER_TEST_CHECKPOINT_DELAY": "30", "SOLVER_STATUS_FILE": str(tmp_path / "status")}
    proc = subprocess.Popen([sys.executable, "-m", "solver", str(ROOT / "inputs" / "plate.toml"), "--quiet",
                             "--set", "mesh.nx=8", "--set", "mesh.ny=4", "--set", "checkpoint.every=1",
                             "--set", f"output.directory={tmp_path}"], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True)
    folder = tmp_path / "plate" / "checkpoints"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None and not list(folder.glob("*.h5.tmp")):
        time.sleep(0.05)  # the first checkpoint is being written
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=90)[1]
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert not list(folder.glob("*.tmp")), list(folder.iterdir())


@pytest.mark.parametrize("ignored", [False, True])
def test_a_hang_up_is_a_graceful_stop_unless_ignored(tmp_path, ignored):
    """SIGHUP (the terminal closed) stops a run at its next step with a checkpoint and 75, the status
    recorded, as SIGTERM does (it killed the run, 129, with no status and no checkpoint); a SIGHUP
    the parent ignores (nohup) stays ignored."""
    import signal
    import subprocess
    import sys
    import time

    recorded = tmp_path / "status"
    env = {**os.environ, "SOLVER_TEST_STEP_DELAY": "1", "SOLVER_STATUS_FILE": str(recorded)}
    ignore = (lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)) if ignored else None
    proc = subprocess.Popen([sys.executable, "-m", "solver", str(ROOT / "inputs" / "plate.toml"), "--quiet",
                             "--set", "mesh.nx=8", "--set", "mesh.ny=4", "--set", f"output.directory={tmp_path}"],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True, preexec_fn=ignore)
    deadline = time.monotonic() + 60  # until its own handlers are in (Python's start-up, slow on a busy machine)
    while time.monotonic() < deadline and not _catches(proc.pid, signal.SIGTERM):
        time.sleep(0.02)
    proc.send_signal(signal.SIGHUP)
    if ignored:
        time.sleep(1.5)
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=90)[1]
    assert proc.returncode == 75 and "Traceback" not in err, err
    assert f"signal {'SIGTERM' if ignored else 'SIGHUP'}" in err, err
    assert recorded.read_text().startswith("75 stopped")
    assert list((tmp_path / "plate" / "checkpoints").glob("step_*.h5"))


@pytest.mark.parametrize("command", [["-m", "solver"], ["-msolver", "run"]])
def test_ctrl_c_before_the_package_s_main_runs(tmp_path, command):
    """A Ctrl-C while ``python -m solver`` imported the package, before its ``__main__`` ran, was a
    KeyboardInterrupt traceback from runpy: the stop is kept from the package's first lines on."""
    import signal
    import sys
    import time

    (tmp_path / "sitecustomize.py").write_text(  # holds the start between the package and its __main__
        "import sys, time\n"
        "class Slow:\n"
        "    @staticmethod\n"
        "    def find_spec(name, path=None, target=None):\n"
        "        if name == 'solver.__main__':\n"
        f"            open({str(tmp_path / 'reached')!r}, 'w').close()\n"
        "            time.sleep(3)\n"
        "sys.meta_path.insert(0, Slow)\n")
    recorded = tmp_path / "status"
    env = {**os.environ, "SOLVER_STATUS_FILE": str(recorded),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, *command, str(ROOT / "inputs" / "plate.toml"), "--quiet",
                             "--set", "mesh.nx=8", "--set", "mesh.ny=4", "--set", f"output.directory={tmp_path}"],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (tmp_path / "reached").exists():
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 75 and "Traceback" not in err, err
    assert recorded.read_text().startswith("75 stopped"), recorded.read_text()


def test_importing_the_package_leaves_the_signals_alone(tmp_path):
    """Only the program keeps the stop signals from the package's first lines: a notebook, a script
    or another module run with -m that imports the package keeps Ctrl-C as it was."""
    import sys

    check = "import signal, solver; assert signal.getsignal(signal.SIGINT) is signal.default_int_handler"
    (tmp_path / "other.py").write_text(check + "\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for command in (["-c", check], ["-m", "other", "solver"], [str(tmp_path / "other.py")]):
        proc = subprocess.run([sys.executable, *command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, (command, proc.stderr)


def test_the_start_up_status_is_recorded_by_the_launchers_rank_0(monkeypatch):
    """Before MPI starts, the rank comes from the MPI launcher's variables, else from srun's
    SLURM_PROCID, which the processes mpirun starts inside a batch step all inherit as 0."""
    from solver.app.statusfile import launch_rank

    for name in ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    assert launch_rank() == 0
    monkeypatch.setenv("SLURM_PROCID", "3")
    assert launch_rank() == 3
    monkeypatch.setenv("SLURM_PROCID", "0")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "2")
    assert launch_rank() == 2


def test_a_mistyped_command_is_named(tmp_path):
    """``solver infoo x`` said "unrecognized arguments: x" (infoo was taken for a case file);
    a word close to a command that is no file gets one line naming the command meant. A case file
    of such a name is still run's."""
    import subprocess
    import sys

    for words, meant in ((["infoo", "x"], "info"), (["plto"], "plot")):
        proc = subprocess.run([sys.executable, "-m", "solver", *words], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
            f"error: {words[0]}: not a command, nor a case file; did you mean {meant}? (commands: run, study, verify, "
            f"bench, info, plot, probe, export)"], proc.stderr
    (tmp_path / "plto").write_text("not toml [")
    proc = subprocess.run([sys.executable, "-m", "solver", "plto"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "invalid TOML" in proc.stderr, proc.stderr


def test_negative_coordinates_and_times_are_values_not_options():
    """``probe r.h5 --at -0.05,0`` said "--at: expected one argument" (argparse took the point for an option)."""
    from solver.app.commands import build_parser, command_line

    args = build_parser().parse_args(command_line(["probe", "r.h5", "--at", "-0.05,0", "--at", "-1e-3,-2"]))
    assert args.at == ["-0.05,0", "-1e-3,-2"]
    args = build_parser().parse_args(command_line(["plot", "r.h5", "--time", "-.5", "--slice", "z=-1"]))
    assert args.time == -0.5
    args = build_parser().parse_args(command_line(["probe", "r.h5", "--at", "-inf,0", "--at", "-NaN,1"]))
    assert args.at == ["-inf,0", "-NaN,1"]  # (values, refused as such later: not "expected one argument")


def test_the_status_file_never_replaces_an_hdf5_file(tmp_path, monkeypatch, capsys):
    """$SOLVER_STATUS_FILE naming a results file (or a link to one): it was replaced by "0 complete"."""
    from solver.app import statusfile

    results = tmp_path / "r.h5"
    results.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    (tmp_path / "status.link").symlink_to(results)
    for name in ("r.h5", "status.link"):
        monkeypatch.setenv("SOLVER_STATUS_FILE", str(tmp_path / name))
        statusfile.record(0)
        assert results.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n" and (tmp_path / "status.link").is_symlink()
        assert "an HDF5 file" in capsys.readouterr().err


def test_a_status_file_that_cannot_be_written_leaves_no_temporary_file(tmp_path, monkeypatch, capsys):
    """On a full disk each record left an empty ``status.tmpPID`` behind (an inode per requeued
    segment): the warning stays, the temporary file goes."""
    import errno

    from solver.app import statusfile

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setenv("SOLVER_STATUS_FILE", str(tmp_path / "status"))
    monkeypatch.setattr(statusfile.os, "replace", full)
    statusfile.record(0)
    assert "cannot write the status file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_status_that_cannot_be_replaced_leaves_no_earlier_one(tmp_path, monkeypatch, capsys):
    """A stop signal during start-up recorded 75; the run then failed on a full disk (74) and its
    status could not replace that one: the job scripts read 75 and requeued the run. The earlier
    status is removed (the launcher's status counts), with the warning."""
    import errno

    from solver.app import statusfile

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    status = tmp_path / "status"
    monkeypatch.setenv("SOLVER_STATUS_FILE", str(status))
    statusfile.record(75, "stopped by SIGTERM during start-up, before the first step")
    assert status.read_text().startswith("75 stopped")
    monkeypatch.setattr(statusfile.os, "replace", full)
    statusfile.record(74, "cannot write snapshot 0")
    assert "the earlier status in it is removed" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_huge_name_is_quoted_as_an_excerpt(tmp_path):
    """A 20,000-character field or boundary name came back whole in the error line (twice)."""
    from solver.app.cli import excerpt

    name = "L" * 20000
    line = excerpt(ValueError(f"case.toml: boundary.{name}: unknown boundary '{name}' (allowed: left)"))
    assert len(line) < 400 and line.endswith("(allowed: left)") and "(20010 characters)" in line


@pytest.mark.parametrize("words", [
    ["--set", "boundary.left.value=[" + ",".join(['"a"'] * 3000) + "]"],
    ["--set", "output.every=12", "--set", "region=[" + ",".join(['"a"'] * 3000) + "]"],
])
def test_a_long_list_in_the_input_is_quoted_as_an_excerpt(tmp_path, words):
    """Lists of thousands of values came back whole: lines of 15,000 to 28,000 characters."""
    proc = run_solver(1, [ROOT / "inputs" / "plate.toml", "--dry-run", *words], cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and len(errors[0]) < 400 and "characters)" in errors[0], errors


def test_an_error_line_is_at_most_its_limit():
    from solver.app.cli import MESSAGE_LIMIT, excerpt

    line = excerpt(ValueError("case.toml: output.times must be increasing, got [" + ", ".join(["5.0"] * 5000) + "]"))
    assert len(line) <= MESSAGE_LIMIT + 40 and line.startswith("case.toml: output.times") and line.endswith("]")


@pytest.mark.parametrize("end, limited", [("-inf", False), ("0", False), ("nan", False), ("x", False),
                                          (None, True)])
def test_a_job_end_time_that_is_not_to_come_sets_no_limit(monkeypatch, end, limited):
    """SLURM_JOB_END_TIME in the past or -inf gave "a wall-time limit of -1796533604 s"."""
    import time as clock

    from solver.app.control import slurm_time_left

    monkeypatch.setenv("SLURM_JOB_ID", "1")
    monkeypatch.setenv("SLURM_JOB_END_TIME", end if end is not None else str(clock.time() + 600))
    left = slurm_time_left()
    assert (left is not None and 590 < left <= 600) if limited else left is None


def test_a_run_refused_before_its_first_write_leaves_no_folder(tmp_path):
    """A restart from another run's checkpoint into a new output.name, refused (exit 2), left
    outputs/NAME/NAME.log, the folder it made kept for a log of one line."""
    small = [str(ROOT / "inputs" / "plate.toml"), "--set", "mesh.nx=12", "--set", "mesh.ny=6", "--quiet"]
    run_solver(1, [*small, "--set", "time.t_end=60", "--set", "output.name=first"], cwd=tmp_path)
    checkpoint = sorted((tmp_path / "outputs" / "first" / "checkpoints").glob("step_*.h5"))[-1]
    proc = run_solver(1, [*small, "--set", "time.t_end=120", "--set", "output.name=second", "--restart",
                          str(checkpoint)], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "checkpoint of a different case" in proc.stderr, proc.stderr
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["first"]


def test_a_stop_signal_while_the_process_ends_keeps_its_status(tmp_path):
    """A SIGTERM that came once the run had ended, while the interpreter freed its modules (the
    default actions back), ended a complete run by the signal (143) instead of its status."""
    import sys

    program = ("import os, signal\n"
               "from solver.app import signals\n"
               "signals.defer()\n"
               "from solver.app.cli import finish\n"
               "class Late:\n"
               "    def __del__(self):\n"
               "        os.kill(os.getpid(), signal.SIGTERM)\n"
               "late = Late()  # freed with the module, after the interpreter put the default actions back\n"
               "finish(0)\n")
    proc = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("library, command", [("mpi4py", ["case.toml"]), ("h5py", ["info", "r.h5"])])
def test_a_python_without_a_required_library_is_told_in_one_line(tmp_path, library, command):
    """The solver run by a Python outside its environment ended in a traceback (a run) or an
    "internal error: ModuleNotFoundError" (info): one line names the library and the way to it."""
    (tmp_path / "case.toml").write_text("[mesh]\nnx = 2\n")
    code = (f"import runpy, sys; sys.modules[{library!r}] = None; sys.argv = ['solver', *{command!r}]; "
            f"runpy.run_module('solver', run_name='__main__', alter_sys=True)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: the solver needs {library}, which this Python") and "make bootstrap" in lines[0]
