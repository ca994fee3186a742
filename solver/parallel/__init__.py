"""Communication between ranks, and the only place that packs MPI buffers.

Patterns are built once and reused: halo updates between neighbours (:class:`HaloExchange`,
:class:`NeighbourExchange`), owned items to and from the canonical blocks every file is written
in (:class:`BlockRedistributor`), set-up-time routing between any ranks (:class:`Route`,
:func:`fetch`), arrays to and from rank 0 (:mod:`.root`), and collective agreement on rank-0
actions and errors (:mod:`.collective`), and how the processes were launched (:mod:`.launcher`).
Nothing here knows about meshes or physics.
"""

from solver.lazy import exports

WHERE = {
    "all_arrived": "collective",
    "block_rank": "routing",
    "block_starts": "routing",
    "BlockRedistributor": "blocks",
    "check_launch": "launcher",
    "displacements": "buffers",
    "fetch": "routing",
    "gather_rows": "root",
    "HaloExchange": "exchange",
    "launched_by_mpi": "launcher",
    "max_over_ranks": "collective",
    "mpi_type": "buffers",
    "mpirun_command": "launcher",
    "mpirun_environment": "launcher",
    "NeighbourExchange": "exchange",
    "offsets": "buffers",
    "on_root": "collective",
    "rank_starts": "root",
    "Route": "routing",
    "scatter_blocks": "root",
    "scatter_rows": "root",
    "segments": "buffers",
    "sparse_alltoallv": "routing",
    "whole": "buffers",
}
__all__ = sorted(WHERE)
__getattr__ = exports(__name__, WHERE)
