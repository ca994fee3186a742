"""The case the benches time (no MPI here: ``bench --study`` writes it from a process that only
launches others)."""

from __future__ import annotations


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
