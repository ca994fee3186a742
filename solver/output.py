"""The results file: one HDF5 file per run, written collectively, plus its XDMF index.

Layout (canonical, rank-independent order; identical whatever the number of ranks)::

    /mesh/geometry              (n_nodes, gdim) float64
    /mesh/topology              (n_cells, nodes_per_cell) int64, attr cell_type
    /fields/temperature/000000  (n_nodes,) float64, attrs time, step
    /time, /step                (n_outputs,) times and step numbers of the snapshots
    attrs: case (resolved TOML), case_file_text, case_source, solver_version, ranks, ...

Owned values are first moved to contiguous blocks of the canonical numbering
(:class:`BlockRedistributor`), then each rank writes its block as one hyperslab
(collective ``mpio`` writes), or, when h5py lacks MPI, rank 0 receives the blocks one at a
time and writes them (``gathered``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
from mpi4py import MPI

from solver import __version__
from solver.collective import on_root
from solver.errors import CaseError
from solver.exchange import BlockRedistributor, _MPI_TYPES
from solver.mesh import DistributedMesh
from solver.xdmf import write_xdmf


SERIES = {"/time": np.float64, "/step": np.int64,
          "/balance/energy_change": np.float64, "/balance/relative_imbalance": np.float64}


def h5py_has_mpi() -> bool:
    return bool(h5py.get_config().mpi)


class _MpioFile:
    """All ranks open the file with the mpio driver; each writes its own block."""

    gathered = False

    def __init__(self, path: Path, comm, mode: str = "w"):
        self.comm = comm
        self.file = h5py.File(path, mode, driver="mpio", comm=comm)

    def read_block(self, name, start, stop, starts):
        ds = self.file[name]
        if all(starts[1:] > starts[:-1]):
            with ds.collective:
                return ds[start:stop]
        return ds[start:stop]

    def read_all(self, name):
        return self.file[name][()] if name in self.file else None

    def delete(self, name):
        if name in self.file:
            del self.file[name]

    def truncate(self, name, length):
        ds = self.file[name]
        ds.resize((length,) + ds.shape[1:])

    def write_blocks(self, name, block, start, global_shape, all_nonempty):
        ds = self.file.create_dataset(name, shape=global_shape, dtype=block.dtype)
        if all_nonempty:
            with ds.collective:
                ds[start:start + len(block)] = block
        elif len(block):
            ds[start:start + len(block)] = block
        return ds

    def append(self, name, value):
        ds = self.file[name]
        ds.resize((ds.shape[0] + 1,))
        if self.comm.rank == 0:
            ds[-1] = value

    def create_series(self, name, dtype, width=None):
        shape, maxshape, chunks = ((0,), (None,), (256,)) if width is None else ((0, width), (None, width), (256, width))
        self.file.create_dataset(name, shape=shape, maxshape=maxshape, chunks=chunks, dtype=dtype)

    def append_rows(self, name, rows):
        ds = self.file[name]
        n = ds.shape[0]
        ds.resize((n + len(rows),) + ds.shape[1:])
        if self.comm.rank == 0 and len(rows):
            ds[n:] = rows

    def set_attrs(self, path, attrs):
        node = self.file[path]
        for k, v in attrs.items():
            node.attrs[k] = v

    def flush(self):
        self.file.flush()

    def close(self):
        self.file.close()


class _GatheredFile:
    """Rank 0 owns the file (serial h5py); blocks travel to it one rank at a time."""

    gathered = True

    def __init__(self, path: Path, comm, mode: str = "w"):
        self.comm = comm
        error = None
        if comm.rank == 0:
            try:
                self.file = h5py.File(path, mode)
            except OSError as exc:
                error = exc
        else:
            self.file = None
        error = comm.bcast(error, root=0)
        if error is not None:
            raise error

    def read_block(self, name, start, stop, starts):
        comm = self.comm
        if comm.rank != 0:
            dtype = np.dtype(comm.recv(source=0, tag=78))
            buf = np.empty(stop - start, dtype=dtype)
            comm.Recv([buf, _MPI_TYPES[dtype]], source=0, tag=79)
            return buf
        ds = self.file[name]
        for r in range(1, comm.size):
            block = np.ascontiguousarray(ds[int(starts[r]):int(starts[r + 1])])
            comm.send(block.dtype.str, dest=r, tag=78)
            comm.Send([block, _MPI_TYPES[block.dtype]], dest=r, tag=79)
        return ds[start:stop]

    def read_all(self, name):
        value = self.file[name][()] if self.file is not None and name in self.file else None
        return self.comm.bcast(value, root=0)

    def delete(self, name):
        if self.file is not None and name in self.file:
            del self.file[name]

    def truncate(self, name, length):
        if self.file is not None:
            ds = self.file[name]
            ds.resize((length,) + ds.shape[1:])

    def write_blocks(self, name, block, start, global_shape, all_nonempty, starts=None):
        comm = self.comm
        block = np.ascontiguousarray(block)
        mpitype = _MPI_TYPES[block.dtype]
        if comm.rank != 0:
            comm.Send([block, mpitype], dest=0, tag=77)
            return None
        ds = self.file.create_dataset(name, shape=global_shape, dtype=block.dtype)
        ds[start:start + len(block)] = block
        for r in range(1, comm.size):
            lo, hi = int(starts[r]), int(starts[r + 1])
            buf = np.empty((hi - lo,) + tuple(global_shape[1:]), dtype=block.dtype)
            comm.Recv([buf, mpitype], source=r, tag=77)
            ds[lo:hi] = buf
        return ds

    def append(self, name, value):
        if self.file is not None:
            ds = self.file[name]
            ds.resize((ds.shape[0] + 1,))
            ds[-1] = value

    def create_series(self, name, dtype, width=None):
        if self.file is not None:
            shape, maxshape, chunks = ((0,), (None,), (256,)) if width is None else \
                ((0, width), (None, width), (256, width))
            self.file.create_dataset(name, shape=shape, maxshape=maxshape, chunks=chunks, dtype=dtype)

    def append_rows(self, name, rows):
        if self.file is not None:
            ds = self.file[name]
            n = ds.shape[0]
            ds.resize((n + len(rows),) + ds.shape[1:])
            if len(rows):
                ds[n:] = rows

    def set_attrs(self, path, attrs):
        if self.file is not None:
            node = self.file[path]
            for k, v in attrs.items():
                node.attrs[k] = v

    def flush(self):
        if self.file is not None:
            self.file.flush()

    def close(self):
        if self.file is not None:
            self.file.close()


class ResultsFile:
    """Writes the mesh once and temperature snapshots; keeps the XDMF index up to date."""

    def __init__(self, directory: Path, name: str, mesh: DistributedMesh, attrs: dict,
                 driver: str = "auto", log=print, continue_after: int | None = None):
        comm = mesh.comm
        self.comm, self.mesh = comm, mesh
        self.h5_path = Path(directory) / f"{name}.h5"
        self.xdmf_path = Path(directory) / f"{name}.xdmf"
        if driver == "auto":
            driver = "mpio" if h5py_has_mpi() else "gathered"
            if driver == "gathered" and comm.size > 1 and comm.rank == 0:
                log("warning: h5py was built without MPI; writing the results through rank 0 "
                    "(slower; rebuild h5py with HDF5_MPI=ON for parallel output)", file=sys.stderr)
        elif driver == "mpio" and not h5py_has_mpi():
            raise CaseError("output.driver = \"mpio\" needs h5py built with MPI; use \"auto\" or \"gathered\"")
        self.nodes = BlockRedistributor(comm, mesh.node_ids[: mesh.n_owned], mesh.n_global_nodes)
        self.cells = BlockRedistributor(comm, mesh.cell_ids[: mesh.n_owned_cells], mesh.n_global_cells)
        self.driver = driver
        if continue_after is not None:
            self._continue(continue_after, attrs)
            return
        self._open(driver)
        geometry = self.nodes.to_blocks(mesh.coords[: mesh.n_owned])
        topology = self.cells.to_blocks(mesh.node_ids[mesh.owned_cells])
        self._write("/mesh/geometry", geometry, self.nodes)
        self._write("/mesh/topology", topology, self.cells)
        self.backend.set_attrs("/mesh/topology", {"cell_type": mesh.cell_type})
        for name, dtype in SERIES.items():
            self.backend.create_series(name, dtype)
        self.backend.set_attrs("/", {**attrs, "solver_version": __version__, "ranks": comm.size,
                                     "n_nodes": mesh.n_global_nodes, "n_cells": mesh.n_global_cells,
                                     "cell_type": mesh.cell_type, "writer": self.driver})
        self.snapshots: list[tuple[float, str]] = []

    def open_block_file(self, path: Path, mode: str = "w"):
        """A block file with this results file's driver (also used for checkpoints)."""
        ok = np.array([1], dtype=np.int64)
        error, backend = "", None
        try:
            backend = (_MpioFile if self.driver == "mpio" else _GatheredFile)(path, self.comm, mode)
        except OSError as exc:
            ok[0], error = 0, str(exc).splitlines()[0]
        self.comm.Allreduce(MPI.IN_PLACE, ok, op=MPI.MIN)
        if not ok[0]:
            verb = "create" if mode == "w" else "open"
            raise CaseError(f"{path}: cannot {verb} the file ({error or 'failed on another rank'})")
        return backend

    def _open(self, driver):
        self.backend = self.open_block_file(self.h5_path, "w")

    def _continue(self, n_snapshots: int, attrs: dict):
        """Reopen the results file of a restarted run, dropping snapshots written after the
        checkpoint (so none is duplicated) and keeping the rest."""
        if not on_root(self.comm, self.h5_path.exists):
            raise CaseError(f"{self.h5_path}: results file to continue not found (a restart appends to it)")
        self.backend = self.open_block_file(self.h5_path, "r+")
        times = self.backend.read_all("/time")
        if times is None or len(times) < n_snapshots:
            raise CaseError(f"{self.h5_path}: holds {0 if times is None else len(times)} snapshots, "
                            f"the checkpoint expects at least {n_snapshots}")
        for i in range(n_snapshots, len(times)):
            self.backend.delete(f"/fields/temperature/{i:06d}")
        for name in SERIES:
            self.backend.truncate(name, n_snapshots)
        self.snapshots = [(float(t), f"/fields/temperature/{i:06d}") for i, t in enumerate(times[:n_snapshots])]
        self.backend.set_attrs("/", {"ranks": self.comm.size, **attrs})
        self.backend.flush()

    def _write(self, name, block, dist: BlockRedistributor):
        global_shape = (dist.n_global,) + block.shape[1:]
        all_nonempty = dist.n_global >= self.comm.size
        if self.backend.gathered:
            return self.backend.write_blocks(name, block, dist.start, global_shape, all_nonempty, dist.starts)
        return self.backend.write_blocks(name, block, dist.start, global_shape, all_nonempty)

    def init_probes(self, points: np.ndarray, keep_until: float | None = None) -> None:
        """Create (or, on a restart, trim after ``keep_until``) the probe datasets."""
        if keep_until is None:
            self.backend.create_series("/probes/time", np.float64)
            self.backend.create_series("/probes/values", np.float64, width=len(points))
            self.backend.create_series("/probes/points", np.float64, width=points.shape[1])
            self.backend.append_rows("/probes/points", points)
            return
        times = self.backend.read_all("/probes/time")
        if times is None:
            raise CaseError(f"{self.h5_path}: has no probe datasets to continue (output.probes was added?)")
        keep = int(np.searchsorted(times, keep_until, side="right"))
        self.backend.truncate("/probes/time", keep)
        self.backend.truncate("/probes/values", keep)

    def write_probes(self, times: np.ndarray, values: np.ndarray) -> None:
        self.backend.append_rows("/probes/time", times)
        self.backend.append_rows("/probes/values", values)

    def write(self, u_local: np.ndarray, t: float, step: int, balance=None) -> None:
        block = self.nodes.to_blocks(u_local[: self.mesh.n_owned])
        name = f"/fields/temperature/{len(self.snapshots):06d}"
        self._write(name, block, self.nodes)
        self.backend.set_attrs(name, {"time": float(t), "step": int(step)})
        self.backend.append("/time", float(t))
        self.backend.append("/step", int(step))
        if balance is not None:
            self.backend.append("/balance/energy_change", balance.change)
            self.backend.append("/balance/relative_imbalance", balance.relative)
        self.backend.flush()
        self.snapshots.append((float(t), name))
        if self.comm.rank == 0:
            write_xdmf(self.xdmf_path, self.h5_path.name, self.mesh.cell_type, self.mesh.n_global_nodes,
                       self.mesh.n_global_cells, self.mesh.reference.n_nodes, self.mesh.dim,
                       self.snapshots)

    def close(self, attrs: dict | None = None) -> None:
        if self.backend is None:
            return
        if attrs:
            self.backend.set_attrs("/", attrs)
        self.backend.close()
        self.backend = None
