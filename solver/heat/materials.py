"""Materials per cell: ``material`` everywhere, then each region (a mesh-file group and/or a box
tested on cell centroids) overrides k, rho or c where it applies, later regions winning."""

from __future__ import annotations

import numpy as np

from solver.case.records import Material, Region
from solver.mesh.distributed import DistributedMesh


class Centroids:
    """Cell centroids of a mesh, computed when first asked for (only regions with a box need them)."""

    def __init__(self, mesh: DistributedMesh):
        self.mesh, self._values = mesh, None

    def __call__(self) -> np.ndarray:
        if self._values is None:
            self._values = self.mesh.coords[self.mesh.cells].mean(axis=1)
        return self._values


def region_cells(mesh: DistributedMesh, region: Region, centroids: Centroids) -> np.ndarray:
    """Mask of the cells in a region: in its mesh-file group and with the centroid in its box."""
    inside = np.ones(len(mesh.cells), dtype=bool)
    if region.group is not None:
        inside &= np.isin(mesh.cell_tags, mesh.groups.region_tags(region.group))
    for axis, bounds in enumerate(region.box[: mesh.dim]):
        if bounds is not None:
            c = centroids()[:, axis]
            inside &= (c >= bounds[0]) & (c <= bounds[1])
    return inside


def cell_materials(mesh: DistributedMesh, material: Material, regions: tuple[Region, ...]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell conductivity (n_cells, dim) and rho*c (n_cells,)."""
    dim = mesh.dim
    n = len(mesh.cells)
    kk = np.tile(np.broadcast_to(np.asarray(material.k, dtype=float), (dim,)), (n, 1))
    rho = np.full(n, float(material.rho))
    c = np.full(n, float(material.c))
    centroids = Centroids(mesh)
    for region in regions:
        inside = region_cells(mesh, region, centroids)
        if region.k is not None:
            kk[inside] = np.broadcast_to(np.asarray(region.k, dtype=float), (dim,))
        if region.rho is not None:
            rho[inside] = region.rho
        if region.c is not None:
            c[inside] = region.c
    return kk, rho * c
