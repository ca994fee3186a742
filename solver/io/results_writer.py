"""The results file: one HDF5 file per run, written collectively, plus its XDMF index.

Layout (canonical, rank-independent order; identical whatever the number of ranks)::

    /mesh/geometry              (n_nodes, gdim) float64
    /mesh/topology              (n_cells, nodes_per_cell) int64, attr cell_type
    /fields/temperature/000000  (n_nodes,) float64, attrs time, step, units
    /fields/liquid_fraction/... the same, for a case with phase change (other nodal fields alike)
    /time, /step                (n_outputs,) times and step numbers of the snapshots
    /steps/time, dt, error, iterations
                                (n_steps,) every accepted time step: its end time, size, local error
                                estimate (adaptive steps; 1 = time.tolerance, NaN with a fixed dt)
                                and linear iterations
    /case_tables/<sha256>       (points, 2) float64: each distinct table of the case, which the
                                attribute case names (solver.io.stored_case)
    attrs: case (resolved TOML), case_file_text, case_source, solver_version, ranks, ...

Owned values are first moved to contiguous blocks of the canonical numbering
(:class:`BlockRedistributor`), then each rank writes its block as one hyperslab
(collective ``mpio`` writes), or, when h5py lacks MPI, rank 0 receives the blocks one at a
time and writes them (``gathered``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from mpi4py import MPI

from solver import __version__
from solver.errors import CaseError, OutputError, SolverExit
from solver.io import reserve
from solver.io.blockfile import (METADATA_BYTES, SERIES_CHUNK, BlockFile, choose_driver, free_bytes, open_block_file,
                                 park, write_or_fail)
from solver.io.end_record import EndRecord
from solver.io.provenance import provenance
from solver.io.xdmf import XdmfIndex
from solver.mesh.distributed import DistributedMesh
from solver.parallel.blocks import BlockRedistributor
from solver.parallel.collective import on_root

log = logging.getLogger(__name__)

RUNNING = "running"  # the status until the end record is written
UNITS_ATTRIBUTE = {"C": "degC", "K": "K"}  # the units attribute of the temperature, by the case's unit
SERIES = {"/time": np.float64, "/step": np.int64,
          "/balance/energy_change": np.float64, "/balance/relative_imbalance": np.float64}


class WriteHooks:
    """Points in the writing of the results where the tests inject faults (a full disk, a failed
    write); they do nothing here."""

    def before_snapshot(self, index: int, folder: Path, late: bool = False) -> None:
        """Before snapshot ``index`` is written (``late``: after its space was checked)."""

    def before_publish(self, index: int) -> None:
        """After the fields of snapshot ``index`` are written, before they are listed."""

    def before_end(self, folder: Path) -> None:
        """After the last snapshot and checkpoint, before the end record."""


@dataclass(frozen=True)
class ResultsLayout:
    """What a results file holds besides the mesh and the temperature: its root attributes (the
    case, its source, ...), the nodal fields written beside the temperature at each snapshot
    (:meth:`ResultsWriter.write`'s ``extra``), the temperature's unit (C or K), and the datasets of
    the tables that the attribute ``case`` names (:func:`solver.io.stored_case.stored_case`)."""

    attrs: dict = dataclasses.field(default_factory=dict)
    extra_fields: tuple[str, ...] = ()
    temperature_unit: str = "C"
    tables: dict = dataclasses.field(default_factory=dict)  # the case's tables the attribute case names, by path


STEP_TABLE = ("/steps/time", "/steps/dt", "/steps/error", "/steps/iterations")
PROBE_TABLE = ("/probes/time", "/probes/values")


def tables_bytes(tables: dict) -> int:
    """Disk space the datasets of a case's tables take."""
    return sum(points.nbytes + METADATA_BYTES for points in tables.values())


def table_bytes(rows: int, widths) -> int:
    """Disk space ``rows`` more rows take in series of ``widths`` values each (chunk rounding and
    metadata included): a table's write is checked and set aside like a snapshot's, so that a disk
    without room refuses it whole, not after its series grew by rows their values never reached."""
    return 8 * (rows + SERIES_CHUNK) * sum(widths) + METADATA_BYTES if rows else 0


def check_for_restart(h5_path: Path, n_snapshots: int, fields, n_nodes: int,
                      probe_points: np.ndarray | None = None, step_table: bool = True) -> None:
    """Refuse (CaseError) a results file that a restart could not continue as it stands: its
    series (/time, /step, /balance/*, the time-step table and, when the restart has probes, the
    probe table) must be extendable tables of the expected width (a table that is not chunked
    cannot grow: the restart failed half-way, the file already rewritten), the probe table's
    points those of ``probe_points``, and the ``n_snapshots`` snapshots it keeps fields of
    ``n_nodes`` values. Rank 0, serially, before anything in the file is changed (cut back,
    attributes rewritten): a refused restart leaves the file as it was. An object whose header
    cannot be read is left to :func:`trim_for_restart`, which copies or refuses it."""
    try:
        f = h5py.File(h5_path, "r")
    except OSError:
        return  # trim_for_restart says why
    advice = "a restart appends to it: run again with --overwrite (which keeps this file as .bak)"

    def damaged(what: str) -> CaseError:
        return CaseError(f"{h5_path}: damaged file: {what}; {advice}")

    def get(name: str):
        """The object ``name`` (None: absent), or ``...`` where its header cannot be read."""
        try:
            return f.get(name)
        except (OSError, RuntimeError, KeyError, ValueError, TypeError):
            return ...

    def series(name: str, kind: str, width: int | None = None, required: bool = True, growing: bool = True):
        ds = get(name)
        if ds is ...:
            return
        if ds is None:
            if required:
                raise damaged(f"{name} is missing")
            return
        try:
            shape, dtype, chunks, maxshape = ds.shape, ds.dtype, ds.chunks, ds.maxshape
        except (AttributeError, OSError, RuntimeError, KeyError, ValueError, TypeError):
            raise damaged(f"{name} is not a dataset") from None
        row = () if width is None else (width,)
        if len(shape) != 1 + len(row) or (row and shape[1:] != row) or dtype.kind not in kind:
            expected = ("a list of " if not row else f"a table of rows of {width} ") + \
                ("integers" if kind == "iu" else "floating-point numbers")
            raise damaged(f"{name} is not {expected} ({shape} {dtype})")
        if growing and (chunks is None or maxshape[0] is not None):
            raise damaged(f"{name} cannot grow (a dataset of fixed size, not chunked)")

    with f:
        series("/time", "f")
        series("/step", "iu")
        for name, dtype in SERIES.items():
            if name.startswith("/balance/"):
                series(name, "f", required=False)
        step = get("/step")
        if isinstance(step, h5py.Dataset) and step.shape[0] < n_snapshots:
            raise damaged(f"/step lists {step.shape[0]} snapshots, the checkpoint counts {n_snapshots}")
        if step_table:
            present = [name for name in STEP_TABLE if get(name) is not None]
            if present and len(present) < len(STEP_TABLE):
                missing = [name for name in STEP_TABLE if name not in present]
                raise damaged(f"its time-step table lacks {', '.join(missing)}")
            for name in present:
                series(name, "iu" if name.endswith("iterations") else "f")
        if probe_points is not None:
            if get(PROBE_TABLE[0]) is None:
                raise CaseError(f"{h5_path}: has no probe datasets to continue (output.probes was added?)")
            series("/probes/points", "f", probe_points.shape[1], growing=False)
            stored = get("/probes/points")
            if stored is not ...:
                try:
                    stored = stored[()]
                except (OSError, RuntimeError, KeyError, ValueError, TypeError):
                    stored = None
                if stored is None or stored.shape != probe_points.shape or \
                        not np.allclose(stored, probe_points, rtol=1e-12, atol=0):
                    raise CaseError(f"{h5_path}: its probe table has {0 if stored is None else len(stored)} probes "
                                    f"at other points than output.probes now ({len(probe_points)}); a restart "
                                    f"appends to that table: keep output.probes as it was, or run again with "
                                    f"--overwrite")
            series("/probes/time", "f")
            series("/probes/values", "f", len(probe_points))
        for field in fields:
            group = get(f"/fields/{field}")
            if group is ... or (group is None and field != "temperature"):
                continue  # a field the earlier run did not write: its snapshots start with the restart
            if not isinstance(group, h5py.Group):
                raise damaged(f"/fields/{field} is not a group of snapshots")
            for i in range(n_snapshots):
                name = f"/fields/{field}/{i:06d}"
                ds = get(name)
                if ds is ...:
                    continue
                if ds is None:
                    if field == "temperature":
                        raise damaged(f"{name} is missing (snapshot {i}, listed in /time)")
                    continue
                try:
                    shape, kind = ds.shape, ds.dtype.kind
                except (AttributeError, OSError, RuntimeError, KeyError, ValueError, TypeError):
                    raise damaged(f"{name} is not a dataset") from None
                if shape != (n_nodes,) or kind != "f":
                    raise damaged(f"{name} holds {shape} values of type {ds.dtype}, not one floating-point number "
                                  f"per node of the mesh ({n_nodes})")


def trim_for_restart(h5_path: Path, n_snapshots: int, keep_until: float | None, fields) -> None:
    """Cut the results file of a run to the checkpoint a restart continues from, on rank 0 alone
    before any rank opens it (HDF5 through MPI-IO cannot be trusted to shrink a dataset: the
    ranks' views of it part and their next collective call hangs): snapshots ``n_snapshots`` and
    later go, listed or not (a write that failed), and so do the time-step and probe rows after
    ``keep_until``. A failed write may have left objects whose headers HDF5 cannot read (deleting
    their links then fails half-way, and can take a listed snapshot with it): such a file is
    copied, what the restart keeps only, into a new one that replaces it (the old one stays
    beside it as ``.damaged``); what the copy cannot read is refused with the file untouched."""
    if not h5_path.exists():
        raise CaseError(f"{h5_path}: results file to continue not found (a restart appends to it)")
    try:
        f = h5py.File(h5_path, "r+")
    except OSError as exc:
        raise CaseError(f"{h5_path}: cannot open the results file to continue ({str(exc).splitlines()[0]})") from None
    with f:
        n = f["/time"].shape[0] if "/time" in f else None
        if n is None or n < n_snapshots:
            raise CaseError(f"{h5_path}: holds {n or 0} snapshots, the checkpoint expects at least {n_snapshots}")
        try:
            _read_headers(f)
            sound = True
        except (OSError, RuntimeError, KeyError, ValueError):
            sound = False
        if sound:
            _trim(f, n_snapshots, keep_until, fields, h5_path)
            return
    _rebuild(h5_path, n_snapshots, keep_until, fields)


def _read_headers(f: h5py.File) -> None:
    """Open every object of the file (its header: shape, attributes); raises where one cannot."""
    def visit(name, obj):
        dict(obj.attrs)
        if isinstance(obj, h5py.Dataset):
            obj.shape, obj.dtype
    f.visititems(visit)


def _trim(f: h5py.File, n_snapshots: int, keep_until: float | None, fields, h5_path: Path) -> None:
    """The cut of :func:`trim_for_restart`, in place."""
    for field in fields:
        group = f.get(f"/fields/{field}")
        for i in list(group) if isinstance(group, h5py.Group) else []:
            if not i.isdigit() or int(i) >= n_snapshots:
                del group[i]
    for name in SERIES:
        if name in f and f[name].shape[0] > n_snapshots:
            f[name].resize((n_snapshots,) + f[name].shape[1:])
    if keep_until is None:
        return
    times = f.get(STEP_TABLE[0])
    last = (float(times[-1]) if times.shape[0] else 0.0) if isinstance(times, h5py.Dataset) else keep_until
    if last < keep_until - 1e-9 * max(abs(keep_until), 1.0):
        log.warning(f"warning: {h5_path}: its time-step table ends at t = {last:.6g}, before the checkpoint's "
                    f"t = {keep_until:.6g} (a restart from an earlier step cut it back): the rows between "
                    f"will be missing; a checkpoint within the file's reach (--restart latest) leaves none")
    for table in (STEP_TABLE, PROBE_TABLE):
        if table[0] in f:
            keep = int(np.searchsorted(f[table[0]][()], keep_until * (1 + 1e-14), side="right"))
            for name in table:
                if name in f and f[name].shape[0] > keep:
                    f[name].resize((keep,) + f[name].shape[1:])


def _rebuild(h5_path: Path, n_snapshots: int, keep_until: float | None, fields) -> None:
    """Copy what the restart keeps of a damaged results file into a new file that takes its
    place (the old one kept as ``.damaged``); the file is left as it was where the copy fails."""
    new = h5_path.with_name(h5_path.name + ".rebuilt")
    damaged, n = h5_path.with_name(h5_path.name + ".damaged"), 1
    while os.path.lexists(damaged):  # one of an earlier restart stays
        n += 1
        damaged = h5_path.with_name(f"{h5_path.name}.damaged{n}")
    try:
        with h5py.File(h5_path, "r") as src, h5py.File(new, "w") as dst:
            dst.attrs.update(dict(src.attrs))
            if "fields" in src:
                dst.require_group("fields").attrs.update(dict(src["fields"].attrs))
            for name in src:
                if name != "fields":
                    src.copy(src[name], dst, name=name)
            for field in src.get("fields", {}):
                group, out = src["fields"][field], dst.require_group(f"fields/{field}")
                out.attrs.update(dict(group.attrs))
                for i in group:
                    if i.isdigit() and int(i) < n_snapshots:
                        src.copy(group[i], out, name=i)
        with h5py.File(new, "r+") as f:
            _trim(f, n_snapshots, keep_until, fields, h5_path)
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        new.unlink(missing_ok=True)
        raise CaseError(f"{h5_path}: the failed write damaged what a restart keeps of the results file "
                        f"({str(exc).splitlines()[0][:120]}); it is left as it was; run the case again "
                        f"(--overwrite keeps this file as .bak)") from None
    os.replace(h5_path, damaged)
    os.replace(new, h5_path)
    log.warning(f"warning: {h5_path}: a failed write left objects HDF5 cannot read in it; what the restart "
                f"keeps was copied into a new file (the old one is {damaged.name})")


class ResultsWriter:
    """Writes the mesh once and temperature snapshots; keeps the XDMF index up to date."""

    def __init__(self, directory: Path, name: str, mesh: DistributedMesh, layout: ResultsLayout = ResultsLayout(),
                 driver: str = "auto", continue_after: int | None = None, hooks: WriteHooks = WriteHooks(),
                 keep_until: float | None = None, probe_points: np.ndarray | None = None, step_table: bool = True):
        """``continue_after``: reopen the file of a restarted run keeping that many snapshots, and
        the rows of its time-step and probe tables up to ``keep_until``, after checking that the
        file fits the restart (:func:`check_for_restart`: its probe table that of ``probe_points``,
        a time-step table unless ``step_table`` is false) before anything in it changes;
        ``hooks``: the tests' fault injection."""
        comm = mesh.comm
        attrs, self.tables = layout.attrs, layout.tables
        self.hooks = hooks
        self.extra_fields = tuple(layout.extra_fields)
        self.units = {"temperature": UNITS_ATTRIBUTE[layout.temperature_unit], "liquid_fraction": "1"}
        self.comm, self.mesh = comm, mesh
        self.broken = False  # a write of the HDF5 file failed: it is left as last published
        self.h5_path = Path(directory) / f"{name}.h5"
        self.xdmf_path = Path(directory) / f"{name}.xdmf"
        driver = choose_driver(driver, comm)
        self.nodes = BlockRedistributor(comm, mesh.node_ids[: mesh.n_owned], mesh.n_global_nodes)
        self.cells = BlockRedistributor(comm, mesh.cell_ids[: mesh.n_owned_cells], mesh.n_global_cells)
        self.driver = driver
        self.xdmf = XdmfIndex(self.xdmf_path, self.h5_path.name, mesh.reference, mesh.n_global_nodes,
                              mesh.n_global_cells, mesh.dim, ("temperature",) + self.extra_fields) \
            if comm.rank == 0 else None
        if comm.rank == 0:
            reserve.keep(self.h5_path)
        if continue_after is not None:
            fields = ("temperature",) + self.extra_fields
            try:
                self._check_same_mesh(mesh)  # before the file is cut back
                on_root(comm, lambda: check_for_restart(self.h5_path, continue_after, fields, mesh.n_global_nodes,
                                                        probe_points, step_table), CaseError)
                on_root(comm, lambda: trim_for_restart(self.h5_path, continue_after, keep_until, fields), CaseError)
                self._continue(continue_after, attrs)
            except SolverExit:
                if comm.rank == 0:  # no results file continued: nothing for the reserve to keep room for
                    reserve.release(self.h5_path)
                raise
            return
        self.run_id = comm.bcast(uuid.uuid4().hex if comm.rank == 0 else None, root=0)
        try:
            self.backend = self.open_block_file(self.h5_path, "w")
        except SolverExit:
            if comm.rank == 0:  # no results file: nothing for the reserve to keep room for
                reserve.release(self.h5_path)
            raise
        geometry = self.nodes.to_blocks(mesh.coords[: mesh.n_owned])
        topology = self.cells.to_blocks(mesh.node_ids[mesh.owned_cells])
        root_attrs = {**attrs, "solver_version": __version__, "ranks": comm.size, "n_nodes": mesh.n_global_nodes,
                      "n_cells": mesh.n_global_cells, "cell_type": mesh.cell_type, "writer": self.backend.driver,
                      "status": RUNNING, "run_id": self.run_id,
                      **comm.bcast(provenance() if comm.rank == 0 else None, root=0)}

        def write_mesh():
            self.backend.write_blocks("/mesh/geometry", geometry, self.nodes)
            self.backend.write_blocks("/mesh/topology", topology, self.cells)
            self.backend.set_attrs("/mesh/topology", {"cell_type": mesh.cell_type})
            for name, dtype in SERIES.items():
                self.backend.create_series(name, dtype)
            for field in ("temperature",) + self.extra_fields:  # a results file even before its first snapshot
                self.backend.create_group(f"/fields/{field}")
            self.write_tables()
            self.backend.set_attrs("/", root_attrs)
            self.backend.flush()
        try:
            write_or_fail(comm, self.h5_path, "the mesh", write_mesh,
                          geometry.nbytes * comm.size + 2 * METADATA_BYTES + tables_bytes(self.tables))
        except OutputError as exc:
            if exc.broken:  # a write failed: closing the file would retry it, and crash at the process's end
                park(self.backend)
            else:  # refused before any write: closed now, not by the garbage collector on a full disk (a study
                try:  # goes on, and h5py printed "Exception ignored" for each such file)
                    self.backend.close()
                except (OSError, RuntimeError):
                    park(self.backend)
            if comm.rank == 0:  # no results file to end: the room set aside for its end goes back
                reserve.release(self.h5_path)
            raise
        self.snapshots: list[tuple[float, str]] = []

    def open_block_file(self, path: Path, mode: str = "w") -> BlockFile:
        """A block file with this results file's driver (also used for checkpoints)."""
        return open_block_file(path, self.comm, self.driver, mode)

    def _continue(self, n_snapshots: int, attrs: dict):
        """Reopen the results file of a restarted run (trimmed to the checkpoint already)."""
        self.backend = self.open_block_file(self.h5_path, "r+")
        self.run_id = self.backend.read_attr("/", "run_id", "")
        times = self.backend.read_all("/time")
        self.snapshots = [(float(t), f"/fields/temperature/{i:06d}") for i, t in enumerate(times[:n_snapshots])]
        self.write_tables()  # (a restart with --force after a table changed names a new one)
        self.backend.set_attrs("/", {"ranks": self.comm.size, **attrs, "status": RUNNING})
        if self.backend.file is not None and "error" in self.backend.file.attrs:  # an earlier failure's line:
            del self.backend.file.attrs["error"]  # this run's end record says how it ends (collective with mpio)
        self.backend.flush()
        if self.xdmf is not None:
            self.xdmf.rewrite(self.snapshots)

    def write_tables(self) -> None:
        """The datasets of the case's tables that the file does not hold yet."""
        for path, points in self.tables.items():
            self.backend.write_array(path, points)

    def _check_same_mesh(self, mesh: DistributedMesh) -> None:
        """A restart appends to the results file: its mesh must be this run's (its cell type and
        sizes, then each rank's block of its coordinates and cells), else the index would describe
        the old snapshots on the new mesh (a restart with --force after a change of mesh.cell
        wrote quadrilaterals over a file of triangles). Rank 0 reads the header; every rank then
        reads its own block (O(N/P)) and one reduction decides. A file that cannot be read is
        left to the trim, whose message says why."""
        stored = None
        if self.comm.rank == 0:
            try:
                with h5py.File(self.h5_path, "r") as f:
                    stored = tuple(f.attrs.get(k, d) for k, d in (("cell_type", ""), ("n_nodes", -1), ("n_cells", -1)))
                    stored = (stored[0].decode() if isinstance(stored[0], bytes) else str(stored[0]),
                              int(stored[1]), int(stored[2]))
            except (OSError, KeyError, ValueError, TypeError):
                stored = "unread"
        stored = self.comm.bcast(stored, root=0)
        if stored == "unread":
            return
        ours = (mesh.cell_type, mesh.n_global_nodes, mesh.n_global_cells)
        what = f"{stored[2]} {stored[0]} cells, {stored[1]} nodes"
        if stored == ours:
            geometry = self.nodes.to_blocks(mesh.coords[: mesh.n_owned])
            topology = self.cells.to_blocks(mesh.node_ids[mesh.owned_cells])
            verdict = 0  # 0 the same, 1 unreadable, 2 another mesh (which wins)
            try:  # independent reads of this rank's rows: no collective call that a failing rank could leave
                with h5py.File(self.h5_path, "r") as f:
                    theirs_g = f["/mesh/geometry"][self.nodes.start:self.nodes.stop]
                    theirs_t = f["/mesh/topology"][self.cells.start:self.cells.stop]
                scale = float(np.abs(geometry).max(initial=0.0))
                if theirs_g.shape != geometry.shape or theirs_t.shape != topology.shape or \
                        not np.array_equal(theirs_t, topology) or \
                        not np.allclose(theirs_g, geometry, rtol=1e-12, atol=1e-12 * max(scale, 1e-300)):
                    verdict = 2
            except (OSError, KeyError, ValueError, TypeError):
                verdict = 1
            verdict = self.comm.allreduce(verdict, op=MPI.MAX)
            if verdict != 2:
                return
            what = "the same cells and nodes in number, at other places or joined otherwise"
        raise CaseError(f"{self.h5_path}: its mesh ({what}) is not this run's ({mesh.n_global_cells} "
                        f"{mesh.cell_type} cells, {mesh.n_global_nodes} nodes); a restart appends to that file: "
                        f"keep the mesh as it was, or run again with --overwrite")

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
        stored = self.backend.read_all("/probes/points")
        if stored is None or stored.shape != points.shape or not np.allclose(stored, points, rtol=1e-12, atol=0):
            raise CaseError(f"{self.h5_path}: its probe table has {0 if stored is None else len(stored)} probes at "
                            f"other points than output.probes now ({len(points)}); a restart appends to that table: "
                            f"keep output.probes as it was, or run again with --overwrite")
        keep = int(np.searchsorted(times, keep_until * (1 + 1e-14), side="right"))
        if keep < len(times):  # trimmed already (trim_for_restart) unless the times moved since
            self.backend.truncate("/probes/time", keep)
            self.backend.truncate("/probes/values", keep)

    STEP_SERIES = dict(zip(STEP_TABLE, (np.float64, np.float64, np.float64, np.int64)))

    def init_steps(self, keep_until: float | None = None) -> None:
        """Create (or, on a restart, trim after ``keep_until``) the time-step table."""
        times = None if keep_until is None else self.backend.read_all("/steps/time")
        if times is None:
            for name, dtype in self.STEP_SERIES.items():
                self.backend.create_series(name, dtype)
            return
        keep = int(np.searchsorted(times, keep_until * (1 + 1e-14), side="right"))
        if keep < len(times):  # trimmed already (trim_for_restart) unless the times moved since
            for name in self.STEP_SERIES:
                self.backend.truncate(name, keep)

    def write_steps(self, records) -> None:
        """Append accepted steps (records with time, dt, error, iterations)."""
        def append():
            for name, dtype in self.STEP_SERIES.items():
                column = name.rsplit("/", 1)[1]
                self.backend.append_rows(name, np.array([getattr(r, column) for r in records], dtype=dtype))
        if records:  # flushed: the close then has nothing left to write (a full disk cannot spoil it)
            write_or_fail(self.comm, self.h5_path, "the time-step table", [append, self.backend.flush],
                          table_bytes(len(records), [1] * len(self.STEP_SERIES)), headroom=0)

    def write_probes(self, times: np.ndarray, values: np.ndarray) -> None:
        def append():
            self.backend.append_rows("/probes/time", times)
            self.backend.append_rows("/probes/values", values)
        write_or_fail(self.comm, self.h5_path, "the probe values", [append, self.backend.flush],
                      table_bytes(len(times), [1, values.shape[1]]), headroom=0)

    def snapshot_bytes(self) -> int:
        """Disk space one more snapshot takes (its fields, their metadata and series rows)."""
        return (8 * self.mesh.n_global_nodes + METADATA_BYTES) * (1 + len(self.extra_fields))

    def write(self, u_local: np.ndarray, t: float, step: int, balance=None, extra: dict | None = None) -> None:
        """One snapshot: the temperature and ``extra`` (name -> owned or local nodal values).

        Written first, then published: the fields reach the file and are flushed before
        ``/time`` and ``/step`` list them, and the XDMF index grows last. A write that fails
        (or would not fit on the disk) is an :class:`OutputError` on every rank, and the file
        still lists only complete snapshots."""
        fields = {"temperature": u_local, **(extra or {})}
        if set(fields) != {"temperature", *self.extra_fields}:
            raise ValueError(f"snapshot fields {sorted(fields)}, expected temperature and {self.extra_fields}")
        index = len(self.snapshots)
        name = f"/fields/temperature/{index:06d}"
        blocks = {field: self.nodes.to_blocks(fields[field][: self.mesh.n_owned]) for field in fields}
        self.hooks.before_snapshot(index, self.h5_path.parent)

        def field_writer(field):
            def write_field():
                path = f"/fields/{field}/{index:06d}"
                self.backend.write_blocks(path, blocks[field], self.nodes)
                self.backend.set_attrs(path, {"time": float(t), "step": int(step), "units": self.units.get(field, "")})
            return write_field
        write_fields = [lambda: self.hooks.before_snapshot(index, self.h5_path.parent, late=True)]
        write_fields += [field_writer(field) for field in ("temperature",) + self.extra_fields]
        write_fields.append(lambda: self.hooks.before_publish(index))
        write_fields.append(self.backend.flush)  # the values are on disk ...
        write_fields += [lambda field=field: self.backend.check_block(f"/fields/{field}/{index:06d}", blocks[field],
                                                                     self.nodes) for field in blocks]

        publish = [lambda: self.backend.append("/time", float(t)),  # ... before the snapshot is listed
                   lambda: self.backend.append("/step", int(step))]
        if balance is not None:
            publish += [lambda: self.backend.append("/balance/energy_change", balance.change),
                        lambda: self.backend.append("/balance/relative_imbalance", balance.relative)]
        publish.append(self.backend.flush)
        what = f"snapshot {index} (step {step}, t = {t:.6g})"
        try:
            write_or_fail(self.comm, self.h5_path, what, write_fields, self.snapshot_bytes())
            write_or_fail(self.comm, self.h5_path, f"the listing of {what}", publish, METADATA_BYTES)  # (set aside)
        except OutputError as exc:
            self.broken = exc.broken
            raise
        self.snapshots.append((float(t), name))
        write_or_fail(self.comm, self.xdmf_path, f"the XDMF index of {what} (the results file holds it)",
                      lambda: self.xdmf is not None and self.xdmf.append(float(t), name))  # rank 0's index

    def close(self, record: EndRecord | None = None) -> None:
        """Close with the end record (how the run ended; a file still saying running was not
        closed: the run was killed). After a failed write this is best effort: the file may keep
        saying running."""
        if self.backend is None:
            return
        backend, self.backend = self.backend, None
        self.hooks.before_end(self.h5_path.parent)
        self.release_reserve()
        try:
            write_or_fail(self.comm, self.h5_path, "the end of the file", backend.close)
        except OutputError:
            park(backend)
            raise
        if record is not None:  # in the room the reserve left; none: the file stays as last flushed
            write_or_fail(self.comm, self.h5_path, "the end record", lambda: self._write_end_record(record),
                          reserve.SIZE, headroom=0)

    def _write_end_record(self, record: EndRecord) -> None:
        """Rank 0 alone, in the closed file: a write that fails there cannot part the ranks inside
        a collective close of HDF5, as it would through the MPI-IO driver. The file is first
        extended by the room the end record takes (:func:`solver.io.reserve.extend`): HDF5 then
        writes into blocks the disk has given already, and cannot run out of space half-way."""
        if self.comm.rank == 0:
            reserve.extend(self.h5_path)
            f = h5py.File(self.h5_path, "r+")
            try:
                f.attrs.update(record.attrs())
                f.flush()
            except (OSError, RuntimeError):
                park(f)  # closing would retry the failed writes
                raise
            f.close()

    def release_reserve(self) -> None:
        """Give back the space set aside for the end (:mod:`solver.io.reserve`; collective)."""
        if self.comm.rank == 0:
            reserve.release(self.h5_path)
        self.comm.Barrier()

    def abandon(self, record: EndRecord) -> None:
        """Close after a failure, with the end record if it can still be written. A file
        whose write failed, or on a disk with less than the end record's room free once the
        reserve is released (:data:`solver.io.reserve.SIZE`: another program filled the disk and
        took the reserve's room too), is not touched again (it keeps saying running: ``info``
        reports it incomplete, no end record)."""
        self.release_reserve()
        free = free_bytes(self.h5_path.parent) if self.comm.rank == 0 else None
        full = self.comm.bcast(free is not None and free < reserve.SIZE, root=0)
        if self.broken or full:
            park(self.backend)
            self.backend = None
            return
        try:
            self.close(record)
        except OutputError:
            pass
