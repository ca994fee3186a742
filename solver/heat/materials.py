"""Materials per cell: ``material`` everywhere, then each region (a mesh-file group and/or a box
tested on cell centroids) overrides k, rho or c where it applies, later regions winning."""

from __future__ import annotations

import numpy as np

from solver.case.records import Material, Region
from solver.mesh.distributed import DistributedMesh


def cell_materials(mesh: DistributedMesh, material: Material, regions: tuple[Region, ...]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell conductivity (n_cells, dim) and rho*c (n_cells,)."""
    dim = mesh.dim
    n = len(mesh.cells)
    kk = np.tile(np.broadcast_to(np.asarray(material.k, dtype=float), (dim,)), (n, 1))
    rho = np.full(n, float(material.rho))
    c = np.full(n, float(material.c))
    centroids = None  # only for regions with a box
    for region in regions:
        inside = np.ones(n, dtype=bool)
        if region.group is not None:
            inside &= mesh.cell_tags == mesh.groups.region[region.group]
        for axis, bounds in enumerate(region.box[:dim]):
            if bounds is not None:
                if centroids is None:
                    centroids = mesh.coords[mesh.cells].mean(axis=1)
                lo, hi = bounds
                inside &= (centroids[:, axis] >= lo) & (centroids[:, axis] <= hi)
        if region.k is not None:
            kk[inside] = np.broadcast_to(np.asarray(region.k, dtype=float), (dim,))
        if region.rho is not None:
            rho[inside] = region.rho
        if region.c is not None:
            c[inside] = region.c
    return kk, rho * c
