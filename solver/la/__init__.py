"""Distributed linear algebra on per-rank SciPy matrices: the distributed matrix and its product
(halo exchange overlapped), preconditioned conjugate gradients, and the preconditioners.
"""

from solver.lazy import exports

WHERE = {
    "DistributedMatrix": "matrix",
    "dot": "matrix",
    "make_preconditioner": "preconditioners",
    "pcg": "krylov",
    "PRECONDITIONERS": "preconditioners",
    "SolveInfo": "krylov",
}
__all__ = sorted(WHERE)
__getattr__ = exports(__name__, WHERE)
