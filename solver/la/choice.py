"""``solver.preconditioner = "auto"``: the preconditioner that should take the least time for a
problem's dimension, size, number of ranks and number of solves with one matrix.

The exact LU of the whole matrix (block Jacobi on one rank) costs a factorisation that grows like
``n^1.5`` in 2D (nested dissection) and then about one triangular solve per step; smoothed-
aggregation AMG costs a set-up linear in ``n`` and a handful of V-cycles per step. On one rank,
in 2D, the LU pays off when it is reused for enough solves; in 3D its fill (``n^(4/3)`` and more)
rules it out, and on several ranks block Jacobi loses its exactness (its iterations grow with the
ranks), so AMG is the choice there. The cost constants below are seconds on one core of the
development machine, fitted to the set-up and step times of the reference problem at 1M DOFs
(LU: 18 s to factorise, 0.4 s per solve; AMG: about 2.5 s of set-up, 0.5 s per solve).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# t_LU(n, S) = LU_FACTOR n^1.5 + S LU_SOLVE n log2 n;  t_AMG(n, S) = AMG_SETUP n + S AMG_SOLVE n
LU_FACTOR = 1.7e-8
LU_SOLVE = 1.9e-8
AMG_SETUP = 2.5e-6
AMG_SOLVE = 5.0e-7
SMALL = 5000  # below this many DOFs on one rank, the LU is always the cheapest and simplest


@dataclass(frozen=True)
class PreconditionerChoice:
    name: str
    reason: str


def lu_seconds(n: int, solves: int) -> float:
    return LU_FACTOR * n ** 1.5 + solves * LU_SOLVE * n * math.log2(max(n, 2))


def amg_seconds(n: int, solves: int) -> float:
    return AMG_SETUP * n + solves * AMG_SOLVE * n


def choose_preconditioner(dim: int, n_dofs: int, ranks: int, solves_per_matrix: int) -> PreconditionerChoice:
    """The preconditioner for ``solves_per_matrix`` solves with each matrix (1 when the matrix
    changes every step), and why."""
    if ranks > 1:
        return PreconditionerChoice("amg", f"{ranks} ranks: multigrid iterations do not grow with the ranks")
    if dim == 3 and n_dofs > SMALL:
        return PreconditionerChoice("amg", "3D: the fill of an exact LU grows faster than the DOFs")
    if n_dofs <= SMALL:
        return PreconditionerChoice("bjacobi", f"one rank, {n_dofs} DOFs: the exact LU is cheapest")
    lu, amg = lu_seconds(n_dofs, solves_per_matrix), amg_seconds(n_dofs, solves_per_matrix)
    if lu < amg:
        return PreconditionerChoice("bjacobi", f"one rank, 2D, {n_dofs} DOFs, {solves_per_matrix} solves per "
                                                f"matrix: the exact LU (about {lu:.3g} s) beats AMG ({amg:.3g} s)")
    return PreconditionerChoice("amg", f"one rank, 2D, {n_dofs} DOFs, {solves_per_matrix} solves per matrix: "
                                       f"AMG (about {amg:.3g} s) beats the exact LU ({lu:.3g} s)")
