"""The files ``export`` and ``plot`` write: a .pvd that names its files in well-formed XML whatever
their names, the XDMF's data file beside it never written over unless an earlier export to the same
target wrote it, and an export or a plot that fails leaves no partial file beside its targets (exit
74 when the disk is full or the file too large)."""

import argparse
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET

import h5py
import meshio
import numpy as np
import pytest
from conftest import ROOT, mpi_env, run_solver

from solver.errors import CaseError, OutputError
from solver.io import results
from solver.io.results_reader import open_unbuffered
from solver.mesh.cells import CELLS


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    d = tmp_path_factory.mktemp("plate")
    run_solver(1, [ROOT / "inputs" / "plate.toml", "--set", "mesh.nx=10", "--set", "mesh.ny=5",
                   "--set", "time.t_end=120.0", "--set", f"output.directory={d}"], cwd=d)
    return d / "plate" / "plate.h5"


def post(*args, limit=None):
    def file_size_limit():  # writes past `limit` bytes fail with EFBIG (the signal it would send ignored)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "solver", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=mpi_env(), preexec_fn=file_size_limit if limit else None)


def contents(folder):
    """Every entry of ``folder`` (hidden ones too) with its bytes (a link: where it points)."""
    return {p.name: (os.readlink(p) if p.is_symlink() else p.read_bytes()) for p in sorted(folder.iterdir())}


def refused(proc, *words, status=2):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == status and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert all(w in lines[0] for w in words), proc.stderr


def test_a_pvd_names_its_files_as_xml_whatever_their_names(plate, tmp_path):
    """-o 'a&b"<c.vtu' wrote file="a&b"<c_000000.vtu" into the .pvd: not well-formed XML."""
    folder = tmp_path / "out"
    folder.mkdir()
    proc = post("export", plate, "--format", "vtu", "--all", "-o", folder / 'a&b"<c\'>.vtu')
    assert proc.returncode == 0, proc.stderr
    pvd = folder / 'a&b"<c\'>.pvd'
    sets = list(ET.parse(pvd).getroot().iter("DataSet"))
    with results.open(plate) as r:
        times = list(r.times)
    assert [float(s.get("timestep")) for s in sets] == times and len(times) > 1
    assert [s.get("file") for s in sets] == [f'a&b"<c\'>_{i:06d}.vtu' for i in range(len(times))]
    for s in sets:  # each file named is there, beside the .pvd, and read back
        assert "temperature" in meshio.read(folder / s.get("file")).point_data
    assert proc.stdout.split("\n")[:-1] == [str(folder / s.get("file")) for s in sets] + [str(pvd)]
    assert sorted(p.name for p in folder.iterdir()) == sorted([pvd.name] + [s.get("file") for s in sets])


def test_a_name_that_xml_cannot_hold_is_refused_before_anything_is_written(plate, tmp_path):
    for fmt in ("vtu", "xdmf"):
        proc = post("export", plate, "--format", fmt, "--all", "-o", tmp_path / f"a\x01b.{fmt}")
        refused(proc, r"does not print (\x01)", "give a plain name")
    assert not list(tmp_path.iterdir())


def _without_run_attributes(src, dst):
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        for name in list(f.attrs):
            del f.attrs[name]


def _meshio_like(src, dst):  # meshio's dataset names, but no XDMF of an export names it
    with h5py.File(dst, "w") as f:
        f["data0"] = np.arange(6.0)


@pytest.mark.parametrize("make", [
    _without_run_attributes,
    lambda src, dst: dst.write_bytes(src.read_bytes()[: src.stat().st_size // 2]),  # a truncated results file
    lambda src, dst: dst.write_bytes(src.read_bytes()[:4096]),
    _meshio_like,
    lambda src, dst: dst.write_text("notes\n"),
], ids=["hdf5-without-run-id", "truncated-half", "truncated-4k", "meshio-names-no-xdmf", "text"])
def test_an_existing_data_file_is_not_written_over(plate, tmp_path, make):
    """-o dir/mydata.xdmf truncated an existing dir/mydata.h5 unless it opened with a run's attributes."""
    make(plate, tmp_path / "mydata.h5")
    before = contents(tmp_path)
    proc = post("export", plate, "--format", "xdmf", "-o", tmp_path / "mydata.xdmf")
    refused(proc, f"its data file {tmp_path / 'mydata.h5'} is", "which it would overwrite; it is not written over",
            "choose another name")
    assert contents(tmp_path) == before  # nothing written, not even the .xdmf


def test_the_data_file_of_an_xdmf_that_is_not_an_export_is_not_written_over(plate, tmp_path):
    """An XDMF there that names the .h5 is not enough: the .h5 must hold only what it names, as meshio writes."""
    assert post("export", plate, "--format", "xdmf", "-o", tmp_path / "x.xdmf").returncode == 0
    with h5py.File(tmp_path / "x.h5", "r+") as f:  # something added to it since: not meshio's file any more
        f["notes"] = np.arange(3)
    before = contents(tmp_path)
    refused(post("export", plate, "--format", "xdmf", "-o", tmp_path / "x.xdmf"), "x.h5 is an HDF5 file")
    assert contents(tmp_path) == before
    # a link to an export's data file, and the run's own index beside its results
    (tmp_path / "y.h5").symlink_to(tmp_path / "x.h5")
    shutil.copyfile(tmp_path / "x.xdmf", tmp_path / "y.xdmf")
    refused(post("export", plate, "--format", "xdmf", "-o", tmp_path / "y.xdmf"), "y.h5 is an HDF5 file (a link)")
    own = plate.read_bytes()
    refused(post("export", plate, "--format", "xdmf", "-o", plate.with_suffix(".xdmf")),
            "is the results file being exported")
    assert plate.read_bytes() == own


def test_exporting_again_to_the_same_xdmf_rewrites_its_own_data_file(plate, tmp_path):
    target = tmp_path / "mydata.xdmf"
    for args in ([], ["--all"], ["--step", "0", "--field", "temperature"]):
        proc = post("export", plate, "--format", "xdmf", *args, "-o", target)
        assert proc.returncode == 0 and proc.stdout.strip() == str(target), proc.stderr
    assert set(meshio.read(target).point_data) == {"temperature"}  # one snapshot: one grid
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mydata.h5", "mydata.xdmf"]
    # the default name, <name>_export.xdmf beside the results, twice
    for _ in range(2):
        proc = post("export", plate, "--format", "xdmf")
        assert proc.returncode == 0 and proc.stdout.strip().endswith("plate_export.xdmf"), proc.stderr


@pytest.mark.parametrize("degree", [1, 2])
def test_a_one_snapshot_xdmf_export_is_one_grid_that_meshio_reads(tmp_path, degree):
    """Without --all the export was a temporal collection of one grid, which meshio.read refused
    ("Only supports one grid right now")."""
    run_solver(1, [ROOT / "inputs" / "plate.toml", "--set", "mesh.nx=4", "--set", "mesh.ny=2", "--set",
                   "time.t_end=20.0", "--set", f"element.degree={degree}", "--set", f"output.directory={tmp_path}",
                   "--quiet"], cwd=tmp_path)
    plate = tmp_path / "plate" / "plate.h5"
    for args in (["--step", "1"], []):
        target = tmp_path / f"one{len(args)}.xdmf"
        proc = post("export", plate, "--format", "xdmf", *args, "-o", target)
        assert proc.returncode == 0, proc.stderr
        mesh = meshio.read(target)
        with results.open(plate) as r:
            assert mesh.cells[0].type == ("triangle", "triangle6")[degree - 1] == CELLS[r.cell_type].meshio
            assert np.array_equal(mesh.points, r.points) and np.array_equal(mesh.cells[0].data, r.cells)
            assert np.array_equal(mesh.point_data["temperature"], r.temperature(1 if args else -1))
        assert [g.get("GridType", "Uniform") for g in ET.parse(target).getroot().iter("Grid")] == ["Uniform"]


@pytest.mark.parametrize("fmt", ["csv", "vtu"])
def test_an_export_that_fails_leaves_the_files_there_as_they_were(plate, tmp_path, fmt):
    """A write that fails part way (a file size limit: as a full disk) left the files before it
    written and the one it was writing cut short; now nothing beside the targets changes."""
    first = tmp_path / "first"
    first.mkdir()
    assert post("export", plate, "--format", fmt, "--all", "-o", first / f"s.{fmt}").returncode == 0
    sizes = sorted(p.stat().st_size for p in first.glob(f"*.{fmt}"))
    assert sizes[0] < sizes[-1]
    for path in first.glob(f"*.{fmt}"):  # an earlier export of other contents: must stay as it is
        path.write_text("earlier\n")
    before = contents(first)
    proc = post("export", plate, "--format", fmt, "--all", "-o", first / f"s.{fmt}", limit=sizes[0])
    refused(proc, "cannot write it (File too large)", status=74)
    assert contents(first) == before  # no partial file, no staging folder left


def test_an_xdmf_export_without_room_ends_with_74_and_one_clean_line(plate, tmp_path):
    """HDF5's error of a full disk spans lines (a time stamp first): the message was cut after
    "time = ...", with exit 2 as if the request were wrong."""
    before = contents(tmp_path)
    proc = post("export", plate, "--format", "xdmf", "-o", tmp_path / "a.xdmf", limit=2048)
    refused(proc, f"-o {tmp_path / 'a.xdmf'}: cannot write it or its data file a.h5 (File too large); the files "
            "there are as they were", status=74)
    assert "time =" not in proc.stderr and contents(tmp_path) == before


@pytest.mark.parametrize("name", ["keep.png", "keep.svg", "new.pdf", "new.svg", "new.eps", "new.tif"])
def test_a_plot_that_cannot_be_written_leaves_the_pictures_there_as_they_were(plate, tmp_path, name):
    """plot wrote onto its target: a full disk truncated the picture there, left a part of a new
    one, and a PDF's failed write was blamed on the results file (exit 2)."""
    for old in ("keep.png", "keep.svg"):
        assert post("plot", plate, "-o", tmp_path / old).returncode == 0
    before = contents(tmp_path)
    proc = post("plot", plate, "-o", tmp_path / name, limit=4096)
    refused(proc, f"-o {tmp_path / name}: cannot write it (File too large)", status=74)
    assert contents(tmp_path) == before


# the command, with each staged file's write followed by a signal to itself (a user's kill while it writes)
SIGNALLED = """import os, runpy, signal, sys, numpy, matplotlib.figure
def signalled(write):
    def wrapped(*args, **kwargs):
        write(*args, **kwargs)
        os.kill(os.getpid(), getattr(signal, os.environ["STOP_SIGNAL"]))
    return wrapped
numpy.savetxt = signalled(numpy.savetxt)
matplotlib.figure.Figure.savefig = signalled(matplotlib.figure.Figure.savefig)
sys.argv = ["solver", *sys.argv[1:]]
runpy.run_module("solver", run_name="__main__")
"""


@pytest.mark.parametrize("sig, command", [("SIGTERM", ["export", "--format", "csv", "--all"]),
                                          ("SIGHUP", ["plot"])])
def test_a_stop_signal_while_a_file_is_written_leaves_the_files_there_as_they_were(plate, tmp_path, sig, command):
    """SIGTERM or SIGHUP killed plot and export where they stood: a hidden staging folder with a
    written file stayed beside the target; now it is removed and the command ends with 128 + the signal."""
    (tmp_path / "keep.txt").write_text("mine\n")
    before = contents(tmp_path)
    out = tmp_path / ("s.csv" if command[0] == "export" else "s.png")
    proc = subprocess.run([sys.executable, "-c", SIGNALLED, command[0], plate, *command[1:], "-o", out],
                          capture_output=True, text=True, timeout=120, env={**mpi_env(), "STOP_SIGNAL": sig})
    assert proc.returncode == 128 + getattr(signal, sig), proc.stderr
    assert proc.stderr.strip() == f"stopped by {sig}"
    assert contents(tmp_path) == before  # no staging folder, no target


def test_an_xdmf_export_name_with_a_colon_is_refused(plate, tmp_path):
    """The index names the data as FILE:/DATASET, which readers split at the first ':' ("a b:c.h5:/data0")."""
    refused(post("export", plate, "--format", "xdmf", "-o", tmp_path / "a b:c.xdmf"), "a b:c.xdmf", "':'")
    assert not list(tmp_path.iterdir())


def test_an_xdmf_export_that_fails_leaves_the_earlier_one_as_it_was(plate, tmp_path, monkeypatch):
    from solver.post.arguments import export_arguments
    from solver.post.export import export_command

    target = tmp_path / "mydata.xdmf"
    assert post("export", plate, "--format", "xdmf", "-o", target).returncode == 0
    before = contents(tmp_path)
    write = meshio.xdmf.TimeSeriesWriter.write_data
    calls = []

    def failing(self, *args, **kwargs):  # the second snapshot's data cannot be written
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return write(self, *args, **kwargs)

    monkeypatch.setattr(meshio.xdmf.TimeSeriesWriter, "write_data", failing)
    parser = argparse.ArgumentParser()
    export_arguments(parser)
    for out in (target, tmp_path / "new.xdmf"):
        args = parser.parse_args([str(plate), "--format", "xdmf", "--all", "-o", str(out)])
        message = f"-o {out.resolve()}: cannot write it or its data file {out.stem}.h5 (No space left on device)"
        with pytest.raises(OutputError, match=re.escape(message)):
            export_command(args)
        calls.clear()
    assert contents(tmp_path) == before


@pytest.mark.parametrize("fmt", ["csv", "vtu"])
def test_a_target_that_is_a_link_is_written_where_it_points_with_its_permissions(plate, tmp_path, fmt):
    """Written into a folder and moved into place, the export replaced the link itself with a file
    and left the file it pointed to as it was; and a file replaced lost its permissions."""
    real, links = tmp_path / "real", tmp_path / "links"
    real.mkdir()
    links.mkdir()
    (real / f"t.{fmt}").write_text("old")
    os.chmod(real / f"t.{fmt}", 0o640)
    (links / f"t.{fmt}").symlink_to(f"../real/t.{fmt}")
    proc = post("export", plate, "--format", fmt, "-o", links / f"t.{fmt}")
    assert proc.returncode == 0, proc.stderr
    assert (links / f"t.{fmt}").is_symlink() and (real / f"t.{fmt}").read_bytes() != b"old"
    assert (real / f"t.{fmt}").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("command", ["export", "plot"])
def test_a_link_to_a_file_of_another_kind_is_not_written_through(plate, tmp_path, command):
    """``plot -o link.png`` with link.png pointing to notes.txt wrote a PNG into notes.txt (whose own
    name ``-o`` refuses); refused now, the file as it was."""
    (tmp_path / "notes.txt").write_text("keep")
    target = tmp_path / ("link.png" if command == "plot" else "link.csv")
    target.symlink_to(tmp_path / "notes.txt")
    extra = ["--format", "csv"] if command == "export" else []
    proc = post(command, plate, *extra, "-o", target)
    assert proc.returncode == 2 and "a file of another kind" in proc.stderr, proc.stderr
    assert (tmp_path / "notes.txt").read_text() == "keep"


def test_a_link_to_a_file_of_the_same_kind_or_of_no_extension_is_written_through(tmp_path):
    """.jpg and .jpeg are one kind; a target without an extension is not judged."""
    from solver.post.targets import PLOT_SUFFIXES, output_target

    for link, real in (("a.jpg", "b.jpeg"), ("c.tiff", "d.tif"), ("e.png", "blob")):
        (tmp_path / real).write_bytes(b"old")
        (tmp_path / link).symlink_to(tmp_path / real)
        assert output_target(tmp_path / link, PLOT_SUFFIXES) == tmp_path / link


def test_a_dangling_link_into_a_missing_folder_is_refused_and_kept(tmp_path):
    """``plot -o dang.png``, a link to nowhere/x.png: the plot replaced the link with a file (exit 0),
    where a write through it fails. Refused, the link kept; a dangling link into a folder that
    exists is written through, as before."""
    from solver.errors import CaseError
    from solver.post.targets import PLOT_SUFFIXES, output_target

    (tmp_path / "dang.png").symlink_to(tmp_path / "nowhere" / "x.png")
    with pytest.raises(CaseError, match="is a link to .*nowhere/x.png, in a folder that does not exist"):
        output_target(tmp_path / "dang.png", PLOT_SUFFIXES)
    assert (tmp_path / "dang.png").is_symlink()
    (tmp_path / "here.png").symlink_to(tmp_path / "x.png")
    assert output_target(tmp_path / "here.png", PLOT_SUFFIXES) == tmp_path / "here.png"


def test_a_snapshot_being_written_is_left_out_while_the_run_writes(plate, tmp_path):
    """A run listing snapshot n in /time and /step before its values are there: probe and export of
    the last snapshot failed ("no value of field 'temperature' at snapshot n", exit 2) about once in
    a hundred reads during a run. While the status is running, the commands read the one before;
    in a file that says it is complete, the missing values are damage, as before."""
    copy = tmp_path / "plate.h5"
    shutil.copy(plate, copy)
    with h5py.File(copy, "a") as f:
        last = f"{f['time'].shape[0] - 1:06d}"
        expected = f[f"fields/temperature/{f['time'].shape[0] - 2:06d}"][()]
        before = float(f["time"][-2])
        del f[f"fields/temperature/{last}"]
        f.attrs["status"] = "running"
    with results.open(copy) as r:
        assert r.times[-1] == before and np.array_equal(r.temperature(-1), expected)
    proc = post("probe", copy, "--at", "0.05,0.025")
    assert proc.returncode == 0 and f"{before:g}" in proc.stdout.splitlines()[-1], proc.stderr
    with h5py.File(copy, "a") as f:
        f.attrs["status"] = "complete"
    refused(post("probe", copy, "--at", "0.05,0.025"), "no value of field 'temperature' at snapshot", "damaged")


APPENDER = """
import sys, time
import h5py, numpy as np
with h5py.File(sys.argv[1], "a", locking=False) as f:  # (as a run: no lock)
    n, points = f["time"].shape[0], f["mesh/geometry"].shape[0]
    end = time.time() + float(sys.argv[2])
    while time.time() < end:
        f.create_dataset(f"fields/temperature/{n:06d}", data=np.full(points, 20.0 + n))
        f.flush()  # the values first, then the listing (as the writer does)
        for name, value in (("time", 60.0 + n), ("step", n)):
            f[name].resize((n + 1,))
            f[name][n] = value
        f.flush()
        n += 1
        time.sleep(0.002)
"""


def test_a_field_read_while_a_run_writes_the_file_is_its_values(plate, tmp_path):
    """A field read while a run appends snapshots came, about once in a few hundred reads, from
    bytes HDF5 had buffered (its sieve buffer) before the run wrote them: zeros, listed as the last
    snapshot (exit 0). The readers open results files without that buffer."""
    copy = tmp_path / "plate.h5"
    shutil.copy(plate, copy)
    with results.open(copy) as r:
        assert r.file.id.get_access_plist().get_sieve_buf_size() == 0
    writer = subprocess.Popen([sys.executable, "-c", APPENDER, str(copy), "3"])
    reads, zeros = 0, 0
    try:
        while writer.poll() is None:
            try:
                with open_unbuffered(copy) as f:
                    last = f"fields/temperature/{f['time'].shape[0] - 1:06d}"
                    zeros += int(not f[last][()].any())
                    reads += 1
            except (OSError, KeyError, RuntimeError, ValueError):  # a structure met half-written: refused
                pass
    finally:
        writer.wait(timeout=30)
    assert reads > 100 and zeros == 0, (reads, zeros)


def test_a_second_reader_in_one_process_sees_the_snapshots_written_since_the_first(plate, tmp_path):
    """HDF5 shares one view of a file among the handles that one process holds: a results file
    opened again while a first reader held it (a notebook) listed the snapshots of the first
    open, never those a run wrote since."""
    copy = tmp_path / "plate.h5"
    shutil.copy(plate, copy)
    with results.open(copy) as first:
        before = len(first.times)
        later = APPENDER.replace("60.0 + n", 'f["time"][n - 1] + 1.0')  # times and steps that go on increasing
        later = later.replace('("step", n)', '("step", f["step"][n - 1] + 1)')
        subprocess.run([sys.executable, "-c", later, str(copy), "0.2"], check=True, timeout=60)
        with results.open(copy) as second:
            assert len(second.times) > before and len(first.times) == before
            assert second.temperature(-1)[0] == 20.0 + len(second.times) - 1
    assert first.file.source.closed and second.file.source.closed  # (each read through a file of its own)


@pytest.mark.parametrize("status, why", [("running", "a run is writing the file"), ("complete", "the file is damaged")])
def test_tables_met_half_written_are_refused_in_one_line(plate, tmp_path, monkeypatch, status, why):
    """HDF5 meeting a group half-written while the file is opened ("Can't determine # of objects")
    was a RuntimeError: exit 1 from info and the others."""
    copy = tmp_path / "plate.h5"
    shutil.copy(plate, copy)
    with h5py.File(copy, "a") as f:
        f.attrs["status"] = status

    def torn(self):
        raise RuntimeError("Can't determine # of objects (addr overflow, addr = 806120, size = 328, eoa = 790992)")
    monkeypatch.setattr(results.Results, "_check_layout", torn)
    with pytest.raises(CaseError, match=f"its tables cannot be read \\(Can't determine # of objects .*\\): {why}"):
        results.open(copy)


def test_a_point_just_outside_the_mesh_is_shown_as_given(plate):
    """A point 1e-10 above the plate's top edge was shown as (0.2, 0.1), which looks inside."""
    with results.open(plate) as r, pytest.raises(CaseError, match=r"point \(0\.2, 0\.1000000001\) is outside"):
        r.probe([0.2, 0.1000000001])


def test_a_time_between_snapshots_names_the_snapshot_exported(plate, tmp_path):
    """--time 50 (snapshots at 0, 60, 120 s) exported the one at 60 s with no word of it: a CSV
    holds no time, so the values read as those at 50 s."""
    between = post("export", plate, "--format", "csv", "--time", "50", "-o", "-")
    on = post("export", plate, "--format", "csv", "--time", "60", "-o", "-")
    assert between.returncode == on.returncode == 0, between.stderr + on.stderr
    assert between.stdout == on.stdout
    assert between.stderr.strip().splitlines() == [
        "note: --time 50: the nearest snapshot, at t = 60 s, is exported (snapshot 1; snapshots are not "
        "interpolated in time)"]
    assert on.stderr == ""
    to_file = post("export", plate, "--format", "vtu", "--time", "70", "-o", tmp_path / "a.vtu")
    assert to_file.returncode == 0 and "at t = 60 s" in to_file.stderr, to_file.stderr
