"""Cell validity of a distributed mesh: finite coordinates, and at every corner of every cell a
Jacobian of one sign and of a size above rounding (no degenerate, inverted-in-part or
self-intersecting cell). A hexahedron is judged throughout, not only at its corners: the Jacobian
of its trilinear map, of degree 2 in each variable, may change sign inside it with its eight
corners of one sign (a face twisted, a corner pushed in); a triangle's and a tetrahedron's are
constant, and a bilinear quadrilateral's linear (its term in xi eta cancels), so their corners
decide. Curved quadratic cells (of a second-order mesh file) are judged by their map instead of
their corners: every edge's midpoint node near the middle of its edge (within half the edge's
length of it), and the Jacobian of the map of one sign, above rounding, throughout the cell. Both
from the Bernstein coefficients of det J (:mod:`solver.mesh.bernstein`): a bound over the whole
cell, not samples between which it may fold.
A mesh file's cells do not fold over each other: across every facet two cells share, they lie on
opposite sides of it (a node moved past its neighbours puts two on one side). The test does not
depend on the cells' orientations, which may differ between the surfaces of one model (the
assembly takes |det J|). Checked once when the mesh is built (collective)."""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

from solver.errors import CaseError
from solver.mesh.bernstein import corner_rows, jacobian_chunks, reference_to_cell
from solver.mesh.cells import CELLS
from solver.mesh.lagrange import QUADRATIC

# for each corner: the corners of its two (2D) or three (3D) edges, in an order that gives a
# positive determinant on a well-shaped cell (VTK / Gmsh node order)
CORNER_EDGES = {
    "triangle": [(1, 2)],
    "tetrahedron": [(1, 2, 3)],
    "quadrilateral": [(1, 3), (2, 0), (3, 1), (0, 2)],
    "hexahedron": [(1, 3, 4), (2, 0, 5), (3, 1, 6), (0, 2, 7), (7, 5, 0), (4, 6, 1), (5, 7, 2), (6, 4, 3)],
}
DEGENERATE = 1e-10  # a corner Jacobian below this fraction of the cell's size^dim: no volume
# the largest relative error that rounding the coordinates may put in a cell's edges: double precision
# keeps about 16 digits of a coordinate, of which a cell of size h at a distance r from the origin keeps
# the digits of h / r (a 1 mm cell at 1e11 m keeps two: its source booked 0.2% off; one at a UTM northing,
# 1e7 m, keeps over five, and its answers round-off's: refused from 1e-5, where they keep five)
ROUNDED_EDGES = 1e-5


def corner_jacobians(points: np.ndarray, cells: np.ndarray, cell_type: str) -> np.ndarray:
    """(n_cells, corners) determinants of the edge vectors at each corner."""
    out = []
    for corner, edges in enumerate(CORNER_EDGES[cell_type]):
        base = points[cells[:, corner]]
        vectors = np.stack([points[cells[:, e]] - base for e in edges], axis=1)  # (n, dim, gdim)
        out.append(np.linalg.det(vectors[:, :, : vectors.shape[1]]))
    return np.stack(out, axis=1)


def midpoint_offsets(points: np.ndarray, cells: np.ndarray, cell_type: str) -> np.ndarray:
    """(n_cells, edges) distance of each edge's midpoint node from the middle of the edge's
    corners, relative to the edge's length."""
    ref = CELLS[cell_type]
    edges = np.array(QUADRATIC[ref.linear.name][0])
    a, b = points[cells[:, edges[:, 0]]], points[cells[:, edges[:, 1]]]
    m = points[cells[:, ref.n_corners: ref.n_corners + len(edges)]]
    return np.linalg.norm(m - 0.5 * (a + b), axis=2) / np.linalg.norm(b - a, axis=2)


MIDPOINT_OFFSET = 0.5  # a midpoint node farther from the middle of its edge, in edge lengths: refused


def folded_cells(points: np.ndarray, cells: np.ndarray, cell_type: str) -> np.ndarray:
    """Which cells lie on the same side of a facet as the cell they share it with (both of a
    pair marked): the centroids of their corners against the facet's line or plane. One sort of
    the facets' sorted vertex ids, O(facets log facets)."""
    ref = CELLS[cell_type].linear
    corners = cells[:, : ref.n_corners]
    centroid = points[corners].mean(axis=1)
    facets = np.array([f[: len(ref.facets[0])] for f in ref.facets])  # (n_facets, vertices) of one cell
    nf, k = facets.shape
    if len(cells) == 0 or any(len(f) != k for f in ref.facets):
        return np.zeros(len(cells), dtype=bool)
    verts = corners[:, facets].reshape(-1, k)  # (cells * nf, k)
    keys = np.sort(verts, axis=1)
    order = np.lexsort(keys.T[::-1])
    same = np.all(keys[order[1:]] == keys[order[:-1]], axis=1)
    a, b = order[:-1][same], order[1:][same]  # facet rows shared by two cells
    p0 = points[verts[a, 0]]
    if points.shape[1] == 2:
        e = points[verts[a, 1]] - p0
        normal = np.column_stack([-e[:, 1], e[:, 0]])
    else:
        normal = np.cross(points[verts[a, 1]] - p0, points[verts[a, 2]] - p0)
    side_a = np.einsum("fd,fd->f", normal, centroid[a // nf] - p0)
    side_b = np.einsum("fd,fd->f", normal, centroid[b // nf] - p0)
    out = np.zeros(len(cells), dtype=bool)
    bad = side_a * side_b > 0
    out[a[bad] // nf] = True
    out[b[bad] // nf] = True
    return out


def check_cells(mesh, where: str, folds: bool = True) -> None:
    """Refuse a mesh with a non-finite coordinate, a cell without volume or, with ``folds``, cells
    folded over each other (collective); the message names ``where`` (the mesh file or key) and
    the first bad cell."""
    cells = mesh.cells[: mesh.n_owned_cells]
    points = mesh.coords[:, : mesh.dim]
    bad_cells = np.zeros(len(cells), dtype=bool)
    reason = np.zeros(len(cells), dtype=np.int8)  # 1 non-finite, 2 no volume (6, 7 out of range), 3 inverted in
    # part, 4, 5 curved
    linear = CELLS[mesh.cell_type].linear
    curved = linear.name != mesh.cell_type and not mesh.affine  # judged by its map, not by its corners
    if len(cells) and linear.name in CORNER_EDGES:
        xyz = points[cells]  # (n, nodes, dim)
        finite = np.isfinite(xyz).all(axis=(1, 2))
        with np.errstate(all="ignore"):
            extent = (xyz.max(axis=1) - xyz.min(axis=1)).max(axis=1)
            size = extent ** mesh.dim
            inside = np.zeros(len(cells), dtype=bool)  # (a hexahedron folded inside, its corners of one sign)
            if curved or linear.name == "hexahedron":  # det J of degree 2 or more: judged throughout the cell
                judged = (cells, mesh.cell_type) if curved else (cells[:, : linear.n_nodes], linear.name)
                det, sound, fold_at = _jacobians(points, *judged, DEGENERATE * size, curved)
            else:  # (a simplex's det J is constant, a bilinear quadrilateral's linear: the corners decide)
                det = corner_jacobians(points, cells, linear.name)
            if curved:
                tiny = np.abs(det).max(axis=1) <= DEGENERATE * size
                mixed = ~sound
            else:
                tiny = np.abs(det).min(axis=1) <= DEGENERATE * size
                mixed = (det.min(axis=1) < 0) & (det.max(axis=1) > 0)
                if linear.name == "hexahedron":
                    inside = ~sound & ~mixed
            overflow = ~np.isfinite(det).all(axis=1) | ~np.isfinite(size)
            if curved:
                reason[midpoint_offsets(points, cells, mesh.cell_type).max(axis=1) > MIDPOINT_OFFSET] = 4
            far = np.abs(xyz).max(axis=(1, 2))
            rounded = np.finfo(float).eps * far > ROUNDED_EDGES * np.abs(det).min(axis=1) ** (1.0 / mesh.dim)
        reason[rounded & (reason == 0)] = 8
        reason[mixed & (reason != 4)] = 5 if curved else 3
        reason[inside] = 9
        reason[tiny | overflow] = 2
        with np.errstate(all="ignore"):  # a volume beyond the range of doubles, not a degenerate cell
            reason[tiny & (extent > 0) & (size * DEGENERATE < np.finfo(float).tiny)] = 6
        reason[overflow & np.isfinite(extent) & (extent > 0)] = 7
        reason[~finite] = 1
        bad_cells = reason > 0
    folded = np.zeros(len(cells), dtype=bool)
    if folds and not bad_cells.any() and linear.name in CORNER_EDGES:
        with np.errstate(all="ignore"):
            folded = folded_cells(points, mesh.cells, mesh.cell_type)[: len(cells)]
    counts = np.array([np.count_nonzero(bad_cells), np.count_nonzero(folded)], dtype=np.int64)
    mesh.comm.Allreduce(MPI.IN_PLACE, counts, op=MPI.SUM)
    if counts[0] == 0:
        if counts[1]:
            _refuse_folded(mesh, where, points, cells, folded, int(counts[1]))
        return
    first = np.array([mesh.cell_ids[np.argmax(bad_cells)] if bad_cells.any() else np.iinfo(np.int64).max],
                     dtype=np.int64)
    mesh.comm.Allreduce(MPI.IN_PLACE, first, op=MPI.MIN)
    mine = np.flatnonzero(bad_cells & (mesh.cell_ids[: len(cells)] == first[0]))
    info = np.array([reason[mine[0]] if len(mine) else 0], dtype=np.int64)
    mesh.comm.Allreduce(MPI.IN_PLACE, info, op=MPI.MAX)
    where_size = np.zeros(2)  # (the first bad cell's distance from the origin and size, for reason 8)
    if len(mine) and info[0] == 8:
        xyz = points[cells[mine[0]]]
        where_size[:] = np.abs(xyz).max(), (xyz.max(axis=0) - xyz.min(axis=0)).min()
    mesh.comm.Allreduce(MPI.IN_PLACE, where_size, op=MPI.MAX)
    near = np.full(mesh.dim, np.inf)  # (where a cell folds: its point of the least det J found)
    if len(mine) and info[0] in (5, 9):
        judged = (cells[mine[0]], mesh.cell_type) if info[0] == 5 else (cells[mine[0], : linear.n_nodes], linear.name)
        near[:] = reference_to_cell(judged[1], fold_at[mine[0]], points[judged[0]])
    mesh.comm.Allreduce(MPI.IN_PLACE, near, op=MPI.MIN)
    at = ", ".join(f"{x:.6g}" for x in near)
    what = {1: "has a non-finite coordinate", 2: "has no volume (degenerate)",
            3: "is inverted or self-intersecting (its corner Jacobians change sign)",
            4: f"has an edge midpoint node more than {MIDPOINT_OFFSET:g} edge lengths off the middle of its edge",
            5: f"is inverted in part by its curved edges: the Jacobian of its quadratic map changes sign or vanishes "
               f"inside it, near ({at}); move its midpoint nodes towards the middles of its edges",
            6: "is too small for double precision: its volume (size^dim) underflows; coordinates are read in "
               "metres, and no physical cell is this small: check the mesh's lengths and their unit",
            7: "is too large for double precision: its volume (size^dim) overflows; coordinates are read in "
               "metres, and no physical cell is this large: check the mesh's lengths and their unit",
            9: f"folds inside: the Jacobian of its trilinear map changes sign or vanishes near ({at}), though its "
               f"corners' are of one sign (a face twisted, or a corner pushed in towards the opposite one); move its "
               f"nodes to unfold it, or remesh there",
            8: f"is too small for its distance from the origin in double precision (about {where_size[1]:.3g} "
               f"across, at coordinates up to {where_size[0]:.3g}: rounding the coordinates changes its edges by "
               f"more than {ROUNDED_EDGES:g} of their length); move the mesh's origin near the cells"
            }[int(info[0])]
    raise CaseError(f"{where}: cell {int(first[0]) + 1} of {mesh.n_global_cells} ({mesh.cell_type}, counted from 1 in "
                    f"the mesh's order) {what}")


def _jacobians(points: np.ndarray, cells: np.ndarray, cell_type: str, small: np.ndarray, curved: bool):
    """det J of each cell at the points of its Bernstein lattice (``curved``) or at its corners,
    whether it stays above ``small`` (times its volume's sign) throughout the cell, and the
    reference point of its least value (:mod:`solver.mesh.bernstein`), a chunk of cells at a time."""
    columns = slice(None) if curved else corner_rows(cell_type)
    parts = [(values[:, columns], sound, at)
             for _, values, sound, at in jacobian_chunks(points, cells, cell_type, small)]
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def _refuse_folded(mesh, where: str, points: np.ndarray, cells: np.ndarray, folded: np.ndarray, n_folded: int) -> None:
    """Raise for a mesh with cells folded over each other, naming the first of them and the
    centroid of its corners (collective)."""
    first = np.array([mesh.cell_ids[np.argmax(folded)] if folded.any() else np.iinfo(np.int64).max],
                     dtype=np.int64)
    mesh.comm.Allreduce(MPI.IN_PLACE, first, op=MPI.MIN)
    mine = np.flatnonzero(folded & (mesh.cell_ids[: len(cells)] == first[0]))
    centre = np.full(mesh.dim, np.inf)
    if len(mine):
        centre[:] = points[cells[mine[0], : CELLS[mesh.cell_type].n_corners]].mean(axis=0)
    mesh.comm.Allreduce(MPI.IN_PLACE, centre, op=MPI.MIN)
    at = ", ".join(f"{x:.6g}" for x in centre)
    raise CaseError(f"{where}: cell {int(first[0]) + 1} of {mesh.n_global_cells} ({mesh.cell_type}, counted from 1 in "
                    f"the mesh's order) at ({at}) folds over a neighbour (the two "
                    f"lie on the same side of the facet they share; {n_folded} cells are so): a folded mesh, "
                    f"e.g. a node moved past its neighbours")
