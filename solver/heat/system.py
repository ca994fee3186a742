"""A Dirichlet-constrained SPD system of the heat equation, its preconditioner and its solve."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from solver.case.expressions import time_stamp
from solver.case.records import SolverSpec
from solver.errors import CaseError, ConvergenceError, NonFiniteError, NumericalError
from solver.fem.boundary import constrain
from solver.la.krylov import SolveInfo, pcg
from solver.la.matrix import DistributedMatrix, dot
from solver.la.preconditioners import make_preconditioner


# round-off of an assembled entry, relative to it (about what a solution of this model is off by)
ENTRY_ROUNDOFF = np.finfo(np.float64).eps
# largest change of a steady solution that the round-off of the system's entries may cause: relative to
# its spread of temperatures (or solver.rtol, when looser), or to its largest magnitude (the round-off
# of any solve at a temperature far from 0 with tiny differences, which a thin body multiplies)
ROUNDOFF_TOLERANCE = 1e-6
MAGNITUDE_TOLERANCE = 1e-8


def roundoff_signs(node_ids: np.ndarray) -> np.ndarray:
    """+-1 per node from a hash of its canonical id: the same on any number of ranks."""
    h = (node_ids.astype(np.uint64) * np.uint64(2654435761)) >> np.uint64(7)
    return np.where(h & np.uint64(1), 1.0, -1.0)


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

    def roundoff(self, u: np.ndarray, t: float) -> tuple[float, float, float]:
        """(collective) The largest change of ``u`` that the round-off of the system's entries can
        cause, the spread of ``u`` and its largest magnitude. Each entry is known to :data:`ENTRY_ROUNDOFF` of itself: a
        source ``eps |A| |u|`` (with the eliminated columns' ``|lift| |g|``) of signs from the node
        ids, solved for loosely. The kernel of the conduction (a temperature that is uniform across
        a thin layer) is then lost in round-off, and the solution moves by that source times the
        inverse of the weak conduction along the layer (about eps (length / thickness)^2)."""
        A, n, mesh = self.A, self.A.n_owned, self.problem.mesh
        g, _ = self._dirichlet(t)
        a = np.abs(u)

        def magnitude(M):
            return sp.csr_matrix((np.abs(M.data), M.indices, M.indptr), shape=M.shape)
        source = magnitude(A.diag_block) @ a[:n] + magnitude(self.lift) @ np.abs(g)
        if A.has_offdiag:
            source += magnitude(A.offdiag_block) @ a[n:]
        source *= ENTRY_ROUNDOFF * roundoff_signs(mesh.node_ids[:n])
        source[self.dir_owned] = 0.0
        e = np.zeros_like(u)
        if dot(mesh.comm, source, source, n) > 0.0:
            pcg(self.A, source, e, self.precond, 1e-2, 0.0, self.solver.max_iterations, held=self.dir_owned)
        top = np.array([np.abs(e[:n]).max(initial=0.0), u[:n].max(initial=-np.inf), -u[:n].min(initial=np.inf)])
        mesh.comm.Allreduce(MPI.IN_PLACE, top, op=MPI.MAX)
        return float(top[0]), float(top[1] + top[2]), float(max(top[1], top[2]))

    def check_roundoff(self, u: np.ndarray, where: str) -> None:
        """Stop (collective, exit 3) when the round-off of the system's entries can move ``u`` by
        more than :data:`ROUNDOFF_TOLERANCE` (or ``solver.rtol``) of its spread and
        :data:`MAGNITUDE_TOLERANCE` of its largest magnitude: a steady solution
        of a body far thinner than it is long (cells of extreme aspect ratio) is wrong in its
        leading digits while the solve converges."""
        change, spread, magnitude = self.roundoff(u, 0.0)
        allowed = max(max(ROUNDOFF_TOLERANCE, self.solver.rtol) * spread, MAGNITUDE_TOLERANCE * magnitude)
        if not change > allowed:
            return
        raise NumericalError(
            f"{where}: the temperatures are lost in round-off: the system's entries, each rounded to double "
            f"precision, can move them by about {change:.2g} (of their spread {spread:.6g}; at most {allowed:.2g} "
            f"allowed): the conduction along the body is many orders of magnitude weaker than across its thinnest "
            f"cells (a layer or bar far thinner than it is long: cells of extreme aspect ratio), or conductivities "
            f"that far apart; make the body thicker, model a thin plate with one dimension fewer, or check the "
            f"lengths and conductivities and their units")

    def reactions(self, u: np.ndarray, rhs_dirichlet: np.ndarray) -> np.ndarray:
        """Heat that the Dirichlet rows take in: unconstrained rows times u, less their rhs."""
        return self.rows_dirichlet @ u - rhs_dirichlet
