"""Commands that read files start without MPI: on login nodes and in notebooks MPI may be absent;
every command's help and bad command lines need none either (parsed before MPI starts)."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
from conftest import ROOT, run_solver

BLOCKER = '''
import sys

class NoMPI:
    def find_spec(self, name, path=None, target=None):
        if name == "mpi4py.MPI":
            raise ImportError("MPI is not available here (test)")
        return None

sys.meta_path.insert(0, NoMPI())
'''


@pytest.fixture(scope="module")
def results_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("serial")
    run_solver(1, [ROOT / "inputs" / "plate.toml", "--set", "mesh.nx=10", "--set", "mesh.ny=5",
                   "--set", "time.t_end=60.0", "--set", f"output.directory={d}"], cwd=d)
    return d / "plate" / "plate.h5"


def without_mpi(tmp_path, *args):
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "solver", *map(str, args)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_blocker_blocks(tmp_path):
    proc = without_mpi(tmp_path, ROOT / "inputs" / "plate.toml")
    assert proc.returncode != 0 and "MPI is not available here" in proc.stderr


@pytest.mark.parametrize("args, expected", [
    (["--help"], "bench"), (["--version"], "solver "),
    (["info", "{h5}"], "snapshots"), (["probe", "{h5}", "--at", "0.1,0.05"], "time"),
    (["export", "{h5}", "--format", "csv", "-o", "{tmp}/out.csv"], "out.csv"),
    (["plot", "{h5}", "-o", "{tmp}/out.png"], "out.png"),
    (["info", "{tmp}/missing.h5"], "error: "),
    (["bench", "--help"], "--solvers"), (["study", "--help"], "--ranks-per-case"), (["verify", "--help"], "orders"),
    (["study", "--bogus"], "error: "), (["bench", "--solvers", "--quick"], "error: "),
])
def test_serial_commands_never_start_mpi(tmp_path, results_file, args, expected):
    args = [a.format(h5=results_file, tmp=tmp_path) for a in args]
    proc = without_mpi(tmp_path, *args)
    assert expected in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == (2 if expected == "error: " else 0), proc.stderr
    assert "MPI is not available" not in proc.stderr


def _fifo(tmp_path):
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    return fifo


@pytest.mark.parametrize("args, message", [
    (["info", "{fifo}"], "is a FIFO, not a regular file"),
    (["probe", "{fifo}", "--at", "0.1,0.05"], "is a FIFO, not a regular file"),
    (["plot", "{fifo}"], "is a FIFO, not a regular file"),
    (["export", "{fifo}", "--format", "csv"], "is a FIFO, not a regular file"),
    (["plot", "{h5}", "-o", "{fifo}.png"], "is a FIFO, not a regular file"),
    (["export", "{h5}", "--format", "vtu", "-o", "{fifo}.vtu"], "is a FIFO, not a regular file"),
    (["plot", "{h5}", "-o", "{tmp}"], "is a directory"),
    (["plot", "{h5}", "-o", "-"], "-o -: this writes a .png file, not to standard output"),
    (["info", "{checkpoint}"], "a checkpoint, not a run's results: a run continues from it"),
    (["plot", "{h5}", "-o", "/dev/null"], "is a device or special file"),
    (["plot", "{h5}", "-o", "{tmp}/out.bmpx"], "unknown extension"),
    (["export", "{h5}", "--format", "vtu", "-o", "{tmp}/out.csv"], "unknown extension '.csv'; allowed: .vtu"),
    (["export", "{h5}", "--format", "vtu", "--all", "-o", "{tmp}/out.csv"], "unknown extension '.csv'; allowed: .vtu"),
    (["plot", "{h5}", "-o", "{tmp}/nowhere/out.png"], "does not exist"),
    (["plot", "{h5}", "--size", "100000x100000"], "width and height from 16 to 10000"),
    (["plot", "{h5}", "--slice", "z=0.5", "-o", "{tmp}/slice.png"], "holds a 2D field (a slice is of a 3D one)"),
])
def test_reads_and_writes_refuse_what_is_not_a_regular_file(tmp_path, results_file, args, message):
    """Never block on a FIFO, never write over a device or into a directory: one line, exit 2."""
    fifo = _fifo(tmp_path)
    if "{fifo}.png" in args or "{fifo}.vtu" in args:
        import os
        os.mkfifo(f"{fifo}.{args[-1].rsplit('.', 1)[1]}")
    args = [a.format(h5=results_file, tmp=tmp_path, fifo=fifo, checkpoint=results_file.parent / "checkpoint.h5")
            for a in args]
    proc = without_mpi(tmp_path, *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_export_xdmf_refuses_a_data_file_that_is_not_a_regular_file(tmp_path, results_file):
    """meshio writes the XDMF's data to <stem>.h5 beside it: a FIFO there blocked the export."""
    import os

    os.mkfifo(tmp_path / "x.h5")
    proc = without_mpi(tmp_path, "export", results_file, "--format", "xdmf", "-o", tmp_path / "x.xdmf")
    assert proc.returncode == 2 and "its data file" in proc.stderr and "not a regular file" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_damaged_field_is_refused_by_every_reader(tmp_path, results_file):
    """A snapshot whose field has the wrong length: probe and plot ended in an internal error and
    export wrote a CSV of it; each now refuses the file in one line."""
    import shutil

    damaged = tmp_path / "damaged.h5"
    shutil.copy(results_file, damaged)
    with h5py.File(damaged, "r+") as f:
        del f["fields/temperature/000001"]
        f["fields/temperature/000001"] = np.zeros(3)
    for args in (["probe", damaged, "--at", "0.1,0.05"], ["plot", damaged, "--step", "1", "-o", tmp_path / "p.png"],
                 ["export", damaged, "--format", "csv", "-o", tmp_path / "x.csv"]):
        proc = without_mpi(tmp_path, *args)
        assert proc.returncode == 2 and "holds (3,) values, not one per node of the mesh" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "p.png").exists()


def test_a_damaged_link_of_a_group_is_a_damaged_file_not_an_internal_error(tmp_path, results_file):
    """The name offset of a symbol table entry (SNOD) overwritten: h5py raises RuntimeError ("Unable to
    get link info", or a failed visit of a local heap where the tables' sizes are checked) while a
    command follows the links, which ended it as an internal error, exit 1."""
    import re

    data = results_file.read_bytes()
    seen = set()
    for k, at in enumerate(m.start() for m in re.finditer(b"SNOD", data)):
        damaged = tmp_path / f"damaged{k}.h5"
        damaged.write_bytes(data[:at + 8] + b"\xff" * 8 + data[at + 16:])
        for args in (["info", damaged], ["probe", damaged, "--at", "0.1,0.05"]):
            proc = without_mpi(tmp_path, *args)
            assert proc.returncode in (0, 2) and "internal error" not in proc.stderr, proc.stderr
            seen.add(proc.returncode)
            if proc.returncode == 2:
                assert len(proc.stderr.strip().splitlines()) == 1 and "damaged" in proc.stderr and \
                    ("local heap" in proc.stderr or "Unable to get link info" in proc.stderr), proc.stderr
    assert 2 in seen


def test_only_h5py_s_runtime_errors_read_as_a_damaged_file():
    """RecursionError (a RuntimeError: JSON nested 100,000 deep in a study file) stays a damaged
    file; another RuntimeError, not raised inside h5py, stays an internal error."""
    from solver.app.cli import _from_reading

    def raised(exc):
        try:
            raise exc
        except RuntimeError as caught:
            return caught
    assert _from_reading(raised(RecursionError("deep"))) and _from_reading(KeyError("x"))
    assert not _from_reading(raised(RuntimeError("a bug of ours")))


@pytest.mark.parametrize("attribute, value", [("steps_rejected", np.inf), ("linear_iterations", "x")])
def test_info_of_a_file_with_a_damaged_count_names_it(tmp_path, results_file, attribute, value):
    """steps_rejected = inf: an internal error (OverflowError) in ``info``."""
    import shutil

    damaged = tmp_path / "damaged.h5"
    shutil.copy(results_file, damaged)
    with h5py.File(damaged, "r+") as f:
        f.attrs[attribute] = value
    proc = without_mpi(tmp_path, "info", damaged)
    assert proc.returncode == 2 and f"its attribute {attribute} = " in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("damage, message", [
    ("complex field", "holds values of type complex128, not floating-point numbers"),
    ("format_version text", "its attribute format_version = '1' is not a whole number"),
    ("case table a number", "its attribute case gives output as 3, not a table")])
def test_damage_beyond_the_layout_is_named(tmp_path, results_file, damage, message):
    """A complex field passed (its imaginary part dropped, with NumPy's warnings), format_version
    "1" read "results of format 1, this solver reads format 1", and [output] = 3 in the stored case
    was "cannot be read (AttributeError ...)"."""
    import shutil
    import tomllib

    import tomli_w

    damaged = tmp_path / "damaged.h5"
    shutil.copy(results_file, damaged)
    with h5py.File(damaged, "r+") as f:
        if damage == "complex field":
            last = sorted(f["fields/temperature"])[-1]
            values = f["fields/temperature"][last][()]
            del f["fields/temperature"][last]
            f["fields/temperature"][last] = values.astype(complex)
        elif damage == "format_version text":
            f.attrs["format_version"] = "1"
        else:
            f.attrs["case"] = tomli_w.dumps({**tomllib.loads(f.attrs["case"]), "output": 3})
    for args in (["info", damaged], ["export", damaged, "--format", "csv", "-o", tmp_path / "x.csv"]):
        proc = without_mpi(tmp_path, *args)
        assert proc.returncode == 2 and message in proc.stderr and "Warning" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_a_reader_that_goes_away_stops_a_command_quietly(tmp_path):
    """``probe ... | head``: the closed pipe ended the command with "error: cannot write or read it
    (Broken pipe)" and exit 2, as if the input were bad; now quietly, with 141 (128 + SIGPIPE)."""
    code = ("import sys\nfrom solver.app import cli\nclass Plan:\n    def load(self):\n        def command(args):\n"
            "            raise BrokenPipeError(32, 'Broken pipe')\n        return command\n"
            "sys.exit(cli.serial_command(Plan(), None))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 141 and proc.stderr == "", proc.stderr


def test_plot_adds_the_extension_it_writes(tmp_path, results_file):
    proc = without_mpi(tmp_path, "plot", results_file, "-o", tmp_path / "noext")
    assert proc.returncode == 0 and proc.stdout.strip() == str(tmp_path / "noext.png"), proc.stderr
    assert (tmp_path / "noext.png").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "noext").exists()


@pytest.mark.parametrize("args", [["plot", "{h5}", "--series", "-o", "{tmp}/s.png"],
                                  ["probe", "{h5}", "--at", "0.1,0.05"],
                                  ["export", "{h5}", "--format", "csv", "--all", "-o", "{tmp}/a.csv"],
                                  ["plot", "{h5}", "-o", "{tmp}/p.png"]])
def test_every_reading_command_says_a_file_holds_no_snapshots(tmp_path, results_file, args):
    """A run that failed before its first snapshot: ``plot --series`` was an internal error, probe
    printed an empty table and ``export --all`` nothing, all with exit 0."""
    empty = tmp_path / "empty.h5"
    empty.write_bytes(results_file.read_bytes())
    with h5py.File(empty, "a") as f:
        for name in ("time", "step"):
            f[name].resize((0,))
    proc = subprocess.run([sys.executable, "-m", "solver", *[a.format(h5=empty, tmp=tmp_path) for a in args]],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)  # serial: no mpirun
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and errors == [f"error: {empty}: holds no snapshots"], proc.stderr


def test_export_all_checks_every_target_before_it_writes_one(tmp_path, results_file):
    """A FIFO at the second file of a series: the first was written, then the refusal."""
    (tmp_path / "out").mkdir()
    __import__("os").mkfifo(tmp_path / "out" / "s_000001.vtu")
    proc = without_mpi(tmp_path, "export", results_file, "--format", "vtu", "--all", "-o", tmp_path / "out" / "s.vtu")
    assert proc.returncode == 2 and "s_000001.vtu" in proc.stderr, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s_000001.vtu"]


def test_export_all_with_a_chosen_snapshot_is_refused(tmp_path, results_file):
    """--all with --time wrote every snapshot, the --time ignored."""
    proc = without_mpi(tmp_path, "export", results_file, "--format", "csv", "--all", "--time", "60",
                       "-o", tmp_path / "x.csv")
    assert proc.returncode == 2 and "export --all writes every snapshot: --time chooses one" in proc.stderr, proc.stderr
    assert not list(tmp_path.glob("x*.csv"))


def test_plots_of_a_steady_run(tmp_path):
    """--dt: "no time-step table (written since adaptive time steps)"; --series: axes without a
    line (one point, no marker)."""
    run_solver(1, [ROOT / "inputs" / "plate.toml", "--set", "mesh.nx=6", "--set", "mesh.ny=3", "--set",
                   'time.scheme="steady"', "--set", f"output.directory={tmp_path}"], cwd=tmp_path)
    results = tmp_path / "plate" / "plate.h5"
    proc = without_mpi(tmp_path, "plot", results, "--dt", "-o", tmp_path / "dt.png")
    assert proc.returncode == 2 and "a steady run has no time steps to plot" in proc.stderr, proc.stderr
    proc = without_mpi(tmp_path, "plot", results, "--series", "-o", tmp_path / "s.png")
    assert proc.returncode == 0 and (tmp_path / "s.png").stat().st_size > 0, proc.stderr


def test_an_output_that_cannot_be_written_is_named_not_the_results_read(tmp_path, results_file):
    """info into /dev/full said "<results>: cannot write or read it (No space left on device)";
    an XDMF export into /proc named the results file too."""
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "solver", "info", str(results_file)], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 74 and proc.stderr.strip() == "error: cannot write the output (No space left on device)"
    proc = without_mpi(tmp_path, "export", results_file, "--format", "xdmf", "-o", "/proc/x.xdmf")
    assert proc.returncode == 2 and proc.stderr.startswith("error: -o /proc/x.xdmf: cannot write it"), proc.stderr


def test_an_output_name_that_is_only_an_extension_is_refused(tmp_path, results_file):
    """plot -o .png wrote .png.png."""
    proc = without_mpi(tmp_path, "plot", results_file, "-o", tmp_path / ".png")
    assert proc.returncode == 2 and "no file name before the extension" in proc.stderr, proc.stderr
    assert not list(tmp_path.glob(".png*"))


def test_export_of_one_snapshot_as_csv_to_standard_output(tmp_path, results_file):
    """export -o - wrote a file named -.csv; it writes the CSV to standard output (vtu is refused)."""
    proc = without_mpi(tmp_path, "export", results_file, "--format", "csv", "--step", "0", "-o", "-")
    rows = proc.stdout.splitlines()
    assert proc.returncode == 0 and rows[0] == "x,y,temperature" and len(rows) > 10, proc.stderr
    with h5py.File(results_file, "r") as f:
        assert len(rows) - 1 == len(f["mesh/geometry"])
    proc = without_mpi(tmp_path, "export", results_file, "--format", "vtu", "-o", "-")
    assert proc.returncode == 2 and "standard output takes one snapshot as CSV" in proc.stderr
    assert not list(tmp_path.glob("-*"))


def test_a_read_that_fails_on_a_file_being_written_is_tried_again(tmp_path, monkeypatch):
    """Reading a run's results while it writes them met a snapshot half-written now and then (4 of
    34 probes during a run, exit 2). info, probe and plot try again while the file says it is being
    written; a file that does not, and export (which writes as it reads), fail at once."""
    import argparse

    from solver.app import cli
    from solver.errors import CaseError

    monkeypatch.setattr(cli, "REREAD_PAUSE", 0.0)
    path = tmp_path / "run.h5"
    with h5py.File(path, "w") as f:
        f.attrs["status"] = "running"
    calls = []

    def flaky(args):
        calls.append(1)
        if len(calls) < 3:
            raise CaseError(f"{path}: snapshot 7 of temperature cannot be read (addr overflow)")
        return 0

    args = argparse.Namespace(command="probe", results=str(path))
    assert cli._reading_again(flaky, args) == 0 and len(calls) == 3
    for command, status in (("export", "running"), ("probe", "complete")):
        calls.clear()
        with h5py.File(path, "a") as f:
            f.attrs["status"] = status
        with pytest.raises(CaseError):
            cli._reading_again(flaky, argparse.Namespace(command=command, results=str(path)))
        assert len(calls) == 1


def test_a_reading_command_under_mpirun_reads_and_writes_once(tmp_path, results_file):
    """``mpirun -n 3 python -m solver export ...`` ran the export three times over: three writers of
    one output, and every line said three times; the first process of the launch does the work."""
    from conftest import run_mpi

    export = run_mpi(3, ["-m", "solver", "export", results_file, "--format", "csv", "-o", tmp_path / "t.csv"],
                     cwd=tmp_path)
    assert export.stdout.splitlines() == [str(tmp_path / "t.csv")] and (tmp_path / "t.csv").stat().st_size > 0
    info = run_mpi(3, ["-m", "solver", "info", results_file], cwd=tmp_path)
    assert info.stdout.count("snapshots") == 1, info.stdout
    refused = run_mpi(3, ["-m", "solver", "info", tmp_path / "none.h5"], cwd=tmp_path, check=False)
    assert refused.returncode == 2 and refused.stderr.count("error:") == 1, refused.stderr
