"""Compilation ahead of use: run every kernel once on a single cell, so that numba compiles it (or
loads it from its on-disk cache) for the argument types the assembly will pass, before anything
is timed (the bench) or once for all later runs (``python -m solver.fem.kernels``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.fem.kernels.cells import cell_kernels
from solver.fem.kernels.constraint import constrain_kernel
from solver.fem.kernels.facets import facet_matrix, facet_measures, facet_vector
from solver.fem.kernels.pattern import csr_pattern, entry_slots
from solver.fem.kernels.vectors import quadrature_points
from solver.fem.quadrature import cell_degree, quadrature
from solver.mesh.cells import CELLS

__all__ = ["WarmTask", "warm_tasks", "warm_up"]


def reference_tables(cell_type: str, degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, dN, weights) of a kind of cell (or facet) at the points of its quadrature rule."""
    ref = CELLS[cell_type]
    points, weights = quadrature(cell_type, degree)
    return np.ascontiguousarray(ref.shape(points)), np.ascontiguousarray(ref.grad(points)), weights


def warm_cell_kernels(ref, affine: bool, mesh, reference, target, parts=("matrix", "vector", "newton")) -> None:
    """Run the kernels of :func:`cell_kernels` (``affine``: of cells with an affine map) on the one
    cell of ``mesh``, with and without the slot map of ``target``, with and without the optional
    arrays; ``parts``: the matrix kernel, the vector kernels (loads, gradients, fluxes), the
    Newton kernels."""
    nn, nq, dim = ref.n_nodes, len(reference[2]), ref.dim
    indptr, indices, slots, data = target
    k = cell_kernels(nn, dim, nq, affine, ref.affine)
    searched = (indptr, indices, slots[:0], data)
    one = np.ones((1, 1, 1))
    if "matrix" in parts:
        for t in (target, searched):
            k.matrix(mesh, reference, one, one, t)
    grads = np.zeros((1, nq, dim))
    if "vector" in parts:
        k.vector(mesh, reference, one, np.zeros(nn))
        k.gradient(mesh, reference, np.zeros(nn), grads, np.zeros((1, nq)))
        k.gradient(mesh, reference, np.zeros(nn), grads, np.zeros((0, 0)))
        k.flux_vector(mesh, reference, grads, np.zeros(nn))
    if "newton" not in parts:
        return
    for scale in (np.ones((1, nn)), np.zeros((0, nn))):
        for t in (target, searched):
            k.convection(mesh, reference, grads, scale, t)
    if ref.affine:
        knode = np.ones((1, nn, 1))
        for sets in (np.zeros(1, np.int64), np.zeros(0, np.int64)):
            for t in (target, searched):
                k.nodal_conduction(mesh, reference, 1.0, (np.zeros(nn), knode, knode, sets), np.zeros(nn),
                                   (1.0, t, t, True))


def warm_facet_kernels(ref, mesh, degree: int, data) -> None:
    """Run the facet kernels on the first facet of the one cell of ``mesh``."""
    coords, cells, n_owned = mesh
    facet = CELLS[ref.facet_name]
    fN, fdN, fweights = reference_tables(ref.facet_name, degree)
    facets = np.ascontiguousarray(cells[:, : facet.n_nodes])
    wdet = np.empty((1, len(fweights)))
    one = np.ones((1, 1, 1))
    facet_measures(coords, facets, fdN, fweights, wdet)
    facet_matrix(facets, fN, wdet, one, np.zeros((1, facet.n_nodes ** 2), np.int64), data)
    facet_vector(facets, n_owned, fN, wdet, one, np.zeros(n_owned))


@dataclass(frozen=True)
class WarmTask:
    """One compilation of :func:`warm_tasks`, a record (picklable: a helper process can run it)."""

    cell_type: str
    cell_dtype: str
    index_dtype: str
    affine: bool
    part: str  # "matrix", "newton", "vector" (cell kernels), "boundary" or "pattern"

    def __call__(self) -> None:
        ref = CELLS[self.cell_type]
        reference = reference_tables(self.cell_type, cell_degree(self.cell_type, self.affine))
        nn = ref.n_nodes
        coords = np.ascontiguousarray(ref.vertices, dtype=np.float64)
        cells = np.arange(nn, dtype=self.cell_dtype).reshape(1, nn)
        mesh = (coords, cells, nn)
        # the one cell's dense pattern, as csr_pattern gives it (built here without its kernels, so
        # that each task compiles only its own)
        index = np.dtype(self.index_dtype)
        target = (np.arange(0, nn * nn + 1, nn, dtype=index), np.tile(np.arange(nn, dtype=index), nn),
                  np.tile(np.arange(nn, dtype=np.uint8), nn).reshape(1, nn * nn), np.zeros(nn * nn))
        if self.part in ("matrix", "newton", "vector"):
            warm_cell_kernels(ref, self.affine, mesh, reference, target, (self.part,))
        elif self.part == "pattern":
            indptr, indices, _ = csr_pattern(cells, nn, nn, dtype=index)
            entry_slots(indptr, indices, np.zeros(1, np.int64), np.zeros(1, np.int64), nn)
        else:
            quadrature_points(coords, cells, reference[0], np.empty((1, len(reference[2]), ref.dim)))
            constrain_kernel(target[0], target[1], target[3], np.zeros(nn, dtype=np.bool_), nn)
            warm_facet_kernels(ref, mesh, cell_degree(ref.facet_name, self.affine), target[3])


def warm_tasks(cell_type: str, cell_dtype=np.int32, index_dtype=np.int32, affine: bool | None = None,
               newton: bool = True, loads: bool = True) -> list[tuple[float, WarmTask]]:
    """The compilations of the kernels that the assembly of ``cell_type`` meshes uses, as calls that
    run them once on a single cell for these index types, each with its share of the compile time
    (for :func:`solver.compiled.compile_shared`); ``affine``: the cells' maps are affine (None: as
    the reference cell, P1 simplices); ``newton``: with the kernels of a Newton Jacobian;
    ``loads``: with the cell loads, gradients and fluxes."""
    ref = CELLS[cell_type]
    affine = ref.affine if affine is None else bool(ref.affine or (ref.degree > 1 and affine))

    def task(part: str) -> WarmTask:
        return WarmTask(cell_type, np.dtype(cell_dtype).str, np.dtype(index_dtype).str, affine, part)

    # shares measured on one core, 2D P1 (the matrix kernel's includes numba's own start)
    return [(4.2, task("matrix")), *([(4.0, task("newton"))] if newton else []),
            *([(2.7, task("vector"))] if loads else []), (1.9, task("boundary")), (1.4, task("pattern"))]


def warm_up(cell_type: str, cell_dtype=np.int32, index_dtype=np.int32, affine: bool | None = None) -> None:
    """Compile (or load from the cache) every kernel the assembly of ``cell_type`` meshes uses, for
    these index types, by running each once on a single cell; ``affine``: the cells' maps are
    affine (None: as the reference cell, P1 simplices)."""
    for _, task in warm_tasks(cell_type, cell_dtype, index_dtype, affine):
        task()
