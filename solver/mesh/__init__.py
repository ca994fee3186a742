"""Meshes distributed over the ranks: reference cells, the distributed mesh and its numberings
(owned nodes first, then ghosts grouped by owner), structured rectangles and boxes built in
parallel, mesh files read on rank 0 and partitioned in parallel (multilevel, METIS or RCB).
"""

from solver.mesh.build import create_mesh
from solver.mesh.cells import CELLS, CELL_TYPES, ReferenceCell
from solver.mesh.distributed import DistributedMesh, Facets, MeshGroups, PartitionInfo

__all__ = ["CELLS", "CELL_TYPES", "DistributedMesh", "Facets", "MeshGroups", "PartitionInfo", "ReferenceCell",
           "create_mesh"]
