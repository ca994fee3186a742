"""Communication between ranks, and the only place that packs MPI buffers.

Patterns are built once and reused: halo updates between neighbours (:class:`HaloExchange`,
:class:`NeighbourExchange`), owned items to and from the canonical blocks every file is written
in (:class:`BlockRedistributor`), set-up-time routing between any ranks (:class:`Route`,
:func:`fetch`), arrays to and from rank 0 (:mod:`.root`), and collective agreement on rank-0
actions and errors (:mod:`.collective`), and how the processes were launched (:mod:`.launcher`).
Nothing here knows about meshes or physics.
"""

from solver.parallel.blocks import BlockRedistributor
from solver.parallel.buffers import displacements, mpi_type, offsets, segments, whole
from solver.parallel.collective import all_arrived, max_over_ranks, on_root
from solver.parallel.exchange import HaloExchange, NeighbourExchange
from solver.parallel.launcher import check_launch, launched_by_mpi, mpirun_command, mpirun_environment
from solver.parallel.root import gather_rows, rank_starts, scatter_blocks, scatter_rows
from solver.parallel.routing import Route, block_rank, block_starts, fetch, sparse_alltoallv

__all__ = ["BlockRedistributor", "HaloExchange", "NeighbourExchange", "Route", "all_arrived", "block_rank",
           "block_starts", "check_launch", "displacements", "fetch", "gather_rows", "launched_by_mpi", "max_over_ranks",
           "mpi_type", "mpirun_command", "mpirun_environment", "offsets",
           "on_root", "rank_starts", "scatter_blocks", "scatter_rows", "segments", "sparse_alltoallv", "whole"]
