"""The XDMF index grows at constant cost per snapshot and is a complete document after each."""

import os
import xml.etree.ElementTree as ET

from solver.io.xdmf import XdmfIndex
from solver.mesh.cells import CELLS


def index(path):
    return XdmfIndex(path, "run.h5", CELLS["triangle"], n_nodes=9, n_cells=8, gdim=2)


def test_appends_equal_a_rewrite_and_parse_after_each(tmp_path):
    snapshots = [(0.1 * i, f"/fields/temperature/{i:06d}") for i in range(50)]
    grown = index(tmp_path / "grown.xdmf")
    for i, (t, d) in enumerate(snapshots):
        grown.append(t, d)
        grids = ET.parse(tmp_path / "grown.xdmf").getroot()[0][0]
        assert len(grids) == i + 1 and grids[-1].find("Time").get("Value") == repr(t)
    whole = index(tmp_path / "whole.xdmf")
    whole.rewrite(snapshots)
    assert (tmp_path / "grown.xdmf").read_bytes() == (tmp_path / "whole.xdmf").read_bytes()


def test_each_snapshot_writes_the_same_bytes_whatever_came_before(tmp_path, monkeypatch):
    written = []
    real = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: written.append(len(data)) or real(fd, data, offset))
    x = index(tmp_path / "run.xdmf")
    for i in range(2000):
        x.append(float(i), f"/fields/temperature/{i:06d}")
    assert len(written) == 2000 and max(written) - min(written) <= 8  # only the digits of t and i vary
    assert os.path.getsize(tmp_path / "run.xdmf") < 2000 * (max(written) + 1)
