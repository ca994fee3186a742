"""The study file: one HDF5 file per study, written collectively by every rank of the world,
with an XDMF index of the statistics fields beside it. It is also the study's checkpoint.

    /samples/values            (samples, parameters) the sample table; attr keys
    /samples/status            (samples,) -1 not run yet, 0 done, else the exit status of the sample
    /samples/message, seconds  (samples,) the error of a failed sample (as wide as the longest, at most
                               400 bytes); wall time of each
    /outputs/<name>            (samples,) scalar outputs: max_temperature, min_temperature,
                               final_max_temperature, heat_in.<boundary>, steps, linear_iterations, ...
    /outputs/probes            (samples, times, probes) probe values at each sample's output times, NaN past the
                               sample's own count (samples may have different output times: outputs.fields = false);
                               /outputs/probe_times (samples, times) those times, /outputs/probe_count (samples,)
                               how many (NaN for a sample not done), /outputs/probe_points (probes, dim)
    /time                      (times,) output times of the field statistics
    /mesh/geometry, /mesh/topology   canonical order, as in a results file
    /statistics/{mean,std,min,max,m2}/000000   (nodes,) per output time; attr count (samples)
    /statistics/above_<k>/000000               (nodes,) probability that T > thresholds[k]
    attrs: study, case (texts), name, method, seed, keys, thresholds, fields (0 or 1), count, status, ranks,
    ranks_per_case
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np

from solver import __version__
from solver.errors import CaseError, OutputError
from solver.io.blockfile import open_block_file, write_temporary_or_fail
from solver.io.provenance import provenance
from solver.io.xdmf import XdmfIndex
from solver.mesh.cells import CELLS
from solver.parallel.collective import on_root
from solver.parallel.routing import block_starts
from solver.app.study.statistics import Moments

FORMAT = 1
PENDING = -1
STAT_FIELDS = ("mean", "std", "min", "max")
MESSAGE_BYTES = 400


def world_blocks(comm, n_global: int) -> SimpleNamespace:
    """This rank's contiguous block of ``0..n_global-1`` in the layout block files write."""
    starts = block_starts(n_global, comm.size)
    return SimpleNamespace(n_global=n_global, starts=starts, start=int(starts[comm.rank]),
                           stop=int(starts[comm.rank + 1]))


def study_path(directory: Path, name: str) -> Path:
    return Path(directory) / f"{name}.study.h5"


@dataclass
class SampleTable:
    """The samples: their parameter values, status (:data:`PENDING`, 0 done, else the exit status
    of the failed sample), wall time and the failed samples' messages."""

    values: np.ndarray  # (samples, parameters)
    status: np.ndarray
    seconds: np.ndarray
    message: np.ndarray  # of str
    index: np.ndarray | None = None  # the samples' numbers, where the table holds only some (a partial file)

    def columns(self) -> dict[str, np.ndarray]:
        found = {"values": self.values, "status": self.status, "seconds": self.seconds, "message": self.message}
        return found | ({"index": self.index} if self.index is not None else {})


@dataclass
class StudyMesh:
    """The mesh in this rank's world blocks of the canonical order, as a results file has it."""

    geometry: np.ndarray
    topology: np.ndarray
    n_cells: int
    cell_type: str
    dim: int


@dataclass
class StudyContents:
    """What a study file holds: its attributes, the sample table, the scalar outputs by name
    (``probes`` and ``probe_points`` among them), the output times, and, where the study keeps
    field statistics, the mesh and this rank's world block of the statistics. The tables of a
    study file being written are rank 0's (None on the other ranks: :func:`write_study`)."""

    attrs: dict
    table: SampleTable
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    times: np.ndarray | None = None
    n_nodes: int = 0
    mesh: StudyMesh | None = None
    stats: Moments | None = None


def merged_tables(spec, table: np.ndarray, earlier: StudyContents | None, gathered) -> StudyContents:
    """The sample table and the scalar outputs, earlier samples and this run's (rank 0; the
    earlier tables are taken over and updated in place, not copied)."""
    n = len(table)
    if earlier is not None:
        old = earlier.table
        status, seconds = np.asarray(old.status, dtype=np.int64), np.asarray(old.seconds, dtype=float)
        message = np.asarray(old.message, dtype=object)
    else:
        status, seconds = np.full(n, PENDING, dtype=np.int64), np.full(n, np.nan)
        message = np.full(n, "", dtype=object)
    outputs = {k: np.asarray(v, dtype=float) for k, v in (earlier.outputs if earlier else {}).items()}
    records = [rec for part in gathered for rec in part]
    for rec in records:
        status[rec.index], seconds[rec.index], message[rec.index] = rec.status, rec.seconds, rec.message
        for key, value in rec.scalars.items():
            outputs.setdefault(key, np.full(n, np.nan))[rec.index] = value
        if rec.probes is not None:
            put_probes(outputs, n, rec.index, rec.times, rec.probes)
    if spec.base.output.probes and "probes" in outputs:
        outputs["probe_points"] = np.array(spec.base.output.probes, dtype=float)
    return StudyContents({}, SampleTable(table, status, seconds, message), outputs)


PROBE_SERIES = ("probes", "probe_times")  # (samples, times, ...): as long as the longest sample's series


def widened(values: np.ndarray, n_times: int) -> np.ndarray:
    """A (samples, times, ...) table padded with NaN to ``n_times`` output times."""
    extra = n_times - values.shape[1]
    if extra <= 0:
        return values
    return np.concatenate([values, np.full((values.shape[0], extra) + values.shape[2:], np.nan)], axis=1)


def put_probes(outputs: dict, n: int, index: int, times: np.ndarray, probes: np.ndarray) -> None:
    """Sample ``index``'s probes (times, probes) and their times into ``outputs``' tables: each
    sample keeps its own output times (a sampled time.t_end or output.every changes them), the
    tables widened with NaN to the longest series and the count of each kept in probe_count."""
    count = len(probes)
    rows = {"probes": probes, "probe_times": np.asarray(times, dtype=float).reshape(count)}
    for key, row in rows.items():
        table = outputs.get(key, np.full((n, 0) + row.shape[1:], np.nan))
        table = widened(table, count)
        table[index] = np.nan
        table[index, :count] = row
        outputs[key] = table
    outputs.setdefault("probe_count", np.full(n, np.nan))[index] = count


def encoded(values: np.ndarray) -> np.ndarray:
    """Texts as fixed-length UTF-8 of at most :data:`MESSAGE_BYTES` each, as wide as the longest (1
    byte when every sample succeeded: the file grows by bytes per sample); a Python step only for
    the texts that are not empty (the failed samples' messages), not for every sample."""
    values = np.asarray(values)
    flat = values.ravel()
    full = np.flatnonzero(flat != ("" if values.dtype.kind in "UO" else b""))
    texts = [(v.decode(errors="ignore") if isinstance(v, bytes) else str(v)).encode()[:MESSAGE_BYTES]
             .decode(errors="ignore").encode() for v in flat[full]]
    out = np.zeros(flat.shape, dtype=f"S{max([1, *map(len, texts)])}")
    out[full] = texts
    return out.reshape(values.shape)


DATASET_BYTES = 4096  # HDF5's metadata per dataset (object header, name in its group), generously


def table_datasets(contents: StudyContents) -> dict[str, np.ndarray]:
    """The sample table, the scalar outputs and the output times as their datasets hold them
    (texts encoded: :func:`encoded`), by dataset name, in the order written."""
    found = {f"/samples/{k}": v for k, v in contents.table.columns().items()}
    found |= {f"/outputs/{k}": v for k, v in contents.outputs.items()}
    if contents.times is not None:
        found["/time"] = np.asarray(contents.times, dtype=float)
    found = {k: np.asarray(v) for k, v in found.items()}
    return {k: (encoded(v) if v.dtype.kind in "UO" else v) for k, v in found.items()}


def layout(datasets: dict[str, np.ndarray]) -> dict[str, tuple]:
    """The shape and dtype of each of ``datasets``: what the ranks that do not hold their values
    need to create them (a few bytes per dataset, whatever the number of samples)."""
    return {name: (values.shape, values.dtype.str) for name, values in datasets.items()}


def study_bytes(contents: StudyContents, tables: dict[str, tuple] | None = None) -> int:
    """The size of the study file that :func:`write_study` writes (every rank, the same): the
    room set aside before it, so that a disk filled by the saved runs fails the write at once,
    before anything is written, and not inside HDF5 half-way, which parts the ranks. ``tables``:
    the :func:`layout` of the tables' datasets (by default, of ``contents``' own)."""
    tables = layout(table_datasets(contents)) if tables is None else tables
    sizes = [np.dtype(dtype).itemsize * int(np.prod(shape)) for shape, dtype in tables.values()]
    mesh = contents.mesh
    if mesh is not None:
        sizes.append(8 * contents.n_nodes * mesh.geometry.shape[-1] + 8 * mesh.n_cells * mesh.topology.shape[-1])
    stats, times = contents.stats, contents.times
    if stats is not None and times is not None:
        fields = 5 + len(stats.thresholds)
        sizes += [8 * contents.n_nodes] * (fields * len(times))
    return int(sum(sizes) + DATASET_BYTES * (len(sizes) + 8))


def write_study(path: Path, comm, driver: str, contents: StudyContents) -> None:
    """Write the whole study file to ``path``.tmp and rename it over ``path`` (all ranks; the
    tables, the sample table and the scalar outputs, are rank 0's: the other ranks receive only
    their shapes and dtypes, and their ``contents.table`` may be None; the statistics and the mesh
    are this rank's world blocks)."""
    tmp = path.with_name(path.name + ".tmp")
    attrs, times, mesh, stats, n_nodes = contents.attrs, contents.times, contents.mesh, contents.stats, \
        contents.n_nodes
    tables = table_datasets(contents) if comm.rank == 0 else {}
    shapes = comm.bcast(layout(tables) if comm.rank == 0 else None, root=0)
    needed = study_bytes(contents, shapes)
    f = open_block_file(tmp, comm, driver, "w")

    def body():
        for name, (shape, dtype) in shapes.items():  # created by every rank (MPI-IO), written by rank 0
            if f.file is not None:
                ds = f.file.create_dataset(name, shape=shape, dtype=dtype)
                if comm.rank == 0 and np.prod(shape):
                    ds[...] = tables[name]
        if mesh is not None:
            nodes, cells = world_blocks(comm, n_nodes), world_blocks(comm, mesh.n_cells)
            f.write_blocks("/mesh/geometry", mesh.geometry, nodes)
            f.write_blocks("/mesh/topology", mesh.topology, cells)
            f.set_attrs("/mesh/topology", {"cell_type": mesh.cell_type})
        if stats is not None and times is not None:
            nodes = world_blocks(comm, n_nodes)
            parts = {"mean": stats.mean, "std": stats.std, "min": stats.min, "max": stats.max, "m2": stats.m2}
            parts |= {f"above_{k}": p for k, p in enumerate(stats.probability_above())}
            for name, values in parts.items():
                for i in range(len(times)):
                    f.write_blocks(f"/statistics/{name}/{i:06d}", np.ascontiguousarray(values[i]), nodes)
        f.set_attrs("/", {**attrs, "solver_study": FORMAT, "solver_version": __version__,
                          **comm.bcast(provenance() if comm.rank == 0 else None, root=0)})
    write_temporary_or_fail(comm, tmp, f, "the study file", [body, f.flush, f.close], needed=needed)

    def publish():  # on rank 0; a failure (a full disk) reaches every rank as an OutputError
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputError(f"{path}: cannot put the study file in place ({exc.strerror})") from None
        if mesh is not None and stats is not None and times is not None:
            cell = CELLS[mesh.cell_type]
            fields = STAT_FIELDS + tuple(f"above_{k}" for k in range(len(stats.thresholds)))  # (as info lists them)
            xdmf = XdmfIndex(path.with_suffix(".xdmf"), path.name, cell, n_nodes, mesh.n_cells, mesh.dim, fields)
            try:
                xdmf.rewrite([(float(t), f"/statistics/mean/{i:06d}") for i, t in enumerate(times)])
            except OSError as exc:
                raise OutputError(f"{xdmf.path}: cannot write the study's XDMF index ({exc.strerror}); the study "
                                  f"file {path.name} is complete") from None
    on_root(comm, publish, OutputError)


def read_study(path: Path, comm, driver: str, n_nodes: int | None) -> StudyContents:
    """The study file's attributes and output times (every rank), its tables (rank 0's: None on
    the others, which receive no row of them) and, with ``n_nodes``, this rank's world block of
    the statistics (to continue a stopped study)."""
    def look():
        if not path.is_file():
            raise CaseError("no study file to continue (run the study without --restart first)")
        try:
            with h5py.File(path, "r") as h:
                if h.attrs.get("solver_study") != FORMAT:
                    raise CaseError("not a study file of this solver")
                samples = h["samples"]
                table = SampleTable(samples["values"][()], samples["status"][()], samples["seconds"][()],
                                    np.array([m.decode() if isinstance(m, bytes) else str(m)
                                              for m in samples["message"][()]], dtype=object),
                                    samples["index"][()] if "index" in samples else None)
                return StudyContents({k: (v.decode() if isinstance(v, bytes) else v) for k, v in h.attrs.items()},
                                     table, {k: h["outputs"][k][()] for k in h.get("outputs", {})},
                                     h["time"][()] if "time" in h else None)
        except (OSError, KeyError) as exc:
            raise CaseError(f"cannot read it ({str(exc).splitlines()[0]}); move it away, or start the study "
                            f"again with --overwrite") from None
    try:
        data = on_root(comm, look, CaseError, shared=False)
    except CaseError as exc:
        raise CaseError(f"{path}: {exc}") from None
    attrs, times = comm.bcast((data.attrs, data.times) if comm.rank == 0 else None, root=0)
    data = data if comm.rank == 0 else StudyContents(attrs, None, {}, times)
    count = int(data.attrs.get("count", 0))
    if n_nodes is not None and data.times is not None and count:
        data.n_nodes = n_nodes
        data.stats = _read_statistics(path, comm, driver, data, count)
    return data


def _read_statistics(path: Path, comm, driver: str, data: StudyContents, count: int) -> Moments:
    """This rank's world block of the statistics of ``count`` samples."""
    f = open_block_file(path, comm, driver, "r")
    nodes = world_blocks(comm, data.n_nodes)
    n_times = len(data.times)
    thresholds = json.loads(data.attrs.get("thresholds", "[]"))
    read = {name: np.array([f.read_block(f"/statistics/{name}/{i:06d}", nodes) for i in range(n_times)])
            for name in ("mean", "m2", "min", "max")}
    above = np.zeros((len(thresholds),) + read["mean"].shape)
    for k in range(len(thresholds)):
        above[k] = [f.read_block(f"/statistics/above_{k}/{i:06d}", nodes) for i in range(n_times)]
    f.close()
    return Moments(count, read["mean"], read["m2"], read["min"], read["max"], np.rint(above * count),
                   np.asarray(thresholds, dtype=float))
