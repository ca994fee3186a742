"""The owned rows of a distributed matrix as one local CSR matrix, as the multigrid's set-up
multiplies them (the products themselves go through :mod:`solver.la.csr`)."""

from __future__ import annotations

import scipy.sparse as sp

from solver.la.matrix import DistributedMatrix

__all__ = ["local_matrix"]


def local_matrix(A: DistributedMatrix) -> sp.csr_matrix:
    """Owned rows with all local columns [owned | ghosts] (the owned block itself if no ghosts)."""
    if A.offdiag_block.shape[1] == 0:
        return A.diag_block
    return sp.hstack([A.diag_block, A.offdiag_block], format="csr")
