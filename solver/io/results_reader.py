"""Reading results files from Python (notebooks, scripts) and finite-element point evaluation.

    from solver.io import results
    r = results.open("outputs/plate/plate.h5")
    r.points, r.cells, r.cell_type        # mesh in canonical (file) order
    r.times, r.steps                      # one entry per snapshot
    T = r.temperature(-1)                 # last snapshot, read on demand
    r.fields                              # nodal fields: ("temperature", "liquid_fraction", ...)
    fl = r.field(-1, "liquid_fraction")   # another nodal field (phase change); missing: CaseError
    r.probe([[0.1, 0.05]], -1)            # interpolated values at points (name=... for another field)
    r.case                                # the resolved case as a dict

Everything is read lazily from the HDF5 file with plain (serial) h5py. A bad argument (an index
that is not a whole number within the snapshots, a field the file does not hold, points of another
dimension, not finite or outside the mesh) raises CaseError naming it as the call does (``index=``,
``name=``, ``points``).
"""

from __future__ import annotations

import builtins
import tomllib
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from solver.case.inputfiles import DIRECTORY, MISSING, file_problem
from solver.case.schema import SCHEMA
from solver.case.shown import shown, size
from solver.errors import CaseError
from solver.fem.geometry import CellGeometry
from solver.fem.locate import PointLocator
from solver.io.folder import RUN_LOCK, run_holds
from solver.io.provenance import FORMAT_VERSION
from solver.io.stored_case import StoredCaseError, expand, read_tables
from solver.mesh.cells import CELLS

# fields whose values lie in a range: the quadratic basis interpolates nodal values within it to
# values beyond it between the nodes (a liquid fraction of -0.03 or 1.09), which are clipped
FIELD_RANGES = {"liquid_fraction": (0.0, 1.0)}


def hdf5_signature(path: Path) -> bool:
    """Whether the file begins as an HDF5 file does (its superblock's signature)."""
    try:
        with Path(path).open("rb") as f:
            return f.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def _begins_blank(path: Path) -> bool:
    """Whether the file is empty or begins with zeros: HDF5 had not yet written its superblock
    (a run stopped while it created the file: killed, or its disk full)."""
    try:
        with Path(path).open("rb") as f:
            return not f.read(8).strip(b"\0")
    except OSError:
        return False


class SolverFile:
    """What every HDF5 file this solver writes shares, read on demand from ``self.file`` (an open
    h5py file): the root attributes and the canonical mesh with a point locator."""

    file: h5py.File

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.file.close()

    @property
    def attrs(self) -> dict:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in self.file.attrs.items()}

    @cached_property
    def points(self) -> np.ndarray:
        points = self.file["mesh/geometry"][()]
        if not (points.ndim == 2 and points.shape[1] in (2, 3) and np.issubdtype(points.dtype, np.floating)
                and np.isfinite(points).all()):
            raise CaseError(f"{self.path}: damaged file: /mesh/geometry is not a table of finite 2D or 3D points")
        if CELLS[self.cell_type].dim != points.shape[1]:
            raise CaseError(f"{self.path}: damaged file: {self.cell_type} cells on points of {points.shape[1]} "
                            f"coordinates")
        return points

    @cached_property
    def cells(self) -> np.ndarray:
        cells = self.file["mesh/topology"][()]
        nodes = CELLS[self.cell_type].n_nodes
        if not (cells.ndim == 2 and cells.shape[1] == nodes and np.issubdtype(cells.dtype, np.integer)):
            raise CaseError(f"{self.path}: damaged file: /mesh/topology is not a table of {nodes} node numbers "
                            f"per {self.cell_type} cell")
        if len(cells) and (cells.min() < 0 or cells.max() >= len(self.points)):
            raise CaseError(f"{self.path}: damaged file: /mesh/topology refers to nodes beyond the "
                            f"{len(self.points)} of /mesh/geometry")
        return cells

    @property
    def cell_type(self) -> str:
        name = self.file["mesh/topology"].attrs.get("cell_type")
        name = name.decode() if isinstance(name, bytes) else str(name)
        if name not in CELLS:
            raise CaseError(f"{self.path}: damaged file: /mesh/topology has no known cell type ({name[:40]!r})")
        return name

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    @cached_property
    def locator(self) -> PointLocator:
        return PointLocator(self.cell_type, self.points, self.cells)

    @cached_property
    def node_weights(self) -> np.ndarray:
        """``int N_i`` over the mesh for every node (m^2 or m^3): a nodal field u's mean over the
        body is ``node_weights . u / node_weights.sum()``, the finite-element field's own."""
        ref = CELLS[self.cell_type]
        out = np.zeros(len(self.points))
        for start in range(0, len(self.cells), 1 << 16):
            cells = self.cells[start:start + (1 << 16)]
            with np.errstate(all="ignore"):  # (cells of no volume: a mean of NaN)
                g = CellGeometry(self.cell_type, self.points, cells, 2 * ref.degree, gradients=False)
            wdet = np.broadcast_to(g.wdet, (len(cells), len(g.weights)))
            out += np.bincount(cells.ravel(), weights=(wdet @ g.N).ravel(), minlength=len(out))
        return out

    def mean(self, values: np.ndarray) -> float:
        """The mean over the body of the nodal field ``values`` (weighted by :attr:`node_weights`)."""
        w = self.node_weights
        with np.errstate(all="ignore"):  # (cells of no volume: NaN)
            w = w / np.max(np.abs(w))  # weights of cells of 1e300 m^3 would overflow their sums
            return float(np.dot(w, values) / w.sum())


# the tables of a case (the stored case is the resolved one: each is a table), which the readers look into
CASE_TABLES = (*SCHEMA, "boundary", "region")


class _OwnFile(h5py.File):
    """An h5py file read through its own Python file object, which it closes with it."""

    def close(self):
        try:
            super().close()
        finally:
            self.source.close()


def open_unbuffered(path: Path) -> h5py.File:
    """``path`` opened read-only without HDF5's sieve buffer: a read then reaches the file when it
    is made. With the buffer, a small field read while a run writes the file came from the bytes
    buffered at an earlier read, before the run wrote that field: zeros, listed as a snapshot.
    The file is read through a Python file object of its own: HDF5 shares one view (its cached
    metadata) among the handles of a file it has open already, so a second reader in the same
    process (a notebook that opens it again) saw the snapshots of the first reader's moment, never
    the run's later ones, or was refused for good where that view met a structure half-written."""
    source = builtins.open(path, "rb")
    try:
        fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
        fapl.set_fileobj_driver(h5py.h5fd.fileobj_driver, source)
        fapl.set_sieve_buf_size(0)
        f = _OwnFile(h5py.h5f.open(repr(source).encode("ascii", "replace"), h5py.h5f.ACC_RDONLY, fapl=fapl))
    except BaseException:
        source.close()
        raise
    f.source = source
    return f


def indexed_results(path: Path) -> Path | None:
    """The results file an XDMF index beside it names by its own name (``NAME.xdmf``: ``NAME.h5``;
    the index --overwrite set aside, ``NAME.xdmf.bak``: ``NAME.h5.bak``), or None for another name."""
    name = path.name
    for index, data in ((".xdmf", ".h5"), (".xdmf.bak", ".h5.bak")):
        if name.lower().endswith(index) and len(name) > len(index):
            return path.with_name(name[: -len(index)] + data)
    return None


class Results(SolverFile):
    def __init__(self, path: str | Path):
        self.path = Path(path)
        problem = file_problem(self.path)
        if problem == MISSING:
            raise CaseError(f"{self.path}: results file not found")
        if problem == DIRECTORY:
            run, study = (self.path / f"{self.path.name}{end}" for end in (".h5", ".study.h5"))  # NAME/NAME.h5
            hint = f" (a run's folder: its results are {run})" if run.is_file() else \
                f" (a study's folder: its study file is {study})" if study.is_file() else ""
            raise CaseError(f"{self.path}: is a directory, expected a results .h5 file{hint}")
        if problem is not None:
            raise CaseError(f"{self.path}: {problem}, expected a results .h5 file")
        try:
            self.file = open_unbuffered(self.path)
        except OSError:
            what = "a damaged or truncated HDF5 file" if hdf5_signature(self.path) else "not an HDF5 file"
            beside = indexed_results(self.path)
            if beside is not None and beside.is_file():  # (the index ParaView opens)
                raise CaseError(f"{self.path}: an XDMF index, {what}: the results are in {beside}") from None
            if run_holds(self.path.parent):  # (HDF5 is met half-written while a run creates or extends it)
                raise CaseError(f"{self.path}: {what} for now: a run holds its folder ({RUN_LOCK}) and may be writing "
                                f"it; read it again after the run's next snapshot") from None
            log = self.path.with_suffix(".log")
            if not hdf5_signature(self.path) and _begins_blank(self.path) and log.is_file():
                raise CaseError(self._cut_at_creation(log.name)) from None
            raise CaseError(f"{self.path}: {what} (expected a results .h5 file of this solver)") from None
        if "mesh/geometry" not in self.file or "fields/temperature" not in self.file or "time" not in self.file:
            study = "solver_study" in self.file.attrs
            saved = "solver_checkpoint" in self.file.attrs
            begun = "run_id" in self.file.attrs and "solver_version" in self.file.attrs  # (the writer's own)
            self.file.close()
            if saved:
                raise CaseError(f"{self.path}: a checkpoint, not a run's results: a run continues from it "
                                f"(python -m solver CASE --restart {self.path})")
            if study:
                raise CaseError(f"{self.path}: a study file, not a run's results: its statistics are read with "
                                f"info and plot (python -m solver info {self.path})")
            if begun:
                raise CaseError(self._cut_at_creation(self.path.with_suffix(".log").name))
            raise CaseError(f"{self.path}: not a results file of this solver (no /mesh/geometry, "
                            f"/fields/temperature and /time)")
        try:
            self._check_layout()
        except CaseError:
            self.file.close()
            raise
        except (RuntimeError, OSError, KeyError, ValueError) as exc:  # HDF5 met a structure half-written
            why = self._unreadable_why()
            self.file.close()
            raise CaseError(f"{self.path}: its tables cannot be read ({str(exc).splitlines()[0][:120]}): {why}") \
                from None

    def _cut_at_creation(self, log: str) -> str:
        return f"{self.path}: the results file of a run that stopped while creating it (killed, or its disk full: " \
               f"see {log} beside it), before its mesh and first snapshot: nothing to read or continue; run the " \
               f"case again with --overwrite"

    def _unreadable_why(self) -> str:
        """Why HDF5 met a structure half-written: a run writing the file (its end record says
        running), else damage."""
        try:
            writing = self.file.attrs.get("status") in ("running", b"running")
        except (RuntimeError, OSError, KeyError, ValueError):
            writing = False
        return "a run is writing the file, or it is damaged; read it again after the run's next snapshot, or " \
            "after the run" if writing else "the file is damaged"

    def _check_layout(self) -> None:
        """The structure every command reads, checked once (a file changed or damaged after it was
        written is refused in one line, not met half-way through a command)."""
        f = self.file

        def damaged(what: str):
            return CaseError(f"{self.path}: damaged file: {what}")
        version = f.attrs.get("format_version", FORMAT_VERSION)
        if not isinstance(version, (int, np.integer)):
            raise damaged(f"its attribute format_version = {shown(version)} is not a whole number")
        if not 1 <= version <= FORMAT_VERSION:
            raise CaseError(f"{self.path}: results of format {str(version)[:20]}, this solver reads format "
                            f"{FORMAT_VERSION} (written by another version of the solver?)")
        on_disk = self.path.stat().st_size
        for name in ("mesh/geometry", "mesh/topology", "time", "step"):
            if not isinstance(f.get(name), h5py.Dataset):
                raise damaged(f"/{name} is missing or not a dataset")
        for table in tables(f):  # (the commands read them whole: /steps/dt of --dt, /probes/values of --series)
            declared = table.size * table.dtype.itemsize  # (written uncompressed: it cannot hold more)
            if declared > on_disk and table.compression is None:
                raise damaged(f"{table.name} declares {size(declared)} of values, more than the whole file holds "
                              f"({size(on_disk)})")
        if not isinstance(f.get("fields"), h5py.Group) or not isinstance(f.get("fields/temperature"), h5py.Group):
            raise damaged("/fields/temperature is not a group of snapshots")
        times, steps = f["time"], f["step"]
        if times.ndim != 1 or not np.issubdtype(times.dtype, np.floating):
            raise damaged(f"/time is not a list of times ({times.shape} {times.dtype})")
        if steps.ndim != 1 or not np.issubdtype(steps.dtype, np.integer):
            raise damaged(f"/step is not a list of step numbers ({steps.shape} {steps.dtype})")
        held = len(f["fields/temperature"])  # (counted from the group's links: nothing read)
        # a write cut short leaves the tables one apart; one snapshot missing is named where it is read
        if abs(times.shape[0] - steps.shape[0]) > 1 or self._listed > held + 1:
            raise damaged(f"/time lists {times.shape[0]} snapshots, /step {steps.shape[0]}, and /fields/temperature "
                          f"holds {held}")
        t = times[: self._listed]  # the listed snapshots' (a write cut short: no more)
        if not np.isfinite(t).all() or np.any(np.diff(t) < 0):
            raise damaged("/time holds times that are not finite or not in increasing order")
        s = steps[: self._listed]
        if np.any(s < 0) or np.any(np.diff(s) < 0):
            raise damaged("/step holds step numbers that are negative or not in increasing order")
        text = f.attrs.get("case", "")
        text = text.decode(errors="replace") if isinstance(text, bytes) else text
        if not isinstance(text, str):
            raise damaged("its attribute case is not the text of a case")
        try:
            case = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise damaged(f"its attribute case is not valid TOML ({str(exc)[:80]})") from None
        wrong = [key for key, value in case.items() if key in CASE_TABLES and not isinstance(value, dict)]
        if wrong:
            raise damaged(f"its attribute case gives {wrong[0]} as {shown(case[wrong[0]])}, not a table")
        try:
            self._case = expand(case, read_tables(f, case))
        except StoredCaseError as exc:
            raise damaged(str(exc)) from None

    @cached_property
    def times(self) -> np.ndarray:
        """The time of each listed snapshot: one with its time and its step number (a write that
        failed between the two, or one being made, lists it in one table only)."""
        return self.file["time"][: self._listed]

    @cached_property
    def steps(self) -> np.ndarray:
        return self.file["step"][: self._listed]

    @cached_property
    def _listed(self) -> int:
        """The snapshots listed in both tables; while a run writes, without the last one where its
        temperature is not there yet (a snapshot being written: the commands read the one before)."""
        n = min(self.file["time"].shape[0], self.file["step"].shape[0])
        if n and self.attrs.get("status") in ("running", b"running"):
            try:
                last = self.file["fields/temperature"].get(f"{n - 1:06d}")
                written = isinstance(last, h5py.Dataset) and last.shape == (self.file["mesh/geometry"].shape[0],)
            except (RuntimeError, OSError, KeyError, ValueError):
                written = False
            n -= 0 if written else 1
        return n

    @property
    def case(self) -> dict:
        """The resolved case of the run, each of its tables' points in place (read and checked
        when the file is opened)."""
        return self._case

    def require_snapshots(self) -> int:
        """The number of snapshots, refused (exit 2) when there is none (a run that failed first)."""
        n = len(self.times)
        if n == 0:
            raise CaseError(f"{self.path}: holds no snapshots")
        return n

    def index(self, step: int | None = None, time: float | None = None) -> int:
        """Snapshot index of the command line's ``--step`` (a position, negative counts from the
        end) or ``--time`` (the nearest snapshot), refused in terms of those options."""
        self.require_snapshots()
        if time is not None:
            if not self.times[0] - 1e-12 <= time <= self.times[-1] + 1e-12:
                raise CaseError(f"--time {time:g}: outside the times in {self.path.name} "
                                f"({self.times[0]:g} to {self.times[-1]:g})")
            return int(np.argmin(np.abs(self.times - time)))
        return self._position(-1 if step is None else step, "--step ")

    def _position(self, index, named: str) -> int:
        """``index`` (negative counts from the end) as a position in ``0..n-1``: CaseError, the
        argument ``named`` as the caller calls it, for anything but a whole number in range."""
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise CaseError(f"{named}{index!r}: a snapshot index is a whole number (negative counts from the end), "
                            f"not {type(index).__name__}")
        n = self.require_snapshots()
        if not -n <= index < n:
            raise CaseError(f"{named}{shown(index)}: {self.path.name} has {n} snapshots (0..{n - 1}, or -{n}..-1)")
        return int(index) % n

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """Names of the nodal fields the file holds, the temperature first."""
        names = [name for name, item in self.file["fields"].items() if isinstance(item, h5py.Group)]
        return tuple(sorted(names, key=lambda n: (n != "temperature", n)))

    def check_field(self, name: str, named: str = "--field ") -> str:
        """``name`` if the file holds that nodal field, else CaseError naming the ones it holds (and
        the argument ``named`` as the caller calls it: the command line's ``--field``)."""
        if not isinstance(name, str) or name not in self.fields:
            shown_name = name if named.startswith("--") else repr(name)
            raise CaseError(f"{named}{shown_name}: {self.path.name} has no such field (it holds: "
                            f"{', '.join(self.fields)})")
        return name

    def field(self, index: int = -1, name: str = "temperature") -> np.ndarray:
        """Nodal values of field ``name`` at snapshot ``index`` (a whole number, negative counts
        from the end); CaseError naming ``index`` or ``name`` when the file has no such snapshot
        or field."""
        self.check_field(name, "name=")
        i = self._position(index, "index=")
        key = f"{i:06d}"
        try:
            if key not in self.file["fields"][name]:
                writing = self.attrs.get("status") in ("running", b"running")
                why = "a run may be writing it: read it again after the run's next snapshot" if writing else \
                    "the file is damaged"
                raise CaseError(f"{self.path.name}: no value of field {shown(name)} at snapshot {i} ({why})")
            data = self.file["fields"][name][key]
            if not isinstance(data, h5py.Dataset) or data.shape != (len(self.points),):
                shape = data.shape if isinstance(data, h5py.Dataset) else "a group"
                raise CaseError(f"{self.path}: fields/{name}/{key} holds {shape} values, not one per node of the "
                                f"mesh ({len(self.points)}): the file is damaged")
            if data.dtype.kind != "f":
                raise CaseError(f"{self.path}: fields/{name}/{key} holds values of type {data.dtype}, not "
                                f"floating-point numbers: the file is damaged")
            stamp = {"time": float(self.times[i]), "step": int(self.steps[i])}  # as /time and /step list it
            for what, listed in stamp.items():
                if what in data.attrs and not _same(got := data.attrs[what], listed):
                    got = got.item() if isinstance(got, np.generic) else got
                    raise CaseError(f"{self.path}: fields/{name}/{key} has {what} = {shown(got)}, but "
                                    f"/{what} lists {listed!r} for snapshot {i}: the file is damaged")
            return data[()]
        except (RuntimeError, OSError, KeyError, ValueError) as exc:  # HDF5 met a structure half-written
            raise CaseError(f"{self.path}: snapshot {i} of {name} cannot be read ({str(exc).splitlines()[0][:120]}): "
                            f"{self._unreadable_why()}") from None

    def units(self, name: str = "temperature") -> str:
        """The ``units`` attribute of a field (``degC``, ``K``, ``1``; empty when not recorded)."""
        self.check_field(name, "name=")
        group = self.file["fields"][name]
        first = next(iter(group.values()), None)
        units = first.attrs.get("units", "") if first is not None else ""
        return units.decode() if isinstance(units, bytes) else str(units)

    def temperature(self, index: int = -1) -> np.ndarray:
        """Nodal temperatures at snapshot ``index`` (see :meth:`field`)."""
        return self.field(index, "temperature")

    def probe(self, points, index: int = -1, name: str = "temperature") -> np.ndarray:
        """Finite-element interpolation of field ``name`` (default the temperature) at snapshot
        ``index`` at ``points`` (a point or a list of points, each of :attr:`dim` finite
        coordinates); CaseError naming the argument for a bad one, or a point outside the mesh."""
        self.check_field(name, "name=")
        self._position(index, "index=")
        pts = self.check_points(points)
        cell, xi = self.locator.locate(pts)
        outside = np.flatnonzero(cell < 0)
        if len(outside):
            p = ", ".join(f"{c:.12g}" for c in pts[outside[0]])
            raise CaseError(f"point ({p}) is outside the mesh of {self.path.name}")
        return self.interpolate(index, name, cell, xi)

    def check_points(self, points) -> np.ndarray:
        """``points`` as an (n, dim) array of finite coordinates, else CaseError naming them."""
        try:
            pts = np.atleast_2d(np.asarray(points, dtype=float))
        except (TypeError, ValueError):
            raise CaseError(f"points: expected a point or a list of points of {self.dim} numbers each "
                            f"(e.g. [[0.1, 0.05]]), got {shown(points)}") from None
        if pts.ndim != 2 or pts.shape[1] != self.dim or not len(pts):
            raise CaseError(f"points: the mesh of {self.path.name} is {self.dim}D: give points of {self.dim} "
                            f"coordinates each (got an array of shape {pts.shape})")
        bad = np.flatnonzero(~np.isfinite(pts).all(axis=1))
        if len(bad):
            raise CaseError(f"points: point {bad[0]} ({', '.join(f'{c:g}' for c in pts[bad[0]])}) has coordinates "
                            f"that are not finite numbers")
        return pts

    def interpolate(self, index: int, name: str, cell: np.ndarray, xi: np.ndarray) -> np.ndarray:
        """Field ``name`` of snapshot ``index`` at points located in ``cell`` at reference
        coordinates ``xi``, within the field's range (:data:`FIELD_RANGES`)."""
        low, high = FIELD_RANGES.get(name, (-np.inf, np.inf))
        return np.clip(self.locator.interpolate(self.field(index, name), cell, xi), low, high)


def tables(f: h5py.File) -> list[h5py.Dataset]:
    """Every dataset of a results file outside /fields (whose snapshots are checked as each is read):
    the mesh, the times and steps, /steps, /balance, /probes; a link to nothing, and what a group that
    cannot be visited holds, are left out."""
    found = []
    for key in f:
        item = f.get(key)
        if key == "fields" or item is None:
            continue
        if isinstance(item, h5py.Dataset):
            found.append(item)
        elif isinstance(item, h5py.Group):
            try:
                item.visititems(lambda _, obj: found.append(obj) if isinstance(obj, h5py.Dataset) else None)
            except (RuntimeError, OSError, KeyError):  # a group a failed write left half made: its
                pass  # tables are met as they are read, and a file's listed snapshots stay readable
    return found


def _same(value, listed) -> bool:
    """Whether an attribute ``value`` is the one number ``listed`` (a string, an array: no)."""
    try:
        return float(np.asarray(value).item()) == float(listed)
    except (TypeError, ValueError, OverflowError):
        return False


def open(path: str | Path) -> Results:  # noqa: A001 - the natural name: results.open(path)
    return Results(path)
