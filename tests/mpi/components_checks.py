"""Connected components of a distributed mesh file against scipy on the whole mesh.

Usage: mpirun -n N python components_checks.py FOLDER
The mesh: 8 thin strips of triangles, some joined end to end by two triangles that fill the gap to
the next strip at one end (a snake of 4 strips that crosses the ranks back and forth, a pair, two
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
    points = np.concatenate(points)
    for i in JOINED:  # the gap between strip i and i + 1 filled at one end (right or left): whole edges shared
        end, inner = (NX, NX - 1) if i % 2 == 0 else (0, 1)
        top = i * 2 * (NX + 1) + NX + 1  # strip i's upper row
        bottom = (i + 1) * 2 * (NX + 1)  # strip i + 1's lower row
        for tri in ([top + inner, top + end, bottom + end], [top + inner, bottom + end, bottom + inner]):
            a, b, c = points[tri]
            if (b - a)[0] * (c - a)[1] - (b - a)[1] * (c - a)[0] < 0:  # counter-clockwise, as the strips' are
                tri = [tri[0], tri[2], tri[1]]
            cells.append(np.array([tri]))
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
