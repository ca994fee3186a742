"""Curved quadratic cells: the Jacobian of their map is a polynomial that may change sign between
the nodes, where it is positive; the validity check samples a lattice of points inside."""

import numpy as np

from solver.mesh.cells import CELLS
from solver.mesh.quality import map_jacobians, sample_points

# one 6-node triangle: positive Jacobians at its six nodes, negative over about 18% of it
FOLDED_INSIDE = np.array([(0, 0), (1, 0), (0, 1), (0.0241251, -0.03991518), (0.86550245, 0.71994619),
                          (0.38441683, 0.31327992)])


def test_a_quadratic_triangle_inverted_between_its_nodes_is_found():
    ref = CELLS["triangle6"]
    J = np.einsum("nd,qne->qde", FOLDED_INSIDE, ref.grad(ref.vertices))
    assert np.linalg.det(J).min() > 0.01  # the nodes alone see a valid cell
    assert map_jacobians(FOLDED_INSIDE, np.arange(6)[None], "triangle6").min() < -0.4


def test_the_samples_hold_the_nodes_and_stay_in_the_cell():
    for name in ("triangle6", "quadrilateral9", "tetrahedron10", "hexahedron27"):
        ref, samples = CELLS[name], sample_points(name)
        assert all(np.isclose(samples, v).all(axis=1).any() for v in ref.vertices)
        assert samples.min() >= 0 and samples.max() <= 1
        if ref.linear.n_corners == ref.dim + 1:
            assert samples.sum(axis=1).max() <= 1 + 1e-12


def test_parts_meshed_apart_with_a_gap_thinner_than_their_edges_bulge_are_kept(tmp_path):
    """A plate with a hole of radius 1 and a disk of radius 0.996 inside it, meshed apart in 6-node
    triangles: the hole's chords cut 0.015 into the gap, so probes beside them fell in the disk's
    cells ("touch or overlap", exit 2). Beside the curved edges, none does; with straight edges
    (3-node triangles) the same cells do overlap, and touching parts are still refused."""
    import pytest

    gmsh = pytest.importorskip("gmsh")
    from solver.errors import CaseError
    from solver.mesh.files import read

    def write(gap, order):
        gmsh.initialize(["", "-v", "0"])
        try:
            occ = gmsh.model.occ
            plate = occ.addRectangle(-2, -2, 0, 4, 4)
            occ.cut([(2, plate)], [(2, occ.addDisk(0, 0, 0, 1, 1))])
            disk = occ.addDisk(0, 0, 0, 1 - gap, 1 - gap)
            occ.rotate([(2, disk)], 0, 0, 0, 0, 0, 1, 0.17)
            occ.synchronize()
            gmsh.model.addPhysicalGroup(2, [e[1] for e in gmsh.model.getEntities(2)], name="body")
            gmsh.option.setNumber("Mesh.MeshSizeMax", 0.35)
            gmsh.model.mesh.generate(2)
            gmsh.model.mesh.setOrder(order)
            path = tmp_path / f"gap{gap}_{order}.msh"
            gmsh.write(str(path))
            return path
        finally:
            gmsh.finalize()

    assert len(read(write(0.004, 2)).cells) > 0
    for gap, order in ((0.004, 1), (0.0, 2)):
        with pytest.raises(CaseError, match="touch or overlap"):
            read(write(gap, order))
