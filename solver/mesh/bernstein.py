"""The sign of the Jacobian determinant of a cell's map over the whole cell, from its Bernstein
coefficients, not from its values at a few points.

det J of the (isoparametric) map of a cell is a polynomial on the reference cell: of degree
``dim * degree - 1`` in each variable on a quadrilateral or a hexahedron, of total degree
``dim * (degree - 1)`` on a simplex (:func:`jacobian_degree`). So it is constant on a P1 simplex;
linear on a bilinear quadrilateral (its term in xi eta cancels), where its corners' values are its
Bernstein coefficients and the corners decide; but of degree 2 in each variable on a trilinear
hexahedron, which may fold inside (a face twisted, a corner pushed in) with eight positive corners,
and of degree 2 to 5 on the curved quadratic cells, which fold between any lattice of samples.

Written in the Bernstein basis of its degree p, det J lies between the least and the largest of its
coefficients, and its values at the points a / p of the reference cell (the lattice) are some of
its values. Each cell's values there (27 points of a hexahedron, 216 of a 27-node one) give its
coefficients (one transform along each axis, one matrix on a simplex): all of them above ``small``
(times the sign of the cell's volume, the sign of their mean), the cell is sound; a value at or
below it, it folds (or its Jacobian vanishes) there. A cell that neither decides is cut in pieces
(2^dim boxes, or 4 triangles, 8 tetrahedra) whose coefficients come nearer det J as the square of
their size: only its coefficients are cut (one matrix), up to ``LEVELS`` times and ``PIECES`` pieces
of a cell at a level; one still undecided has det J within about 4^-LEVELS of its size of zero (or
nearly zero along a line or a surface), and is taken as vanishing there. Vectorised over a chunk of
cells at a time; a trilinear hexahedron's 27 values come from its edges, as fast as its eight
corner Jacobians did (0.55 s of CPU for 216,000 hexahedra, a third of reading their file).
"""

from __future__ import annotations

from functools import lru_cache
from math import comb, factorial

import numpy as np

from solver.mesh.cells import CELLS

LEVELS = 12  # times an undecided cell's pieces are halved
PIECES = 16  # pieces of one cell at a level: more, and it is taken as vanishing (det J ~ 0 on a line or surface)
POINTS = 1 << 16  # lattice points at a time (a chunk's cells: this over the lattice's size)


def jacobian_degree(cell_type: str) -> int:
    """The degree p of det J of a cell's map: in each variable (quadrilaterals, hexahedra), or in
    all (simplices)."""
    ref = CELLS[cell_type]
    return ref.dim * (ref.degree - 1) if ref.simplex else ref.dim * ref.degree - 1


@lru_cache(maxsize=None)
def lattice(cell_type: str) -> tuple[np.ndarray, np.ndarray]:
    """The points a / p of the reference cell (p: :func:`jacobian_degree`), and the matrix that
    takes det J's values there to its Bernstein coefficients."""
    ref, p = CELLS[cell_type], jacobian_degree(cell_type)
    a = np.stack(np.meshgrid(*[np.arange(p + 1)] * ref.dim, indexing="ij"), axis=-1).reshape(-1, ref.dim)
    if ref.simplex:
        a = a[a.sum(axis=1) <= p]
    x = a / max(p, 1)
    return x, np.linalg.inv(bernstein(ref.simplex, p, a, x))


def bernstein(simplex: bool, p: int, a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(points, indices) values at ``x`` of the Bernstein polynomials of degree ``p`` and
    multi-indices ``a``: tensor products on [0, 1]^dim, or of the barycentric coordinates."""
    if simplex:
        lam, alpha = np.column_stack([1.0 - x.sum(axis=1), x]), np.column_stack([p - a.sum(axis=1), a])
        weight = np.array([factorial(p) / np.prod([factorial(int(k)) for k in row]) for row in alpha])
        return weight * np.prod(lam[:, None, :] ** alpha[None], axis=2)
    weight = np.array([[comb(p, int(k)) for k in row] for row in a])
    return np.prod(weight[None] * x[:, None, :] ** a[None] * (1.0 - x[:, None, :]) ** (p - a[None]), axis=2)


@lru_cache(maxsize=None)
def children(cell_type: str) -> tuple[np.ndarray, np.ndarray]:
    """The pieces a reference cell is cut into, as affine maps x = o + A t of it: (offsets (k, dim),
    matrices (k, dim, dim)); halved boxes, or the simplices of the edges' midpoints."""
    ref = CELLS[cell_type].linear
    if not ref.simplex:
        o = np.stack(np.meshgrid(*[[0.0, 0.5]] * ref.dim, indexing="ij"), axis=-1).reshape(-1, ref.dim)
        return o, np.broadcast_to(0.5 * np.eye(ref.dim), (len(o), ref.dim, ref.dim)).copy()
    v = ref.vertices
    m = {(i, j): 0.5 * (v[i] + v[j]) for i in range(len(v)) for j in range(len(v))}  # (i, i): a vertex
    if ref.dim == 2:
        pieces = [(0, 0), (0, 1), (0, 2)], [(0, 1), (1, 1), (1, 2)], [(0, 2), (1, 2), (2, 2)], [(1, 2), (0, 2), (0, 1)]
    else:  # four corners, and the octahedron between cut along its diagonal (0, 2)-(1, 3)
        ring = [(0, 1), (0, 3), (2, 3), (1, 2)]
        pieces = [[(i, i)] + [(min(i, j), max(i, j)) for j in range(4) if j != i] for i in range(4)]
        pieces += [[(0, 2), (1, 3), ring[k], ring[(k + 1) % 4]] for k in range(4)]
    corners = np.array([[m[k] for k in piece] for piece in pieces])  # (k, dim + 1, dim)
    return corners[:, 0], np.swapaxes(corners[:, 1:] - corners[:, :1], 1, 2)


def determinants(J: np.ndarray) -> np.ndarray:
    """Determinants of 2x2 or 3x3 matrices ``J[..., i, j]``, written out (no LU per matrix)."""
    if J.shape[-1] == 2:
        return J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]
    return (J[..., 0, 0] * (J[..., 1, 1] * J[..., 2, 2] - J[..., 1, 2] * J[..., 2, 1])
            - J[..., 0, 1] * (J[..., 1, 0] * J[..., 2, 2] - J[..., 1, 2] * J[..., 2, 0])
            + J[..., 0, 2] * (J[..., 1, 0] * J[..., 2, 1] - J[..., 1, 1] * J[..., 2, 0]))


def sound_jacobians(points: np.ndarray, cells: np.ndarray, cell_type: str,
                    small: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """For each cell: whether det J of its map, times the sign of its volume, stays above ``small``
    (one per cell, or one for all) throughout the cell; and the reference point of its least value
    found (where a cell folds). ``points``: (nodes, dim) coordinates."""
    parts = [(sound, at) for _, _, sound, at in jacobian_chunks(points, cells, cell_type, small)]
    if not parts:
        return np.ones(0, dtype=bool), np.zeros((0, CELLS[cell_type].dim))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def jacobian_chunks(points: np.ndarray, cells: np.ndarray, cell_type: str, small: np.ndarray | float = 0.0):
    """:func:`sound_jacobians` a chunk of cells at a time: yields (first row, det J at the
    :func:`lattice` points of each cell of the chunk (m, lattice), whether it is sound, the
    reference point of its least value)."""
    x = lattice(cell_type)[0]
    small = np.broadcast_to(np.asarray(small, dtype=float), (len(cells),))
    per_chunk = max(1, POINTS // len(x))
    for start in range(0, len(cells), per_chunk):
        chunk = cells[start: start + per_chunk]
        values = lattice_values(points[chunk], cell_type)
        coeffs = coefficients(values, cell_type)
        with np.errstate(invalid="ignore"):
            sign = np.sign(coeffs.sum(axis=1))
        signed = values * sign[:, None]
        q = np.argmin(np.where(np.isnan(signed), -np.inf, signed), axis=1)
        sound, least_at = np.ones(len(chunk), dtype=bool), x[q]
        undecided = _decide(values, coeffs, sign, small[start: start + len(chunk)], sound)
        if len(undecided):
            _cut(cell_type, (sign, small[start: start + len(chunk)]), undecided, coeffs[undecided], sound,
                 (signed[np.arange(len(q)), q], least_at))
        yield start, values, sound, least_at


CORNER_ORDER = [0, 4, 3, 7, 1, 5, 2, 6]  # a hexahedron's corners at (i, j, k) of {0, 1}^3, in that order


def lattice_values(xyz: np.ndarray, cell_type: str) -> np.ndarray:
    """(cells, lattice) det J of the cells (their nodes' coordinates ``xyz``, (m, nodes, dim)) at
    the :func:`lattice` points. A trilinear hexahedron's from its edges, coordinates first (its
    Jacobian's columns are the bilinear blends of its four edges along each direction): three
    times faster than the products of its shape functions' gradients."""
    if cell_type == "hexahedron":
        X = np.moveaxis(xyz[:, CORNER_ORDER], 2, 0).reshape(3, -1, 2, 2, 2)  # (coordinate, cell, i, j, k)
        a = _thirds(X[:, :, 1] - X[:, :, 0])[:, :, None]  # d x / d xi at (j, k)
        b = _thirds(X[:, :, :, 1] - X[:, :, :, 0])[:, :, :, None]  # d x / d eta at (i, k)
        c = _thirds(X[..., 1] - X[..., 0])[..., None]  # d x / d zeta at (i, j)
        return (a[0] * (b[1] * c[2] - b[2] * c[1]) + a[1] * (b[2] * c[0] - b[0] * c[2])
                + a[2] * (b[0] * c[1] - b[1] * c[0])).reshape(len(xyz), -1)
    dN = CELLS[cell_type].grad(lattice(cell_type)[0])  # (lattice, nodes, dim)
    J = np.tensordot(xyz, dN, axes=([1], [1]))  # (m, dim, lattice, dim): J[c, i, q, j] = d x_i / d xi_j
    return determinants(np.moveaxis(J, 2, 1))


def _thirds(edges: np.ndarray) -> np.ndarray:
    """A bilinear blend's values at (0, 1/2, 1)^2 from those at the corners: the last two axes of
    ``edges`` (.., 2, 2) -> (.., 3, 3)."""
    middle = 0.5 * (edges[..., :1, :] + edges[..., 1:, :])
    edges = np.concatenate([edges[..., :1, :], middle, edges[..., 1:, :]], axis=-2)
    middle = 0.5 * (edges[..., :1] + edges[..., 1:])
    return np.concatenate([edges[..., :1], middle, edges[..., 1:]], axis=-1)


def coefficients(values: np.ndarray, cell_type: str) -> np.ndarray:
    """(cells, lattice) Bernstein coefficients of det J from its values at the :func:`lattice`
    points: one 1D transform along each axis of a quadrilateral or hexahedron."""
    ref = CELLS[cell_type]
    if ref.simplex:
        return values @ lattice(cell_type)[1].T
    p = jacobian_degree(cell_type)
    line = _line_transform(p)
    c = values.reshape((len(values),) + (p + 1,) * ref.dim)
    for axis in range(1, ref.dim + 1):
        c = np.moveaxis(np.tensordot(c, line, axes=([axis], [1])), -1, axis)
    return c.reshape(len(values), -1)


@lru_cache(maxsize=None)
def _line_transform(p: int) -> np.ndarray:
    """The matrix that takes a polynomial's values at a / p of [0, 1] to its Bernstein coefficients."""
    a = np.arange(p + 1)[:, None]
    return np.linalg.inv(bernstein(False, p, a, a / p))


def _decide(values, coeffs, sign, small, sound) -> np.ndarray:
    """Mark the cells (pieces of cells, ``sound`` indexed like them) whose values show a fold;
    returns those neither shown folded nor proven sound."""
    with np.errstate(invalid="ignore"):
        shown = ~((values * sign[:, None]).min(axis=1) > small)  # (NaN: not sound)
        proven = (coeffs * sign[:, None]).min(axis=1) > small
    sound &= ~shown
    return np.flatnonzero(~shown & ~proven)


def _cut(cell_type, sign_small, undecided, coeffs, sound, least) -> None:
    """Cut the undecided cells of a chunk (their Bernstein coefficients ``coeffs``) in pieces, level
    by level, until each is decided (:data:`LEVELS`, :data:`PIECES`); ``least``: each cell's least
    signed value found and its reference point, lowered where a piece finds less. Only the
    coefficients are cut (a fixed matrix per piece): the geometry is not evaluated again."""
    dim = CELLS[cell_type].dim
    cut = subdivision(cell_type)
    identity = np.broadcast_to(np.eye(dim), (len(undecided), dim, dim))
    pieces = (undecided, coeffs, np.zeros((len(undecided), dim)), identity)
    for _ in range(LEVELS):
        cell, coeffs, o, A = pieces
        step = max(1, POINTS // cut.shape[0])  # (pieces cut at a time)
        pieces = [np.concatenate(parts) for parts in zip(*[
            _pieces(cell_type, sign_small, (cell[i: i + step], coeffs[i: i + step] @ cut.T, o[i: i + step],
                                            A[i: i + step]), sound, least) for i in range(0, len(cell), step)])]
        cell = pieces[0]
        crowded = np.bincount(cell, minlength=len(sound)) > PIECES
        sound[crowded] = False
        pieces = [a[sound[cell]] for a in pieces]
        if not len(pieces[0]):
            return
    sound[pieces[0]] = False


def _pieces(cell_type, sign_small, parents, sound, least) -> tuple:
    """Judge the pieces of ``parents`` (their cells' rows, their pieces' coefficients side by side,
    the parents' maps): mark their cells shown folded, lower their least values; returns the
    undecided pieces (cells' rows, coefficients, maps)."""
    x = lattice(cell_type)[0]
    cell, coeffs, o, A = parents
    n = len(children(cell_type)[0])
    cell = np.repeat(cell, n)
    coeffs = coeffs.reshape(len(cell), len(x))
    values = coeffs @ evaluation(cell_type).T  # (pieces, lattice): det J at each piece's lattice
    sign, small = (a[cell] for a in sign_small)
    piece_sound = np.ones(len(cell), dtype=bool)
    undecided = _decide(values, coeffs, sign, small, piece_sound)
    signed = values * sign[:, None]
    lowest, q = _lowest(signed, cell, least[0])
    if len(lowest):
        least[0][cell[lowest]] = signed[lowest, q]
        lo, lA = _maps(cell_type, o, A, lowest)
        least[1][cell[lowest]] = lo + np.einsum("kde,ke->kd", lA, x[q])
    sound[cell[~piece_sound]] = False
    return (cell[undecided], coeffs[undecided]) + _maps(cell_type, o, A, undecided)


def _maps(cell_type, o, A, rows):
    """The maps (offsets, matrices) from the reference cell of the pieces ``rows`` of the parents'
    ``o``, ``A`` (each parent's pieces side by side)."""
    child_o, child_A = children(cell_type)
    parent, child = np.divmod(rows, len(child_o))
    return o[parent] + np.einsum("kde,ke->kd", A[parent], child_o[child]), A[parent] @ child_A[child]


def _lowest(signed, cell, least) -> tuple[np.ndarray, np.ndarray]:
    """The pieces that hold a value below their cell's ``least``, the lowest of each cell's, and
    the lattice point of that value."""
    q = signed.argmin(axis=1)
    value = signed[np.arange(len(cell)), q]
    order = np.lexsort((value, cell))
    first = order[np.unique(cell[order], return_index=True)[1]]  # each cell's lowest piece
    lower = first[value[first] < least[cell[first]]]
    return lower, q[lower]


@lru_cache(maxsize=None)
def evaluation(cell_type: str) -> np.ndarray:
    """The matrix that takes det J's Bernstein coefficients to its values at :func:`lattice`."""
    return np.linalg.inv(lattice(cell_type)[1])


@lru_cache(maxsize=None)
def subdivision(cell_type: str) -> np.ndarray:
    """(pieces * lattice, lattice): the matrix that takes det J's Bernstein coefficients on a cell
    to those on each of its pieces (:func:`children`)."""
    ref, p = CELLS[cell_type], jacobian_degree(cell_type)
    x, to_bernstein = lattice(cell_type)
    a = np.rint(x * p).astype(int)
    o, A = children(cell_type)
    return np.vstack([to_bernstein @ bernstein(ref.simplex, p, a, o[c] + x @ A[c].T) for c in range(len(o))])


@lru_cache(maxsize=None)
def corner_rows(cell_type: str) -> np.ndarray:
    """The rows of :func:`lattice` at the cell's corners, in the order of its nodes."""
    x, ref = lattice(cell_type)[0], CELLS[cell_type]
    return np.array([int(np.argmin(np.abs(x - v).sum(axis=1))) for v in ref.vertices[: ref.n_corners]])


def reference_to_cell(cell_type: str, at: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    """The point of a cell (its nodes' coordinates ``xyz``) at the reference point ``at``."""
    return CELLS[cell_type].shape(at)[0] @ xyz
