"""``solver.preconditioner = "auto"``: the preconditioner that should take the least time for a
problem's dimension, size, number of ranks and number of solves with one matrix.

The exact LU of the whole matrix (block Jacobi on one rank) costs a factorisation that grows like
``n^1.5`` in 2D (nested dissection) and then about one triangular solve per step; smoothed-
aggregation AMG costs a set-up linear in ``n`` and a handful of V-cycles per step. On one rank,
in 2D, the LU pays off when it is reused for enough solves; in 3D its fill (``n^(4/3)`` and more)
rules it out, and on several ranks block Jacobi loses its exactness (its iterations grow with the
ranks), so AMG is the choice there. The cost constants below are seconds on one core of the
development machine, fitted to ``python -m solver bench --solvers --crossover 128 256 512 1024``
(the reference problem on one rank, backward Euler, set-up including assembly):

    DOFs        LU set-up  LU step  AMG set-up  AMG step
    16,641      0.25 s     4 ms     0.23 s      5 ms      the LU pays after about 16 solves
    66,049      0.58 s     23 ms    0.34 s      22 ms     AMG as fast per solve: the LU never pays
    263,169     2.44 s     99 ms    0.60 s      99 ms
    1,050,625   13.0 s     455 ms   2.58 s      361 ms

so on this machine the exact LU only wins for small 2D problems with many steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# t_LU(n, S) = LU_FACTOR n^1.5 + S LU_SOLVE n log2 n;  t_AMG(n, S) = AMG_SETUP n + S AMG_SOLVE n
LU_FACTOR = 1.2e-8
LU_SOLVE = 2.1e-8
AMG_SETUP = 2.3e-6
AMG_SOLVE = 3.4e-7
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
