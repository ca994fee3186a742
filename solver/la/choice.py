"""``solver.preconditioner = "auto"``: the preconditioner that should take the least time for a
problem's dimension, size, number of ranks and number of solves with one matrix.

The exact LU of the whole matrix (block Jacobi on one rank) costs a factorisation that grows like
``n^1.5`` in 2D (nested dissection) and then about one triangular solve per step; smoothed-
aggregation AMG costs a set-up linear in ``n`` and a handful of V-cycles per step. On one rank,
in 2D, the LU pays off when it is reused for enough solves; in 3D its fill (``n^(4/3)`` and more)
rules it out, and on several ranks block Jacobi loses its exactness (its iterations grow with the
ranks), so AMG is the choice there. The cost constants below are seconds on one core of the
development machine, fitted to ``python -m solver bench --solvers --crossover 128 256 512 1024``
(the reference problem on one rank, backward Euler, set-up including assembly; CG stops before
applying the preconditioner once more, so the LU costs one triangular solve per step):

    DOFs        LU set-up  LU step  AMG set-up  AMG step
    16,641      0.28 s     2.6 ms   0.25 s      5.2 ms    the LU pays after about 12 solves
    66,049      0.61 s     12 ms    0.32 s      18 ms     ... after about 50
    263,169     2.27 s     50 ms    0.56 s      71 ms     ... after about 80
    1,050,625   12.5 s     210 ms   2.03 s      290 ms    ... after about 130

so on this machine the exact LU only wins for 2D problems with many steps. Its fill also costs
memory: at 1M DOFs a run with it peaks at 2.5 GB, twice the multigrid's 1.3 GB (263K DOFs: 0.79
against 0.47 GB), so ``auto`` never picks it beyond :data:`LU_MAX` DOFs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# t_LU(n, S) = LU_FACTOR n^1.5 + S LU_SOLVE n log2 n: what the factorisation costs beyond the
# multigrid's set-up, and its solves;  t_AMG(n, S) = S AMG_SOLVE n
LU_FACTOR = 1.23e-8
LU_SOLVE = 1.07e-8
AMG_SOLVE = 2.79e-7
SMALL = 5000  # below this many DOFs on one rank, the LU is always the cheapest and simplest
LU_MAX = 500_000  # beyond this many DOFs on one rank, the LU's fill would double the memory


@dataclass(frozen=True)
class PreconditionerChoice:
    name: str
    reason: str


def lu_seconds(n: int, solves: int) -> float:
    return LU_FACTOR * n ** 1.5 + solves * LU_SOLVE * n * math.log2(max(n, 2))


def amg_seconds(n: int, solves: int) -> float:
    return solves * AMG_SOLVE * n


def choose_preconditioner(dim: int, n_dofs: int, ranks: int, solves_per_matrix: int) -> PreconditionerChoice:
    """The preconditioner for ``solves_per_matrix`` solves with each matrix (1 when the matrix
    changes every step), and why."""
    if ranks > 1:
        return PreconditionerChoice("amg", f"{ranks} ranks: multigrid iterations do not grow with the ranks")
    if dim == 3 and n_dofs > SMALL:
        return PreconditionerChoice("amg", "3D: the fill of an exact LU grows faster than the DOFs")
    if n_dofs <= SMALL:
        return PreconditionerChoice("bjacobi", f"one rank, {n_dofs} DOFs: its one block solved by an exact LU is "
                                               f"cheapest")
    if n_dofs > LU_MAX:
        return PreconditionerChoice("amg", f"one rank, 2D, {n_dofs} DOFs: an exact LU's fill would need about "
                                           f"twice the memory of AMG")
    lu, amg = lu_seconds(n_dofs, solves_per_matrix), amg_seconds(n_dofs, solves_per_matrix)
    where = f"one rank, 2D, {n_dofs} DOFs, {solves_per_matrix} solves per matrix"
    if lu < amg:
        return PreconditionerChoice("bjacobi", f"{where}: the exact LU's factorisation and solves (about {lu:.3g} s) "
                                                f"beat AMG's solves ({amg:.3g} s)")
    return PreconditionerChoice("amg", f"{where}: AMG's solves (about {amg:.3g} s) beat the exact LU's "
                                       f"factorisation and solves ({lu:.3g} s)")
