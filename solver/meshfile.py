"""Meshes from files (Gmsh 2.2/4.1 ASCII or binary, XDMF, ... read with meshio), partitioned and
distributed without a rank-0 bottleneck in memory.

Rank 0 reads the file and partitions the cells (METIS on the dual graph, or recursive
coordinate bisection). A node is owned by the lowest-numbered part among its cells. Each rank
receives, with ``Scatterv``:

* its cells: the cells of its part, then every other cell touching a node it owns;
* their nodes' coordinates, owners and original ids;
* the boundary facets through its owned nodes, with their physical group.

The original numbering of the file (points and cells, in file order, unused points dropped)
is the canonical numbering, so results are written in the file's own order.
Physical groups name boundaries (facets) and regions (cells).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mpi4py import MPI

from solver.errors import CaseError
from solver.exchange import _MPI_TYPES
from solver.mesh import DistributedMesh, Facets
from solver.partition import partition_cells

MESHIO_CELLS = {"triangle": "triangle", "quad": "quadrilateral", "tetra": "tetrahedron", "hexahedron": "hexahedron"}
FACETS = {"triangle": "line", "quadrilateral": "line", "tetrahedron": "triangle", "hexahedron": "quad"}
DIM = {"triangle": 2, "quadrilateral": 2, "tetrahedron": 3, "hexahedron": 3}
TAG_KEYS = ("gmsh:physical", "cell_tags", "medit:ref")


def read(path: str | Path) -> dict:
    """Read a mesh file (rank 0): cells of the highest dimension, tagged facets, group names."""
    import meshio

    path = Path(path)
    if not path.is_file():
        raise CaseError(f"{path}: mesh file not found")
    try:
        m = meshio.read(path)
    except Exception as exc:  # meshio raises many kinds of errors for corrupt files
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CaseError(f"{path}: cannot read the mesh ({detail})") from None
    present = [MESHIO_CELLS[b.type] for b in m.cells if b.type in MESHIO_CELLS]
    if not present:
        raise CaseError(f"{path}: no triangle, quad, tetra or hexahedron cells in the mesh")
    dim = max(DIM[c] for c in present)
    kinds = sorted({c for c in present if DIM[c] == dim})
    if len(kinds) > 1:
        raise CaseError(f"{path}: mixed {' and '.join(kinds)} meshes are not supported")
    cell_type = kinds[0]
    facet_type = {"line": "line", "triangle": "triangle", "quad": "quad"}[FACETS[cell_type]]
    tag_key = next((k for k in TAG_KEYS if k in m.cell_data), None)

    def gather(meshio_type):
        blocks = [(i, b) for i, b in enumerate(m.cells) if b.type == meshio_type]
        if not blocks:
            return np.empty((0, 0), dtype=np.int64), np.empty(0, dtype=np.int64)
        conn = np.concatenate([b.data for _, b in blocks]).astype(np.int64)
        tags = (np.concatenate([np.asarray(m.cell_data[tag_key][i]).ravel() for i, _ in blocks]).astype(np.int64)
                if tag_key else np.zeros(len(conn), dtype=np.int64))
        return conn, tags

    meshio_type = {v: k for k, v in MESHIO_CELLS.items()}[cell_type]
    cells, cell_tags = gather(meshio_type)
    facets, facet_tags = gather(facet_type)
    points = np.asarray(m.points, dtype=float)
    if dim == 2:
        if points.shape[1] == 3 and np.any(points[:, 2] != 0):
            raise CaseError(f"{path}: a 2D mesh must lie in the plane z = 0")
        points = points[:, :2]
    # drop points no cell uses (geometry points); keep file order
    used = np.zeros(len(points), dtype=bool)
    used[cells.ravel()] = True
    new_index = np.cumsum(used) - 1
    points = points[used]
    cells = new_index[cells]
    if len(facets):
        keep = np.all(used[facets], axis=1)
        facets, facet_tags = new_index[facets[keep]], facet_tags[keep]
    groups = {"boundary": {}, "region": {}}
    for name, (tag, gdim) in ((n, (int(v[0]), int(v[1]))) for n, v in m.field_data.items()):
        if gdim == dim - 1:
            groups["boundary"][name] = tag
        elif gdim == dim:
            groups["region"][name] = tag
    if not m.field_data:  # no names in the file: groups are named by their tag numbers
        groups["boundary"] = {str(t): int(t) for t in np.unique(facet_tags) if t}
        groups["region"] = {str(t): int(t) for t in np.unique(cell_tags) if t}
    return {"cell_type": cell_type, "points": points, "cells": cells, "cell_tags": cell_tags,
            "facets": facets, "facet_tags": facet_tags, "groups": groups}


def _scatter(comm, parts: list | None, dtype, width: int) -> np.ndarray:
    """Scatterv of per-rank arrays (rank 0 holds the list) of shape (n_r, width)."""
    counts = None
    if comm.rank == 0:
        counts = np.array([len(p) * width for p in parts], dtype=np.int64)
    counts = comm.bcast(counts, root=0)
    out = np.empty((counts[comm.rank] // max(width, 1), width) if width > 1 else counts[comm.rank], dtype=dtype)
    mpitype = _MPI_TYPES[np.dtype(dtype)]
    if comm.rank == 0:
        send = np.ascontiguousarray(np.concatenate([np.asarray(p, dtype=dtype).reshape(-1) for p in parts]))
        displs = np.zeros_like(counts)
        np.cumsum(counts[:-1], out=displs[1:])
        comm.Scatterv([send, (counts, displs), mpitype], [out, mpitype], root=0)
    else:
        comm.Scatterv(None, [out, mpitype], root=0)
    return out


def _plan(data: dict, size: int, partitioner: str) -> tuple[list, dict]:
    """Rank 0: which cells, nodes and facets each rank receives (int32 work arrays)."""
    cells, points = data["cells"], data["points"]
    nc, npc = cells.shape
    parts, method, cut = partition_cells(cells, data["cell_type"], lambda: points[cells].mean(axis=1),
                                         len(points), size, partitioner)
    parts = parts.astype(np.int32)
    node_owner = np.full(len(points), size, dtype=np.int32)
    np.minimum.at(node_owner, cells.ravel(), np.repeat(parts, npc))
    # each cell goes to its part and to the owners of its nodes: unique (cell, rank) pairs
    ranks = np.empty((nc, npc + 1), dtype=np.int32)
    ranks[:, 0] = parts
    ranks[:, 1:] = node_owner[cells]
    ranks.sort(axis=1)
    new = np.ones(ranks.shape, dtype=bool)
    new[:, 1:] = ranks[:, 1:] != ranks[:, :-1]
    pair_cell = np.nonzero(new)[0].astype(np.int32)
    pair_rank = ranks[new]
    del ranks, new
    order = np.lexsort((pair_cell, parts[pair_cell] != pair_rank, pair_rank))  # by rank, owned first
    pair_cell = pair_cell[order]
    bounds = np.searchsorted(pair_rank[order], np.arange(size + 1))
    del order, pair_rank
    facet_owner = node_owner[data["facets"]] if len(data["facets"]) else np.empty((0, 1), dtype=np.int32)
    plans = []
    for r in range(size):  # one iteration per rank
        mine = pair_cell[bounds[r]:bounds[r + 1]]
        fmask = np.any(facet_owner == r, axis=1) if len(facet_owner) else np.zeros(0, dtype=bool)
        plans.append({"cells": mine, "n_owned_cells": int(np.count_nonzero(parts[mine] == r)),
                      "nodes": np.unique(cells[mine]), "facets": np.flatnonzero(fmask)})
    owned = np.bincount(node_owner, minlength=size)
    quality = {"partitioner": method, "edge_cut": cut, "owned_nodes_imbalance": float(owned.max() / owned.mean())}
    return plans, {"node_owner": node_owner, "quality": quality}


def return_freed_memory() -> None:
    """Serve allocations of 1 MiB or more with mmap, so that freed temporaries (reading and
    partitioning a large mesh on rank 0) go back to the system instead of staying in the heap."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD (glibc)
    except (OSError, AttributeError):
        pass


def distributed_mesh(comm, path: str, partitioner: str = "auto") -> DistributedMesh:
    """Read on rank 0, partition, distribute; collective."""
    return_freed_memory()
    data, error = None, None
    t0 = MPI.Wtime()
    if comm.rank == 0:
        try:
            data = read(path)
        except CaseError as exc:
            error = str(exc)
    t_read = MPI.Wtime() - t0
    meta = None
    if comm.rank == 0 and error is None:
        if len(data["cells"]) < comm.size:
            error = f"{path}: {len(data['cells'])} cells cannot be split among {comm.size} ranks"
        else:
            counts = {name: int(np.sum(data["facet_tags"] == tag)) for name, tag in data["groups"]["boundary"].items()}
            meta = {"cell_type": data["cell_type"], "groups": data["groups"], "gdim": data["points"].shape[1],
                    "facet_counts": counts,
                    "n_nodes": len(data["points"]), "n_cells": len(data["cells"]),
                    "npc": data["cells"].shape[1], "npf": data["facets"].shape[1] if len(data["facets"]) else 0}
    error, meta = comm.bcast((error, meta), root=0)
    if error:
        raise CaseError(error)
    plans = extra = None
    t0 = MPI.Wtime()
    if comm.rank == 0:
        plans, extra = _plan(data, comm.size, partitioner)
    t_partition = MPI.Wtime() - t0
    t0 = MPI.Wtime()
    cells_g = data["cells"] if comm.rank == 0 else None

    def per_rank(fn):
        return [fn(p) for p in plans] if comm.rank == 0 else None

    gdim, npc, npf = meta["gdim"], meta["npc"], meta["npf"]
    cell_ids = _scatter(comm, per_rank(lambda p: p["cells"]), np.int64, 1)
    cell_nodes = _scatter(comm, per_rank(lambda p: cells_g[p["cells"]]), np.int64, npc)
    cell_tags = _scatter(comm, per_rank(lambda p: data["cell_tags"][p["cells"]]), np.int64, 1)
    n_owned_cells = _scatter(comm, per_rank(lambda p: [p["n_owned_cells"]]), np.int64, 1)[0]
    node_ids = _scatter(comm, per_rank(lambda p: p["nodes"]), np.int64, 1)
    coords = _scatter(comm, per_rank(lambda p: data["points"][p["nodes"]]), np.float64, gdim)
    owners = _scatter(comm, per_rank(lambda p: extra["node_owner"][p["nodes"]]), np.int32, 1).astype(np.int64)
    facets = _scatter(comm, per_rank(lambda p: data["facets"][p["facets"]]), np.int64, max(npf, 1)) \
        if npf else np.empty((0, 1), dtype=np.int64)
    facet_tags = _scatter(comm, per_rank(lambda p: data["facet_tags"][p["facets"]]), np.int64, 1) \
        if npf else np.empty(0, dtype=np.int64)
    quality = comm.bcast(extra["quality"] if comm.rank == 0 else None, root=0)
    mesh_bytes = comm.bcast(sum(a.nbytes for k, a in data.items() if isinstance(a, np.ndarray))
                            if comm.rank == 0 else None, root=0)
    del data, plans, extra, cells_g
    t_distribute = MPI.Wtime() - t0

    # local numbering: position in this rank's sorted node list
    local_cells = np.searchsorted(node_ids, cell_nodes)
    boundaries = {}
    for name, tag in meta["groups"]["boundary"].items():
        sel = facet_tags == tag
        boundaries[name] = Facets(np.searchsorted(node_ids, facets[sel]) if np.any(sel)
                                  else np.empty((0, max(npf, 1)), dtype=np.int64))
    mesh = DistributedMesh.from_local(comm, meta["cell_type"], coords, local_cells, node_ids, owners, cell_ids,
                                      n_owned_cells, boundaries, meta["n_nodes"], meta["n_cells"])
    mesh.cell_tags = cell_tags
    mesh.groups = meta["groups"]
    times = comm.bcast({"read_seconds": t_read, "partition_seconds": t_partition} if comm.rank == 0 else None)
    mesh.info = {**quality, **times, "distribute_seconds": t_distribute, "mesh_bytes": mesh_bytes,
                 "file": str(path), "facet_counts": meta["facet_counts"]}
    return mesh


def peak_memory_mb() -> float:
    """This process's peak resident memory (MB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


