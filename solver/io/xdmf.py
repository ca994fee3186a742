"""The XDMF index of a results file: a temporal collection that ParaView opens directly.

Every snapshot is a Uniform grid referencing the shared mesh datasets and its own temperature
dataset in the HDF5 file. The index is written whole once (to a temporary file, then renamed)
and then grows by one grid per snapshot at constant cost: the new grid and the closing tags
replace the old closing tags in one write, so a reader finds a complete document before and
after it; a write that fails (a full disk) puts the old closing tags back.
"""

from __future__ import annotations

import os
from pathlib import Path
from xml.sax.saxutils import quoteattr

from solver.mesh.cells import ReferenceCell

_GEOMETRY = {2: "XY", 3: "XYZ"}
_HEAD = ('<?xml version="1.0"?>\n<Xdmf Version="3.0">\n  <Domain>\n'
         '    <Grid Name="temperature" GridType="Collection" CollectionType="Temporal">\n')
_TAIL = "    </Grid>\n  </Domain>\n</Xdmf>\n"


class XdmfIndex:
    """The index of ``h5_name``'s snapshots at ``path`` (rank 0 writes it)."""

    def __init__(self, path: Path, h5_name: str, cell: ReferenceCell, n_nodes: int, n_cells: int, gdim: int,
                 fields: tuple[str, ...] = ("temperature",)):
        """``fields``: the nodal fields of every snapshot; the first one's dataset names the
        snapshot, the others sit beside it (``/fields/<name>/<index>``)."""
        self.path = Path(path)
        self.h5, self.n_nodes, self.fields = h5_name, n_nodes, tuple(fields)
        self.mesh = (
            f'      <Topology TopologyType="{cell.xdmf}" NumberOfElements="{n_cells}">\n'
            f'        <DataItem Dimensions="{n_cells} {cell.n_nodes}" NumberType="Int" Precision="8" '
            f'Format="HDF">{h5_name}:/mesh/topology</DataItem>\n'
            f'      </Topology>\n'
            f'      <Geometry GeometryType="{_GEOMETRY[gdim]}">\n'
            f'        <DataItem Dimensions="{n_nodes} {gdim}" NumberType="Float" Precision="8" '
            f'Format="HDF">{h5_name}:/mesh/geometry</DataItem>\n'
            f'      </Geometry>\n')
        self.count = 0
        self._tail_at: int | None = None  # byte offset of the closing tags

    def _grid(self, i: int, t: float, dataset: str) -> str:
        first = f"/{self.fields[0]}/"
        attributes = "".join(
            f'      <Attribute Name="{name}" AttributeType="Scalar" Center="Node">\n'
            f'        <DataItem Dimensions="{self.n_nodes}" NumberType="Float" Precision="8" '
            f'Format="HDF">{self.h5}:{dataset.replace(first, f"/{name}/")}</DataItem>\n'
            f'      </Attribute>\n' for name in self.fields)
        return (f'    <Grid Name={quoteattr(f"step {i}")} GridType="Uniform">\n{self.mesh}'
                f'      <Time Value="{t!r}"/>\n{attributes}'
                f'    </Grid>\n')

    def rewrite(self, snapshots) -> None:
        """The whole index for ``snapshots`` (list of (time, dataset)), replacing any old one."""
        body = (_HEAD + "".join(self._grid(i, t, d) for i, (t, d) in enumerate(snapshots))).encode()
        tmp = self.path.with_suffix(".xdmf.tmp")
        try:
            if tmp.is_symlink():  # a link left at the temporary's name: replaced, never written through
                tmp.unlink()
            tmp.write_bytes(body + _TAIL.encode())
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)  # the old index (if any) stays as it was
            raise
        self.count, self._tail_at = len(snapshots), len(body)

    def append(self, t: float, dataset: str) -> None:
        """One more snapshot, at a cost independent of how many came before."""
        if self._tail_at is None:
            self.rewrite([])
        grid = self._grid(self.count, t, dataset).encode()
        fd = os.open(self.path, os.O_WRONLY)
        try:
            written = os.pwrite(fd, grid + _TAIL.encode(), self._tail_at)
            if written != len(grid) + len(_TAIL):
                raise OSError(f"{self.path}: short write ({written} bytes)")
        except OSError:  # put the closing tags back where they were: the old index, whole again
            os.pwrite(fd, _TAIL.encode(), self._tail_at)
            os.ftruncate(fd, self._tail_at + len(_TAIL))
            raise
        finally:
            os.close(fd)
        self.count += 1
        self._tail_at += len(grid)
