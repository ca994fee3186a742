"""Lagrange shape functions of degree 1 and 2 on the reference cells, from the nodes' reference
coordinates alone.

* Simplices (triangle, tetrahedron) in barycentric coordinates ``lambda = (1 - sum x, x_1, ...)``:
  degree 1 ``N_i = lambda_i``; degree 2 ``N_i = lambda_i (2 lambda_i - 1)`` at a vertex and
  ``N_ij = 4 lambda_i lambda_j`` at the midpoint of the edge (i, j).
* Tensor cells (quadrilateral, hexahedron, line) on ``[0, 1]^d``: products of 1D Lagrange
  polynomials through the nodes 0, 1 (degree 1) and 0, 1/2, 1 (degree 2): ``l_0 = (1 - t)(1 - 2t)``,
  ``l_1/2 = 4 t (1 - t)``, ``l_1 = t (2t - 1)``, chosen per axis by the node's coordinate there.

Node orders follow VTK (and so XDMF's ``Triangle_6``, ``Tetrahedron_10``, ``Quadrilateral_9``,
``Hexahedron_27``, and meshio's reading of Gmsh files): the vertices, then the edge midpoints, then
the face centres and the cell centre of a Q2 cell (:data:`QUADRATIC`).
"""

from __future__ import annotations

import numpy as np

# (vertex pairs of the edges, vertex quadruples of the faces) whose midpoints and centres follow the
# vertices of a quadratic cell, in VTK's order; a Q2 cell ends with its centre
QUADRATIC = {
    "line": (((0, 1),), ()),
    "triangle": (((0, 1), (1, 2), (2, 0)), ()),
    "tetrahedron": (((0, 1), (1, 2), (2, 0), (0, 3), (1, 3), (2, 3)), ()),
    "quadrilateral": (((0, 1), (1, 2), (2, 3), (3, 0)), ()),
    "hexahedron": (((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)),
                   ((0, 3, 7, 4), (1, 2, 6, 5), (0, 1, 5, 4), (3, 2, 6, 7), (0, 1, 2, 3), (4, 5, 6, 7))),
}
TENSOR_CENTRE = ("quadrilateral", "hexahedron")  # Q2 cells have a node at their centre


def quadratic_nodes(linear: str, vertices: np.ndarray) -> np.ndarray:
    """Reference coordinates of the nodes of the quadratic cell on ``linear``'s vertices."""
    edges, faces = QUADRATIC[linear]
    parts = [vertices, np.array([vertices[list(e)].mean(axis=0) for e in edges])]
    if faces:
        parts.append(np.array([vertices[list(f)].mean(axis=0) for f in faces]))
    if linear in TENSOR_CENTRE:
        parts.append(vertices.mean(axis=0, keepdims=True))
    return np.vstack(parts)


def _barycentric(points: np.ndarray) -> np.ndarray:
    return np.column_stack([1.0 - points.sum(axis=1), points])


def _simplex_terms(nodes: np.ndarray) -> list[tuple[int, int]]:
    """For each node, (i, j): a vertex ``i == j`` (degree 2: lambda_i (2 lambda_i - 1)), or the
    midpoint of the edge (i, j) (4 lambda_i lambda_j); from its barycentric coordinates."""
    terms = []
    for mu in _barycentric(nodes):
        big = np.flatnonzero(mu > 0.25)
        terms.append((int(big[0]), int(big[0])) if len(big) == 1 else (int(big[0]), int(big[1])))
    return terms


def simplex_shape(nodes: np.ndarray, degree: int, points: np.ndarray) -> np.ndarray:
    """(n_points, n_nodes) values of the Lagrange basis of ``degree`` with these nodes."""
    lam = _barycentric(points)
    if degree == 1:
        return lam
    out = np.empty((len(points), len(nodes)))
    for a, (i, j) in enumerate(_simplex_terms(nodes)):
        out[:, a] = lam[:, i] * (2.0 * lam[:, i] - 1.0) if i == j else 4.0 * lam[:, i] * lam[:, j]
    return out


def simplex_grad(nodes: np.ndarray, degree: int, points: np.ndarray) -> np.ndarray:
    """(n_points, n_nodes, dim) reference gradients of :func:`simplex_shape`."""
    n, dim = len(points), nodes.shape[1]
    dlam = np.vstack([-np.ones((1, dim)), np.eye(dim)])  # d lambda_i / d x
    if degree == 1:
        return np.broadcast_to(dlam, (n,) + dlam.shape).copy()
    lam = _barycentric(points)
    out = np.empty((n, len(nodes), dim))
    for a, (i, j) in enumerate(_simplex_terms(nodes)):
        if i == j:
            out[:, a] = (4.0 * lam[:, i] - 1.0)[:, None] * dlam[i]
        else:
            out[:, a] = 4.0 * (lam[:, j, None] * dlam[i] + lam[:, i, None] * dlam[j])
    return out


def _line_basis(c: np.ndarray, t: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """1D Lagrange polynomial of the node at ``c`` (0, 1/2 or 1) at ``t``, and its derivative;
    ``c``, ``t`` broadcast."""
    if degree == 1:
        return np.where(c == 1, t, 1.0 - t), np.where(c == 1, 1.0, -1.0)
    value = np.where(c == 0, (1.0 - t) * (1.0 - 2.0 * t), np.where(c == 1, t * (2.0 * t - 1.0), 4.0 * t * (1.0 - t)))
    slope = np.where(c == 0, 4.0 * t - 3.0, np.where(c == 1, 4.0 * t - 1.0, 4.0 - 8.0 * t))
    return value, slope


def tensor_shape(nodes: np.ndarray, degree: int, points: np.ndarray) -> np.ndarray:
    """(n_points, n_nodes) values of the tensor-product Lagrange basis with these nodes."""
    if degree == 1:  # the bilinear (trilinear) basis as the solver always computed it
        p = np.atleast_2d(points)
        return np.prod(np.where(nodes[None, :, :] == 1, p[:, None, :], 1.0 - p[:, None, :]), axis=2)
    value, _ = _line_basis(nodes[None, :, :], points[:, None, :], degree)
    return np.prod(value, axis=2)


def tensor_grad(nodes: np.ndarray, degree: int, points: np.ndarray) -> np.ndarray:
    """(n_points, n_nodes, dim) reference gradients of :func:`tensor_shape`."""
    p = np.atleast_2d(points)
    dim = nodes.shape[1]
    if degree == 1:  # as the solver always computed it
        factors = np.where(nodes[None, :, :] == 1, p[:, None, :], 1.0 - p[:, None, :])  # (n, nn, d)
        dfac = np.where(nodes == 1, 1.0, -1.0)  # (nn, d)
        out = np.empty((len(p), len(nodes), dim))
        for d in range(dim):  # loop over space dimensions only
            others = np.prod(np.delete(factors, d, axis=2), axis=2)
            out[:, :, d] = dfac[None, :, d] * others
        return out
    value, slope = _line_basis(nodes[None, :, :], p[:, None, :], degree)  # (n, nn, d) each
    out = np.empty((len(p), len(nodes), dim))
    for d in range(dim):  # loop over space dimensions only
        out[:, :, d] = slope[:, :, d] * np.prod(np.delete(value, d, axis=2), axis=2)
    return out
