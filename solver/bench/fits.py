"""Whether the machine figures of ``bench`` fit in this machine's memory, checked before any part
runs (a ``--cells 1e9`` bench would otherwise build its meshes until the machine runs out)."""

from __future__ import annotations

from solver.errors import CaseError
from solver.parallel.collective import on_root
from solver.parallel.memory import BYTES_PER_NODE, memory_available

# bytes per cell of the assembly meshes at their largest (measured: 400,000 cells of each of the
# six meshes on one rank peaked at 1.03 GB)
ASSEMBLY_BYTES_PER_CELL = 2500
STREAM_BYTES = 24  # per element and rank: the triad's three arrays


def largest_need(sizes: dict, parts, ranks: int) -> tuple[float, str]:
    """(bytes, option) of the part of the bench that takes the most memory in all."""
    needs = [(0.0, "")]
    if "steps" in parts or "linalg" in parts or "hdf5" in parts:
        needs.append((sizes["dofs_2d"] * BYTES_PER_NODE[2], "--dofs-2d"))
    if "steps" in parts:
        needs.append((sizes["dofs_3d"] * BYTES_PER_NODE[3], "--dofs-3d"))
    if "stream" in parts or "linalg" in parts:
        needs.append((sizes["stream"] * STREAM_BYTES * ranks, "--stream"))
    if "assembly" in parts:
        cells = max(sizes["cells"], sizes.get("cells_3d") or 0)
        needs.append((cells * ASSEMBLY_BYTES_PER_CELL, "--cells-3d" if cells > sizes["cells"] else "--cells"))
    return max(needs)


def check_fits(comm, sizes: dict, parts) -> None:
    """Refuse (CaseError on every rank) sizes whose largest part needs more memory than this
    machine has available."""
    need, option = largest_need(sizes, parts, comm.size)
    have = on_root(comm, memory_available)
    if have is not None and need > have:
        value = sizes[option[2:].replace("-", "_")]
        ranks = f"{comm.size} rank{'s' if comm.size > 1 else ''}"
        raise CaseError(f"{option} {value:g}: needs about {need / 2**30:.3g} GiB on {ranks}, this machine has "
                        f"{have / 2**30:.1f} GiB available; give a smaller {option}")
