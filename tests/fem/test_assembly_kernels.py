"""The compiled assembly (solver.fem.kernels through Assembler and BoundaryTerm) against the NumPy
reference path (solver.fem.reference, the assembly before the kernels): the same pattern, and every
matrix and vector equal to 1e-14 relative, for every cell type, coefficient shape and boundary
term. The MPI side (1-4 ranks, the whole heat problem) is tests/mpi/assembly_checks.py."""

import tracemalloc

import numpy as np
import pytest
from mpi4py import MPI

from conftest import run_script
from solver.case.expressions import Expression
from solver.fem import kernels
from solver.fem.assembly import Assembler, NodalConductivity
from solver.fem.boundary import BoundaryTerm, constrain
from solver.fem.kernels import coefficient
from solver.mesh.structured import structured_mesh

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed: only the NumPy path runs")

LINEAR = {"triangle": (7, 5), "quadrilateral": (6, 5), "tetrahedron": (3, 4, 3), "hexahedron": (4, 3, 3)}
# quadratic cells: curved (a smooth field moves every node, midpoints too), or with an affine map
QUADRATIC = {"triangle6": (4, 3), "quadrilateral9": (3, 3), "tetrahedron10": (2, 2, 2), "hexahedron27": (2, 2, 1),
             "triangle6-affine": (4, 3), "tetrahedron10-affine": (2, 2, 2), "quadrilateral9-affine": (3, 2)}
CELLS = LINEAR | QUADRATIC
RTOL = 1e-14


def distorted_mesh(cell, comm=MPI.COMM_SELF):
    """A structured mesh whose nodes are moved by a smooth field (cells not affine, not equal);
    ``...-affine``: quadratic cells moved by one shear instead (affine maps, not equal sizes)."""
    n = CELLS[cell]
    name, _, affine = cell.partition("-")
    linear, degree = CELLS_OF[name]
    mesh = structured_mesh(comm, linear, n, [1.0, 0.7, 1.3][: len(n)], [0.5, -1.0, 2.0][: len(n)], degree)
    x = mesh.coords
    if affine:
        shear = np.eye(len(n)) + 0.3 * np.triu(np.ones((len(n), len(n))), 1)
        mesh.coords = x @ shear.T
        return mesh
    shift = 0.04 * np.sin(3.0 * x[:, ::-1] + np.arange(x.shape[1]))
    mesh.coords = x + shift / np.array(n)
    mesh.affine = False
    return mesh


CELLS_OF = {"triangle": ("triangle", 1), "quadrilateral": ("quadrilateral", 1), "tetrahedron": ("tetrahedron", 1),
            "hexahedron": ("hexahedron", 1), "triangle6": ("triangle", 2), "quadrilateral9": ("quadrilateral", 2),
            "tetrahedron10": ("tetrahedron", 2), "hexahedron27": ("hexahedron", 2)}


def close(a, b, rtol=RTOL):
    a = a.toarray() if hasattr(a, "toarray") else np.asarray(a)
    b = b.toarray() if hasattr(b, "toarray") else np.asarray(b)
    scale = max(np.abs(b).max(), 1e-300)
    return np.abs(a - b).max() <= rtol * scale


def coefficients(rng, nc, nq, dim):
    """Conductivity in every accepted shape (with a contrast of regions)."""
    regions = np.where(rng.random(nc) < 0.3, 50.0, 1.0)
    return {"per cell": regions * (1 + rng.random(nc)),
            "anisotropic": regions[:, None] * (1 + rng.random((nc, dim))),
            "per point": 1 + rng.random((nc, nq)),
            "per point anisotropic": 1 + rng.random((nc, nq, dim)),
            "canonical broadcast": np.array([[[2.0] * dim]]),
            "number": 3.5}


@pytest.fixture(params=list(CELLS))
def pair(request):
    mesh = distorted_mesh(request.param)
    return mesh, Assembler(mesh), Assembler(mesh, compiled=False)


def test_the_pattern_is_the_reference_pattern(pair):
    mesh, fast, ref = pair
    assert fast.compiled and not ref.compiled
    assert np.array_equal(fast.indptr, ref.indptr) and np.array_equal(fast.indices, ref.indices)
    assert fast.indices.dtype == ref.indices.dtype
    # every owned row holds its diagonal, sorted columns
    rows = np.repeat(np.arange(fast.shape[0]), np.diff(fast.indptr))
    assert np.all(np.diff(fast.indices)[np.diff(rows) == 0] > 0)
    assert fast.slots.shape == (len(mesh.cells), mesh.cells.shape[1] ** 2)


@pytest.mark.parametrize("nn", [27, 32])
def test_the_pattern_takes_cells_of_up_to_32_nodes(nn):
    """The node-to-cell adjacency encodes node a of cell c as (c << 5) + a: cells of 27 nodes (Q2
    hexahedra) and of 32 get the pattern of all (row, column) pairs of their owned rows, and the
    slot map finds every element entry."""
    rng = np.random.default_rng(nn)
    n_local, n_owned = 200, 150
    cells = np.array([rng.choice(n_local, nn, replace=False) for _ in range(40)], dtype=np.int32)
    indptr, indices, slots = kernels.csr_pattern(cells, n_owned, n_local)
    rows, cols = np.repeat(cells, nn, axis=1).ravel(), np.tile(cells, (1, nn)).ravel()
    owned = rows < n_owned
    keys = np.unique(rows[owned].astype(np.int64) * n_local + cols[owned])
    assert np.array_equal(indices, keys % n_local)
    assert np.array_equal(indptr, np.searchsorted(keys // n_local, np.arange(n_owned + 1)))
    assert slots.shape == (len(cells), nn * nn)
    found = indices[indptr[rows[owned]] + slots.ravel()[owned]]
    assert np.array_equal(found, cols[owned])


def test_stiffness_mass_and_system_matrices_equal_the_reference(pair):
    mesh, fast, ref = pair
    rng = np.random.default_rng(3)
    nc, nq, dim = len(mesh.cells), fast.n_qp, fast.dim
    for name, k in coefficients(rng, nc, nq, dim).items():
        assert close(fast.stiffness(k), ref.stiffness(k)), name
    for rhoc in (1 + rng.random(nc), 1 + rng.random((nc, nq)), 2.0):
        assert close(fast.mass(rhoc), ref.mass(rhoc))
    assert fast.affine_map == (mesh.affine or fast.affine) and fast.degree == ref.degree
    k, rhoc = 1 + rng.random((nc, dim)), 1 + rng.random(nc)
    A = fast.bilinear(mass=rhoc, conductivity=0.01 * k)
    assert close(A, ref.mass(rhoc) + ref.stiffness(0.01 * k))
    # reassembly into the same data array: no new pattern, the same values
    data = A.data
    B = fast.bilinear(mass=2 * rhoc, conductivity=0.01 * k, out=data)
    assert np.shares_memory(B.data, data) and np.shares_memory(B.indices, fast.indices)
    assert close(B, ref.bilinear(mass=2 * rhoc, conductivity=0.01 * k))


def test_the_search_path_equals_the_slot_path(pair):
    """Rows longer than 256 entries have no slot map: the kernels search the rows instead."""
    mesh, fast, ref = pair
    k = np.random.default_rng(0).random((len(mesh.cells), fast.dim)) + 1
    K = fast.stiffness(k)
    fast.slots = fast.slots[:0]
    assert close(fast.stiffness(k), K, 1e-15)


def test_convection_equals_the_reference(pair):
    """``s_cj int (b . grad N_i) N_j`` (the Newton term of k(T), with and without the nodal scale s)
    against the NumPy path, with the slot map and with the search."""
    mesh, fast, ref = pair
    rng = np.random.default_rng(5)
    nc, nn, dim = len(mesh.cells), mesh.cells.shape[1], fast.dim
    b = rng.standard_normal((nc, fast.n_qp, dim))
    scale = 1 + rng.random((nc, nn))
    for s in (None, scale):
        da, db = np.zeros(fast.nnz), np.zeros(fast.nnz)
        fast.convection(b, da, s)
        ref.convection(b, db, s)
        assert np.abs(da).max() > 0 and close(da, db)
        slots, fast.slots = fast.slots, fast.slots[:0]
        searched = np.zeros(fast.nnz)
        fast.convection(b, searched, s)
        fast.slots = slots
        assert close(searched, da, 1e-15)


@pytest.mark.parametrize("cell", ["triangle", "tetrahedron"])
@pytest.mark.parametrize("components", [1, 2])
def test_fused_nodal_conduction_equals_the_separate_kernels(cell, components):  # (P1 only)
    """The one-pass kernel of a k interpolated from nodal values (two material sets, isotropic or
    anisotropic) gives the flux load, the stiffness and the Newton term of the separate kernels
    (their degree-2 rule is exact here: a linear k times P1 gradients), with the slot map and with
    the search."""
    mesh = distorted_mesh(cell)
    a = Assembler(mesh)
    rng = np.random.default_rng(11)
    nc, n, dim = len(mesh.cells), mesh.n_local, a.dim
    comps = 1 if components == 1 else dim
    cell_set = (rng.random(nc) < 0.4).astype(np.int64)
    knode, dknode = 1 + rng.random((2, n, comps)), rng.standard_normal((2, n, comps))
    u = rng.standard_normal(n)
    k_cn = knode[cell_set[:, None], mesh.cells]  # (nc, nn, comps): each cell's set at its nodes
    dk_cn = dknode[cell_set[:, None], mesh.cells]
    grad = a.gradients(u)
    k_points = np.matmul(a.N, k_cn)  # the interpolated k at the quadrature points
    flux = a.flux_load(k_points * grad)
    stiff = a.bilinear(conductivity=2.5 * k_points, per_point=True).data
    newton = np.zeros(a.nnz)
    if comps == 1:
        a.convection(2.5 * grad, newton, dk_cn[:, :, 0])
    for d in range(dim if comps > 1 else 0):
        b = np.zeros_like(grad)
        b[:, :, d] = 2.5 * grad[:, :, d]
        a.convection(b, newton, dk_cn[:, :, d])
    for slots in (a.slots, a.slots[:0]):
        a.slots = slots
        out, sym, nonsym = np.zeros(mesh.n_owned), np.zeros(a.nnz), np.zeros(a.nnz)
        k = NodalConductivity(knode, cell_set, dknode)
        a.nodal_conduction(u, k, 2.5, out=out, sym=sym, nonsym=nonsym)
        assert close(out, flux) and close(sym, stiff) and close(nonsym, newton)
        whole = np.zeros(a.nnz)  # one array for both parts: summed before the one scatter
        a.nodal_conduction(u, k, 2.5, sym=whole, nonsym=whole)
        assert close(whole, stiff + newton)


def test_loads_equal_the_reference(pair):
    mesh, fast, ref = pair
    source = Expression("sin(pi*x) * exp(-t) + y * t + 2")
    assert close(fast.load(source, 0.7), ref.load(source, 0.7))
    assert close(fast.load(Expression(3.0), 0.2), ref.load(Expression(3.0), 0.2))
    values = source(fast.quadrature_points(), 0.4)
    assert np.allclose(fast.quadrature_points(), ref.quadrature_points(), rtol=0, atol=1e-14)
    assert close(fast.load_values(values), ref.load_values(values))
    assert close(fast.load_values(np.arange(len(mesh.cells), dtype=float)),
                 ref.load_values(np.arange(len(mesh.cells), dtype=float)))
    # the batches of CHUNK cells give the same vector as one batch
    import solver.fem.assembly as assembly
    chunk, assembly.CHUNK = assembly.CHUNK, 7
    try:
        assert close(fast.load(source, 0.7), ref.load(source, 0.7))
    finally:
        assembly.CHUNK = chunk


@pytest.mark.parametrize("cell", list(CELLS))
def test_facet_loads_and_matrices_equal_the_reference(cell):
    mesh = distorted_mesh(cell)
    fast = Assembler(mesh)
    h = Expression("10 + x * y + t")
    for name in mesh.boundaries:
        a, b = BoundaryTerm(mesh, name), BoundaryTerm(mesh, name, compiled=False)
        assert a.compiled and not b.compiled
        assert np.allclose(a.points, b.points, rtol=0, atol=1e-15)
        assert close(a.load(lambda p: h(p, 0.3)), b.load(lambda p: h(p, 0.3)))
        assert close(a.load(2.5), b.load(2.5))
        da, db = np.zeros(fast.nnz), np.zeros(fast.nnz)
        a.add_mass(lambda p: h(p, 0.3), fast.indptr, fast.indices, da)
        b.add_mass(lambda p: h(p, 0.3), fast.indptr, fast.indices, db)
        assert np.abs(da).max() > 0 and close(da, db)
        rows, cols, vals = b.mass_entries(lambda p: h(p, 0.3))
        assert close(fast.matrix_from_entries(rows, cols, vals).data, db)


def test_facets_outside_the_pattern_are_refused():
    mesh = distorted_mesh("quadrilateral")
    other = structured_mesh(MPI.COMM_SELF, "quadrilateral", (2, 2), [1.0, 1.0], [0.0, 0.0])
    term = BoundaryTerm(mesh, "left")
    small = Assembler(other)
    with pytest.raises(ValueError, match="a pattern of 9 rows"):
        term.add_mass(1.0, small.indptr, small.indices, np.zeros(small.nnz))
    diagonal = np.arange(mesh.n_owned + 1, dtype=np.int32)  # a pattern of the right size without the facets
    with pytest.raises(ValueError, match="outside the sparsity pattern"):
        term.add_mass(1.0, diagonal, diagonal[:-1], np.zeros(mesh.n_owned))
    fast = Assembler(mesh)
    with pytest.raises(ValueError, match="outside the sparsity pattern"):
        fast.matrix_from_entries(np.array([0]), np.array([mesh.n_local - 1]), np.array([1.0]))


def test_lumping_and_constraint_equal_the_numpy_path(pair, monkeypatch):
    mesh, fast, ref = pair
    rng = np.random.default_rng(5)
    nc = len(mesh.cells)
    A = fast.bilinear(mass=1 + rng.random(nc), conductivity=1 + rng.random((nc, fast.dim)))
    assert close(fast.lumped(A), ref.lumped(A))
    mask = rng.random(mesh.n_local) < 0.3
    Ac, lift, diag = constrain(A, mask)
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    Ac_ref, lift_ref, diag_ref = constrain(A, mask)
    assert Ac.nnz == Ac_ref.nnz and lift.nnz == lift_ref.nnz
    assert (Ac != Ac_ref).nnz == 0 and (lift != lift_ref).nnz == 0 and np.array_equal(diag, diag_ref)


def test_coefficient_shapes():
    assert coefficient(2.0, 10, 4, 3).shape == (1, 1, 1)
    assert coefficient(np.ones(10), 10, 4, 3).shape == (10, 1, 1)
    assert coefficient(np.ones((10, 3)), 10, 4, 3).shape == (10, 1, 3)
    assert coefficient(np.ones((10, 4)), 10, 4, 3).shape == (10, 4, 1)
    assert coefficient(np.ones((10, 4, 3)), 10, 4, 3).shape == (10, 4, 3)
    with pytest.raises(ValueError, match="ambiguous"):
        coefficient(np.ones((10, 3)), 10, 3, 3)
    assert coefficient(np.ones((10, 3)), 10, 3, 3, per_point=True).shape == (10, 3, 1)
    with pytest.raises(ValueError, match="expected 1 or 10"):
        coefficient(np.ones(9), 10, 4, 3)
    with pytest.raises(ValueError, match="components"):
        coefficient(np.ones((10, 2)), 10, 4, 3)


def test_no_cells_by_entries_temporaries():
    """Assembling a matrix allocates (in NumPy) little beyond its own data: the element matrices
    are never held for all cells at once (the reference path allocates several times more)."""
    mesh = structured_mesh(MPI.COMM_SELF, "hexahedron", (12, 12, 12), [1.0] * 3, [0.0] * 3)
    k = np.ones((len(mesh.cells), 3))

    def peak(assembler):
        tracemalloc.start()
        A = assembler.bilinear(mass=np.ones(len(mesh.cells)), conductivity=k)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top, A.data.nbytes

    fast, data = peak(Assembler(mesh))
    assert fast < 1.2 * data, (fast, data)
    ref, _ = peak(Assembler(mesh, compiled=False))
    assert ref > 3 * data


def test_assembly_matches_the_reference_on_1_to_4_ranks(nprocs):
    r = run_script(nprocs, "assembly_checks.py", timeout=240)
    assert r["ok"] and r["ranks"] == nprocs
    assert set(r["cells"]) == set(CELLS)
    assert r["worst"] <= RTOL, r
