"""Point location against a search of every cell: the pruning of candidates by each cell's reach
never loses a cell that holds a point, and a found cell's map takes the reference coordinates to
the point (no unconverged Newton counts as inside), on straight and curved cells of every kind, in
meshes with holes and for points outside, near and far."""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from solver.fem.locate import PointLocator
from solver.mesh.structured import structured_mesh

CASES = [("triangle", (12, 9), 1), ("quadrilateral", (10, 7), 1), ("triangle", (6, 5), 2),
         ("quadrilateral", (6, 4), 2), ("tetrahedron", (4, 3, 3), 1), ("hexahedron", (4, 3, 3), 2)]


def mesh_with_holes(cell_type, n, degree, rng):
    """A rectangle or box, its interior nodes moved (midpoints too: curved edges), some cells removed."""
    dim = len(n)
    m = structured_mesh(MPI.COMM_SELF, cell_type, n, [1.0, 0.7, 0.5][:dim], [0.0] * dim, degree)
    coords = m.coords.copy()
    h = 0.7 / max(n)
    interior = np.all((coords > 1e-9) & (coords < np.array([1.0, 0.7, 0.5][:dim]) - 1e-9), axis=1)
    coords[interior] += rng.uniform(-0.15 * h, 0.15 * h, (interior.sum(), dim))
    keep = rng.random(len(m.cells)) > 0.2  # holes: points in them lie in no cell
    return coords, m.cells[keep]


def every_cell(locator, points):
    """For each point, the cells that hold it (by trying every cell)."""
    holders = []
    X = locator.coords[locator.cells]
    for p in points:
        with np.errstate(all="ignore"):
            xi = locator._reference(X, np.broadcast_to(p, (len(X), len(p))))
        holders.append(set(np.flatnonzero(locator._inside(xi))))
    return holders


@pytest.mark.parametrize("cell_type, n, degree", CASES)
def test_every_point_is_found_in_a_cell_that_holds_it(cell_type, n, degree):
    rng = np.random.default_rng(7)
    coords, cells = mesh_with_holes(cell_type, n, degree, rng)
    dim = coords.shape[1]
    name = {1: cell_type, 2: {"triangle": "triangle6", "quadrilateral": "quadrilateral9",
                              "tetrahedron": "tetrahedron10", "hexahedron": "hexahedron27"}[cell_type]}[degree]
    locator = PointLocator(name, coords, cells)
    lengths = np.array([1.0, 0.7, 0.5][:dim])
    points = np.concatenate([rng.uniform(-0.1, 1.1, (300, dim)) * lengths,  # inside, in holes, just outside
                             coords[cells[:40, 0]],  # on nodes
                             rng.uniform(5.0, 9.0, (5, dim))])  # far away
    found, xi = locator.locate(points)
    holders = every_cell(locator, points)
    assert sum(map(bool, holders)) > 150 and sum(not h for h in holders) > 30
    for i, (cell, cells_of_point) in enumerate(zip(found, holders)):
        assert (cell >= 0) == bool(cells_of_point), i
        if cell >= 0:
            assert cell in cells_of_point
            mapped = locator.ref.shape(xi[[i]])[0] @ coords[cells[cell]]  # the cell's map takes xi to the point
            assert np.allclose(mapped, points[i], rtol=0, atol=1e-9), i


def test_a_large_cell_beside_more_than_128_small_ones_holds_its_points():
    """A fan of 300 small triangles about the origin and two tall ones reaching (0, 1): the tall
    cell holding (0.001, 0.01) is not among the 128 cells whose centres lie nearest, and the point
    was called outside the mesh (on one rank; on three, where the fan was split, it was found)."""
    n, r = 300, 0.01
    angles = np.linspace(np.pi, 2 * np.pi, n + 1)
    coords = np.vstack([[0.0, 0.0], np.c_[r * np.cos(angles), r * np.sin(angles)], [0.0, 1.0]])
    top = len(coords) - 1
    cells = np.array([[0, k + 2, k + 1] for k in range(n)] + [[1, 0, top], [0, n + 1, top]])
    locator = PointLocator("triangle", coords, cells)
    points = np.array([[0.001, 0.01], [-0.001, 0.5], [0.002, -0.005], [0.5, 0.5], [0.0, -0.02]])
    cell, xi = locator.locate(points)
    assert cell[0] == n + 1 and cell[1] == n and 0 <= cell[2] < n and cell[3] == cell[4] == -1
    values = coords[:, 0] + 2 * coords[:, 1]  # linear: interpolated exactly
    assert np.allclose(locator.interpolate(values, cell[:3], xi[:3]), points[:3, 0] + 2 * points[:3, 1])
