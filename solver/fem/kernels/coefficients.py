"""The canonical form of a coefficient, as every kernel reads it.

A coefficient is a C-contiguous float64 array of shape ``(n_cells or 1, n_qp or 1, n_comp or 1)``;
an extent of 1 broadcasts (constant in the cells, at every point, or the same for every
component). Thus, for conductivity: a per-cell scalar is ``k[:, None, None]``, a diagonal
anisotropic tensor per cell ``k[:, None, :]``, a value per quadrature point (k(T)) ``(n_cells,
n_qp, 1)`` or ``(n_cells, n_qp, dim)``. :func:`coefficient` makes this form from the shapes
callers use; an absent coefficient is an array of size 0 (:data:`NONE`). Compiled code reads
the value of cell c, point q, component d at ``c * sc + q * sq + d * sd`` of the flat array,
with the strides of :func:`flat` (0 where the coefficient broadcasts).
"""

from __future__ import annotations

import numpy as np

from solver.compiled import inline

__all__ = ["NONE", "coefficient", "flat"]

NONE = np.zeros((0, 1, 1))  # an absent coefficient


def coefficient(values, n_cells: int, n_qp: int, n_comp: int = 1, per_point: bool | None = None) -> np.ndarray:
    """The canonical (n_cells or 1, n_qp or 1, n_comp or 1) form of a coefficient given as a
    number, ``(n_cells,)``, ``(n_cells, n_comp)``, ``(n_cells, n_qp)``, ``(n_cells, n_qp, n_comp)``
    or already canonical. A 2-D array whose second extent is both n_comp and n_qp is ambiguous:
    ``per_point`` says which (True: values at the quadrature points). No copy when the input is
    C-contiguous, writeable float64."""
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 0:
        a = a.reshape(1, 1, 1)
    elif a.ndim == 1:
        a = a.reshape(-1, 1, 1)
    elif a.ndim == 2:
        m = a.shape[1]
        as_points = m == n_qp and m > 1 if per_point is None else per_point
        if per_point is None and m == n_qp == n_comp and m > 1:
            raise ValueError(f"coefficient of shape {a.shape} is ambiguous (per point or per component): "
                             "say per_point, or pass (n_cells, n_qp, n_comp)")
        a = a.reshape(-1, m, 1) if as_points else a.reshape(-1, 1, m)
    elif a.ndim != 3:
        raise ValueError(f"coefficient of shape {a.shape}: at most 3 dimensions")
    for extent, full, what in zip(a.shape, (n_cells, n_qp, n_comp), ("cells", "quadrature points", "components")):
        if extent not in (1, full):
            raise ValueError(f"coefficient of shape {np.shape(values)}: {extent} {what}, expected 1 or {full}")
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()  # one compiled signature (numba types read-only apart)


@inline
def flat(values):
    """(values as a flat array, cell stride sc, point stride sq, component stride sd) of a canonical
    coefficient; a stride is 0 where the coefficient broadcasts."""
    n_c, n_q, n_d = values.shape
    return values.reshape(values.size), (n_q * n_d if n_c > 1 else 0), (n_d if n_q > 1 else 0), (1 if n_d > 1 else 0)
