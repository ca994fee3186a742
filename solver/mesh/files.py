"""Meshes from files (Gmsh 2.2/4.1 ASCII or binary, XDMF, ... read with meshio), partitioned and
distributed without a rank-0 bottleneck in memory.

1. Rank 0 reads the file and sorts the cells along a space-filling curve; with ``Scatterv`` it
   sends every rank a contiguous block of those cells, of the nodes (by id) and of the boundary
   facets, and keeps only its own blocks.
2. All ranks partition the cells together (:mod:`solver.mesh.partition`: the cell graph is coarsened
   in parallel, its coarsest level split on rank 0 by METIS or recursive coordinate bisection,
   and the parts refined level by level on the way back).
3. A node is owned by the lowest-numbered part among its cells; the rank holding a node's
   block decides. Each rank then receives (``Alltoallv``): the cells of its part, then every
   other cell touching a node it owns; its nodes' coordinates, owners and original ids; the
   boundary facets through its owned nodes, with their physical group.

The original numbering of the file (points and cells, in file order, unused points dropped)
is the canonical numbering, so results are written in the file's own order.
Physical groups name boundaries (facets) and regions (cells). Second-order files (``Triangle 6``,
``Tetrahedron 10``, ``Quadrilateral 9``, ``Hexahedron 27``) keep their curved geometry; the degree
of the cells is changed on rank 0 when the case asks for another (:mod:`solver.mesh.elevate`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
from mpi4py import MPI

from solver.case.inputfiles import MISSING, file_problem
from solver.errors import CaseError
from solver.mesh.cells import BY_MESHIO_NAME, CELLS
from solver.mesh.conformity import check_facet_nodes, check_mesh_file
from solver.mesh.distributed import DistributedMesh, Facets, LocalPart, MeshGroups, PartitionInfo
from solver.mesh.elevate import with_degree
from solver.mesh.gmsh_tags import UNCHECKED, check_gmsh_tags
from solver.mesh.lean import unique_inverse
from solver.mesh.memberships import cells_once, entity_groups, facets_in_every_group
from solver.mesh.node_ids import check_node_ids, watched_node_ids
from solver.mesh.partition import partition, space_filling_order
from solver.parallel.root import scatter_blocks
from solver.parallel.routing import Route, block_rank, block_starts, fetch, sparse_alltoallv

TAG_KEYS = ("gmsh:physical", "cell_tags", "medit:ref")


@dataclass
class MeshFileData:
    """A mesh file as rank 0 reads it: cells of the highest dimension with their physical tags,
    the tagged facets, and the group names (``cell_ids``: canonical id of each row of ``cells``)."""

    cell_type: str
    points: np.ndarray  # (n_nodes, gdim)
    cells: np.ndarray  # (n_cells, nodes_per_cell), file numbering of the used points
    cell_tags: np.ndarray
    facets: np.ndarray  # (n_facets, nodes_per_facet)
    facet_tags: np.ndarray
    groups: MeshGroups
    cell_ids: np.ndarray | None = field(default=None, repr=False)
    affine: bool = False  # every cell's map is affine (straight-sided simplices)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.points, self.cells, self.cell_tags, self.facets, self.facet_tags))


class MeshBlocks(NamedTuple):
    """This rank's contiguous blocks of a mesh file (cells along the space-filling curve, nodes
    and facets by id), as rank 0 scattered them."""

    cells: np.ndarray
    cell_ids: np.ndarray
    cell_tags: np.ndarray
    points: np.ndarray
    facets: np.ndarray
    facet_tags: np.ndarray


class LocalMesh(NamedTuple):
    """One rank's part of a mesh file after redistribution (file numbering)."""

    cell_ids: np.ndarray
    cell_tags: np.ndarray
    cells: np.ndarray  # node ids of the cells: owned cells first
    n_owned_cells: int
    facet_rows: np.ndarray  # (n, 1 + nodes_per_facet): tag, then the facet's node ids
    node_ids: np.ndarray  # sorted
    coords: np.ndarray
    owners: np.ndarray  # owner rank of each node
    owned_counts: np.ndarray  # nodes owned by each rank


def read(path: str | Path, degree: int | None = None) -> MeshFileData:
    """Read a mesh file (rank 0): cells of the highest dimension, tagged facets, group names;
    with ``degree``, its cells of that Lagrange degree (:mod:`solver.mesh.elevate`)."""
    path = Path(path)
    m = _meshio_read(path)
    present = [BY_MESHIO_NAME[b.type] for b in m.cells if b.type in BY_MESHIO_NAME]
    if not present:
        _refuse_other_cells(path, m, 2)
        raise CaseError(f"{path}: no triangle, quad, tetra or hexahedron cells in the mesh")
    dim = max(CELLS[c].dim for c in present)
    _refuse_other_cells(path, m, dim)
    kinds = sorted({c for c in present if CELLS[c].dim == dim})
    if len(kinds) > 1:
        _refuse_mixed_cells(path, kinds, dim)
    cell_type = kinds[0]
    tag_key = next((k for k in TAG_KEYS if k in m.cell_data), None)
    _refuse_other_facets(path, m, cell_type)
    cells, cell_tags = _connectivity(m, CELLS[cell_type].meshio, tag_key)
    families, family_names = _med_families(m)
    cell_tags = _retagged(cell_tags, families)
    groups = entity_groups(path) if tag_key == "gmsh:physical" else None  # (MSH 4: each entity's groups)
    cells, cell_tags, shared = cells_once(path, m, groups, CELLS[cell_type].meshio, dim, cells, cell_tags)
    facet_type = CELLS[CELLS[cell_type].facet_name].meshio
    facets, facet_tags = facets_in_every_group(m, groups, facet_type, dim - 1,
                                               *_connectivity(m, facet_type, tag_key))
    facet_tags = _retagged(facet_tags, families)
    points = np.asarray(m.points, dtype=float)
    field_data = m.field_data
    del m  # meshio's other arrays (cell sets, geometrical tags) are not needed
    points = _checked_points(path, points, dim, cells, facets)
    facets, facet_tags, inner = check_mesh_file(path, points, cells, cell_type, facets, facet_tags)
    check_facet_nodes(path, points, cells, cell_type, facets)
    data = MeshFileData(cell_type, points, cells, cell_tags, facets, facet_tags,
                        _groups(path, field_data, dim, cell_tags, facet_tags, shared, inner, family_names))
    straight = CELLS[cell_type].degree == 1  # a second-order file's cells may be curved
    if degree is not None:
        data = with_degree(data, degree)
    data.affine = CELLS[data.cell_type].linear.affine and (straight or CELLS[data.cell_type].degree == 1)
    _check_facets_on_cells(path, data)
    data.points, data.facets, data.facet_tags = _drop_unused_points(data.points, data.cells, data.facets,
                                                                    data.facet_tags)
    return data


def _meshio_read(path: Path):
    """The file read by meshio, after the checks of its kind and of its Gmsh tags."""
    import meshio

    problem = file_problem(path)
    if problem == MISSING:
        where = "" if path.is_absolute() else f" (mesh.file: a relative path is taken from the current directory, " \
                                               f"{Path.cwd()})"
        raise CaseError(f"{path}: mesh file not found{where}")
    if problem is not None:
        raise CaseError(f"{path}: {problem}, expected a mesh file")
    if path.stat().st_size == 0:
        raise CaseError(f"{path}: the mesh file is empty")
    checked = check_gmsh_tags(path)
    said, node_sections = io.StringIO(), []
    try:  # meshio prints what it could not read, and may end the process (sys.exit) on a bad header
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said), warnings.catch_warnings(), \
                watched_node_ids(path) as node_sections:
            warnings.simplefilter("ignore")
            logging.disable(logging.WARNING)
            try:
                mesh = meshio.read(path)
            finally:
                logging.disable(logging.NOTSET)
    except (Exception, SystemExit) as exc:  # meshio raises many kinds of errors for corrupt files
        check_node_ids(path, node_sections)  # (an element of an earlier *NODE section's: a KeyError)
        text = str(exc).strip() if not isinstance(exc, SystemExit) else said.getvalue().strip()
        detail = text.splitlines()[0] if text else type(exc).__name__
        if isinstance(exc, (KeyError, IndexError, ValueError, TypeError, AttributeError, EOFError)):
            detail = f"{type(exc).__name__}: {detail}"  # a bare "np.int64(36)" or "not enough values" says little
        hint = ""
        if "parametric" in detail.lower():
            hint = "; write it as MSH 4.1 or 2.2 without parametric nodes (Gmsh: Mesh.MshFileVersion = 4.1, " \
                   "Mesh.SaveParametric = 0)"
        elif path.suffix.lower() == ".msh" and _has_section(path, b"$PartitionedEntities"):
            raise CaseError(f"{path}: cannot read the mesh: partitioned MSH 4 files (with $PartitionedEntities) are "
                            f"not read ({detail[:200]}); save the mesh unpartitioned (Gmsh: before Mesh > Partition, "
                            f"or after gmsh.model.mesh.unpartition()), or as MSH 2.2 (Mesh.MshFileVersion = 2.2)"
                            ) from None
        elif "incompatible cell data" in detail.lower() and path.suffix.lower() == ".msh":
            hint = "; Gmsh wrote it with Mesh.SaveAll = 1 (every element, those of no physical group with them): " \
                   "save it with Mesh.SaveAll = 0, the default, once the physical groups are defined"
        elif path.suffix.lower() in (".xdmf", ".xmf") and isinstance(exc, KeyError):
            hint = "; meshio does not read second-order cells with boundary elements from XDMF: give such " \
                   "meshes as .msh or .vtu"
        raise CaseError(f"{path}: cannot read the mesh: the file is damaged, cut short, or of a form meshio does not "
                        f"read ({detail[:200]}){hint}") from None
    if not checked:  # a Gmsh file read all the same, in a form whose node tags the scan cannot follow
        raise CaseError(f"{path}: {UNCHECKED}")
    check_node_ids(path, node_sections, mesh)
    return mesh


def _has_section(path: Path, marker: bytes) -> bool:
    """Whether a file holds ``marker`` (a section's first line), read a chunk at a time."""
    with open(path, "rb") as f:
        tail = b""
        while chunk := f.read(1 << 24):
            if marker in tail + chunk:
                return True
            tail = chunk[-len(marker):]
    return False


def _refuse_other_cells(path: Path, m, dim: int) -> None:
    """Cells of a kind the solver does not take, of the mesh's dimension (prisms, pyramids beside
    tetrahedra or hexahedra), would be left out without a word: refuse them."""
    from meshio._mesh import topological_dimension

    other = sorted({b.type for b in m.cells if b.type not in BY_MESHIO_NAME
                    and topological_dimension.get(b.type, dim) >= dim})
    if other:
        n = sum(len(b.data) for b in m.cells if b.type in other)
        serendipity = {"quad8", "hexahedron20"} & set(other)
        hint = "; mesh with complete quadratic cells (Gmsh: Mesh.SecondOrderIncomplete = 0)" if serendipity else ""
        raise CaseError(f"{path}: {n} cells of type {', '.join(other)}: the solver takes triangles and "
                        f"quadrilaterals in 2D, tetrahedra and hexahedra in 3D (of degree 1 or 2, the quadratic "
                        f"quadrilaterals and hexahedra with 9 and 27 nodes), one type per mesh{hint}")


def _refuse_mixed_cells(path: Path, kinds: list, dim: int) -> None:
    """Refuse cells of several kinds of the mesh's dimension, with the way to one kind: one shape
    (triangles beside quadrilaterals), or one order (3-node beside 6-node triangles)."""
    if len({CELLS[c].linear.name for c in kinds}) == 1:  # one shape, two orders
        remedy = "mesh all cells of one order (Gmsh: Mesh.ElementOrder = 2, or gmsh.model.mesh.setOrder(2), " \
                 "after the whole mesh is generated; or Mesh.ElementOrder = 1 for linear cells)"
    elif dim == 2:
        remedy = "mesh with one type (Gmsh: Mesh.RecombineAll = 1 with Mesh.SubdivisionAlgorithm = 1 makes all " \
                 "quadrilaterals), or split each quadrilateral into two triangles"
    else:
        remedy = "mesh with one type (Gmsh: Mesh.SubdivisionAlgorithm = 2 makes all hexahedra), or split each " \
                 "hexahedron into tetrahedra"
    raise CaseError(f"{path}: mixed {' and '.join(kinds)} meshes are not supported: {remedy}")


def _refuse_other_facets(path: Path, m, cell_type: str) -> None:
    """Boundary elements (of one dimension less than the cells) of another kind than the cells'
    facets (quadrilaterals beside tetrahedra, 3-node triangles beside 10-node tetrahedra) would
    be left out of their groups without a word, insulating that part of the boundary: refuse them."""
    from meshio._mesh import topological_dimension

    ref = CELLS[cell_type]
    facet = CELLS[ref.facet_name].meshio if ref.facet_name in CELLS else "vertex"
    other = sorted({b.type for b in m.cells if b.type != facet and topological_dimension.get(b.type) == ref.dim - 1})
    if other:
        n = sum(len(b.data) for b in m.cells if b.type in other)
        raise CaseError(f"{path}: {n} boundary elements of type {', '.join(other)} beside {ref.meshio} cells, whose "
                        f"facets are of type {facet}: their boundary conditions would apply nowhere; mesh the "
                        f"boundaries with the cells' facets (of the cells' order)")


def _connectivity(m, meshio_type: str, tag_key: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Connectivity and tags of every block of a cell type (no copy when there is one block)."""
    blocks = [(i, b) for i, b in enumerate(m.cells) if b.type == meshio_type]
    if not blocks:
        return np.empty((0, 0), dtype=np.int64), np.empty(0, dtype=np.int64)
    conn = blocks[0][1].data if len(blocks) == 1 else np.concatenate([b.data for _, b in blocks])
    if tag_key:
        tags = [np.asarray(m.cell_data[tag_key][i]).ravel() for i, _ in blocks]
        tags = tags[0] if len(tags) == 1 else np.concatenate(tags)
    else:
        tags = np.zeros(len(conn), dtype=np.int64)
    return conn.astype(np.int64, copy=False), tags.astype(np.int64, copy=False)


def _checked_points(path: Path, points: np.ndarray, dim: int, cells: np.ndarray, facets: np.ndarray) -> np.ndarray:
    """The points in ``dim`` coordinates (a 2D mesh in a plane z = constant), finite, and every node the
    cells and facets name among them."""
    for name, conn in (("element", cells), ("boundary element", facets)):
        if conn.size and (conn.min() < 0 or conn.max() >= len(points)):
            row = int(np.flatnonzero(((conn < 0) | (conn >= len(points))).any(axis=1))[0])
            bad = conn[row][(conn[row] < 0) | (conn[row] >= len(points))][0]
            raise CaseError(f"{path}: {name} {row + 1} of its kind refers to node {bad}, which does not exist (the "
                            f"file has {len(points)} nodes, numbered from 0 by the mesh reader)")
    used = np.zeros(len(points), dtype=bool)  # (nodes no cell uses are dropped: they decide nothing here)
    used[cells.ravel()] = True
    used[facets.ravel()] = True
    if dim == 2:
        if points.shape[1] == 3 and _off_plane(points[used]):
            raise CaseError(f"{path}: its cells are surface elements (triangles or quadrangles) in 3D space: the "
                            f"solver takes volume cells in 3D (tetrahedra, hexahedra: Gmsh's Mesh 3), or a 2D "
                            f"mesh in a plane z = constant")
        points = np.ascontiguousarray(points[:, :2])
    finite = np.isfinite(points).all(axis=1) | ~used
    if not finite.all():
        raise CaseError(f"{path}: node {int(np.flatnonzero(~finite)[0]) + 1} has a non-finite coordinate")
    if dim == 3 and _in_a_plane(points[used]):
        raise CaseError(f"{path}: every node of its volume cells (tetrahedra or hexahedra) lies in one plane: the "
                        f"cells have no volume (a 2D model written as 3D, or a coordinate dropped); mesh a 2D model "
                        f"with triangles or quadrilaterals in a plane z = constant (Gmsh's Mesh 2), a 3D one with "
                        f"its volume (Mesh 3)")
    return points


def _in_a_plane(points: np.ndarray) -> bool:
    """Whether 3D points lie in one plane, to rounding (the smallest singular value of the
    centred points within 1e-12 of the largest): a mesh of flat cells."""
    if len(points) < 4 or points.shape[1] < 3:
        return False
    centred = points - points.mean(axis=0)
    with np.errstate(all="ignore"):
        scale = np.abs(centred).max()
        if not scale > 0 or not np.isfinite(scale):
            return bool(scale == 0)
        singular = np.linalg.svd((centred / scale).T @ (centred / scale), compute_uv=False)
    return bool(singular[-1] <= 1e-24 * singular[0])


def _off_plane(points: np.ndarray) -> bool:
    """Whether a 2D mesh's points leave a plane z = constant by more than rounding (CAD exports
    of planar parts carry z of 1e-16 of their size)."""
    finite = np.isfinite(points).all(axis=1)
    if not finite.any():
        return False
    p = points[finite]
    extent = max(float(np.ptp(p[:, 0])), float(np.ptp(p[:, 1])), float(np.abs(p[:, :2]).max()) * 1e-6, 1e-300)
    return float(np.ptp(p[:, 2])) > 1e-10 * extent


def _drop_unused_points(points, cells, facets, facet_tags):
    """Drop the points no cell uses (geometry points), keeping the file order; renumbers ``cells``
    in place and drops the facets through a dropped point."""
    used = np.zeros(len(points), dtype=bool)
    used[cells.ravel()] = True
    if used.all():
        return points, facets, facet_tags
    new_index = np.cumsum(used) - 1
    points = points[used]
    for start in range(0, len(cells), 1 << 16):  # in place, a chunk at a time
        cells[start:start + (1 << 16)] = new_index[cells[start:start + (1 << 16)]]
    if len(facets):
        keep = np.all(used[facets], axis=1)
        facets, facet_tags = new_index[facets[keep]], facet_tags[keep]
    return points, facets, facet_tags


def _check_facets_on_cells(path: Path, data: "MeshFileData") -> None:
    """Every tagged facet must be a facet of a cell: one through a node no cell uses bounds
    nothing, and its boundary condition would be dropped without a word (rank 0)."""
    if not len(data.facets):
        return
    used = np.zeros(len(data.points), dtype=bool)
    used[data.cells.ravel()] = True
    loose = ~np.all(used[data.facets], axis=1)
    if loose.any():
        tag = int(data.facet_tags[np.argmax(loose)])
        name = next((n for n, t in data.groups.boundary.items() if t == tag), str(tag))
        n_loose, n_cells = int(np.count_nonzero(loose)), len(data.cells)
        hint = f" (a file of {n_cells} {data.cell_type} cells among more lower-dimensional ones: if those are the " \
               f"mesh, remove the {data.cell_type} cells from the file)" if n_loose > n_cells else ""
        raise CaseError(f"{path}: {n_loose} boundary facets (the first of group {name!r}) pass through nodes that no "
                        f"cell uses: they bound no cell, and their condition would apply nowhere; the mesh is the "
                        f"file's {n_cells} {data.cell_type} cells{hint}")


def _med_families(m) -> tuple[dict, dict]:
    """The names of a MED file's groups (meshio's ``cell_tags``: each family's tag -> the groups it
    is in). A group whose families are in it alone takes one tag, its lowest family's, and its
    name; a family in several groups, and those of a group with such a family, keep their numbers
    (naming the group would leave that family's elements out of it). Returns (family tag -> the
    tag it takes, for those that change; tag -> name)."""
    families = {int(t): [str(n) for n in names] for t, names in (getattr(m, "cell_tags", None) or {}).items()}
    spoilt = {n for names in families.values() if len(names) > 1 for n in names}
    whole: dict[str, list[int]] = {}
    for t in sorted(families):
        if len(families[t]) == 1 and families[t][0] not in spoilt and families[t][0].strip():
            whole.setdefault(families[t][0], []).append(t)
    return {t: tags[0] for tags in whole.values() for t in tags[1:]}, {tags[0]: n for n, tags in whole.items()}


def _retagged(tags: np.ndarray, families: dict) -> np.ndarray:
    """``tags`` with each family's tag replaced by its group's (a pass per family: a few)."""
    if not families or not len(tags):
        return tags
    tags = tags.copy()
    for old, new in families.items():
        tags[tags == old] = new
    return tags


def _tag_and_dim(value) -> tuple[int, int] | None:
    """A field-data entry's (tag, dimension), where it is a physical name's pair of whole numbers;
    None for other field data (MED's ``med:nom``, a list of field names)."""
    try:
        pair = np.asarray(value, dtype=float).ravel()
    except (TypeError, ValueError):
        return None
    if pair.size != 2 or not np.all(np.isfinite(pair)) or np.any(pair != np.round(pair)):
        return None
    return int(pair[0]), int(pair[1])


def _groups(path: Path, field_data: dict, dim: int, cell_tags: np.ndarray, facet_tags: np.ndarray,
            shared: dict, inner: np.ndarray, family_names: dict | None = None) -> MeshGroups:
    """Named physical groups: boundaries (facets) and regions (cells); groups without a name in
    the file (or a blank one) are named by their MED group's name (``family_names``: tag -> name),
    or by their tag numbers. ``shared``: the codes of cells in several. A group without a name whose tag is
    another group's name (tag 3 unnamed, "3" the name of tag 7) is refused naming both: one of
    them would silently take the name, the other's facets or cells losing their condition or
    material. ``inner``: whether each facet has a cell on each side."""
    boundary, region, other = {}, {}, {}
    family_names = family_names or {}
    pairs = ((name, _tag_and_dim(value)) for name, value in field_data.items() if str(name).strip())
    for name, (tag, gdim) in ((n, pair) for n, pair in pairs if pair is not None):  # (a blank name: its tag)
        if gdim == dim - 1:
            boundary[name] = tag
        elif gdim == dim:
            region[name] = tag
        else:
            other[name] = gdim
    # groups without a name (all of them, or some: Gmsh writes names for the groups given one only)
    # are named by their tags
    cells_in = set(np.unique(cell_tags).tolist()) - set(shared) | {t for group in shared.values() for t in group}
    for named, tags, gdim in ((boundary, set(np.unique(facet_tags).tolist()), dim - 1), (region, cells_in, dim)):
        for t in sorted(tags - set(named.values())):
            if not t:
                continue
            if t in family_names:
                named[family_names[t]] = int(t)  # (MED: no physical names beside; one name per group)
                continue
            if str(t) in named:
                other = named[str(t)]
                raise CaseError(f"{path}: the name \"{t}\" is given to two groups (dimension {gdim} tag {other}, "
                                f"by its physical name, and dimension {gdim} tag {t}, which has no name and is named "
                                f"by its tag): the mesh reader would keep one, and the other's facets or cells would "
                                f"lose their condition or material; give the group of tag {t} a name, or the group "
                                f"of tag {other} another")
            named[str(t)] = int(t)
    counts = {name: int(np.sum(facet_tags == tag)) for name, tag in boundary.items()}
    inside = {name: int(np.sum(inner[facet_tags == tag])) for name, tag in boundary.items()}
    return MeshGroups(boundary, region, counts, shared, inside, other)


def _permuted(rows: np.ndarray, order: np.ndarray, dtype, chunk: int = 1 << 16) -> np.ndarray:
    """``rows[order]`` as ``dtype``, a chunk at a time (no full-size temporary)."""
    out = np.empty(rows.shape, dtype=dtype)
    for start in range(0, len(order), chunk):
        out[start:start + chunk] = rows[order[start:start + chunk]]
    return out


def _read_on_root(comm, path: str, degree: int) -> tuple[MeshFileData | None, dict]:
    """Rank 0 reads the file and sorts the cells along a space-filling curve; every rank gets
    the sizes and group names (``meta``)."""
    data, meta, error = None, None, None
    if comm.rank == 0:
        try:
            data = read(path, degree)
        except CaseError as exc:
            error = str(exc)
    if comm.rank == 0 and error is None:
        if len(data.cells) < comm.size:
            error = f"{path}: {len(data.cells)} cells cannot be split among {comm.size} ranks"
        else:
            meta = {"cell_type": data.cell_type, "groups": data.groups, "gdim": data.points.shape[1],
                    "n_nodes": len(data.points), "n_cells": len(data.cells),
                    "n_facets": len(data.facets), "npc": data.cells.shape[1],
                    "npf": data.facets.shape[1] if len(data.facets) else 0, "mesh_bytes": data.nbytes,
                    "affine": data.affine, "digest": mesh_digest(data)}
            if comm.size > 1:  # cells along the curve: each rank's block is compact in space
                index = np.int32 if max(meta["n_nodes"], meta["n_cells"]) < 2**31 else np.int64
                order = space_filling_order(data.points, data.cells)
                data.cells = _permuted(data.cells, order, index)
                tags = data.cell_tags[order]  # (tags beyond int32, of VTU or XDMF files, kept whole)
                fits = not tags.size or (tags.min() >= -2**31 and tags.max() < 2**31)
                data.cell_tags = tags.astype(np.int32) if fits else tags
                data.cell_ids = order.astype(index)
                del order
            else:
                data.cell_ids = np.arange(len(data.cells))
            meta["dtypes"] = {key: getattr(data, key).dtype for key in ("cells", "cell_ids", "cell_tags")}
    error, meta = comm.bcast((error, meta), root=0)
    if error:
        raise CaseError(error)
    return data, meta


def mesh_digest(data: MeshFileData) -> str:
    """A digest of what the solver takes from a mesh file: its nodes, cells, facets, their tags and
    the groups' names (SHA-256, 1.8 GB/s here: a fraction of the reading). A checkpoint keeps it: a
    restart on a file whose groups were renamed or nodes moved is another case."""
    import hashlib

    digest = hashlib.sha256(data.cell_type.encode())
    for array in (data.points, data.cells, data.cell_tags, data.facets, data.facet_tags):
        digest.update(np.ascontiguousarray(array).view(np.uint8).reshape(-1))
    digest.update(repr((sorted(data.groups.boundary.items()), sorted(data.groups.region.items()))).encode())
    if data.groups.shared:  # (only then: the digests of files without cells in several groups stay as they were)
        digest.update(repr(sorted(data.groups.shared.items())).encode())
    return digest.hexdigest()


def return_freed_memory() -> None:
    """Serve allocations of 1 MiB or more with mmap, so that freed temporaries (reading and
    partitioning a large mesh on rank 0) go back to the system instead of staying in the heap."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD (glibc)
    except (OSError, AttributeError):
        pass


def distributed_mesh(comm, path: str, partitioner: str = "auto", degree: int = 1) -> DistributedMesh:
    """Read on rank 0, scatter in blocks, partition in parallel, redistribute; collective.

    Rank 0 holds the whole mesh only while it reads it: it sends every rank a contiguous block
    of the cells (along a space-filling curve), of the nodes and of the boundary facets, and
    from then on all ranks work on their blocks alike.
    """
    return_freed_memory()
    t0 = MPI.Wtime()
    data, meta = _read_on_root(comm, path, degree)
    t_read = MPI.Wtime() - t0
    t0 = MPI.Wtime()
    def get(name):
        return getattr(data, name) if comm.rank == 0 else None
    gdim, npc, npf, n_nodes = meta["gdim"], meta["npc"], max(meta["npf"], 1), meta["n_nodes"]
    dtypes = meta["dtypes"]
    blocks = MeshBlocks(scatter_blocks(comm, get("cells"), meta["n_cells"], npc, dtypes["cells"]),
                        scatter_blocks(comm, get("cell_ids"), meta["n_cells"], 1, dtypes["cell_ids"]),
                        scatter_blocks(comm, get("cell_tags"), meta["n_cells"], 1, dtypes["cell_tags"]),
                        scatter_blocks(comm, get("points"), n_nodes, gdim, np.float64),
                        scatter_blocks(comm, get("facets"), meta["n_facets"], npf, np.int64),
                        scatter_blocks(comm, get("facet_tags"), meta["n_facets"], 1, np.int64))
    del data, get
    node_starts = block_starts(n_nodes, comm.size)
    t_scatter = MPI.Wtime() - t0

    t0 = MPI.Wtime()
    if comm.size > 1:
        linear = CELLS[meta["cell_type"]].linear  # cells meet on their corners: the graph of the linear cells
        corners = np.ascontiguousarray(blocks.cells[:, : linear.n_nodes])
        parts, method, cut = partition(comm, corners, linear.name, n_nodes,
                                       partial(_centroids, comm, node_starts, blocks.points, blocks.cells),
                                       partitioner)
    else:
        parts, method, cut = np.zeros(len(blocks.cells), dtype=np.int64), "none", 0
    t_partition = MPI.Wtime() - t0

    t0 = MPI.Wtime()
    if comm.size > 1:
        local = _redistribute(comm, meta, node_starts, blocks, parts)
    else:  # one rank: the blocks are the mesh
        b = blocks
        facet_rows = np.column_stack([b.facet_tags, b.facets]) if meta["npf"] else np.zeros((0, npf + 1), np.int64)
        local = LocalMesh(b.cell_ids, b.cell_tags, b.cells, len(b.cells), facet_rows, np.arange(n_nodes), b.points,
                          np.zeros(n_nodes, dtype=np.int32), np.array([n_nodes]))
        del b
    del blocks, parts
    t_distribute = MPI.Wtime() - t0 + t_scatter

    # local numbering: position in this rank's sorted node list
    node_ids, facet_rows = local.node_ids, local.facet_rows
    local_cells = local.cells if len(node_ids) == n_nodes else np.searchsorted(node_ids, local.cells)
    boundaries = {}
    for name, tag in meta["groups"].boundary.items():
        sel = facet_rows[:, 0] == tag if len(facet_rows) else np.zeros(0, dtype=bool)
        boundaries[name] = Facets(np.searchsorted(node_ids, facet_rows[sel, 1:]) if np.any(sel)
                                  else np.empty((0, npf), dtype=np.int64))
    info = PartitionInfo(method, int(cut), float(local.owned_counts.max() / local.owned_counts.mean()), str(path),
                         int(meta["mesh_bytes"]), comm.bcast(t_read, root=0), t_partition, t_distribute)
    part = LocalPart(local.coords, node_ids, local.owners, local_cells, local.cell_ids, local.n_owned_cells,
                     boundaries, local.cell_tags)
    mesh = DistributedMesh.from_local(comm, meta["cell_type"], part, (n_nodes, meta["n_cells"]), meta["groups"], info,
                                      meta["affine"])
    mesh.source_digest = meta["digest"]
    return mesh


def _redistribute(comm, meta, node_starts, blocks: "MeshBlocks", parts) -> LocalMesh:
    """From blocks to parts: each rank receives the cells of its part, then every other cell
    touching a node it owns, the facets through its owned nodes, and its nodes' coordinates
    and owners (collective)."""
    cells, cell_ids, cell_tags, points, facets, facet_tags = blocks
    del blocks
    npc, npf = cells.shape[1], max(meta["npf"], 1)
    owner_block, owned_counts, node_owner, local_nodes, nodes = _node_owners(comm, node_starts, len(points), cells,
                                                                               parts)
    # every cell goes to its part and to the owners of its nodes (as a ghost cell)
    ranks = np.empty((len(cells), npc + 1), dtype=np.int32)
    ranks[:, 0] = parts
    ranks[:, 1:] = node_owner[local_nodes]
    del local_nodes, node_owner, nodes
    route = _to_each_rank_once(comm, ranks)
    del ranks
    cell_ids, cell_tags, parts = route.send(cell_ids), route.send(cell_tags), route.send(parts)
    cells = route.send(cells)
    del route
    owned_first = np.lexsort((cell_ids, parts != comm.rank))
    n_owned_cells = int(np.count_nonzero(parts == comm.rank))
    cell_ids, cell_tags, cell_nodes = cell_ids[owned_first], cell_tags[owned_first], cells[owned_first]
    del cells, parts, owned_first

    # boundary facets go to the owners of their nodes
    facet_rows = np.zeros((0, npf + 1), dtype=np.int64)
    if meta["npf"]:
        route = _to_each_rank_once(comm, fetch(comm, node_starts, facets, owner_block))
        facet_rows = route.send(np.column_stack([facet_tags, facets]))
    node_ids = np.unique(cell_nodes)
    coords = fetch(comm, node_starts, node_ids, points)
    owners = fetch(comm, node_starts, node_ids, owner_block)
    return LocalMesh(cell_ids, cell_tags, cell_nodes, n_owned_cells, facet_rows, node_ids, coords, owners,
                     owned_counts)


def _to_each_rank_once(comm, ranks: np.ndarray) -> Route:
    """Row ``i`` goes once to each distinct rank of ``ranks[i]``."""
    ranks = np.sort(ranks, axis=1)
    new = np.ones(ranks.shape, dtype=bool)
    new[:, 1:] = ranks[:, 1:] != ranks[:, :-1]
    return Route(comm, ranks[new], items=np.nonzero(new)[0])


def _node_owners(comm, node_starts, n_block: int, cells: np.ndarray, parts: np.ndarray):
    """A node belongs to the lowest part among its cells; the rank holding the node's block
    decides. Returns the owners of this rank's node block, the number of nodes each rank owns,
    and for the nodes of this rank's cells: their owners, the cells in their local numbers and
    the nodes' global ids."""
    nodes, local_nodes = unique_inverse(cells)
    lowest = np.full(len(nodes), comm.size, dtype=np.int32)
    np.minimum.at(lowest, local_nodes, parts[:, None])
    claims, _, _, _ = sparse_alltoallv(comm, block_rank(node_starts, nodes),
                                       np.column_stack([nodes, lowest]))
    owner_block = np.full(n_block, comm.size, dtype=np.int32)
    np.minimum.at(owner_block, claims[:, 0] - node_starts[comm.rank], claims[:, 1].astype(np.int32))
    owned_counts = np.bincount(owner_block, minlength=comm.size)[:comm.size]
    comm.Allreduce(MPI.IN_PLACE, owned_counts, op=MPI.SUM)
    node_owner = fetch(comm, node_starts, nodes, owner_block)
    return owner_block, owned_counts, node_owner, local_nodes, nodes


def _centroids(comm, node_starts, points, cells) -> np.ndarray:
    """Centroids of this rank's cells, their nodes' coordinates fetched from the node blocks."""
    nodes = np.unique(cells)
    coords = fetch(comm, node_starts, nodes, points)
    total = np.zeros((len(cells), points.shape[1]))
    for j in range(cells.shape[1]):  # the 3-8 nodes of a cell
        total += coords[np.searchsorted(nodes, cells[:, j])]
    return total / cells.shape[1]
