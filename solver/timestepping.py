"""Time integration: the theta method with a fixed step.

``(M + theta dt K) u1 = (M - (1 - theta) dt K) u0 + dt (theta F(t1) + (1 - theta) F(t0))``;
theta = 1 is backward Euler, 1/2 Crank-Nicolson. The system matrix is assembled,
constrained and its preconditioner factorised once; each step is one right-hand side and
one warm-started PCG solve.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from solver.errors import ConvergenceError
from solver.linalg import DistributedMatrix, SolveInfo, make_preconditioner, pcg
from solver.problem import HeatProblem, constrain


class ThetaStepper:
    def __init__(self, problem: HeatProblem, dt: float, theta: float, solver: dict):
        self.problem, self.dt, self.theta = problem, float(dt), float(theta)
        self.solver = solver
        M, K = problem.M, problem.K
        halo = problem.mesh.halo
        # M and K share one sparsity pattern: combine their data arrays.
        A = sp.csr_matrix((M.data + theta * dt * K.data, M.indices, M.indptr), shape=M.shape)
        self.B = DistributedMatrix(
            sp.csr_matrix((M.data - (1.0 - theta) * dt * K.data, M.indices, M.indptr), shape=M.shape), halo)
        A_c, self.lift, diag = constrain(A, problem.dirichlet_mask)
        self.A = DistributedMatrix(A_c, halo)
        n_owned = problem.mesh.n_owned
        self.dir_owned = np.flatnonzero(problem.dirichlet_mask[:n_owned])
        self.dir_local = np.flatnonzero(problem.dirichlet_mask)
        self.dir_diag = diag[self.dir_owned]
        self.precond = make_preconditioner(solver["preconditioner"], self.A)
        self._lifted = None  # lift @ g for time-independent Dirichlet data

    def _dirichlet(self, t):
        if self._lifted is None or self.problem.time_dependent_dirichlet:
            g = self.problem.dirichlet_values(t)
            self._lifted = (g, self.lift @ g)
        return self._lifted

    def step(self, u: np.ndarray, t0: float, step: int) -> SolveInfo:
        """Advance ``u`` (local vector, ghosts current) from t0 to t0 + dt in place."""
        dt, theta = self.dt, self.theta
        t1 = t0 + dt
        rhs = self.B.matvec(u)
        if theta == 1.0:
            rhs += dt * self.problem.load(t1)
        else:
            rhs += dt * (theta * self.problem.load(t1) + (1.0 - theta) * self.problem.load(t0))
        g, lifted = self._dirichlet(t1)
        rhs -= lifted
        rhs[self.dir_owned] = self.dir_diag * g[self.dir_owned]
        u[self.dir_local] = g[self.dir_local]
        s = self.solver
        info = pcg(self.A, rhs, u, self.precond, s["rtol"], s["atol"], s["max_iterations"])
        if not info.converged:
            raise ConvergenceError(
                f"step {step} (t = {t1:.6g}): the linear solver did not converge in {info.iterations} "
                f"iterations (relative residual {info.residual:.3e} > solver.rtol = {s['rtol']:g}); "
                f"try solver.preconditioner = \"bjacobi\", a larger solver.max_iterations or a smaller time.dt")
        return info
