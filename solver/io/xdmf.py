"""The XDMF index of a results file: a temporal collection that ParaView opens directly.

Every time step is a Uniform grid referencing the shared mesh datasets and its own
temperature dataset in the HDF5 file. The file is replaced atomically (write, then rename)
so a reader never sees half of it.
"""

from __future__ import annotations

import os
from pathlib import Path
from xml.sax.saxutils import quoteattr

from solver.mesh.cells import ReferenceCell

_GEOMETRY = {2: "XY", 3: "XYZ"}


def write_xdmf(path: Path, h5_name: str, cell: ReferenceCell, n_nodes: int, n_cells: int, gdim: int,
               snapshots) -> None:
    """``snapshots``: list of (time, HDF5 dataset path of the temperature)."""
    h5 = h5_name
    mesh = (
        f'      <Topology TopologyType="{cell.xdmf}" NumberOfElements="{n_cells}">\n'
        f'        <DataItem Dimensions="{n_cells} {cell.n_nodes}" NumberType="Int" Precision="8" '
        f'Format="HDF">{h5}:/mesh/topology</DataItem>\n'
        f'      </Topology>\n'
        f'      <Geometry GeometryType="{_GEOMETRY[gdim]}">\n'
        f'        <DataItem Dimensions="{n_nodes} {gdim}" NumberType="Float" Precision="8" '
        f'Format="HDF">{h5}:/mesh/geometry</DataItem>\n'
        f'      </Geometry>\n')
    grids = []
    for i, (t, dataset) in enumerate(snapshots):
        grids.append(
            f'    <Grid Name={quoteattr(f"step {i}")} GridType="Uniform">\n{mesh}'
            f'      <Time Value="{t!r}"/>\n'
            f'      <Attribute Name="temperature" AttributeType="Scalar" Center="Node">\n'
            f'        <DataItem Dimensions="{n_nodes}" NumberType="Float" Precision="8" '
            f'Format="HDF">{h5}:{dataset}</DataItem>\n'
            f'      </Attribute>\n'
            f'    </Grid>\n')
    text = ('<?xml version="1.0"?>\n<Xdmf Version="3.0">\n  <Domain>\n'
            '    <Grid Name="temperature" GridType="Collection" CollectionType="Temporal">\n'
            + "".join(grids) + "    </Grid>\n  </Domain>\n</Xdmf>\n")
    tmp = Path(path).with_suffix(".xdmf.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
