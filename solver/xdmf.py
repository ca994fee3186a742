"""The XDMF index of a results file: a temporal collection that ParaView opens directly.

Every time step is a Uniform grid referencing the shared mesh datasets and its own
temperature dataset in the HDF5 file. The file is replaced atomically (write, then rename)
so a reader never sees half of it.
"""

from __future__ import annotations

import os
from pathlib import Path
from xml.sax.saxutils import quoteattr

_GEOMETRY = {2: "XY", 3: "XYZ"}
_TOPOLOGY = {"triangle": "Triangle", "quadrilateral": "Quadrilateral",
             "tetrahedron": "Tetrahedron", "hexahedron": "Hexahedron"}


def write_xdmf(path: Path, h5_name: str, cell_type: str, n_nodes: int, n_cells: int,
               nodes_per_cell: int, gdim: int, snapshots) -> None:
    """``snapshots``: list of (time, HDF5 dataset path of the temperature)."""
    h5 = h5_name
    mesh = (
        f'      <Topology TopologyType="{_TOPOLOGY[cell_type]}" NumberOfElements="{n_cells}">\n'
        f'        <DataItem Dimensions="{n_cells} {nodes_per_cell}" NumberType="Int" Precision="8" '
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
