"""The distributed mesh of a case: structured, or read from a file and partitioned."""

from __future__ import annotations

from solver.case.records import MeshFileSpec, MeshSpec
from solver.mesh.distributed import DistributedMesh


def create_mesh(comm, spec: MeshSpec, degree: int = 1) -> DistributedMesh:
    """Collective: every rank gets its part of the mesh ``spec`` describes, its cells of Lagrange
    ``degree`` (their nodes are the degrees of freedom)."""
    if isinstance(spec, MeshFileSpec):
        from solver.mesh.files import distributed_mesh
        return distributed_mesh(comm, spec.path, spec.partitioner, degree)
    from solver.mesh.structured import structured_mesh
    return structured_mesh(comm, spec.cell, spec.n, spec.lengths, spec.origin, degree)
