"""Checkpoints: the state of a run in canonical (rank-independent) order, written atomically.

Layout of ``<output>/<name>/checkpoints/step_<step>.h5``::

    /temperature   (n_nodes,) canonical order
    /previous      (n_nodes,) BDF2 only: the solution one step earlier
    /adaptive_level1, /adaptive_level2
                   (n_nodes,) adaptive steps: the solutions one and two steps earlier (the predictor)
    /case_tables/<sha256>
                   (points, 2) the distinct tables of the case, which the attribute case names
    attrs          solver_checkpoint (format version), step, t, dt, scheme, case, case_hash,
                   snapshots (results-file snapshots written so far), balance_*, iterations,
                   stepper_state (JSON: earlier step sizes, the step controller's state), ...

Every rank writes its canonical block to ``step_<step>.h5.tmp``; once the file is closed on all
ranks, rank 0 renames it, points the ``checkpoint.h5`` symlink at it (also by rename, so it
always names a complete file) and removes checkpoints beyond ``checkpoint.keep``. A crash at any
moment leaves the previous checkpoint readable. A restart reads only its own block on any number
of ranks, after rank 0 has checked the file serially (a truncated or foreign file is refused
before any collective read).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shlex
import stat
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import tomli_w
from mpi4py import MPI

from solver import __version__
from solver.case.inputfiles import MISSING, file_problem
from solver.case.schema import REQUIRED, SCHEMA
from solver.errors import CaseError, OutputError
from solver.io.blockfile import METADATA_BYTES, BlockFile, no_space, write_temporary_or_fail
from solver.io.stored_case import GROUP, StoredCaseError, expand, read_tables
from solver.parallel.blocks import BlockRedistributor
from solver.parallel.collective import on_root

log = logging.getLogger(__name__)
FORMAT = 1
LINK = "checkpoint.h5"
# Keys that may change between a checkpoint and its restart without changing the solution so far.
SAFE_KEYS = ("time.t_end", "output.every", "output.interval", "output.times", "output.directory", "output.driver",
             "output.write_timeout", "checkpoint.",
             "run.", "solver.rtol", "solver.atol", "solver.max_iterations", "solver.preconditioner",
             "initial.")


def flatten(values: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in values.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _plain(values):
    if isinstance(values, dict):
        return {k: _plain(v) for k, v in values.items() if v is not None}
    return values


def case_text(values: dict) -> str:
    """The resolved case as TOML, its tables in it (the form of files written before tables were
    stored apart: :mod:`solver.io.stored_case`)."""
    return tomli_w.dumps(_plain(values))


def orders(values: dict) -> dict[str, tuple]:
    """The orders of the case's tables that its solution depends on: where regions overlap, the
    last listed wins, and where Dirichlet boundaries meet, the later one holds the shared nodes."""
    plain = _plain(values)
    boundaries = plain.get("boundary") if isinstance(plain.get("boundary"), dict) else {}
    regions = plain.get("region") if isinstance(plain.get("region"), dict) else {}
    return {"the order of the [region.*] tables": tuple(regions),
            "the order of the dirichlet [boundary.*] tables": tuple(
                name for name, bc in boundaries.items() if isinstance(bc, dict) and bc.get("type") == "dirichlet")}


def case_hash(values: dict) -> str:
    """Hash of the case without the keys that are safe to change on restart: SHA-256 of the repr of
    its sorted (key, value) items, made an item at a time (the repr of a case whose regions name
    one table of 100,000 points is tens of MB), each table's repr once."""
    kept = sorted((k, v) for k, v in flatten(_plain(values)).items() if not k.startswith(SAFE_KEYS))
    digest, shown = hashlib.sha256(b"["), {}
    for i, (key, value) in enumerate(kept):
        if id(value) not in shown:
            shown[id(value)] = repr(value).encode()
        digest.update(f"{', ' if i else ''}({key!r}, ".encode() + shown[id(value)] + b")")
    digest.update(b"]")
    return digest.hexdigest()


def schema_default(key: str):
    """The default of a case key (``section.key``), or None when it has none."""
    section, _, name = key.partition(".")
    spec = SCHEMA.get(section, {}).get(name)
    return None if spec is None or spec.default is REQUIRED else spec.default


MEANT_WHEN_LEFT_OUT = {"temperature_unit": "C"}  # keys without a schema default whose absence means a value


def changed_keys(old: dict, new: dict) -> tuple[list[str], list[str]]:
    """(safe, unsafe) keys whose values differ between two resolved cases, and the orders of
    :func:`orders` that differ (unsafe); a key the older case does not have (written before the
    key existed) is unchanged at its default."""
    a, b = flatten(_plain(old)), flatten(_plain(new))
    for flat in (a, b):  # a key left out that means a value: the same case as one that gives it
        for key, meant in MEANT_WHEN_LEFT_OUT.items():
            if flat.get(key) is None:
                flat[key] = meant
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)
                     and not (k not in a and b[k] is not None and b[k] == schema_default(k)))
    safe = [k for k in changed if k.startswith(SAFE_KEYS)]
    for what, before in orders(old).items():  # the tables both list, in another order
        after = orders(new)[what]
        if [n for n in before if n in after] != [n for n in after if n in before]:
            changed.append(what)
    return safe, [k for k in changed if k not in safe]


@dataclass
class CheckpointAttrs:
    """The attributes of a checkpoint: where the run stood, its case, and its heat balance.
    Written by :meth:`to_hdf5` and read back by :meth:`from_hdf5`, nowhere else."""

    step: int
    t: float
    dt: float
    scheme: str
    case: str  # the resolved case as TOML, its tables by reference (solver.io.stored_case)
    case_hash: str
    snapshots: int  # results-file snapshots written so far
    iterations: int
    balance_terms: list[str]
    balance_energy_start: float
    balance_inflow: np.ndarray
    ranks: int = 0  # set when written
    solver_version: str = ""
    written: float = 0.0  # time.time() of the write
    datasets: list[str] = field(default_factory=list)  # set when read: the vectors the file holds
    stepper: dict = field(default_factory=dict)  # earlier step sizes and the step controller (JSON)
    run_id: str = ""  # the results file's run_id: a restart continues that file only
    mesh_digest: str = ""  # of the mesh file's data (solver.mesh.files.mesh_digest); "": a structured mesh
    # where the tabulated enthalpies of rho(T) and c(T) expressions count from (repr of the temperature;
    # "": none tabulated, or an earlier version, which counted them from 0 in the case's unit)
    enthalpy_zero: str = ""
    balance_gross: float = 0.0  # the heat balance's gross flows (0: an earlier version's, which kept none)
    tables: dict = field(default_factory=dict)  # the tables the case names, by dataset path (written, read)

    def to_hdf5(self, comm) -> dict:
        return {"step": self.step, "t": self.t, "dt": self.dt, "scheme": self.scheme, "case": self.case,
                "case_hash": self.case_hash, "snapshots": self.snapshots, "iterations": self.iterations,
                "balance_terms": "\n".join(self.balance_terms), "balance_energy_start": self.balance_energy_start,
                "balance_inflow": np.asarray(self.balance_inflow), "solver_checkpoint": FORMAT,
                "solver_version": __version__, "ranks": comm.size, "written": time.time(),
                "stepper_state": json.dumps(self.stepper), "run_id": self.run_id, "mesh_digest": self.mesh_digest,
                "enthalpy_zero": self.enthalpy_zero, "balance_gross": self.balance_gross}

    @classmethod
    def from_hdf5(cls, attrs, datasets=()) -> "CheckpointAttrs":
        a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
        return cls(int(a["step"]), float(a["t"]), float(a["dt"]), str(a["scheme"]), str(a["case"]),
                   str(a["case_hash"]), int(a["snapshots"]), int(a["iterations"]),
                   str(a["balance_terms"]).split("\n"), float(a["balance_energy_start"]),
                   np.array(a["balance_inflow"], dtype=float), int(a.get("ranks", 0)),
                   str(a.get("solver_version", "")), float(a.get("written", 0.0)), sorted(datasets),
                   json.loads(a.get("stepper_state", "{}")), str(a.get("run_id", "")), str(a.get("mesh_digest", "")),
                   str(a.get("enthalpy_zero", "")), float(a.get("balance_gross", 0.0)))


def checkpoint_dir(results_dir: Path) -> Path:
    return Path(results_dir) / "checkpoints"


class CheckpointWriter:
    """Writes the checkpoints of a run into ``<results_dir>/checkpoints``, keeping the newest ``keep``.

    ``open_file(path)`` opens a block file on all ranks (the results file's backend);
    ``before_close()``, when given, runs just before a file is closed (fault injection)."""

    def __init__(self, results_dir: Path, keep: int, open_file, before_close=None):
        self.results_dir, self.keep = Path(results_dir), keep
        self.open_file, self.before_close = open_file, before_close

    def write(self, mesh, nodes: BlockRedistributor, state: dict, attrs: CheckpointAttrs) -> Path:
        """Write ``state`` (name -> local vector) atomically; returns the checkpoint's path."""
        comm, results_dir, keep = mesh.comm, self.results_dir, self.keep
        folder = checkpoint_dir(results_dir)
        final = folder / f"step_{attrs.step:08d}.h5"
        tmp = final.with_name(final.name + ".tmp")

        def make_folder():
            try:
                folder.mkdir(parents=True, exist_ok=True)
                if os.path.lexists(tmp) and not (regular_file(tmp) or os.path.islink(tmp)):  # a folder, FIFO...
                    aside = free_name(tmp.with_name(f"{final.stem}.not-a-checkpoint.tmp"))
                    os.replace(tmp, aside)
                    log.warning(f"warning: {tmp.name} was not a file (a folder or FIFO); moved to {aside.name}")
            except OSError as exc:
                raise (OutputError if no_space(exc) else CaseError)(f"{folder}: cannot create the checkpoints' "
                                                                    f"folder ({exc.strerror})") from None
        on_root(comm, make_folder, CaseError, keep=(OutputError,))
        f: BlockFile = self.open_file(tmp)

        blocks = {name: nodes.to_blocks(vector[: mesh.n_owned]) for name, vector in state.items()}
        sums = {name: dict(zip(("sum", "abs_sum"), vector_sums(comm, block))) for name, block in blocks.items()}
        steps = [lambda path=path, points=points: f.write_array(path, points) for path, points in attrs.tables.items()]
        steps += [lambda name=name: f.write_blocks(f"/{name}", blocks[name], nodes) for name in blocks]
        steps += [lambda name=name: f.check_block(f"/{name}", blocks[name], nodes) for name in blocks]
        steps += [lambda name=name: f.set_attrs(f"/{name}", sums[name]) for name in blocks]
        steps.append(lambda: f.set_attrs("/", attrs.to_hdf5(comm)))
        if self.before_close is not None:
            steps.append(self.before_close)
        steps += [f.flush, f.close]  # the close, with nothing left to write, only after every rank flushed
        # on failure the earlier checkpoints stay; the unfinished one goes
        write_temporary_or_fail(comm, tmp, f, f"the checkpoint of step {attrs.step}", steps,
                                (8 * mesh.n_global_nodes + METADATA_BYTES) * len(state)
                                + sum(points.nbytes + METADATA_BYTES for points in attrs.tables.values()))

        def publish():
            other = run_id_in(final, checkpoint=True) if os.path.lexists(final) else ""
            if other is None:  # a link, FIFO, folder, or a file that is no checkpoint: never ours
                aside = free_name(final.with_name(f"{final.stem}.not-a-checkpoint"))
                os.replace(final, aside)
                log.warning(f"warning: {final.name} was not a checkpoint of this solver (a link, FIFO, folder or "
                            f"another file); moved to {aside.name}")
            elif other and other != attrs.run_id:  # another run's of the same step: not this run's to replace
                aside = free_name(final.with_name(f"{final.stem}.{other[:8]}.h5"))
                os.replace(final, aside)
                log.warning(f"warning: {final.name} of another run moved to {aside.name}")
            os.replace(tmp, final)
            link = results_dir / LINK
            tmp_link = link.with_name(link.name + ".tmp")
            try:  # a convenience: the checkpoint is complete without it (--restart latest finds it)
                if os.path.lexists(link) and not link.is_symlink():  # a file of the user's: kept
                    aside = free_name(link.with_name(f"{link.name}.not-a-link"))
                    os.replace(link, aside)
                    log.warning(f"warning: {link.name} was a file, not this solver's link to the newest "
                                f"checkpoint; moved to {aside.name}")
                if tmp_link.is_symlink() or tmp_link.exists():
                    tmp_link.unlink()
                tmp_link.symlink_to(final.relative_to(results_dir))
                os.replace(tmp_link, link)
            except OSError as exc:
                log.warning(f"warning: cannot point {link} at {final.name} ({exc.strerror}); the checkpoint "
                            f"is complete all the same")
            # this run's newest `keep` by time of writing (a restart from an earlier step writes
            # lower step numbers after higher ones, and its checkpoints are the ones to keep);
            # another run's checkpoints are not this run's to delete. Its checkpoints of later steps
            # were left by the steps that a restart from an earlier one replaced: they go too (their
            # snapshots were cut from the results file; kept, they would outlive this run's own)
            mine = [c for c in own_checkpoints(folder, attrs.run_id) if c != final]
            replaced = [c for c in mine if step_of(c) > attrs.step]
            mine = [c for c in mine if c not in replaced]
            for old in replaced + mine[keep - 1:]:
                old.unlink()
            for stale in folder.glob("*.h5.tmp"):
                if regular_file(stale) or stale.is_symlink():
                    stale.unlink()
            return str(final)
        return Path(on_root(comm, publish, OutputError))


def free_name(path: Path) -> Path:
    """``path``, or ``path`` with .1, .2, ... appended where something is there already."""
    candidate, n = path, 0
    while os.path.lexists(candidate) and n < 1000:
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate if n < 1000 else path.with_name(f"{path.name}.{time.time_ns()}")


def regular_file(path: Path) -> bool:
    """Whether ``path`` itself (not what a link points to) is a regular file: only those are
    opened as checkpoints (a FIFO blocks its reader for ever)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def ours(version) -> bool:
    """Whether a file's ``solver_checkpoint`` attribute is this format's number (one whole number,
    not an array or text, which a comparison would not answer with one truth value)."""
    return whole_number(version) and float(version) == FORMAT


def run_id_in(path: Path, checkpoint: bool = False) -> str | None:
    """The ``run_id`` a results file records ("" before run ids existed; None: unreadable, or not
    a regular file), or with ``checkpoint`` a complete checkpoint (None also when the file is not
    one, or a link)."""
    try:
        if not stat.S_ISREG((os.lstat if checkpoint else os.stat)(path).st_mode):
            return None
        with h5py.File(path, "r") as f:
            if checkpoint and not ours(f.attrs.get("solver_checkpoint")):
                return None
            value = f.attrs.get("run_id", "")
    except OSError:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def own_checkpoints(folder: Path, run_id: str) -> list[Path]:
    """The checkpoints of run ``run_id`` (or of no recorded run) in ``folder``, the last written
    first: another run's are not this run's to delete."""
    return [c for c in by_time(folder) if run_id_in(c, checkpoint=True) in ("", run_id)]


def step_of(path: Path) -> int:
    """The step a checkpoint's name gives (``step_00000040.h5``: 40; -1 for another name)."""
    digits = path.name.removeprefix("step_").removesuffix(".h5")
    return int(digits) if digits.isdigit() else -1


def by_time(folder: Path) -> list[Path]:
    """The checkpoints of a folder, the last written first (by modification time, then step)."""
    def written(path: Path):
        try:
            return path.stat().st_mtime_ns, path.name
        except OSError:
            return 0, path.name
    return sorted((c for c in folder.glob("step_*.h5") if regular_file(c)), key=written, reverse=True)


def latest(results_dir: Path, run_id: str | None = None, reach: "ResultsReach | None" = None) -> Path | None:
    """The last written complete checkpoint of this case (``run_id``: of that run only), or None:
    after a restart from an earlier step, its own checkpoints, not those of the steps it
    replaced. ``reach``: only those the results file reaches (a restart from an earlier step
    that ended before its first checkpoint cut the file back, and the checkpoints of the later
    steps would leave a gap in it)."""
    for c in by_time(checkpoint_dir(results_dir)):
        theirs = run_id_in(c, checkpoint=True)
        if theirs is not None and (not run_id or not theirs or theirs == run_id):
            if reach is None or reach.reaches(c):
                return c
    return None


@dataclass(frozen=True)
class ResultsReach:
    """How far a results file goes: its snapshots, and the time of its last time-step row (None:
    no time-step table, a steady run)."""

    snapshots: int
    last_step_time: float | None

    @classmethod
    def of(cls, h5_path: Path) -> "ResultsReach | None":
        """The reach of a results file (None: no readable file)."""
        try:
            with h5py.File(h5_path, "r") as f:
                snapshots = int(f["/time"].shape[0]) if "/time" in f else 0
                times = f["/steps/time"] if "/steps/time" in f else None
                last = None if times is None else (float(times[-1]) if times.shape[0] else 0.0)
        except (OSError, TypeError, ValueError, KeyError):
            return None
        return cls(snapshots, last)

    def reaches(self, path: Path) -> bool:
        """Whether the file holds the snapshots and the time steps up to checkpoint ``path``."""
        try:
            with h5py.File(path, "r") as f:
                snapshots, t = int(f.attrs.get("snapshots", 0)), float(f.attrs.get("t", 0.0))
        except (OSError, TypeError, ValueError, OverflowError):
            return True  # unreadable attributes: inspect() says what is wrong with it
        last = self.last_step_time
        return snapshots <= self.snapshots and (last is None or t <= last + 1e-9 * max(abs(last), abs(t), 1.0))


def resolve(path: str, results_dir: Path, h5_path: Path | None = None) -> Path:
    """``latest`` -> the newest complete checkpoint of this case that continues the results file
    ``h5_path`` (of its run, and within its reach) when it exists; else the path given."""
    if path != "latest":
        return Path(path)
    run_id = run_id_in(h5_path) if h5_path is not None else None
    reach = ResultsReach.of(h5_path) if h5_path is not None else None
    found = latest(results_dir, run_id, reach)
    if found is not None:
        newer = by_time(checkpoint_dir(results_dir))
        skipped = [c.name for c in newer[: newer.index(found)] if run_id_in(c, checkpoint=True) is None]
        if skipped:
            log.warning(f"warning: --restart latest passes over {len(skipped)} newer checkpoint"
                        f"{'' if len(skipped) == 1 else 's'} that cannot be read ({', '.join(skipped[:3])}"
                        f"{', ...' if len(skipped) > 3 else ''}) and continues from {found.name}")
    if found is None:
        folder = checkpoint_dir(results_dir)
        kept = kept_aside(results_dir, run_id, reach)
        if kept is not None:
            raise CaseError(f"--restart latest: the checkpoints of the run that wrote {h5_path} are in "
                            f"{kept.parent} (where --overwrite moved them), not in {folder}; a restart never "
                            f"mixes two runs: continue it with --restart {kept}, or run again")
        if run_id and latest(results_dir) is not None and latest(results_dir, run_id) is None:
            raise CaseError(f"--restart latest: the checkpoints in {folder} belong to another run than {h5_path} "
                            f"(which replaced it with --overwrite); a restart never mixes two runs, and continues "
                            f"the results file of the checkpoint's own run: put that run's results back in "
                            f"{h5_path.name} to continue it, or run again")
        if latest(results_dir, run_id) is not None:
            raise CaseError(f"--restart latest: every checkpoint in {folder} is beyond the end of {h5_path} (a "
                            f"restart from an earlier step cut it back): continuing from one would leave a gap in "
                            f"its results, and no checkpoint is within it: run again (--overwrite)")
        if not by_time(folder):  # none written (nor its folder, nor perhaps the results' folder)
            raise CaseError(f"--restart latest: no checkpoint in {folder} yet (no run of this case reached its "
                            f"first one): there is nothing to continue from; {run_again(h5_path)}")
        raise CaseError(f"--restart latest: no readable checkpoint in {folder}")
    return found


def kept_aside(results_dir: Path, run_id: str | None, reach: "ResultsReach | None") -> Path | None:
    """The newest checkpoint of run ``run_id`` within ``reach`` in the folder that --overwrite set
    aside (``checkpoints.bak``), or None: where results moved back by hand find their checkpoints."""
    if not run_id:
        return None
    folder = checkpoint_dir(results_dir)
    for c in by_time(folder.with_name(folder.name + ".bak")):
        if run_id_in(c, checkpoint=True) == run_id and (reach is None or reach.reaches(c)):
            return c
    return None


def run_again(h5_path: Path | None) -> str:
    """The way on where no checkpoint can be continued: a new run (replacing the results there)."""
    if h5_path is not None and (h5_path.exists() or h5_path.is_symlink()):
        return f"run again with --overwrite instead of --restart (it replaces {h5_path.name})"
    return "run again without --restart"


def check_same_run(path: Path, attrs: "CheckpointAttrs", h5_path: Path) -> None:
    """Refuse to continue the results file ``h5_path`` from a checkpoint of another run."""
    ours = run_id_in(h5_path)
    if ours and attrs.run_id and ours != attrs.run_id:
        kept = kept_aside(h5_path.parent, ours, ResultsReach.of(h5_path))
        if kept is not None:
            raise CaseError(f"{path}: checkpoint of another run than {h5_path}, whose own checkpoints are in "
                            f"{kept.parent} (where --overwrite moved them): continue it with --restart {kept}, "
                            f"or run again")
        raise CaseError(f"{path}: checkpoint of another run than {h5_path}; a restart continues the results file "
                        f"of the checkpoint's own run: restart it with the output.directory and output.name that "
                        f"run wrote (a run replaced by --overwrite: its {h5_path.name}.bak, moved back), or run again")


def check_snapshots(path: Path, attrs: "CheckpointAttrs", h5_path: Path) -> None:
    """Refuse a checkpoint whose count of snapshots does not fit the results file it continues:
    the file's snapshots up to the checkpoint's time are the ones it counts (a restart keeps
    those and drops the rest)."""
    try:
        with h5py.File(h5_path, "r") as f:
            times = np.asarray(f["/time"][()], dtype=float) if "/time" in f else None
    except (OSError, TypeError, ValueError, KeyError):
        return  # no readable results file: the restart says so
    if times is None:
        return
    n, t = attrs.snapshots, attrs.t
    slack = 1e-9 * max(abs(t), 1.0)
    before = n <= len(times) and (n == 0 or times[n - 1] <= t + slack)
    after = n == len(times) or (n < len(times) and times[n] > t + slack)  # a snapshot at t is counted
    if not (before and after):
        held = int(np.count_nonzero(times <= t + slack))
        raise CaseError(f"{path}: checkpoint attribute snapshots = {n} does not fit {h5_path.name}, which holds "
                        f"{held} snapshots up to the checkpoint's t = {t:.6g} (one of the two files was changed); "
                        f"restart from another checkpoint, or run again")


def check_step_time(path: Path, attrs: "CheckpointAttrs", h5_path: Path) -> None:
    """Refuse a checkpoint whose time is within the time-step table of the results file it
    continues but at none of its steps: a run writes a checkpoint at the end of a step, whose row
    the table holds (an adaptive run's t changed on the disk passes every other check)."""
    try:
        with h5py.File(h5_path, "r") as f:
            times = np.asarray(f["/steps/time"][()], dtype=float) if "/steps/time" in f else None
    except (OSError, TypeError, ValueError, KeyError):
        return  # no readable results file: the restart says so
    if times is None or times.ndim != 1 or not times.size or attrs.t == 0:
        return
    slack = 1e-9 * max(abs(attrs.t), 1.0)
    if attrs.t <= times[-1] + slack and not np.any(np.abs(times - attrs.t) <= slack):
        raise CaseError(f"{path}: checkpoint attribute t = {attrs.t:.12g} is at none of the steps of {h5_path.name} "
                        f"(one of the two files was changed); restart from another checkpoint, or run again")


def double(dtype) -> bool:
    """Whether a dataset's type is the 64-bit floating point a run writes (either byte order): a
    narrower one has lost digits (the restart would go on from rounded temperatures), a wider one
    is no file of a run."""
    return dtype.kind == "f" and dtype.itemsize == 8


def whole_number(value) -> bool:
    """A scalar integer, or a float of integral value."""
    if np.ndim(value) != 0 or isinstance(value, (str, bytes, bool, np.bool_)):
        return False
    try:
        return float(value).is_integer()
    except (TypeError, ValueError, OverflowError):
        return False


def unsafe_changes(stored, values: dict | None, f=None) -> list[str]:
    """The keys of ``values`` (a resolved case) that differ from the case text ``stored`` in a
    checkpoint (its tables read from the open file ``f``) and change the solution ([] when either
    is missing or unreadable)."""
    if values is None or not isinstance(stored, (str, bytes)):
        return []
    try:
        old = tomllib.loads(stored.decode() if isinstance(stored, bytes) else stored)
        old = expand(old, read_tables(f, old) if f is not None else {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, StoredCaseError, KeyError, OSError):
        return []
    return changed_keys(old, values)[1]


def not_a_checkpoint(f: h5py.File, path: Path) -> str:
    """What an HDF5 file given as a checkpoint is instead: a run's results or a study file (with
    what continues each), or a file of no solver."""
    try:
        if "solver_study" in f.attrs:
            source = f.attrs.get("study_source", "STUDY.toml")
            source = shlex.quote(source.decode(errors="replace") if isinstance(source, bytes) else str(source))
            return f"a study file, not a checkpoint: a study continues with python -m solver study {source} " \
                   f"--restart latest"
        if "time" in f and "fields" in f and "run_id" in f.attrs:
            return (f"a run's results, not a checkpoint: their run continues from a checkpoint in "
                    f"{checkpoint_dir(path.parent)} (--restart latest takes the newest)")
    except (OSError, RuntimeError, KeyError, ValueError, TypeError):  # (links HDF5 cannot follow)
        pass
    return f"not a checkpoint of this solver (no solver_checkpoint = {FORMAT} attribute)"


def inspect(path: Path, n_nodes: int, values: dict | None = None) -> CheckpointAttrs:
    """Serial check of a checkpoint (rank 0): readable, ours, complete; returns its attributes.
    ``values``: the resolved case of the restart, to name what changed when the mesh differs."""
    problem = file_problem(path)
    if problem == MISSING:
        if os.path.islink(path):  # checkpoint.h5 left behind when a full disk kept it from moving on
            raise CaseError(f"{path}: a link to {os.readlink(path)}, which is gone (an older checkpoint, removed "
                            f"after a newer one was written); --restart latest finds the newest")
        raise CaseError(f"{path}: checkpoint not found")
    if problem is not None:
        raise CaseError(f"{path}: {problem}, expected an HDF5 checkpoint")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CaseError(f"{path}: not a readable HDF5 checkpoint ({str(exc).splitlines()[0]})") from None
    with f:
        if not ours(f.attrs.get("solver_checkpoint")):
            raise CaseError(f"{path}: {not_a_checkpoint(f, path)}")
        check_no_links(path, f)
        if "temperature" not in f or not isinstance(f["temperature"], h5py.Dataset):
            raise CaseError(f"{path}: checkpoint has no temperature dataset (truncated, or not written by a run)")
        if f["temperature"].shape != (n_nodes,):
            shape = " x ".join(str(n) for n in f["temperature"].shape) or "a scalar"
            changed = unsafe_changes(f.attrs.get("case"), values, f)
            why = f" (changed since: {', '.join(changed)}; restart with the case it was written with)" \
                if changed else ""
            raise CaseError(f"{path}: checkpoint holds {shape} temperatures, the mesh has {n_nodes} nodes{why}")
        try:
            for name in vectors(f):
                ds = f[name]
                if not isinstance(ds, h5py.Dataset) or ds.shape != (n_nodes,) or not double(ds.dtype):
                    raise CaseError(f"{path}: checkpoint dataset {name} is not a vector of {n_nodes} 64-bit "
                                    f"floating-point values, as a run writes (it is "
                                    f"{getattr(ds, 'dtype', 'a group')} of shape {getattr(ds, 'shape', '?')})")
                for start in range(0, ds.shape[0], 1 << 20):
                    if not np.all(np.isfinite(ds[start:start + (1 << 20)])):
                        raise CaseError(f"{path}: checkpoint dataset {name} holds NaN or Inf")
        except (OSError, RuntimeError, KeyError) as exc:
            raise CaseError(f"{path}: checkpoint is truncated or corrupt ({str(exc).splitlines()[0]})") from None
        check_sums_kept(path, f)
        for name in ("step", "snapshots", "iterations", "ranks"):  # counts: whole numbers, not truncated floats
            raw = f.attrs.get(name)
            if raw is not None and not whole_number(raw):
                raise CaseError(f"{path}: checkpoint attribute {name} = {str(raw)[:40]!r} is not a whole number")
        try:
            attrs = CheckpointAttrs.from_hdf5(f.attrs, vectors(f))
        except (KeyError, ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise CaseError(f"{path}: checkpoint attributes are missing or malformed ({str(exc)[:200]})") from None
        attrs.tables = stored_tables(path, f, attrs.case)
        run_id_written = "run_id" in f.attrs
        ranks_written = "ranks" in f.attrs
    numbers = {"step": attrs.step, "t": attrs.t, "dt": attrs.dt, "snapshots": attrs.snapshots,
               "iterations": attrs.iterations}
    for name, value in numbers.items():
        if not (math.isfinite(value) and 0 <= value < 2**53):
            raise CaseError(f"{path}: checkpoint attribute {name} = {value!r} is out of range (finite, >= 0 expected)")
    if ranks_written and not 1 <= attrs.ranks < 2**31:  # the ranks that wrote it
        raise CaseError(f"{path}: checkpoint attribute ranks = {attrs.ranks!r} is out of range (1 or more expected); "
                        f"the file was changed after it was written")
    if not np.all(np.isfinite(attrs.balance_inflow)):
        raise CaseError(f"{path}: checkpoint attribute balance_inflow holds NaN or Inf")
    if attrs.balance_inflow.shape != (len(attrs.balance_terms),):
        raise CaseError(f"{path}: checkpoint attribute balance_inflow holds {attrs.balance_inflow.size} values for "
                        f"{len(attrs.balance_terms)} balance_terms")
    if not math.isfinite(attrs.balance_energy_start):
        raise CaseError(f"{path}: checkpoint attribute balance_energy_start = {attrs.balance_energy_start!r} is "
                        f"not finite")
    if not (math.isfinite(attrs.balance_gross) and attrs.balance_gross >= 0):
        raise CaseError(f"{path}: checkpoint attribute balance_gross = {attrs.balance_gross!r} is not a finite amount "
                        f">= 0")
    if not isinstance(attrs.stepper, dict):
        raise CaseError(f"{path}: checkpoint attribute stepper_state is not a JSON object")
    history = attrs.stepper.get("stepper")
    if isinstance(history, dict) and history.get("earlier_dt") and "previous" not in attrs.datasets:
        raise CaseError(f"{path}: damaged checkpoint: its stepper_state holds the step before it (the history of a "
                        f"multistep scheme), whose field, the dataset /previous, is missing")
    if not attrs.run_id and run_id_written:
        raise CaseError(f"{path}: checkpoint attribute run_id is empty (the file was changed after it was written)")
    check_stored_steps(path, attrs)
    check_time(path, attrs)
    check_earlier_steps(path, attrs)
    check_balance_history(path, attrs)
    check_controller(path, attrs)
    check_named_vectors(path, attrs)
    return attrs


def vectors(f) -> list[str]:
    """The names of a checkpoint's vectors: its members but the group of the case's tables."""
    return [name for name in f if name != GROUP]


def check_no_links(path: Path, f) -> None:
    """Refuse a checkpoint whose vectors or tables are links (soft: another member read in their
    place; external: another file opened): a run writes each as a dataset of its own."""
    members = [(name, f.get(name, getlink=True)) for name in f]
    if isinstance(f.get(GROUP, getlink=True), h5py.HardLink) and isinstance(f[GROUP], h5py.Group):
        members += [(f"{GROUP}/{name}", f[GROUP].get(name, getlink=True)) for name in f[GROUP]]
    for name, link in members:
        if not isinstance(link, h5py.HardLink):
            where = f"{link.filename}:{link.path}" if isinstance(link, h5py.ExternalLink) else link.path
            raise CaseError(f"{path}: damaged checkpoint: /{name} is a link to {where[:80]}, not the dataset a run "
                            f"writes; restart from an earlier checkpoint by its path")


def stored_tables(path: Path, f, text: str) -> dict:
    """The tables the case stored in a checkpoint names (CaseError when one cannot be read back; a
    case that is not TOML names none: check_compatible refuses it)."""
    try:
        case = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, TypeError):
        return {}
    try:
        return read_tables(f, case)
    except StoredCaseError as exc:
        raise CaseError(f"{path}: damaged checkpoint: {exc}; restart from an earlier checkpoint by its path") from None
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise CaseError(f"{path}: checkpoint is truncated or corrupt ({str(exc).splitlines()[0]})") from None


def check_sums_kept(path: Path, f) -> None:
    """Refuse a checkpoint where some vectors carry the sums written with them and others do not:
    a run writes them with every vector (an earlier version with none), so a vector without them
    beside one with them was replaced after it was written, and its values could not be checked."""
    summed = [name for name in vectors(f) if "sum" in f[name].attrs or "abs_sum" in f[name].attrs]
    bare = [name for name in vectors(f) if name not in summed]
    if summed and bare:
        raise CaseError(f"{path}: damaged checkpoint: /{bare[0]} lacks the sums written with every vector "
                        f"(/{summed[0]} has them; the vector was replaced after it was written); restart from an "
                        f"earlier checkpoint by its path")


def stored_time(attrs: CheckpointAttrs) -> dict | None:
    """The [time] table of the case a checkpoint stores (None: unreadable, refused by check_compatible)."""
    try:
        table = tomllib.loads(attrs.case).get("time")
    except (tomllib.TOMLDecodeError, TypeError):
        return None
    return table if isinstance(table, dict) else None


def check_stored_steps(path: Path, attrs: CheckpointAttrs) -> None:
    """Refuse a scheme, a fixed dt, or an adaptive step controller's state, that is not the one of
    the case the checkpoint stores: the run wrote them from it, and a restart counts its steps
    with them (a step and a dt changed together keep t = step x dt, but restart with another count
    of steps; a controller's state added to fixed steps passes over the check of their time)."""
    table = stored_time(attrs)
    if table is None:
        return
    scheme, dt = table.get("scheme"), table.get("dt")
    if isinstance(scheme, str) and attrs.scheme != scheme:
        raise CaseError(f"{path}: checkpoint attribute scheme = {str(attrs.scheme)[:40]!r} is not the time.scheme "
                        f"of the case it stores ({scheme[:40]!r}); the file was changed after it was written")
    numbers = attrs.stepper if isinstance(attrs.stepper, dict) else {}
    if (dt == "adaptive") != ("adaptive" in numbers) and isinstance(dt, (str, int, float)):
        has = "holds" if "adaptive" in numbers else "lacks"
        raise CaseError(f"{path}: checkpoint attribute stepper_state {has} an adaptive step controller's state, and "
                        f"the case it stores has time.dt = {str(dt)[:40]!r}; the file was changed after it was "
                        f"written")
    fixed = isinstance(dt, (int, float)) and not isinstance(dt, bool) and "adaptive" not in numbers
    if fixed and not abs(attrs.dt - dt) <= 1e-12 * abs(dt):
        raise CaseError(f"{path}: checkpoint attribute dt = {attrs.dt:.6g} s is not the time.dt of the case it "
                        f"stores ({dt:.6g} s); the file was changed after it was written")


def check_time(path: Path, attrs: CheckpointAttrs) -> None:
    """Refuse a time that the run could not have reached: off its fixed steps (``t`` = origin's
    time + (``step`` - origin's step) x ``dt``, the origin being 0 or a restart from an adaptive run),
    or beyond the stored case's end time."""
    numbers = attrs.stepper if isinstance(attrs.stepper, dict) else {}
    try:
        t_end = float(tomllib.loads(attrs.case)["time"]["t_end"])
    except (tomllib.TOMLDecodeError, TypeError, KeyError, ValueError):
        t_end = None  # a steady case, or a stored case that check_compatible refuses
    if t_end is not None and attrs.t > t_end * (1 + 1e-9) + 1e-300:
        raise CaseError(f"{path}: checkpoint attribute t = {attrs.t:.6g} is beyond the end time of the case "
                        f"it stores ({t_end:.6g}); the file was changed after it was written")
    if "adaptive" in numbers or attrs.scheme == "steady":
        return
    origin = numbers.get("fixed_origin", (0, 0.0))
    try:
        step0, t0 = int(origin[0]), float(origin[1])
    except (TypeError, ValueError, IndexError, OverflowError):
        raise CaseError(f"{path}: checkpoint attribute stepper_state has a malformed fixed_origin "
                        f"({str(origin)[:40]})") from None
    expected = t0 + (attrs.step - step0) * attrs.dt
    if not (0 <= step0 <= attrs.step and abs(expected - attrs.t) <= 1e-9 * max(abs(expected), attrs.dt)):
        raise CaseError(f"{path}: checkpoint attribute t = {attrs.t:.6g} does not agree with step {attrs.step} of "
                        f"dt = {attrs.dt:.6g} s (t = {expected:.6g} expected); the file was changed after it was "
                        f"written")


def check_earlier_steps(path: Path, attrs: CheckpointAttrs) -> None:
    """Refuse earlier step sizes (``stepper_state.earlier_dt``, newest first: the steps that ended
    at the checkpoint's step, the one before, ...) that are not positive, or that differ from the
    checkpoint's dt among its fixed steps: BDF2 weighs the previous solution by their ratio. The
    steps up to the fixed steps' origin (a restart from an adaptive run, or with another dt,
    forced) had sizes of their own."""
    numbers = attrs.stepper if isinstance(attrs.stepper, dict) else {}
    history = numbers.get("stepper")
    earlier = history.get("earlier_dt") if isinstance(history, dict) else None
    if not earlier or not isinstance(earlier, list):
        return  # none kept (a one-step scheme), or malformed: refused as such when the state is read
    try:
        sizes = [float(h) for h in earlier]
    except (TypeError, ValueError, OverflowError):
        return
    if not all(math.isfinite(h) and h > 0 for h in sizes) or len(sizes) > attrs.step:
        raise CaseError(f"{path}: checkpoint attribute stepper_state.earlier_dt = {str(earlier)[:60]} is not the "
                        f"sizes of steps taken (positive, at most one per step: {attrs.step}); the file was changed "
                        f"after it was written")
    if "adaptive" in numbers or attrs.scheme == "steady":
        return
    origin = numbers.get("fixed_origin", (0, 0.0))
    fixed = [h for i, h in enumerate(sizes) if attrs.step - i > int(origin[0])]  # (origin: checked in check_time)
    wrong = [h for h in fixed if abs(h - attrs.dt) > 1e-12 * attrs.dt]
    if wrong:
        raise CaseError(f"{path}: checkpoint attribute stepper_state.earlier_dt = {str(earlier)[:60]} does not agree "
                        f"with its fixed steps of dt = {attrs.dt:.6g} s (step {attrs.step}, t = {attrs.t:.6g}); the "
                        f"file was changed after it was written")


def check_balance_history(path: Path, attrs: CheckpointAttrs) -> None:
    """Refuse a heat balance's history that no run writes: the energies of the earlier solutions
    (``stepper_state.stepper.earlier_energy``: finite, one per earlier step size kept) and the
    balance's lag (finite). Left to the run, they failed its heat balance (exit 3), named as a
    fault of the case."""
    numbers = attrs.stepper if isinstance(attrs.stepper, dict) else {}
    history = numbers.get("stepper")
    if not isinstance(history, dict):
        return
    energies, sizes, lag = history.get("earlier_energy"), history.get("earlier_dt"), history.get("balance_lag", 0.0)
    if energies is not None:
        count = len(sizes) if isinstance(sizes, list) else len(energies) if isinstance(energies, list) else 0
        if not (isinstance(energies, list) and all(finite_number(e) for e in energies) and len(energies) == count):
            raise CaseError(f"{path}: checkpoint attribute stepper_state.stepper.earlier_energy = "
                            f"{str(energies)[:60]} is not the energies of the earlier solutions (finite, one per "
                            f"earlier step size: {count}); the file was changed after it was written")
    if not finite_number(lag):
        raise CaseError(f"{path}: checkpoint attribute stepper_state.stepper.balance_lag = {str(lag)[:40]} is not a "
                        f"finite number; the file was changed after it was written")


def finite_number(value) -> bool:
    """A finite int or float (not a bool, text or list)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# the fields of the adaptive step controller's state and the earlier solutions its predictor keeps
# (solver.heat.state.Controller and LEVELS, which a test holds equal; the file layer does not import heat)
CONTROLLER_FIELDS = ("dt", "error_previous", "rejected_last", "accepted", "rejected", "failed_solves", "history_dt")
ADAPTIVE_LEVELS = 2


def check_controller(path: Path, attrs: CheckpointAttrs) -> None:
    """Refuse an adaptive step controller's state (``stepper_state.adaptive``) that no run writes:
    its fields, a step > 0, an error >= 0, counts, and at most two earlier step sizes > 0."""
    numbers = attrs.stepper if isinstance(attrs.stepper, dict) else {}
    if "adaptive" not in numbers:
        return
    c, names = numbers["adaptive"], list(CONTROLLER_FIELDS)

    def positive(v, zero=False):
        number = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        return number and (v > 0 or zero and v == 0)

    history = c.get("history_dt", []) if isinstance(c, dict) else None
    wrong = not isinstance(c, dict) or "dt" not in c or bool(set(c) - set(names)) or not positive(c["dt"]) \
        or not (c.get("error_previous") is None or positive(c["error_previous"], zero=True)) \
        or not isinstance(c.get("rejected_last", False), bool) \
        or not all(whole_number(c.get(k, 0)) and positive(c.get(k, 0), zero=True)
                   for k in ("accepted", "rejected", "failed_solves")) \
        or not (isinstance(history, list) and len(history) <= min(ADAPTIVE_LEVELS, attrs.step)
                and all(positive(h) for h in history))
    if wrong:
        raise CaseError(f"{path}: checkpoint attribute stepper_state.adaptive = {json.dumps(c)[:80]} is not a step "
                        f"controller's state (fields {', '.join(names)}: a step > 0, an error >= 0, counts, at "
                        f"most {ADAPTIVE_LEVELS} earlier steps > 0); the file was changed after it was written")


def check_named_vectors(path: Path, attrs: CheckpointAttrs) -> None:
    """Refuse a checkpoint whose stepper_state names vectors that it lacks: the adaptive
    predictor's earlier solutions (one per earlier step size kept) and the Jacobians the multigrid
    was set up and updated from. A restart without them took another sequence of steps or another
    hierarchy (exit 0, no longer the uninterrupted run's answer)."""
    numbers = attrs.stepper if isinstance(attrs.stepper, dict) else {}
    history = numbers.get("adaptive", {}).get("history_dt", []) if "adaptive" in numbers else []
    stepper = numbers.get("stepper") if isinstance(numbers.get("stepper"), dict) else {}
    named = [f"adaptive_level{i + 1}" for i in range(len(history))] + \
        [name for name in ("multigrid_origin", "multigrid_update") if name in stepper]
    missing = [name for name in named if name not in attrs.datasets]
    if missing:
        raise CaseError(f"{path}: damaged checkpoint: its stepper_state names the vectors "
                        f"{', '.join('/' + m for m in missing)}, which are missing")


def check_compatible(path: Path, attrs: CheckpointAttrs, values: dict, force: bool) -> list[str]:
    """Refuse a checkpoint of another case unless forced; returns the safe keys that changed."""
    try:
        old = tomllib.loads(attrs.case)
    except (tomllib.TOMLDecodeError, TypeError) as exc:
        raise CaseError(f"{path}: the case stored in the checkpoint is not valid TOML ({exc})") from None
    try:
        old = expand(old, getattr(attrs, "tables", {}))
    except KeyError as exc:  # (inspect read every table the case names)
        raise CaseError(f"{path}: damaged checkpoint: its case names the table {exc}, which it lacks") from None
    if case_hash(old) != attrs.case_hash and not force:  # else an edited case hides what changed
        raise CaseError(f"{path}: damaged checkpoint: the case it stores does not give its case_hash (the file "
                        f"was changed after it was written); restart from an earlier checkpoint by its path, or "
                        f"--force to restart anyway")
    check_unit(path, old, values)
    safe, unsafe = changed_keys(old, values)
    reordered = [k for k in unsafe if k in orders(values)]  # (not in the hash, which studies compare too)
    if (attrs.case_hash != case_hash(values) or reordered) and unsafe and not force:
        raise CaseError(f"{path}: checkpoint of a different case (changed: {', '.join(unsafe)}); "
                        f"use the same case, or --force to restart anyway")
    return safe + (unsafe if force else [])


def check_unit(path: Path, old: dict, values: dict) -> None:
    """Refuse, even with --force, a case whose temperature_unit is not the checkpoint's (C when not
    given): its temperatures, and the snapshots of the results it continues, are in the old unit,
    and would be read in the new one (300 K taken for 300 C)."""
    before, after = old.get("temperature_unit") or "C", values.get("temperature_unit") or "C"
    if before != after:
        raise CaseError(f"{path}: checkpoint in temperature_unit = \"{before}\", the case in \"{after}\": its "
                        f"temperatures and the results it continues are in {before}, which no restart converts "
                        f"(not even with --force); restart with temperature_unit = \"{before}\" and its "
                        f"temperatures in {before}, or run the case anew with --overwrite")


SUM_TOLERANCE = 1e-10  # of the sum of |values|: sums over the writing and the reading blocks differ in round-off


def vector_sums(comm, block: np.ndarray) -> tuple[float, float]:
    """(sum, sum of |values|) of a vector held as every rank's block (collective): written with a
    checkpoint's vector and compared when it is read, they catch values changed on the disk."""
    sums = np.array([np.sum(block), np.sum(np.abs(block))], dtype=float)
    comm.Allreduce(MPI.IN_PLACE, sums)
    return float(sums[0]), float(sums[1])


def read_state(path: Path, mesh, nodes: BlockRedistributor, names, open_file) -> dict:
    """Each rank reads its canonical block of each dataset; returns local vectors (ghosts set).
    A vector whose sum is not the one written with it (a byte changed on the disk) is refused."""
    f = open_file(path)
    try:
        out = {}
        for name in names:
            block = f.read_block(f"/{name}", nodes)
            written, magnitude = f.read_attr(f"/{name}", "sum"), f.read_attr(f"/{name}", "abs_sum")
            if written is not None or magnitude is not None:  # (checkpoints of earlier versions have none)
                try:
                    written, magnitude = float(written), float(magnitude)
                except (TypeError, ValueError):
                    raise CaseError(f"{path}: damaged checkpoint: the attributes sum and abs_sum of /{name} are "
                                    f"not numbers") from None
                now = vector_sums(mesh.comm, block)
                if not abs(now[0] - written) <= SUM_TOLERANCE * magnitude:
                    raise CaseError(f"{path}: damaged checkpoint: /{name} sums to {now[0]:.12g}, written as "
                                    f"{written:.12g} (its values changed on the disk); restart from an "
                                    f"earlier checkpoint by its path")
            local = np.empty(mesh.n_local)
            local[: mesh.n_owned] = nodes.from_blocks(block)
            mesh.halo.update(local)
            out[name] = local
    finally:
        f.close()
    return out
