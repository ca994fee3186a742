"""solver: parallel finite-element heat diffusion with MPI, SciPy and parallel HDF5."""

import os as _os

# One BLAS/OpenMP thread per MPI rank unless the user says otherwise: threaded BLAS in
# every rank oversubscribes the cores and busy-waiting threads stall the collectives.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")

__version__ = "0.5.0"
