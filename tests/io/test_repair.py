"""A results file cut short by a failed write (the disk filled while MPI-IO wrote a snapshot):
HDF5 refuses to open it as truncated, and the restart stopped at "cannot open the results file".
Padded with zeros to the end HDF5 recorded, it opens; what the restart keeps must lie within the
bytes written, else the file is left as it was and the line says what is lost."""

import os

import h5py
import numpy as np
from conftest import ROOT, run_solver

ARGS = [str(ROOT / "inputs" / "plate.toml"), "--set", "mesh.nx=8", "--set", "mesh.ny=4"]


def cut_short(tmp_path, missing: int):
    """A complete run to t = 600 s, a dataset of 1.6 MB appended (the write that failed), and
    ``missing`` bytes of the file's end lost."""
    run_solver(1, [*ARGS, "--set", "time.t_end=600.0", "--set", f"output.directory={tmp_path}", "--quiet"],
               cwd=tmp_path)
    h5 = tmp_path / "plate" / "plate.h5"
    with h5py.File(h5, "r+") as f:
        f.create_dataset("unfinished", data=np.ones(200_000))
    os.truncate(h5, os.path.getsize(h5) - missing)
    return h5


def restart(tmp_path):
    return run_solver(1, [*ARGS, "--set", "time.t_end=900.0", "--set", f"output.directory={tmp_path}", "--restart",
                          "latest"], cwd=tmp_path, check=False, timeout=60)


def test_a_file_cut_short_in_the_failed_write_s_data_is_padded_and_continued(tmp_path):
    h5 = cut_short(tmp_path, 800_000)
    proc = restart(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "was cut short by a failed write" in proc.stderr
    with h5py.File(h5, "r") as f:
        assert f.attrs["complete"] and f["time"][-1] == 900.0 and len(f["time"]) == 16


def test_a_file_cut_short_in_its_listed_snapshots_is_refused_and_left_as_it_was(tmp_path):
    h5 = cut_short(tmp_path, 1_610_000)  # the unfinished data and the end of what was there before
    size = os.path.getsize(h5)
    proc = restart(tmp_path)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "the failed write cut the results file short in what its listed snapshots need" in errors[0]
    assert os.path.getsize(h5) == size
