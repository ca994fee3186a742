"""Meshes distributed over the ranks: reference cells, the distributed mesh and its numberings
(owned nodes first, then ghosts grouped by owner), structured rectangles and boxes built in
parallel, mesh files read on rank 0 and partitioned in parallel (multilevel, METIS or RCB).
"""

from solver.lazy import exports

WHERE = {
    "CELL_TYPES": "cells",
    "CELLS": "cells",
    "create_mesh": "build",
    "DistributedMesh": "distributed",
    "Facets": "distributed",
    "MeshGroups": "distributed",
    "PartitionInfo": "distributed",
    "ReferenceCell": "cells",
}
__all__ = sorted(WHERE)
__getattr__ = exports(__name__, WHERE)
