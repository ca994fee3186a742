"""The kernels of one kind of cell, compiled with its sizes as constants and kept per kind.

Every cell kernel takes the mesh as ``mesh = (coords, cells, n_owned)`` and the reference element
as ``reference = (N, dN, weights)``; a matrix kernel adds into a CSR ``target = (indptr, indices,
slots, data)`` and returns the entries it could not place (0 unless the pattern does not belong
to these cells). See :mod:`solver.fem.kernels` for the arguments.
"""

from __future__ import annotations

import functools

from solver.fem.kernels.matrices import matrix_kernel
from solver.fem.kernels.newton import convection_kernel, nodal_conduction_kernel
from solver.fem.kernels.vectors import flux_vector_kernel, gradient_kernel, vector_kernel

__all__ = ["CellKernels", "cell_kernels"]


class CellKernels:
    """The kernels of one kind of cell, compiled with its sizes as constants."""

    def __init__(self, matrix, vector, gradient=None, flux_vector=None, convection=None, nodal_conduction=None):
        self.matrix, self.vector = matrix, vector
        self.gradient, self.flux_vector, self.convection = gradient, flux_vector, convection
        self.nodal_conduction = nodal_conduction


@functools.lru_cache(maxsize=None)
def cell_kernels(nn: int, dim: int, nq: int, affine: bool, linear: bool = True) -> CellKernels:
    """Kernels for cells of ``nn`` nodes in ``dim`` dimensions with ``nq`` quadrature points
    (``affine``: constant Jacobian; ``linear``: P1 simplices, whose gradients are then constant
    too). The sizes are compile-time constants of the closures,
    so that LLVM unrolls the small loops (numba caches each specialisation apart).

    * ``matrix(mesh, reference, mass, conductivity, target)`` adds ``int m N_i N_j + int sum_d k_d
      dN_i/dx_d dN_j/dx_d`` of each cell into the target (owned rows); ``mass``,
      ``conductivity``: canonical coefficients, size 0 when absent; the target's ``slots``: the
      relative slots of :func:`~solver.fem.kernels.pattern.pattern_fill`, or empty to search the rows.
    * ``vector(mesh, reference, values, out)``: ``out[i] += int f N_i``.
    * ``gradient(mesh, reference, u, out, values)``: ``out[c, q, d]`` = du/dx_d at point q of cell
      c, and ``values[c, q]`` = u there (``values`` of size 0: not computed).
    * ``flux_vector(mesh, reference, flux, out)``: ``out[i] += int flux . grad N_i`` with ``flux``
      (n_cells, n_qp, dim) at the points (the residual of conduction, k grad u).
    * ``convection(mesh, reference, b, scale, target)`` adds ``s_cj int (b . grad N_i) N_j`` (b:
      (n_cells, n_qp, dim); ``scale`` s: (n_cells, nn), or size 0 for 1), the part of a Newton
      Jacobian that comes from a conductivity depending on u (b = dk/du grad u at the points; or
      b = grad u and s = dk/du at the nodes when k is interpolated from its nodal values); not
      symmetric.
    * ``nodal_conduction(mesh, reference, volume, nodal, out, jacobian)`` (affine cells only): the
      residual and the Jacobian of a k interpolated from nodal values in one pass
      (:mod:`solver.fem.kernels.newton`).
    """
    kind = int(nn), int(dim), int(nq), bool(affine)
    return CellKernels(matrix_kernel(*kind, bool(linear)), vector_kernel(*kind), gradient_kernel(*kind),
                       flux_vector_kernel(*kind), convection_kernel(*kind), nodal_conduction_kernel(*kind))
