"""Connected components of a distributed mesh file against scipy on the whole mesh.

Usage: mpirun -n N python components_checks.py FOLDER
The mesh: 8 thin strips of triangles, some joined end to end by a triangle that shares one node
with the next strip (a snake of 4 strips that crosses the ranks back and forth, a pair, two
single strips); each rank's labels and marks must match the serial ones in canonical numbering.
"""

import sys

import meshio
import numpy as np
from _guard import run

from solver.mesh.components import component_labels, local_components
from solver.mesh.files import distributed_mesh

STRIPS, NX, JOINED = 8, 24, (0, 1, 2, 5)  # strip i joined to strip i + 1 for i in JOINED
MARKED_STRIPS = (3, 7)  # a node of these strips is marked: their components are marked


def strips():
    """Points and triangles of the strips (and the joining triangles), and the marked nodes."""
    x = np.linspace(0, 1, NX + 1)
    points, cells = [], []
    for i in range(STRIPS):
        y0 = 0.2 * i
        base = i * 2 * (NX + 1)
        points.append(np.column_stack([np.r_[x, x], np.r_[np.full(NX + 1, y0), np.full(NX + 1, y0 + 0.1)]]))
        a = base + np.arange(NX)
        cells += [np.column_stack([a, a + 1, a + NX + 2]), np.column_stack([a, a + NX + 2, a + NX + 1])]
    for i in JOINED:  # top end of strip i, a new node, bottom end of strip i + 1 (right or left end)
        end = NX if i % 2 == 0 else 0
        top, bottom = i * 2 * (NX + 1) + NX + 1 + end, (i + 1) * 2 * (NX + 1) + end
        points.append(np.array([[x[end] + (0.05 if end else -0.05), 0.2 * i + 0.15]]))
        new = sum(len(p) for p in points) - 1
        cells.append(np.array([[top, new, bottom]]))
    points = np.concatenate(points)
    marked = np.zeros(len(points), dtype=bool)
    marked[[s * 2 * (NX + 1) + 3 for s in MARKED_STRIPS]] = True
    return points, np.concatenate(cells), marked


def main(comm):
    points, cells, marked = strips()
    path = f"{sys.argv[1]}/strips.msh"
    if comm.rank == 0:
        tags = {"gmsh:physical": [np.ones(len(cells), dtype=int)], "gmsh:geometrical": [np.ones(len(cells), dtype=int)]}
        meshio.write(path, meshio.Mesh(np.column_stack([points, np.zeros(len(points))]), [("triangle", cells)],
                                       cell_data=tags), file_format="gmsh22", binary=False)
    comm.Barrier()
    mesh = distributed_mesh(comm, path)
    labels, hit = component_labels(mesh, marked[mesh.node_ids])
    parts = local_components(len(points), cells)
    least = np.full(parts.max() + 1, len(points))
    np.minimum.at(least, parts, np.arange(len(points)))
    expected_hit = np.zeros(parts.max() + 1, dtype=bool)
    expected_hit[parts[marked]] = True
    assert parts.max() + 1 == STRIPS - len(JOINED)
    assert np.array_equal(labels, least[parts[mesh.node_ids]]), "labels differ from the serial components"
    assert np.array_equal(hit, expected_hit[parts[mesh.node_ids]]), "marks differ from the serial components"
    ranks = comm.allgather(np.unique(labels[: mesh.n_owned]).tolist())
    return {"ok": True, "ranks": comm.size, "components": int(parts.max() + 1),
            "ranks_per_component": {int(c): sum(c in r for r in ranks) for c in np.unique(least)}}


run(main)
