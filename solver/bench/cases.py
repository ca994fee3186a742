"""The cases the benches run: the bench plate (a case text built here, at a size given in DOFs)
and the reference problem's files (``inputs/reference.toml``, ``inputs/reference3d.toml``).

No MPI at import: ``bench --study`` and ``bench --solvers`` use this module in a process that
only launches others; :func:`simulation` builds the plate on a communicator when called."""

from __future__ import annotations

import tempfile
from pathlib import Path

from solver.errors import CaseError

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = {2: ROOT / "inputs" / "reference.toml", 3: ROOT / "inputs" / "reference3d.toml"}  # by dimension
DT = 1e-3  # the system matrix M + dt K of the assembly figures, ours and DOLFINx's


def scratch_beside(figures: Path, prefix: str) -> Path:
    """A new scratch folder beside the figures file ``figures`` (its folder made), before anything is
    measured; a folder that cannot be made or written is an input error naming --json."""
    figures = Path(figures)
    try:
        figures.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=figures.parent)).resolve()
    except OSError as exc:
        raise CaseError(f"--json {figures}: cannot write into its folder {figures.parent} ({exc.strerror or exc})"
                        ) from None


def case_text(dim: int, n: int, cell: str, steps: int, preconditioner: str, scheme: str = "crank-nicolson") -> str:
    """A steel plate (or block) heated on one side and cooled on the other, ``steps`` steps of 5 s."""
    size = f"nx = {n}\nny = {n}" + (f"\nnz = {n}" if dim == 3 else "")
    lengths = "[0.2, 0.2]" if dim == 2 else "[0.2, 0.2, 0.2]"
    return f"""
[mesh]
type = "{'rectangle' if dim == 2 else 'box'}"
cell = "{cell}"
{size}
lengths = {lengths}
[material]
k = 45.0
rho = 7850.0
c = 460.0
[initial]
temperature = 20.0
[boundary.left]
type = "dirichlet"
value = 100.0
[boundary.right]
type = "robin"
h = 25.0
T_inf = 20.0
[time]
scheme = "{scheme}"
dt = 5.0
t_end = {5.0 * steps}
[solver]
preconditioner = "{preconditioner}"
rtol = 1e-8
"""


def side(dofs: float, dim: int) -> int:
    """Cells per side of a P1 mesh with about ``dofs`` nodes."""
    return max(2, round(dofs ** (1.0 / dim)) - 1)


def simulation(comm, dim: int, dofs: float, steps: int, preconditioner: str = "amg"):
    """The bench plate of about ``dofs`` P1 nodes (triangles in 2D, tetrahedra in 3D) on ``comm``."""
    from solver.case.load import load_case
    from solver.heat.simulation import Simulation

    cell = "triangle" if dim == 2 else "tetrahedron"
    case = load_case(case_text(dim, side(dofs, dim), cell, steps, preconditioner), f"<bench {dim}D>")
    return Simulation(case, comm)

