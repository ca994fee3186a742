"""Messages about bad checkpoints and oversized meshes read well: no "None", no 300-digit number."""

import h5py
import numpy as np
import pytest

from solver.app.preflight import check_memory
from solver.case.records import StructuredMeshSpec
from solver.errors import CaseError
from solver.io import checkpoint


def test_a_checkpoint_without_temperature_says_so(tmp_path):
    path = tmp_path / "step.h5"
    with h5py.File(path, "w") as f:
        f.attrs["solver_checkpoint"] = checkpoint.FORMAT
    with pytest.raises(CaseError, match="checkpoint has no temperature dataset") as info:
        checkpoint.inspect(path, 10)
    assert "None" not in str(info.value)
    with h5py.File(path, "a") as f:
        f["temperature"] = np.zeros((2, 3))
    with pytest.raises(CaseError, match="holds 2 x 3 temperatures, the mesh has 10 nodes"):
        checkpoint.inspect(path, 10)


def test_the_memory_estimate_of_a_huge_mesh_is_short():
    from mpi4py import MPI

    spec = StructuredMeshSpec("box", "hexahedron", (2**62, 2**62, 2**62), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    with pytest.raises(CaseError) as info:
        check_memory(MPI.COMM_WORLD, "big.toml", spec)
    assert len(str(info.value)) < 250 and "GiB" in str(info.value)
