"""Conformity of a mesh file: its cells fill the domain once and neighbours share whole facets.

A non-conforming mesh (a hanging node in the middle of a neighbour's edge, a face split along
different diagonals on its two sides, two parts meshed separately that touch or overlap with nodes
of their own, quadratic cells with midpoint nodes of their own on a shared edge) is solved without
a word into a wrong answer: an insulated crack inside the domain, material counted twice, a field
torn along an edge. So is a boundary element that is not a facet of a cell (it spans several, and
its condition reaches only its corners). All are refused, on rank 0 while it reads the file:

* facets are matched by their sorted corners (packed into one integer when they fit); a facet of
  three or more cells is refused, and those of one cell are the exterior facets;
* just outside each exterior facet (1e-7 of its size along its outward normal) lies no cell, and
  just inside it only its own, on a conforming mesh: a point there inside another cell (a k-d
  tree of these points, queried with the ball of every cell; the cells split into simplices) is
  a hanging node, a mismatched face, parts that touch or overlap, a cell laid over others along
  the boundary, or a part wholly inside another on nodes of its own (its facets are exterior
  facets too, among the other's cells). A thin slot of any width above that is kept;
* the cells about a node fill at most the full angle (solid angle) about it: more, and cells
  overlap there, as one laid over others on their own nodes does, away from the boundary;
* a node of the boundary has two exterior facets (2D), an edge of it two exterior faces (3D):
  more, and parts touch there alone, without a facet between them (a contact of no width); in
  3D, the cells about a node are joined through the faces that hold it into one group (two
  tetrahedra sharing a corner alone are two);
* every tagged boundary element is a facet of a cell (the same element listed twice in one group
  is taken once), a quadrilateral one with its corners in order round the face;
* quadratic cells sharing an edge (or a face of hexahedra) share its midpoint (centre) node.

Costs a sort of the cells' facets (and edges), a ball query per cell and an angle per corner, a
chunk of cells at a time: about as much time as meshio's reading of the file, and two integers per
facet of every cell besides the mesh (four, for a moment, where a facet's node ids do not fit one 63-bit word: meshes of
over 2^21 nodes, or 2^15 for the four corners of hexahedra's faces, whose facets are numbered by a
sort of two-word keys: about 4 times slower, 1.9 s for 400,000 hexahedra). The geometry is that of
the coordinates scaled by a power of two to about 1, exactly: the largest meshes' and the
smallest's products of coordinates neither overflow nor vanish (one scaled copy of them, made once;
the scale is that of the nodes the cells use).
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path

import numpy as np

from solver.case.shown import counted
from solver.errors import CaseError
from solver.mesh.cells import CELLS, QUADRATIC_NAMES
from solver.mesh.lagrange import QUADRATIC
from solver.mesh.partition import facet_table
from solver.mesh.bernstein import corner_rows, jacobian_chunks, reference_to_cell
from solver.mesh.quality import MIDPOINT_OFFSET, corner_jacobians, folded_cells, midpoint_offsets

CHUNK = 1 << 16  # cells (facets) at a time
OUTSIDE = 1e-7  # how far outside, relative to the facet's size
SIMPLICES = {  # the cell types split into simplices, for the containment test
    "triangle": ((0, 1, 2),),
    "tetrahedron": ((0, 1, 2, 3),),
    "quadrilateral": ((0, 1, 2), (0, 2, 3)),
    "hexahedron": ((0, 1, 2, 6), (0, 2, 3, 6), (0, 3, 7, 6), (0, 7, 4, 6), (0, 4, 5, 6), (0, 5, 1, 6)),
}
CORNER_ARMS = {  # the corners next to each corner along the cell's edges
    "triangle": ((1, 2), (2, 0), (0, 1)),
    "quadrilateral": ((1, 3), (2, 0), (3, 1), (0, 2)),
    "tetrahedron": ((1, 2, 3), (0, 2, 3), (0, 1, 3), (0, 1, 2)),
    "hexahedron": ((1, 3, 4), (0, 2, 5), (1, 3, 6), (0, 2, 7), (0, 5, 7), (1, 4, 6), (2, 5, 7), (3, 4, 6)),
}
CROWDED = 1e-8  # relative excess over the full angle about a node that counts as cells overlapping there
FIX = ("Mesh the model as one (Gmsh: Geometry.AutoCoherence, or BooleanFragments of its volumes and "
       "surfaces)")


def check_mesh_file(path: Path, points: np.ndarray, cells: np.ndarray, cell_type: str, facets: np.ndarray,
                    facet_tags: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refuse a non-conforming mesh file (see the module); returns its tagged facets with those
    listed twice in one group taken once, their tags, and a mask of those with a cell on each side
    (inside the domain). Holds one integer per facet of every cell besides the mesh (their keys,
    sorted), and four for a moment where the keys take two words (meshes of more nodes than one
    word packs: then the keys are kept, sorted and not)."""
    linear = CELLS[cell_type].linear
    scale = _unit_scale(points, cells)
    unit = points * scale  # (one scaled copy for every check)
    _refuse_twisted(path, points, unit, cells, linear)
    table = facet_table(linear.name)
    nf, width = table.shape
    bits = max((len(points) - 1).bit_length(), 1)
    keys, tagged_keys = _row_keys(cells, table, bits, facets[:, :width])  # row: cell * nf + facet
    if bits * width <= 63:  # one word: sorted in place, and made again a chunk at a time where needed
        ordered, keys = keys, None
        ordered.sort()
    else:
        ordered = np.sort(keys)
    equal = ordered[1:] == ordered[:-1]
    if (equal[1:] & equal[:-1]).any():
        key = ordered[1:-1][equal[1:] & equal[:-1]][0]
        row = next(start + int(np.flatnonzero(chunk == key)[0]) for start, chunk in
                   _key_chunks(keys, cells, table, bits) if (chunk == key).any()) // nf
        raise CaseError(f"{path}: the mesh is not conforming: a facet of element {row + 1} of its kind (near "
                        f"{_at(points, cells[row, : linear.n_nodes])}) is shared by three or more elements: "
                        f"cells overlap. {FIX}")
    lone = ordered[~(np.r_[False, equal] | np.r_[equal, False])]
    del equal
    facets, facet_tags, tagged_keys = _checked_facets(path, points, cells, facets, facet_tags, tagged_keys, ordered)
    del ordered
    inner = ~_among(tagged_keys, lone)  # tagged facets with a cell on each side
    if width == 4:
        _refuse_crossed_facets(path, points, unit, facets[:, :4])
    exterior = np.concatenate([np.flatnonzero(_among(chunk, lone)) + start
                               for start, chunk in _key_chunks(keys, cells, table, bits)])
    del keys
    exterior_corners = cells[exterior // nf][np.arange(len(exterior))[:, None], table[exterior % nf]]
    # (2D: the exterior edges' count at each node finds a pinched node; before the k-d tree's check, where
    # less is held, its message after it)
    pinched = _pinched_node(cells[:, : linear.n_nodes], table, bits, exterior_corners) if linear.dim == 3 else -1
    _refuse_overlaps(path, unit, scale, cells[:, : linear.n_nodes], linear, exterior // nf, table[exterior % nf])
    _refuse_pinches(path, points, exterior_corners)
    del exterior_corners
    if pinched >= 0:
        raise CaseError(f"{path}: the mesh is not conforming: its boundary pinches at node {pinched + 1} (near "
                        f"{_at(points, np.array([pinched]))}): the cells about it make separate groups, joined "
                        f"through no face there (parts, or the two sides of a crack, touching at a corner alone), "
                        f"and heat would cross a contact of no width, as much as the mesh makes of it. Join the "
                        f"parts along a face, or keep them apart")
    _refuse_crowded_nodes(path, points, unit, cells[:, : linear.n_nodes], linear)
    if CELLS[cell_type].degree > 1:
        _refuse_torn_edges(path, points, unit, cells, linear.name, bits)
    return facets, facet_tags, inner


def _refuse_twisted(path: Path, points: np.ndarray, unit: np.ndarray, cells: np.ndarray, linear) -> None:
    """A cell whose corner Jacobians change sign (a node swapped, a twisted hexahedron) would look
    like cells that overlap: named for what it is first. A hexahedron is judged by the Jacobian of
    its trilinear map throughout (:mod:`solver.mesh.bernstein`: it may fold inside with its eight
    corners of one sign), a quadratic cell by that of its map (its curved edges may turn a corner
    that its straight cell would not); a quadrilateral's is linear (bilinear map: its term in xi eta
    cancels), and its corners decide. ``unit``: the points scaled to about 1."""
    xyz = unit[:, : linear.dim]
    if cells.shape[1] > linear.n_nodes:
        _refuse_twisted_maps(path, points, xyz, cells, QUADRATIC_NAMES[linear.name][0])
        return
    for start in range(0, len(cells), CHUNK):
        _refuse_repeated_nodes(path, points, cells, start, linear.n_nodes)  # (its corner Jacobians vanish)
        if linear.name == "hexahedron":
            _refuse_folded_hexahedra(path, points, xyz, cells[start: start + CHUNK], start)
            continue
        with np.errstate(all="ignore"):
            det = corner_jacobians(xyz, cells[start: start + CHUNK, : linear.n_nodes], linear.name)
        mixed = np.flatnonzero((det.min(axis=1) < 0) & (det.max(axis=1) > 0))
        if len(mixed):
            row = start + int(mixed[0])
            near = _at(points, cells[row, : linear.n_nodes])
            odd = _odd_corner(det[mixed[0]]) if linear.name == "quadrilateral" else -1
            if odd >= 0:
                raise CaseError(f"{path}: element {row + 1} of its kind (near {near}) is not convex: its corner at "
                                f"node {int(cells[row, odd]) + 1} points inwards (a dart), and its bilinear map folds "
                                f"over itself there; move that node out, or split the quadrilateral into two "
                                f"triangles across that corner")
            _refuse_inverted(path, row, near)


def _refuse_inverted(path: Path, row: int, near: str) -> None:
    raise CaseError(f"{path}: element {row + 1} of its kind (near {near}) is inverted or self-intersecting "
                    f"(its corner Jacobians change sign): check its node order")


def _refuse_folded_hexahedra(path: Path, points: np.ndarray, xyz: np.ndarray, cells: np.ndarray, start: int) -> None:
    """A hexahedron (of ``cells``, rows from ``start``) whose corner Jacobians change sign (a node
    swapped), or whose trilinear map's Jacobian changes sign or vanishes inside it while its
    corners' are of one sign (a face twisted, a corner pushed in towards the opposite one), where
    the solver would integrate a volume counted twice. ``xyz``: the points scaled to about 1."""
    corners = corner_rows("hexahedron")
    with np.errstate(all="ignore"):
        for first, values, sound, least_at in jacobian_chunks(xyz, cells, "hexahedron"):
            if sound.all():
                continue
            bad = int(np.argmin(sound))
            row, det = start + first + bad, values[bad, corners]
            near = _at(points, cells[row])
            if det.min() < 0 < det.max():
                _refuse_inverted(path, row, near)
            at = ", ".join(f"{v:.6g}" for v in reference_to_cell("hexahedron", least_at[bad], points[cells[row]]))
            raise CaseError(f"{path}: element {row + 1} of its kind (near {near}) folds inside: the Jacobian of its "
                            f"trilinear map changes sign or vanishes near ({at}), though its corners' are of one sign "
                            f"(a face twisted, or a corner pushed in towards the opposite one); move its nodes to "
                            f"unfold it, or remesh there")


def _refuse_twisted_maps(path: Path, points: np.ndarray, xyz: np.ndarray, cells: np.ndarray, cell_type: str) -> None:
    """The quadratic cells whose map's Jacobian changes sign or vanishes anywhere inside (not only
    at some points: :mod:`solver.mesh.bernstein`): ``xyz`` the points scaled to about 1. A midpoint
    node off its edge (swapped with another: a node order not Gmsh's) is named first."""
    _refuse_misplaced_midpoints(path, points, xyz, cells, cell_type)
    for start in range(0, len(cells), CHUNK):
        _refuse_repeated_nodes(path, points, cells, start, cells.shape[1])
        with np.errstate(all="ignore"):
            for first, _, sound, least_at in jacobian_chunks(xyz, cells[start: start + CHUNK], cell_type):
                if sound.all():
                    continue
                row = start + first + int(np.argmin(sound))
                at = ", ".join(f"{v:.6g}" for v in reference_to_cell(cell_type, least_at[np.argmin(sound)],
                                                                     points[cells[row]]))
                raise CaseError(f"{path}: element {row + 1} of its kind (near {_at(points, cells[row])}) is inverted "
                                f"or self-intersecting (the Jacobian of its quadratic map changes sign or vanishes "
                                f"near ({at})): check its node order (the corners, then the midpoints of the edges), "
                                f"and that its midpoint nodes lie near the middles of its edges")


def _refuse_repeated_nodes(path: Path, points: np.ndarray, cells: np.ndarray, start: int, shown: int) -> None:
    """A cell of the chunk from ``start`` that lists a node more than once (a degenerate cell),
    placed near the mean of its first ``shown`` nodes."""
    ordered = np.sort(cells[start: start + CHUNK], axis=1)
    twice = np.flatnonzero(np.any(ordered[:, 1:] == ordered[:, :-1], axis=1))
    if len(twice):
        row = start + int(twice[0])
        raise CaseError(f"{path}: element {row + 1} of its kind (near {_at(points, cells[row, :shown])}) lists a "
                        f"node more than once: a degenerate cell; check its node list")


def _odd_corner(det: np.ndarray) -> int:
    """The one corner whose Jacobian's sign is not the others' (a quadrilateral's reflex corner: a
    simple but non-convex quadrilateral, whose other three turn one way), or -1 (two of each sign:
    two corners swapped, a bow tie)."""
    negative = det < 0
    odd = negative if np.count_nonzero(negative) == 1 else ~negative if np.count_nonzero(~negative) == 1 else None
    return int(np.argmax(odd)) if odd is not None else -1


def _refuse_pinches(path: Path, points: np.ndarray, exterior: np.ndarray) -> None:
    """Parts that touch at a node alone (2D) or along an edge alone (3D), without a facet between
    them: a contact of no width, through which the discrete field still carries heat (0.23 W for
    the 0 W of two squares sharing a corner), an amount set by the mesh. On a mesh whose parts meet
    along whole facets, a node of the boundary has two exterior facets (2D), an edge of it two
    exterior faces (3D); more, and the boundary pinches there. ``exterior``: the exterior facets'
    corners, in order round each face in 3D."""
    if exterior.shape[1] == 2:  # 2D: the exterior edges at each node
        edges = exterior
    else:  # 3D: the edges round each exterior face
        edges = np.stack([exterior, np.roll(exterior, -1, axis=1)], axis=2).reshape(-1, 2)
    if exterior.shape[1] == 2:
        count = np.bincount(edges.ravel(), minlength=len(points))
        pinched = np.flatnonzero(count > 2)
        if len(pinched):
            node = int(pinched[0])
            raise CaseError(f"{path}: the mesh is not conforming: its boundary pinches at node {node + 1} (near "
                            f"{_at(points, np.array([node]))}): parts of it, or the two sides of a crack, meet there "
                            f"alone, with no edge between them, and heat would cross a contact of no width, as much "
                            f"as the mesh makes of it. Join the parts along an edge, or keep them apart (a crack: "
                            f"its mouth's node doubled, one for each side)")
        return
    ordered = np.sort(edges, axis=1)
    keys, count = np.unique(ordered[:, 0] * np.int64(len(points)) + ordered[:, 1], return_counts=True)
    pinched = np.flatnonzero(count > 2)
    if len(pinched):
        a, b = divmod(int(keys[pinched[0]]), len(points))
        raise CaseError(f"{path}: the mesh is not conforming: its boundary pinches along the edge of nodes {a + 1} "
                        f"and {b + 1} (near {_at(points, np.array([a, b]))}): parts of it, or the two sides of a "
                        f"crack, meet there alone, with no face between them, and heat would cross a contact of no "
                        f"width, as much as the mesh makes of it. Join the parts along a face, or keep them apart")


def _pinched_node(corners: np.ndarray, table: np.ndarray, bits: int, exterior: np.ndarray) -> int:
    """A node of the boundary (3D) whose cells make two or more groups, joined through no face that
    holds it: parts touching at a corner alone (two tetrahedra sharing a node), which the edges'
    count misses; or -1. Each corner of a cell at such a node is a vertex of a graph, joined to the
    same node's corner in the cell across each shared face; the node is pinched where its corners
    fall in two of the graph's components. A ring of cells about a node is one group, whatever its
    exterior faces look like. (About a node inside, two groups would overlap: the crowded-node
    check's.) ``exterior``: the exterior faces' corners. Costs the facet keys, a sort and a graph
    of the cells that touch the boundary only."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nf, per_cell = len(table), corners.shape[1]
    boundary = np.zeros(int(corners.max()) + 1 if corners.size else 0, dtype=bool)
    boundary[exterior] = True
    touching = np.flatnonzero(boundary[corners].any(axis=1))  # the cells with a corner on the boundary
    near = corners[touching].astype(np.int32 if len(boundary) < 2**31 else np.int64)  # (int32: a smaller peak)
    del touching
    keys = _row_keys(near, table, bits)[0]  # row: (cell of near) * nf + facet
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    same = np.flatnonzero(keys[1:] == keys[:-1])
    del keys
    index = np.int32 if len(near) * per_cell < 2**31 else np.int64
    first, second = order[same], order[same + 1]  # the two rows of each shared face
    del order, same
    cell, facet, other = (first // nf).astype(index), first % nf, (second // nf).astype(index)
    del first, second
    ends: tuple[list, list] = ([], [])
    for k in range(table.shape[1]):  # each corner of the shared faces: joined to its node's corner across
        local = table[facet, k]
        node = near[cell, local]
        on = boundary[node]
        across = np.argmax(near[other[on]] == node[on, None], axis=1)
        ends[0].append(cell[on] * per_cell + local[on])
        ends[1].append(other[on] * per_cell + across)
    del cell, facet, other, local, node, on, across
    size = len(near) * per_cell
    rows, columns = np.concatenate(ends[0]), np.concatenate(ends[1])
    del ends
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, columns)), shape=(size, size)).tocsr()
    del rows, columns
    count, label = connected_components(graph, directed=False)
    del graph
    nodes = near.ravel()
    at = np.flatnonzero(boundary[nodes])  # the corners at boundary nodes
    groups = np.unique(nodes[at].astype(np.int64) * count + label[at])
    many = np.flatnonzero(np.bincount(groups // count) > 1)
    return int(many[0]) if len(many) else -1


def _refuse_crowded_nodes(path: Path, points: np.ndarray, unit: np.ndarray, corners: np.ndarray, linear) -> None:
    """The cells about a node fill at most the full angle about it (2 pi; 4 pi of solid angle in
    3D), each with the angle (solid angle) its edges make at that corner: more, and some of them
    overlap there, as a cell laid over others on their nodes does (its facets, which no other cell
    shares, are exterior facets inside the domain). A fold is left to the cells' check, which
    names it. ``unit``: the points scaled to about 1."""
    unit = unit[:, : linear.dim]
    coordinates = [np.ascontiguousarray(unit[:, d]) for d in range(linear.dim)]
    arms = np.array(CORNER_ARMS[linear.name])  # (corners, dim): the corners along each corner's edges
    total = np.zeros(len(points))
    for start in range(0, len(corners), CHUNK // 16):  # (small chunks: a dozen arrays of theirs at once)
        chunk = corners[start: start + CHUNK // 16]
        ends = [chunk[:, arms[:, k]] for k in range(linear.dim)]
        vectors = [[x[end] - x[chunk] for x in coordinates] for end in ends]  # arm, then axis: (m, corners)
        with np.errstate(all="ignore"):  # (degenerate cells: refused with their own message)
            angle = _corner_angles(vectors)
        np.add.at(total, chunk.ravel(), np.nan_to_num(angle).ravel())
    full = 2 * np.pi * (linear.dim - 1)
    over = np.flatnonzero(total > full * (1 + CROWDED))
    if len(over) and not folded_cells(unit, corners, linear.name).any():
        node = int(over[np.argmax(total[over])])
        raise CaseError(f"{path}: the mesh is not conforming: the cells about node {node + 1} (near "
                        f"{_at(points, np.array([node]))}) fill {total[node] / full:.4g} times the full "
                        f"{'angle' if linear.dim == 2 else 'solid angle'} about it: cells overlap there. {FIX}")


def _corner_angles(arms) -> np.ndarray:
    """The angle between the two arms of each corner (2D), or the solid angle of the three (3D,
    Van Oosterom and Strackee); ``arms[k][d]``: component d of arm k, an array over the corners."""
    if len(arms) == 2:
        (ux, uy), (vx, vy) = arms
        return np.arctan2(np.abs(ux * vy - uy * vx), ux * vx + uy * vy)
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = arms
    la, lb, lc = np.sqrt(ax * ax + ay * ay + az * az), np.sqrt(bx * bx + by * by + bz * bz), \
        np.sqrt(cx * cx + cy * cy + cz * cz)
    triple = np.abs(ax * (by * cz - bz * cy) + ay * (bz * cx - bx * cz) + az * (bx * cy - by * cx))
    ab, ac, bc = ax * bx + ay * by + az * bz, ax * cx + ay * cy + az * cz, bx * cx + by * cy + bz * cz
    return 2 * np.arctan2(triple, la * lb * lc + ab * lc + ac * lb + bc * la)


def _row_keys(cells: np.ndarray, table: np.ndarray, bits: int, extra: np.ndarray | None = None):
    """One int64 key per (cell, row of ``table``), at ``cell * len(table) + row``, and per row of
    ``extra``: equal for rows of the same nodes (all of them, in increasing order: two faces of
    hexahedra that share three corners are not one). Packed into one word where the ids fit in 63
    bits (three: meshes of up to 2^21 nodes; four: 2^15), a chunk of cells at a time; else numbered
    in the order of two words (two ids in each), by a sort of all."""
    n, nt = len(cells), len(table)
    if bits * table.shape[1] <= 63:
        keys = np.empty(n * nt, dtype=np.int64)
        for start in range(0, n, CHUNK):
            block = cells[start: start + CHUNK]
            for r, row in enumerate(table):
                keys[start * nt + r: (start + len(block)) * nt: nt] = _pack(block[:, row], bits)
        return keys, None if extra is None else _pack(extra, bits)
    total = n * nt + (0 if extra is None else len(extra))
    high, low = np.empty(total, dtype=np.int64), np.empty(total, dtype=np.int64)

    for start in range(0, n, CHUNK):
        block = cells[start: start + CHUNK]
        for r, row in enumerate(table):
            _put_two_words(high, low, start * nt + r, block[:, row], bits, nt)
    if extra is not None and len(extra):
        _put_two_words(high, low, n * nt, extra, bits)
    order = np.lexsort((low, high))
    new = np.empty(total, dtype=bool)
    new[:1] = True
    new[1:] = (high[order[1:]] != high[order[:-1]]) | (low[order[1:]] != low[order[:-1]])
    del high, low
    dense = np.empty(total, dtype=np.int64)
    dense[order] = np.cumsum(new) - 1
    return dense[: n * nt], None if extra is None else dense[n * nt:]


def _key_chunks(keys: np.ndarray | None, cells: np.ndarray, table: np.ndarray, bits: int):
    """(first row, keys) of the rows of :func:`_row_keys`, a chunk at a time: from ``keys``, or
    where they were not kept (one word each), packed again from the cells."""
    if keys is not None:
        yield from ((start, keys[start: start + CHUNK]) for start in range(0, len(keys), CHUNK))
        return
    for start in range(0, len(cells), CHUNK):
        yield start * len(table), _row_keys(cells[start: start + CHUNK], table, bits)[0]


def _put_two_words(high, low, at: int, rows: np.ndarray, bits: int, step: int = 1) -> None:
    """Keys of two words of ``rows`` (three or four ids, sorted: two in the first word, the others
    in the second) into every ``step``-th entry from ``at``."""
    ordered = np.sort(rows, axis=1).astype(np.int64)
    high[at: at + len(rows) * step: step] = (ordered[:, 0] << bits) | ordered[:, 1]
    low[at: at + len(rows) * step: step] = ordered[:, 2] if rows.shape[1] == 3 else \
        (ordered[:, 2] << bits) | ordered[:, 3]


def _pack(rows: np.ndarray, bits: int) -> np.ndarray:
    """One int64 key per row of node ids: the ids in increasing order, packed."""
    if rows.shape[1] == 0:
        return np.zeros(len(rows), dtype=np.int64)
    ordered = np.sort(rows, axis=1).astype(np.int64)
    key = ordered[:, 0].copy()
    for j in range(1, ordered.shape[1]):
        key = (key << bits) | ordered[:, j]
    return key


def _refuse_overlaps(path: Path, points: np.ndarray, scale: float, corners: np.ndarray, linear, owner: np.ndarray,
                     local: np.ndarray) -> None:
    """Refuse cells that contain a point just outside or just inside another cell's exterior
    facet. The exterior facets bound every part: the outer surface, and the surface of a part
    wholly inside others on nodes of its own (its facets lie among interior cells, which hold its
    probes). Every cell's ball about its corners' centroid is counted against a k-d tree of the
    points (no lists: a few per cent of the check), and the few whose ball holds one are split
    into simplices to test it, a chunk of cells at a time. The coordinates are scaled by a power
    of two to about 1 (exact: ``points``, ``scale`` times the file's): squared distances of 1e155
    overflow, of 1e-160 vanish."""
    from scipy.spatial import cKDTree

    if len(owner) == 0 or len(corners) < 2:
        return
    face = points[corners[owner[:, None], local]]  # (m, k, gdim) corners of the exterior facets
    centre = face.mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):  # degenerate facets: left to the cell check
        normal = _normals(face)
    sound = np.isfinite(normal).all(axis=1)
    if not sound.all():
        face, centre, normal, owner, local = face[sound], centre[sound], normal[sound], owner[sound], local[sound]
        if len(owner) == 0:
            return
    inward = points[corners[owner]].mean(axis=1) - centre
    depth = np.einsum("md,md->m", normal, inward)
    normal *= np.where(depth > 0, -1.0, 1.0)[:, None]
    size = np.linalg.norm(face - centre[:, None, :], axis=2).max(axis=1)
    flat = ~(np.abs(depth) > 1e-9 * size)  # a cell without volume on this side: left to the cell check
    if flat.any():
        face, centre, normal, owner, local, size = (a[~flat] for a in (face, centre, normal, owner, local, size))
        if len(owner) == 0:
            return
    # just outside each exterior facet, and just inside it (where only its own cell may be)
    probe = np.concatenate([centre + OUTSIDE * size[:, None] * normal, centre - OUTSIDE * size[:, None] * normal])
    owner = np.concatenate([owner, owner])
    del face, centre, normal, inward
    tree = cKDTree(probe)
    found_p, found_c = [], []
    near = _cells_near(tree, points, corners)
    for start in range(0, len(near), CHUNK // 16):  # a few probes per cell: small chunks
        chunk = near[start: start + CHUNK // 16]
        cell_points = points[corners[chunk]]  # (chunk, nn, gdim)
        p = tree.query_ball_point(*_ball(cell_points))
        lengths = np.fromiter(map(len, p), dtype=np.int64, count=len(p))
        c = np.repeat(np.arange(len(p)), lengths)
        p = np.fromiter(chain.from_iterable(p), dtype=np.int64, count=int(lengths.sum()))
        low, high = cell_points.min(axis=1), cell_points.max(axis=1)
        keep = (owner[p] != chunk[c]) & np.all((probe[p] >= low[c]) & (probe[p] <= high[c]), axis=1)
        p, c = p[keep], c[keep]
        inside = np.zeros(len(p), dtype=bool)
        for simplex in SIMPLICES[linear.name]:
            inside |= _in_simplex(cell_points[c][:, simplex], probe[p])
        found_p.append(p[inside])
        found_c.append(chunk[c[inside]])
    p, c = np.concatenate([np.zeros(0, dtype=np.int64), *found_p]), np.concatenate([np.zeros(0, np.int64), *found_c])
    if len(p):
        a, b = int(owner[p[0]]), int(c[0])
        pairs = len(np.unique(np.stack([np.minimum(owner[p], c), np.maximum(owner[p], c)], axis=1), axis=0))
        at = ", ".join(f"{v:.6g}" for v in probe[p[0]] / scale)
        raise CaseError(f"{path}: the mesh is not conforming: elements {min(a, b) + 1} and {max(a, b) + 1} of its "
                        f"kind (at {at}) touch or overlap without sharing the nodes of their "
                        f"facets ({pairs} such pair{'s' if pairs > 1 else ''}: hanging nodes, or parts meshed "
                        f"separately); heat would not cross there, or be counted twice. {FIX}")


def _ball(cell_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centroid of each cell's corners ((m, nodes, gdim)) and a radius that holds them all."""
    middle = cell_points.mean(axis=1)
    arm = cell_points - middle[:, None, :]
    return middle, np.sqrt(np.einsum("mnd,mnd->mn", arm, arm).max(axis=1)) * (1 + 1e-9)


def _cells_near(tree, points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The cells whose ball holds a point of ``tree``: the nearest point's distance, searched no
    farther than the largest ball of a chunk of cells (no lists; twice as fast as a count)."""
    found = [np.zeros(0, dtype=np.int64)]
    for start in range(0, len(corners), CHUNK):
        middle, radius = _ball(points[corners[start: start + CHUNK]])
        distance = tree.query(middle, distance_upper_bound=float(radius.max()))[0]
        found.append(np.flatnonzero(distance <= radius) + start)
    return np.concatenate(found)


def _unit_scale(points: np.ndarray, cells: np.ndarray) -> float:
    """A power of two that brings the largest coordinate of the nodes of ``cells`` to between 1/2
    and 1: the checks' geometry is that of the coordinates so scaled (exactly), where the squares
    and products of coordinates of 1e155 would overflow, of 1e-160 vanish. Nodes no cell uses
    decide nothing (one at 1e300 would scale the cells' products to nothing, and hide overlaps)."""
    used = np.zeros(len(points), dtype=bool)
    used[cells.ravel()] = True
    top = float(np.max(np.abs(points), where=used[:, None] & np.isfinite(points), initial=0.0))
    return float(np.ldexp(1.0, -int(np.clip(np.frexp(top)[1], -1000, 1000)))) if top > 0 else 1.0


def _checked_facets(path: Path, points, cells, facets, facet_tags, tagged_keys, cell_facet_keys):
    """The tagged facets, each a facet of a cell (those through nodes no cell uses are left to the
    reader's own message), and taken once per group, with their keys."""
    if not len(facets):
        return facets, facet_tags, tagged_keys
    used = np.zeros(len(points), dtype=bool)
    used[cells.ravel()] = True
    on_cells = ~np.all(used[facets], axis=1) | _among(tagged_keys, cell_facet_keys)
    if not on_cells.all():
        row = int(np.argmin(on_cells))
        raise CaseError(f"{path}: {np.count_nonzero(~on_cells)} boundary elements (the first: number {row + 1} of its "
                        f"kind, physical tag {int(facet_tags[row])}, near {_at(points, facets[row])}) are not facets "
                        f"of the mesh's cells: one that spans several facets would hold its condition at its "
                        f"corners only. Mesh the boundary with the cells (the same nodes on both)")
    _, once = np.unique(np.stack([tagged_keys, facet_tags.astype(np.int64)], axis=1), axis=0, return_index=True)
    if len(once) < len(facets):
        once.sort()
        facets, facet_tags, tagged_keys = facets[once], facet_tags[once], tagged_keys[once]
    return facets, facet_tags, tagged_keys


def _refuse_crossed_facets(path: Path, points: np.ndarray, unit: np.ndarray, quads: np.ndarray) -> None:
    """A quadrilateral boundary element whose corners, listed in their order, do not go round the
    face (a bow tie: two of them swapped) is the cell's face by its nodes, but its condition would
    be integrated over a crossed surface (0.89 W for 1 W): each diagonal it lists must have the
    other two corners on its two sides (one of them may not, on a face that is not convex). ``unit``:
    the points scaled to about 1 (a facet through nodes no cell uses, whose products may overflow, is
    left to the reader's own message)."""
    for start in range(0, len(quads), CHUNK):
        x = unit[quads[start: start + CHUNK]]

        def split(a, b, c, d):  # whether c and d lie on the two sides of the line a-b
            ab = x[:, b] - x[:, a]
            side = np.einsum("md,md->m", np.cross(ab, x[:, c] - x[:, a]), np.cross(ab, x[:, d] - x[:, a]))
            return (side < 0) | ~np.isfinite(side)

        bad = np.flatnonzero(~split(0, 2, 1, 3) & ~split(1, 3, 0, 2))
        if len(bad):
            row = start + int(bad[0])
            raise CaseError(f"{path}: boundary element {row + 1} of its kind (near {_at(points, quads[row])}) "
                            f"lists its corners in an order that does not go round its face (two of them swapped): "
                            f"its condition would apply on a crossed surface; list them in order round the face, as "
                            f"Gmsh does")


def _refuse_misplaced_midpoints(path: Path, points, unit, cells, quadratic: str) -> None:
    """A quadratic cell whose midpoint nodes lie off its edges: misplaced, or its node order is not
    Gmsh's (midpoint nodes swapped, or in another program's order). ``unit``: the points scaled to
    about 1."""
    for start in range(0, len(cells), CHUNK):
        off = midpoint_offsets(unit, cells[start: start + CHUNK], quadratic).max(axis=1)
        bad = np.flatnonzero(~(off <= MIDPOINT_OFFSET))
        if len(bad):
            row = start + int(bad[0])
            raise CaseError(f"{path}: element {row + 1} of its kind (near {_at(points, cells[row])}) has an edge "
                            f"midpoint node more than {MIDPOINT_OFFSET:g} edge lengths off the middle of its edge "
                            f"({off[bad[0]]:.3g}): the node is misplaced, or the element's nodes are not in Gmsh's "
                            f"order (check the order: the corners, then the midpoints of the edges)")


def _refuse_torn_edges(path: Path, points, unit, cells, linear_name: str, bits: int) -> None:
    """Quadratic cells sharing an edge (a face) must share its midpoint (centre) node. A cell
    whose midpoint nodes lie off its edges first: its node order is not Gmsh's (midpoint nodes
    swapped, or in another program's order), which would read as cells that do not match.
    ``unit``: the points scaled to about 1."""
    _refuse_misplaced_midpoints(path, points, unit, cells, QUADRATIC_NAMES[linear_name][0])
    edges, faces = QUADRATIC[linear_name]
    nc = CELLS[linear_name].n_nodes
    groups = [(np.array(edges), nc, "edge", "midpoint")]
    if faces:
        groups.append((np.array(faces), nc + len(edges), "face", "centre"))
    for table, offset, what, node in groups:
        key = _row_keys(cells, table, bits)[0]
        middle = cells[:, offset: offset + len(table)].reshape(-1)
        order = np.lexsort((middle, key))
        same = key[order][1:] == key[order][:-1]
        torn = same & (middle[order][1:] != middle[order][:-1])
        if torn.any():
            row = int(order[np.argmax(torn)]) // len(table)
            article = "an" if what[0] in "aeiou" else "a"
            raise CaseError(f"{path}: the mesh is not conforming: elements of its kind that share {article} {what} "
                            f"(one: element {row + 1}, near {_at(points, cells[row])}) have {node} nodes of their own "
                            f"there ({np.count_nonzero(torn)} such {what}s): the quadratic field would tear along "
                            f"them. {FIX}")


def _among(keys: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Whether each key is in the sorted array ``ordered``."""
    at = np.minimum(np.searchsorted(ordered, keys), max(len(ordered) - 1, 0))
    return ordered[at] == keys if len(ordered) else np.zeros(len(keys), dtype=bool)


def _normals(corners: np.ndarray) -> np.ndarray:
    """Unit normals of segments (2D) or planar triangles and quadrilaterals (3D)."""
    if corners.shape[2] == 2:
        t = corners[:, 1] - corners[:, 0]
        n = np.stack([t[:, 1], -t[:, 0]], axis=1)
    elif corners.shape[1] == 3:
        n = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    else:  # a quadrilateral: the cross product of its diagonals
        n = np.cross(corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1])
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _in_simplex(simplex: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Whether each point ``x`` lies in its simplex ((m, dim + 1, dim) vertices), faces included."""
    edges = simplex[:, 1:] - simplex[:, :1]  # (m, dim, dim)
    det = np.linalg.det(edges)
    ok = np.abs(det) > 0
    lam = np.zeros(x.shape)
    lam[ok] = np.linalg.solve(np.swapaxes(edges[ok], 1, 2), (x - simplex[:, 0])[ok][..., None])[..., 0]
    return ok & np.all(lam >= 0, axis=1) & (lam.sum(axis=1) <= 1)


def _at(points: np.ndarray, nodes: np.ndarray) -> str:
    return ", ".join(f"{v:.6g}" for v in points[nodes].mean(axis=0))


def check_facet_nodes(path: Path, points: np.ndarray, cells: np.ndarray, cell_type: str, facets: np.ndarray) -> None:
    """A quadratic boundary facet's nodes beyond its corners must be its cell's: the midpoints of
    its edges in ring order (and a quadrilateral's centre). Only its corners identify it; another
    order, or a node off the facet, integrated its condition over a twisted or folded surface
    (4.41 W for 4.8 W) without a word. One key per edge (face) of every cell, as for conformity."""
    ref = CELLS[cell_type]
    if ref.degree == 1 or not len(facets):
        return
    linear = ref.linear
    edges, faces = QUADRATIC[linear.name]
    corners = CELLS[linear.facet_name].n_nodes
    ring = np.array([(0, 1)] if corners == 2 else [(i, (i + 1) % corners) for i in range(corners)])
    bits = max((len(points) - 1).bit_length(), 1)
    expected = [_middle_nodes(cells, np.array(edges), linear.n_nodes, facets[:, ring], bits)]
    if corners == 4:  # a quadrilateral facet's centre: its cell's face centre
        expected.append(_middle_nodes(cells, np.array(faces), linear.n_nodes + len(edges), facets[:, None, :4], bits))
    expected = np.hstack(expected)
    listed = facets[:, corners: corners + expected.shape[1]]
    used = np.zeros(len(points), dtype=bool)
    used[cells.ravel()] = True  # (a facet through a node no cell uses is refused later, for what it is)
    bad = np.flatnonzero((expected != listed).any(axis=1) & used[facets].all(axis=1))
    if len(bad):
        row = int(bad[0])
        centre = ", then its centre" if corners == 4 else ""
        raise CaseError(f"{path}: boundary element {row + 1} of its kind (near {_at(points, facets[row, :corners])}) "
                        f"lists nodes beyond its corners that are not its cell's (the midpoints of its edges in "
                        f"order{centre}; {counted(len(bad), 'such boundary element')}): its condition would apply on "
                        f"another surface; list the facet's nodes as Gmsh does")


def _middle_nodes(cells: np.ndarray, table: np.ndarray, offset: int, wanted: np.ndarray, bits: int) -> np.ndarray:
    """The node that the cells hold at column ``offset + r`` for their row ``r`` of ``table`` (an
    edge's midpoint, a face's centre), for each row of ``wanted`` (n, k, nodes): -1 where no cell
    has it."""
    n, k = wanted.shape[:2]
    keys, wanted_keys = _row_keys(cells, table, bits, wanted.reshape(n * k, -1))
    middle = cells[:, offset: offset + len(table)].reshape(-1)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    at = np.minimum(np.searchsorted(ordered, wanted_keys), len(ordered) - 1)
    found = ordered[at] == wanted_keys
    return np.where(found, middle[order][at], -1).reshape(n, k)
