"""A Dirichlet-constrained SPD system of the heat equation, its preconditioner and its solve."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from solver.case.expressions import time_stamp
from solver.case.records import SolverSpec
from solver.errors import CaseError, ConvergenceError, NonFiniteError
from solver.fem.boundary import constrain
from solver.la.krylov import SolveInfo, pcg
from solver.la.matrix import DistributedMatrix
from solver.la.preconditioners import make_preconditioner


class ConstrainedSystem:
    """``A`` with Dirichlet rows and columns eliminated symmetrically, the preconditioner built
    once, and the unconstrained Dirichlet rows kept for the reactions (the heat balance)."""

    def __init__(self, assemble: Callable[[], sp.csr_matrix], problem, solver: SolverSpec,
                 previous: "ConstrainedSystem | None" = None, borrow: "ConstrainedSystem | None" = None):
        """``assemble()`` gives A (called here, so that A and its constrained copy are freed before
        the preconditioner's set-up, the peak of memory). ``previous``: the system this one
        replaces (the same sparsity, new values); a preconditioner that can be updated (multigrid:
        new Galerkin products on the old aggregates) is taken over and updated instead of built
        again. ``borrow``: a system of a spectrally close matrix whose preconditioner serves this
        one as it is (a scheme's start-up steps)."""
        self.problem, self.solver = problem, solver
        A = assemble()
        finite = np.array([1.0 if np.isfinite(A.data).all() else 0.0])
        problem.mesh.comm.Allreduce(MPI.IN_PLACE, finite, op=MPI.MIN)
        if not finite[0]:
            raise NonFiniteError("the system matrix holds non-finite values (inf or NaN): a conductivity, heat "
                                 "capacity or heat transfer coefficient overflows or is undefined")
        mask = problem.dirichlet.mask
        A_c, self.lift, diag = constrain(A, mask, problem.compiled)
        self.A = DistributedMatrix(A_c, problem.mesh.halo)
        self.dir_owned = np.flatnonzero(mask[: problem.mesh.n_owned])
        self.dir_diag = diag[self.dir_owned]
        self.rows_dirichlet = A[self.dir_owned]  # unconstrained rows, for the reactions
        del A, A_c  # copied into the blocks
        self._lifted = None  # (time key, g, lift @ g)
        self.updated = previous is not None and previous.precond.updatable
        if borrow is not None:
            self.precond = borrow.precond
        elif self.updated:
            self.precond = previous.precond
            self.precond.update(self.A)
        else:
            try:
                self.precond = make_preconditioner(solver.preconditioner, self.A, problem.coarse_space)
            except ImportError as exc:
                raise CaseError(str(exc)) from None
        if problem.compiled:
            self.A.multiply_symmetric()  # CG's products from the upper triangle, once the set-up is done

    def _dirichlet(self, t: float):
        key = time_stamp(t) if self.problem.dirichlet.time_dependent else None
        if self._lifted is None or self._lifted[0] != key:
            g = self.problem.dirichlet.values(t)
            self._lifted = (key, g, self.lift @ g)
        return self._lifted[1:]

    def solve(self, rhs: np.ndarray, u: np.ndarray, t1: float, step: int) -> SolveInfo:
        """Solve for u (in place, ghosts updated) with the Dirichlet values at t1; ``rhs`` is the
        unconstrained right-hand side of the owned rows."""
        g, lifted = self._dirichlet(t1)
        rhs = rhs - lifted
        rhs[self.dir_owned] = self.dir_diag * g[self.dir_owned]
        u[self.problem.dirichlet.local] = g[self.problem.dirichlet.local]
        s = self.solver
        info = pcg(self.A, rhs, u, self.precond, s.rtol, s.atol, s.max_iterations, held=self.dir_owned)
        # a preconditioner that couples the identity rows to the others (multigrid on P2) moves u off g
        # there by up to the tolerance; the free rows do not depend on those values (columns eliminated)
        u[self.problem.dirichlet.local] = g[self.problem.dirichlet.local]
        where = "the steady solve" if step == 0 else f"step {step} (t = {t1:.6g})"
        if not np.isfinite(info.residual):
            raise NonFiniteError(f"{where}: the linear system holds non-finite values (inf or NaN): a material "
                                 f"property, source or boundary value, or the time step, overflows in double "
                                 f"precision; check their magnitudes and units")
        if not info.converged and info.breakdown:
            raise ConvergenceError(
                f"{where}: the linear system is singular or indefinite in double precision (conjugate gradients "
                f"found no descent after {info.iterations} iterations): "
                + ("a part of the body is held by an exchange (boundary h or epsilon) many orders of magnitude "
                   "weaker than the conduction inside it, or by none; give it a dirichlet boundary or a firmer "
                   "exchange, or solve it transient" if step == 0 else
                   "a conductivity, capacity or exchange coefficient many orders of magnitude off, or negative; "
                   "check their values and units"))
        if not info.converged:
            raise ConvergenceError(
                f"{where}: the linear solver did not converge in {info.iterations} iterations "
                f"(relative residual {info.residual:.3e} > solver.rtol = {s.rtol:g}); try "
                f"solver.preconditioner = \"bjacobi\" or \"amg\", a larger solver.max_iterations"
                + ("" if step == 0 else " or a smaller time.dt"))
        return info

    def reactions(self, u: np.ndarray, rhs_dirichlet: np.ndarray) -> np.ndarray:
        """Heat that the Dirichlet rows take in: unconstrained rows times u, less their rhs."""
        return self.rows_dirichlet @ u - rhs_dirichlet
