"""Distributed linear algebra on per-rank SciPy matrices: the distributed matrix and its product
(halo exchange overlapped), preconditioned conjugate gradients, and the preconditioners.
"""

from solver.la.krylov import SolveInfo, pcg
from solver.la.matrix import DistributedMatrix, dot
from solver.la.preconditioners import PRECONDITIONERS, make_preconditioner

__all__ = ["DistributedMatrix", "PRECONDITIONERS", "SolveInfo", "dot", "make_preconditioner", "pcg"]
