"""The results-file reference names every dataset and attribute a run writes.

Two small runs on 2 ranks cover the layout's variants: a phase-change case with probes and
checkpoints (backward Euler, Newton), and an adaptive BDF2 case. Every HDF5 path and attribute of
their results files and checkpoints must appear in ``docs/reference/results_file.md``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import h5py
import pytest
from conftest import run_solver

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "reference" / "results_file.md"
RUNS = {
    "casting2d": ["--set", "mesh.nx=16", "--set", "mesh.ny=8", "--set", "time.t_end=6", "--set",
                  "output.probes=[[0.1, 0.05]]", "--set", "checkpoint.every=2"],
    "heater_pulse": ["--set", "mesh.nx=8", "--set", "mesh.ny=8", "--set", "time.t_end=4", "--set",
                     "checkpoint.every=3", "--set", "output.times=[1.0, 4.0]"],
}


def names_in(path: Path) -> set[str]:
    """The canonical names of a file's datasets, groups and attributes (snapshot indices as INDEX,
    tables of the case as SHA256, boundary names as NAME, wall-time phases as their prefix and phase)."""
    found = set()
    with h5py.File(path, "r") as f:
        found |= set(f.attrs)
        f.visititems(lambda name, obj: found.update({"/" + name, *obj.attrs}))
    out = set()
    for name in found:
        name = re.sub(r"/\d{6}$", "/INDEX", name)
        name = re.sub(r"^/case_tables/[0-9a-f]{64}$", "/case_tables/SHA256", name)
        name = re.sub(r"^balance_heat_in_(?!source$)\w+$", "balance_heat_in_NAME", name)
        out.add(name)
    return out


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> set[str]:
    work = tmp_path_factory.mktemp("layout")
    shutil.copytree(ROOT / "inputs", work / "inputs")
    names = set()
    for case, extra in RUNS.items():
        run_solver(2, [f"inputs/{case}.toml", *extra], cwd=work, timeout=300)
        folder = work / "outputs" / case
        names |= names_in(folder / f"{case}.h5")
        for checkpoint in (folder / "checkpoints").glob("*.h5"):
            names |= names_in(checkpoint)
    return names


def test_every_written_name_is_documented(written):
    text = PAGE.read_text()
    groups = {n for n in written if n.startswith("/") and not re.search(r"/(INDEX)$", n)}
    assert {"/mesh/geometry", "/fields/temperature/INDEX", "/fields/liquid_fraction/INDEX", "/previous",
            "/adaptive_level1", "/probes/values", "status", "run_id"} <= written
    missing = []
    for name in sorted(written):
        if name in groups and any(other.startswith(name + "/") for other in written):
            continue  # a group: its datasets are listed
        if name.startswith("wall_time_"):
            shown = "`wall_time_*`" in text and f"`{name.removeprefix('wall_time_')}`" in text
        else:
            shown = f"`{name}`" in text or f"`{name.lstrip('/')}`" in text
        if not shown:
            missing.append(name)
    assert not missing, f"{PAGE.relative_to(ROOT)} does not describe {missing}"
