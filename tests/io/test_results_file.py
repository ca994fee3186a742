"""The results file: identical on 1-4 ranks, readable by meshio and by serial h5py."""

import h5py
import meshio
import numpy as np
import pytest
from conftest import run_solver

CASES = {
    "tri": ["mesh.cell=triangle", "mesh.nx=13", "mesh.ny=7"],
    "hex": ["mesh.type=box", "mesh.cell=hexahedron", "mesh.nx=5", "mesh.ny=4", "mesh.nz=3",
            "mesh.lengths=[0.2, 0.1, 0.1]", "boundary.front.type=dirichlet", "boundary.front.value=50.0"],
}
COMMON = ["time.dt=20.0", "time.t_end=200.0", "output.every=3", "solver.rtol=1e-13"]


def run_case(tmp_path, nprocs, name, extra=()):
    sets = [a for kv in CASES[name] + COMMON + list(extra) for a in ("--set", kv)]
    out = tmp_path / f"np{nprocs}"
    proc = run_solver(nprocs, ["--set", f"output.directory={out}", "--set", f"output.name={name}", *sets],
                      cwd=tmp_path)
    return out / name / f"{name}.h5", proc


def read(path):
    with h5py.File(path, "r") as f:
        temps = [f["fields/temperature"][k][()] for k in sorted(f["fields/temperature"])]
        return (f["mesh/geometry"][()], f["mesh/topology"][()], np.array(temps), f["time"][()],
                f["step"][()], dict(f.attrs))


@pytest.mark.parametrize("name", sorted(CASES))
def test_files_identical_on_1_to_4_ranks(tmp_path, name):
    ref = read(run_case(tmp_path, 1, name)[0])
    assert ref[3].tolist() == [0.0, 60.0, 120.0, 180.0, 200.0] and ref[4].tolist() == [0, 3, 6, 9, 10]
    assert np.ptp(ref[2][-1]) > 1.0  # the field actually evolved
    for n in (2, 3, 4):
        geometry, topology, temps, times, steps, attrs = read(run_case(tmp_path, n, name)[0])
        assert np.array_equal(geometry, ref[0]) and np.array_equal(topology, ref[1])
        assert np.array_equal(times, ref[3]) and np.array_equal(steps, ref[4])
        assert np.max(np.abs(temps - ref[2])) <= 1e-10 * np.max(np.abs(ref[2]))
        assert attrs["ranks"] == n and "[mesh]" in attrs["case"]


def test_xdmf_read_by_meshio_and_h5_by_serial_h5py(tmp_path):
    h5, proc = run_case(tmp_path, 3, "tri")
    xdmf = h5.with_suffix(".xdmf")
    assert str(h5) in proc.stdout and str(xdmf) in proc.stdout
    with meshio.xdmf.TimeSeriesReader(xdmf) as reader:
        points, cells = reader.read_points_cells()
        assert points.shape == (14 * 8, 2)
        assert cells[0].type == "triangle" and cells[0].data.shape == (13 * 7 * 2, 3)
        assert reader.num_steps == 5
        t, point_data, _ = reader.read_data(reader.num_steps - 1)
    assert t == 200.0
    with h5py.File(h5, "r") as f:  # plain serial h5py, no MPI driver
        assert np.array_equal(point_data["temperature"], f["fields/temperature/000004"][()])
        assert f.attrs["solver_version"] and f["mesh/topology"].attrs["cell_type"] == "triangle"


def test_gathered_writer_matches_mpio(tmp_path):
    mpio = read(run_case(tmp_path, 3, "hex")[0])
    gathered_dir = tmp_path / "gathered"
    gathered_dir.mkdir()
    gathered = read(run_case(gathered_dir, 3, "hex", ["output.driver=gathered"])[0])
    for a, b in zip(mpio[:5], gathered[:5]):
        assert np.array_equal(a, b)
    assert gathered[5]["writer"] == "gathered"


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_long_results_path_is_written_gathered_instead_of_aborting(tmp_path, nprocs):
    """A results path of more than about 240 bytes (a deep output.directory, a 100-character name)
    aborted every rank in Open MPI's MPI-IO (a buffer overflow, exit 134): such a path is written
    through rank 0, with the same content, and its checkpoint read back by a restart."""
    deep = tmp_path.joinpath(*["d" * 100] * 2)
    sets = [a for kv in CASES["tri"] + ["time.dt=20.0", "time.t_end=40.0", f"output.directory={deep}",
                                        "output.name=" + "n" * 100] for a in ("--set", kv)]
    run_solver(nprocs, sets + ["--quiet"], cwd=tmp_path, timeout=90)
    run_solver(nprocs, sets + ["--set", "time.t_end=60.0", "--restart", "latest", "--quiet"], cwd=tmp_path, timeout=90)
    with h5py.File(deep / ("n" * 100) / ("n" * 100 + ".h5"), "r") as f:
        assert f["time"][0] == 0.0 and f["time"][-1] == 60.0 and f.attrs["writer"] == "gathered"


@pytest.mark.parametrize("path, what, advice", [
    ("out/plate.h5", "the mesh", "no snapshot was written: free space, then run again"),
    ("out/s.study.h5.tmp", "the study file", "the samples recorded before are kept"),
    ("out/plate.h5", "snapshot 3 (step 12, t = 60)", "the results keep their listed snapshots"),
])
def test_a_write_that_expires_says_what_is_kept(path, what, advice):
    """A write timeout during the mesh said the results kept their listed snapshots (there were
    none, and --restart latest then refused)."""
    from pathlib import Path

    from solver.io.deadline import _what_is_kept

    assert _what_is_kept(Path(path), what).startswith(advice)


def test_a_write_that_expires_before_any_checkpoint_does_not_offer_to_continue(tmp_path):
    """A checkpoint's write that timed out on 3 ranks, the run's first, advised --restart latest,
    which then found no checkpoint; with an earlier one there, it is the way on."""
    from solver.io.deadline import _what_is_kept

    folder = tmp_path / "plate" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "step_00000050.h5.tmp").write_bytes(b"")
    for path, what in ((folder / "step_00000050.h5.tmp", "the checkpoint of step 50"),
                       (tmp_path / "plate" / "plate.h5", "snapshot 3 (step 12, t = 60)")):
        advice = _what_is_kept(path, what)
        assert "no checkpoint was written yet" in advice and "--overwrite" in advice and "--restart" not in advice
    (folder / "step_00000025.h5").write_bytes(b"")
    assert _what_is_kept(folder / "step_00000050.h5.tmp", "the checkpoint of step 50").endswith(
        "continue with --restart latest")


def test_a_table_named_by_many_regions_is_stored_once_per_file(tmp_path):
    """A table in a CSV file was copied into the attribute case of every file the run wrote, once
    per key naming it (nine regions of a 100,000-point file: 51 MB per file, results and every
    checkpoint alike). Each distinct table is one dataset per file, which the case names, and a
    restart on another number of ranks reads it back."""
    from solver.io.results_reader import Results

    rows = [[20.0 + 2 * i, 40.0 + 0.001 * i] for i in range(3000)]
    (tmp_path / "k.csv").write_text("T,k\n" + "".join(f"{t!r},{v!r}\n" for t, v in rows))
    regions = [kv for i in range(6) for kv in (f"region.r{i}.x=[{i / 30!r}, {(i + 1) / 30!r}]",
                                                f'region.r{i}.k={{file="k.csv"}}')]
    sets = [a for kv in regions + ["mesh.nx=6", "mesh.ny=2", "time.dt=100.0", "time.t_end=200.0",
                                   "checkpoint.every=1", "output.directory=out"] for a in ("--set", kv)]
    run_solver(1, sets + ["--quiet"], cwd=tmp_path, timeout=90)
    for path in (tmp_path / "out/default/default.h5", tmp_path / "out/default/checkpoint.h5"):
        with h5py.File(path, "r") as f:
            assert len(f.attrs["case"]) < 8192 and [d.shape for d in f["case_tables"].values()] == [(3000, 2)]
            assert path.stat().st_size < 300_000
    run_solver(3, sets + ["--set", "time.t_end=300.0", "--restart", "latest", "--quiet"], cwd=tmp_path, timeout=90)
    with Results(tmp_path / "out/default/default.h5") as r:
        assert r.case["region"]["r5"]["k"] == {"table": rows, "file": "k.csv"} and r.times[-1] == 300.0
