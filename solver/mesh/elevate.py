"""The Lagrange degree of a mesh read from a file, changed on rank 0 while it holds the file's mesh:

* linear cells to quadratic (``element.degree = 2`` on a P1/Q1 file): new nodes at the midpoints
  of the edges, and for Q2 at the centres of the faces and of the cells, straight-sided. They are
  numbered after the file's own nodes, edges in the order of their (smaller, larger) vertex ids,
  then faces by their sorted vertex ids, then cell centres in file order, so the numbering does
  not depend on the ranks. The boundary facets get the nodes of their edges (and face centre).
* quadratic cells to linear (``element.degree = 1`` on a second-order file): the corners only; the
  other nodes are dropped with the points no cell uses.

Everything is vectorised over the cells (``np.unique`` of the edge and face keys); it costs a few
arrays of the size of the mesh on rank 0, as the reading itself does.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from solver.mesh.cells import CELLS, of_degree
from solver.mesh.lagrange import QUADRATIC, TENSOR_CENTRE


def _keys(pairs: np.ndarray, n_nodes: int) -> np.ndarray:
    """One int64 key per edge (its two vertex ids, in either order)."""
    lo, hi = np.minimum(pairs[..., 0], pairs[..., 1]), np.maximum(pairs[..., 0], pairs[..., 1])
    return lo.astype(np.int64) * n_nodes + hi


def elevate(cell_type: str, points: np.ndarray, cells: np.ndarray, facets: np.ndarray):
    """(quadratic cell type, points, cells, facets) with the nodes of the quadratic cells added."""
    linear = CELLS[cell_type]
    quadratic = CELLS[of_degree(cell_type, 2)]
    edges, faces = QUADRATIC[cell_type]
    n = len(points)
    cell_edges = _keys(cells[:, np.array(edges)], n)  # (n_cells, edges per cell)
    edge_keys, edge_of_cell = np.unique(cell_edges.ravel(), return_inverse=True)
    lo, hi = edge_keys // n, edge_keys % n
    new_points = [points, 0.5 * (points[lo] + points[hi])]
    new_cells = [cells, n + edge_of_cell.reshape(cell_edges.shape)]
    first = n + len(edge_keys)
    face_keys = None
    if faces:  # hexahedra: the centres of the quadrilateral faces
        cell_faces = np.sort(cells[:, np.array(faces)], axis=2)  # (n_cells, 6, 4)
        face_keys, face_of_cell = np.unique(cell_faces.reshape(-1, 4), axis=0, return_inverse=True)
        new_points.append(points[face_keys].mean(axis=1))
        new_cells.append(first + face_of_cell.reshape(len(cells), len(faces)))
        first += len(face_keys)
    if cell_type in TENSOR_CENTRE:
        new_points.append(points[cells].mean(axis=1))
        new_cells.append(first + np.arange(len(cells))[:, None])
    out_facets = _elevated_facets(linear, facets, edge_keys, face_keys, n) if len(facets) else facets
    out_cells = np.hstack(new_cells).astype(cells.dtype, copy=False)
    assert out_cells.shape[1] == quadratic.n_nodes
    return quadratic.name, np.vstack(new_points), out_cells, out_facets


def _elevated_facets(linear, facets: np.ndarray, edge_keys: np.ndarray, face_keys, n: int) -> np.ndarray:
    """The boundary facets with the nodes of the quadratic facet cell: corners, edge midpoints
    (in the facet's ring order), and a quadrilateral's centre."""
    corners = facets.shape[1]
    if corners == 1:
        return facets
    ring = [(i, (i + 1) % corners) for i in range(corners)] if corners > 2 else [(0, 1)]
    mids = np.searchsorted(edge_keys, _keys(facets[:, np.array(ring)], n))
    parts = [facets, n + mids]
    if corners == 4:
        centre = _face_index(face_keys, np.sort(facets, axis=1))
        parts.append(n + len(edge_keys) + centre[:, None])
    return np.hstack(parts)


def _face_index(face_keys: np.ndarray, sorted_facets: np.ndarray) -> np.ndarray:
    """Row of each sorted facet in the (lexicographically sorted, unique) ``face_keys``."""
    view = np.dtype((np.void, face_keys.dtype.itemsize * face_keys.shape[1]))
    keys = np.ascontiguousarray(face_keys).view(view).ravel()
    wanted = np.ascontiguousarray(sorted_facets.astype(face_keys.dtype)).view(view).ravel()
    order = np.argsort(keys)
    return order[np.searchsorted(keys[order], wanted)]


def to_linear(cell_type: str, cells: np.ndarray, facets: np.ndarray):
    """(linear cell type, cells, facets) of the corners of quadratic cells."""
    linear = CELLS[cell_type].linear
    corners = CELLS[linear.facet_name].n_nodes if linear.facet_name in CELLS else 1
    return linear.name, np.ascontiguousarray(cells[:, : linear.n_nodes]), \
        np.ascontiguousarray(facets[:, :corners]) if len(facets) else facets


def with_degree(data, degree: int):
    """The mesh file's data (:class:`solver.mesh.files.MeshFileData`) with cells of ``degree``."""
    ref = CELLS[data.cell_type]
    if ref.degree == degree:
        return data
    if degree == 2:
        cell_type, points, cells, facets = elevate(data.cell_type, data.points, data.cells, data.facets)
        return replace(data, cell_type=cell_type, points=points, cells=cells, facets=facets)
    cell_type, cells, facets = to_linear(data.cell_type, data.cells, data.facets)
    return replace(data, cell_type=cell_type, cells=cells, facets=facets)
