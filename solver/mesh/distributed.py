"""The distributed mesh: each rank's cells, its owned and ghost nodes, and their numberings.

Layout on every rank (any mesh source, structured or read from a file):

* local nodes ``[0, n_owned)`` are owned by this rank, in increasing canonical id;
  ``[n_owned, n_local)`` are ghosts, grouped by owner rank (then canonical id);
* ``node_ids`` are canonical ids (the original numbering of a mesh file, or the
  lexicographic grid numbering): rank-independent, used for output;
* ``global_ids`` number owned nodes contiguously per rank (rank r owns
  ``[offset_r, offset_r + n_owned)``), the numbering of the distributed vectors;
* local cells ``[0, n_owned_cells)`` are owned (each cell is owned by one rank), the rest
  are ghost cells: together they are all cells that touch an owned node, so that every
  owned row of a matrix is assembled without communication;
* ``boundaries[name]``: facets of the named boundary, at least all those through owned nodes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from mpi4py import MPI

from solver.mesh.cells import CELLS, ReferenceCell
from solver.parallel.exchange import HaloExchange


@dataclass
class Facets:
    """Facets of a named boundary: every one through a node this rank owns (and maybe more)."""

    nodes: np.ndarray  # (n_facets, nodes_per_facet) local node indices


@dataclass(frozen=True)
class MeshGroups:
    """Named physical groups of a mesh file: boundary (facet) and region (cell) tags, and how
    many facets each boundary group has in the whole mesh."""

    boundary: dict = field(default_factory=dict)  # name -> tag
    region: dict = field(default_factory=dict)  # name -> tag
    facet_counts: dict = field(default_factory=dict)  # boundary name -> number of facets
    shared: dict = field(default_factory=dict)  # code -> the tags of the groups its cells are in together
    inner: dict = field(default_factory=dict)  # boundary name -> its facets inside the domain (a cell on each side)
    other: dict = field(default_factory=dict)  # name -> dimension of a named group of points or lines (3D), unused

    def region_tags(self, name: str) -> list[int]:
        """Every tag that the cells of region group ``name`` carry: its own, and the codes of
        the groups it shares cells with (:mod:`solver.mesh.memberships`)."""
        tag = self.region[name]
        return [tag] + [code for code, tags in self.shared.items() if tag in tags]


@dataclass(frozen=True)
class PartitionInfo:
    """How a mesh file was split among the ranks, and what it cost (the same on every rank)."""

    partitioner: str  # metis, rcb or none (one rank)
    edge_cut: int  # facets between cells of different ranks
    owned_nodes_imbalance: float  # max / mean of the owned nodes per rank
    file: str = ""
    mesh_bytes: int = 0  # the mesh arrays as read on rank 0
    read_seconds: float = 0.0
    partition_seconds: float = 0.0
    distribute_seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LocalPart:
    """One rank's part of a mesh as a mesh source builds it, before the nodes are renumbered: its
    nodes in any order (coordinates, canonical ids, owner ranks), its cells as indices into them
    (``cells[:n_owned_cells]`` owned by this rank) with their canonical ids and physical groups,
    and its boundary facets."""

    coords: np.ndarray
    node_ids: np.ndarray
    node_owners: np.ndarray
    cells: np.ndarray
    cell_ids: np.ndarray
    n_owned_cells: int
    boundaries: dict[str, Facets]
    cell_tags: np.ndarray | None = None


@dataclass
class DistributedMesh:
    comm: MPI.Comm
    cell_type: str
    coords: np.ndarray  # (n_local, gdim)
    cells: np.ndarray  # (n_cells, nodes_per_cell) local node indices
    n_owned: int
    n_owned_cells: int
    node_ids: np.ndarray  # canonical node ids (n_local,)
    cell_ids: np.ndarray  # canonical cell ids (n_cells,)
    ghost_owners: np.ndarray  # (n_ghosts,) owner rank of each ghost, sorted
    boundaries: dict[str, Facets]
    n_global_nodes: int
    n_global_cells: int
    halo: HaloExchange = field(repr=False)
    global_ids: np.ndarray = field(repr=False)
    cell_tags: np.ndarray | None = field(default=None, repr=False)  # physical group of each local cell
    groups: MeshGroups = field(default_factory=MeshGroups)
    partition: PartitionInfo | None = None  # mesh files only
    affine: bool = False  # every cell's map from its reference cell is affine (constant Jacobian)
    source_digest: str = ""  # of the mesh file's data (mesh files only): a checkpoint keeps it

    @property
    def reference(self) -> ReferenceCell:
        return CELLS[self.cell_type]

    @property
    def dim(self) -> int:
        return self.coords.shape[1]

    @property
    def n_local(self) -> int:
        return len(self.coords)

    @property
    def owned_cells(self) -> np.ndarray:
        return self.cells[: self.n_owned_cells]

    @classmethod
    def from_local(cls, comm, cell_type: str, part: LocalPart, n_global: tuple[int, int], groups=None,
                   partition=None, affine: bool | None = None) -> "DistributedMesh":
        """Build from a rank's :class:`LocalPart`; ``n_global``: the mesh's (nodes, cells); ``affine``:
        every cell's map is affine (None: as its reference cell, P1 simplices). Nodes are renumbered
        to the layout described above."""
        rank = comm.rank
        owned = part.node_owners == rank
        # owned first by canonical id, then ghosts by (owner, canonical id)
        sort_owner = np.where(owned, -1, part.node_owners)
        perm = np.lexsort((part.node_ids, sort_owner))
        inverse = np.empty_like(perm)
        inverse[perm] = np.arange(len(perm))
        n_owned = int(owned.sum())
        coords = np.ascontiguousarray(part.coords[perm])
        node_ids = np.ascontiguousarray(part.node_ids[perm]).astype(np.int64)
        ghost_owners = np.ascontiguousarray(part.node_owners[perm][n_owned:]).astype(np.int64)
        cells = inverse[part.cells]
        boundaries = {name: Facets(inverse[f.nodes]) for name, f in part.boundaries.items()}

        halo = HaloExchange(comm, n_owned, node_ids[:n_owned], ghost_owners, node_ids[n_owned:])
        offset = comm.exscan(n_owned) if comm.size > 1 else 0
        offset = offset or 0
        global_ids = np.empty(len(node_ids), dtype=np.int64)
        global_ids[:n_owned] = offset + np.arange(n_owned)
        halo.update(global_ids)
        index_type = np.int32 if len(coords) < 2**31 else np.int64
        tags = None if part.cell_tags is None else np.ascontiguousarray(part.cell_tags)
        return cls(comm, cell_type, coords, cells.astype(index_type), n_owned, int(part.n_owned_cells),
                   node_ids, np.asarray(part.cell_ids, dtype=np.int64), ghost_owners, boundaries,
                   int(n_global[0]), int(n_global[1]), halo, global_ids, tags, groups or MeshGroups(), partition,
                   CELLS[cell_type].affine if affine is None else bool(affine))

    def owned_dirichlet_mask(self, names) -> np.ndarray:
        """Local mask of nodes on the given boundaries, consistent on ghosts.

        An owner holds every cell around its nodes, hence every boundary facet through
        them: owners mark their nodes and the halo exchange tells the ghosts.
        """
        mask = np.zeros(self.n_local, dtype=np.float64)
        for name in names:
            mask[self.boundaries[name].nodes.ravel()] = 1.0
        mask[self.n_owned:] = 0.0
        self.halo.update(mask)
        return mask > 0.5

    def summary(self) -> dict:
        """Global sizes and balance (collective)."""
        owned = np.array([self.n_owned, self.n_owned_cells, self.n_local - self.n_owned], dtype=np.int64)
        mx = np.empty_like(owned)
        mn = np.empty_like(owned)
        self.comm.Allreduce(owned, mx, op=MPI.MAX)
        self.comm.Allreduce(owned, mn, op=MPI.MIN)
        return {"nodes": self.n_global_nodes, "cells": self.n_global_cells,
                "owned_nodes_min": int(mn[0]), "owned_nodes_max": int(mx[0]),
                "ghosts_max": int(mx[2])}
