"""solver: parallel finite-element heat diffusion with MPI, SciPy and parallel HDF5."""

import os as _os
import sys as _sys


def _started_as_program() -> bool:
    """Whether this import is the start of ``python -m solver`` (runpy imports the package before
    its ``__main__``, with ``sys.argv[0]`` still ``-m``) or of the ``heat-solver`` script."""
    argv = getattr(_sys, "argv", None) or [""]
    if _os.path.basename(argv[0]) == "heat-solver":
        return True
    orig = getattr(_sys, "orig_argv", [])
    module = orig[-len(argv)] if argv[0] == "-m" and len(orig) > len(argv) else ""
    return module == "solver" or module.startswith("-") and module.endswith("msolver")


if _started_as_program():  # the stop signals kept from here on, before the package's imports (a Ctrl-C there
    from solver.app import signals as _signals  # was a KeyboardInterrupt traceback from runpy)

    _signals.defer()

# One BLAS/OpenMP thread per MPI rank unless the user says otherwise: threaded BLAS in
# every rank oversubscribes the cores and busy-waiting threads stall the collectives.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_var, "1")

__version__ = "0.5.0"
