"""The libraries the solver cannot run without (pyproject.toml's dependencies), and the one line
for a Python that lacks one: the solver run outside its environment. Importable first thing."""

from __future__ import annotations

import sys

REQUIRED = ("numpy", "scipy", "mpi4py", "h5py", "tomli_w", "meshio", "pyamg")


def missing_library(exc: ModuleNotFoundError) -> str | None:
    """The error line for a required library that ``exc`` says is missing; None for any other
    module (an internal error)."""
    name = (exc.name or "").partition(".")[0]
    if name not in REQUIRED:
        return None
    return (f"error: the solver needs {name}, which this Python ({sys.executable}) does not have: use the "
            f"project's environment (make bootstrap, then . .venv/bin/activate), or pip install -e . into this one")
