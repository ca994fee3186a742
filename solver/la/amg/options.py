"""The multigrid's tuning parameters, one frozen record (:class:`AMGOptions`), and the choice
of the V-cycle's working precision for a given matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from solver.la.matrix import DistributedMatrix

__all__ = ["AMGOptions", "fits_single"]


@dataclass(frozen=True)
class AMGOptions:
    """Parameters of :class:`~solver.la.amg.hierarchy.AMG`:

    * ``theta``, ``strength``: strength-of-connection threshold (a float, or one per level, the
      last repeated: 0.4 keeps aggregates along the strong direction of an anisotropic fine
      grid, 0.25 on the denser coarse operators) and measure ("signed": only negative
      couplings count, relative to the rows' largest; "symmetric": pyamg's measure);
    * ``degree``: of the Chebyshev smoother (an int, or one per level, the last repeated), on
      ``[lower, upper] * lam_max(D^-1 A)``, lam_max from ``lanczos_steps`` Lanczos steps;
    * ``max_coarse``: rows of the coarsest level (gathered and factorised);
    * ``rows_per_rank``: a level with fewer rows per active rank moves onto fewer ranks;
    * ``max_levels``;
    * ``precision``: of the V-cycle's arithmetic, "single" (float32 matrices and vectors: half
      the memory traffic; the hierarchy is built in double and the coarsest solve is in double;
      CG stays in double) or "double". Single falls back to double for a matrix whose entries
      come near float32's range.
    """

    theta: float | tuple[float, ...] = (0.4, 0.25)
    strength: str = "signed"
    degree: int | tuple[int, ...] = 2
    lower: float = 0.3
    upper: float = 1.1
    lanczos_steps: int = 10
    max_coarse: int = 3000
    rows_per_rank: int = 2000
    max_levels: int = 10
    precision: str = "single"

    def __post_init__(self):
        if self.precision not in ("double", "single"):
            raise ValueError(f"AMG precision must be 'double' or 'single', not {self.precision!r}")

    def level_theta(self, k: int) -> float:
        """The strength threshold of level ``k``."""
        thetas = np.atleast_1d(self.theta)
        return float(thetas[min(k, len(thetas) - 1)])

    def level_degree(self, k: int) -> int:
        """The Chebyshev degree of level ``k``."""
        degrees = np.atleast_1d(self.degree)
        return int(degrees[min(k, len(degrees) - 1)])

    def working_precision(self, A: DistributedMatrix, comm) -> str:
        """The V-cycle's precision for ``A`` (collective): double when asked for, or when
        ``A``'s entries do not fit single precision."""
        if self.precision == "single" and not fits_single(A, comm):
            return "double"  # entries too large or too small for float32: stay in double
        return self.precision


def fits_single(A: DistributedMatrix, comm) -> bool:
    """Whether the matrix's nonzero entries lie well inside float32's range (1e-30..1e30), so
    that a single-precision V-cycle neither overflows nor loses entries to underflow."""
    big, small = 0.0, np.inf
    for block in (A.diag_block, A.offdiag_block):
        v = np.abs(block.data)
        if v.size:
            big, small = max(big, float(v.max())), min(small, float(np.min(v, where=v != 0.0, initial=np.inf)))
    buf = np.array([big, -small])
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.MAX)
    return bool(buf[0] < 1e30 and -buf[1] > 1e-30)
