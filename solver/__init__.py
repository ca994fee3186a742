"""solver: parallel finite-element heat diffusion with MPI, SciPy and parallel HDF5."""

__version__ = "0.1.0"
