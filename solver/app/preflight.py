"""Checks before any work: the output directory (writable, enough space, not in use by another
run, no result overwritten silently), the memory and the split of a structured mesh. All run on
rank 0 and reach every rank through ``on_root``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import time
from pathlib import Path

import h5py

try:
    import fcntl
except ImportError:  # no flock: see _removers
    fcntl = None

from solver.case.inputfiles import holds_hdf5
from solver.case.records import MeshSpec, StructuredMeshSpec
from solver.case.shown import size
from solver.errors import CaseError, OutputError
from solver.io.blockfile import HEADROOM, no_space
from solver.io.checkpoint import LINK, checkpoint_dir, run_id_in
from solver.io.folder import RUN_LOCK, lock_start, process_start, read_lock, stale_lock
from solver.mesh.structured import split
from solver.parallel.collective import on_root
from solver.parallel.memory import BYTES_PER_NODE, memory_available

log = logging.getLogger(__name__)

LOCK = RUN_LOCK


def check_memory(comm, source: str, mesh: MeshSpec) -> None:
    """Refuse a structured mesh that would not fit in this machine's memory, before allocating."""
    if not isinstance(mesh, StructuredMeshSpec):
        return
    dims = mesh.n
    nodes = 1
    for n in dims:
        nodes *= n + 1
    need = nodes * BYTES_PER_NODE[len(dims)]
    have = on_root(comm, memory_available)
    if have is not None and need > have:
        cells = " x ".join(str(n) if n < 10**6 else f"{n:.3g}" for n in dims)
        raise CaseError(f"{source}: mesh {cells} ({nodes:.3g} nodes) needs about {need / 2**30:.3g} GiB in all, "
                        f"this machine has {have / 2**30:.1f} GiB available; use a coarser mesh or more nodes")


def check_split(comm, mesh: MeshSpec, source: str = "") -> None:
    """Refuse a structured mesh with fewer cells along a direction than ranks there (naming the
    case file ``source``)."""
    if isinstance(mesh, StructuredMeshSpec):
        try:
            split(comm.size, mesh.n)
        except CaseError as exc:
            raise CaseError(f"{source}: {exc}" if source else str(exc)) from None


SNAPSHOT_BYTES = 1536  # per field of a snapshot beside its values: HDF5's metadata of its dataset and its grid in the
# XDMF index (measured on a 15-node mesh: about 530 and 670 bytes)


def estimate_output_bytes(n_nodes: int, n_cells: int, nodes_per_cell: int, gdim: int, snapshots: int) -> int:
    """The results' bytes: the mesh, ``snapshots`` fields of ``n_nodes`` values each and what each
    costs beside its values (:data:`SNAPSHOT_BYTES`: thousands of snapshots of a small mesh take
    more in metadata and in the XDMF index than in values)."""
    return 8 * (n_nodes * gdim + n_cells * nodes_per_cell + n_nodes * (snapshots + 2)) + SNAPSHOT_BYTES * snapshots \
        + 65536


GARBAGE_LOCK_AGE = 10.0  # seconds: a lock without "host pid" this old is not one being written


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _identity(path: Path) -> tuple[int, int, int] | None:
    """(device, inode, change time) of ``path`` itself: a lock replaced by another has another."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_ctime_ns


@contextlib.contextmanager
def _removers(folder: Path):
    """Held while a run removes a lock that is not its own: runs that judged one lock stale remove
    it one at a time (an exclusive flock on the folder, waited for up to 10 s). Where the file
    system has no flock, nothing is held: the rename in :func:`_remove_stale` still lets one of them
    remove the lock."""
    try:
        if fcntl is None:
            raise OSError
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        yield
        return
    try:
        end = time.monotonic() + 10.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > end:
                    break
                time.sleep(0.005)
            except OSError:  # no flock here
                break
        yield
    finally:
        os.close(fd)  # releases the flock


def _remove_stale(lock: Path, seen: tuple[int, int, int], judged: tuple[str, str]) -> bool:
    """Remove ``lock`` if it is still the lock judged stale: the file ``seen`` (:func:`_identity`)
    holding ``judged`` (host, pid). Another run may have replaced it since it was read (having judged
    it stale too); that run's lock is left alone, and the caller tries again. The lock is renamed
    to a name of this process's before it is removed, and the renamed file checked: only one rename
    of a file succeeds, and a lock that proves to be another's is put back. Returns whether it removed
    the lock."""
    with _removers(lock.parent):
        if _identity(lock) != seen or read_lock(lock) != judged:
            return False
        aside = lock.with_name(f"{lock.name}.{socket.gethostname()}.{os.getpid()}.stale")
        try:
            os.rename(lock, aside)
        except FileNotFoundError:  # removed by another run
            return False
        except OSError:
            lock.unlink(missing_ok=True)  # (no rename here: the checks above stand)
            return True
        moved = _identity(aside)
        if moved is not None and moved[:2] == seen[:2] and read_lock(aside) == judged:
            aside.unlink(missing_ok=True)
            return True
        try:  # another run's lock (only where no flock holds the others off): put it back
            os.link(aside, lock)
        except OSError:
            pass
        aside.unlink(missing_ok=True)
        return False


def discard_backup(folder: Path, ours) -> None:
    """Delete the files of ``folder`` that ``ours(path)`` says the solver wrote; anything else (a
    user's file, a folder, another run's checkpoint moved aside) is kept: the folder then moves
    to ``<folder>.kept`` (numbered if that exists), with a warning."""
    foreign = []
    for path in sorted(folder.iterdir()):
        if not path.is_symlink() and path.is_file() and ours(path):
            path.unlink()
        elif path.is_symlink() and path.name == LINK:
            path.unlink()
        else:
            foreign.append(path.name)
    if not foreign:
        folder.rmdir()
        return
    kept = folder.with_name(folder.name + ".kept")
    n = 1
    while os.path.lexists(kept):
        n += 1
        kept = folder.with_name(f"{folder.name}.kept{n}")
    os.replace(folder, kept)
    shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
    log.warning(f"warning: {folder} held {len(foreign)} entries the solver did not write ({shown}): kept in "
                f"{kept.name} (the earlier backup it replaces went)")


SAVED_RUNS = "samples"  # a study's folder of its samples' results files (outputs.save_runs)


def saved_runs_aside(runs: Path) -> bool:
    """Move a study's folder of saved runs to ``samples.bak`` (where the files of ours in an older
    backup go, and the others stay: :func:`discard_backup`); whether there was one to move."""
    moved = runs.is_dir() and not runs.is_symlink()
    if moved:
        bak = runs.with_name(runs.name + ".bak")
        if bak.is_dir() and not bak.is_symlink():
            discard_backup(bak, _saved_run)
        os.replace(runs, bak)
    return moved


def _own_checkpoint(path: Path) -> bool:
    """A checkpoint of ours by its name (step_N.h5, or its unfinished step_N.h5.tmp) and content."""
    name = path.name
    if name.startswith("step_") and name.endswith(".h5.tmp") and name[5:-7].isdigit():
        return True
    return name.startswith("step_") and name.endswith(".h5") and name[5:-3].isdigit() and \
        run_id_in(path, checkpoint=True) is not None


def _saved_run(path: Path) -> bool:
    """A study's saved run of a sample: <case>_NNNNNN.h5 (an HDF5 file) or .xdmf."""
    stem, dot, suffix = path.name.rpartition(".")
    index = stem.rpartition("_")[2]
    return dot == "." and len(index) == 6 and index.isdigit() and \
        (suffix == "xdmf" or (suffix == "h5" and holds_hdf5(path)))


class OutputGuard:
    """Rank 0's checks and lock on a results directory."""

    def __init__(self, directory: Path, name: str, checkpoints: bool = True, source: str = ""):
        """``checkpoints``: the files named ``name`` own the folder's checkpoints (a run's; a
        study's do not, and --overwrite of a study never moves a run's checkpoints); ``source``: the
        case file of this run."""
        self.directory = Path(directory)
        self.name = name
        self.source = source
        self.checkpoints = checkpoints
        self.lock = self.directory / LOCK
        self.owned = False
        self.created: list[Path] = []  # folders this run made, to remove again if it leaves them empty
        self.replace_old = False  # --overwrite: earlier results to move aside once the checks pass
        self.restart = False  # --restart: the results file there holds part of what the run writes

    def acquire(self, overwrite: bool, restart: bool, needed_bytes: int) -> None:
        d = self.directory
        self.restart = restart
        self.created = []
        for p in (d, *d.parents):
            try:
                if p.exists():
                    break
            except OSError:
                break
            self.created.append(p)
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            dangling = next((p for p in (d, *d.parents) if p.is_symlink() and not p.exists()), None)
            why = f"{dangling} is a link to {os.readlink(dangling)}, which does not exist" if dangling else exc.strerror
            raise CaseError(f"{d}: cannot create the output directory ({why})") from None
        if not os.access(d, os.W_OK | os.X_OK):
            raise CaseError(f"{d}: output directory is not writable")
        folder = checkpoint_dir(d)  # (found here, not at the first checkpoint, after the steps before it; with
        # --overwrite it is moved aside; one that is not a folder: _refuse_odd_entries)
        if self.checkpoints and not overwrite and folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            raise CaseError(f"{folder}: the checkpoints' folder is not writable; the run writes its checkpoints "
                            f"there: make it writable, or move it away")
        self.check_space(needed_bytes)
        self._lock()
        self._refuse_odd_entries()
        h5 = d / f"{self.name}.h5"
        if h5.exists() and not restart:
            if not overwrite:
                self.release()
                go_on = "--restart latest to continue, " if any(checkpoint_dir(d).glob("step_*.h5")) else ""
                name_key = "output.name" if self.checkpoints else "study.name"
                other = self._of_another_case(h5, name_key)
                raise CaseError(f"{h5}: results of an earlier run exist{other}; use --overwrite to replace them "
                                f"(they are kept as {h5.name}.bak), {'' if other else go_on}or another {name_key}")
            self._refuse_odd_backups()
            self.replace_old = True  # moved aside once the space is known to suffice (make_room)

    def _of_another_case(self, h5: Path, name_key: str) -> str:
        """Where the results there were written by another case file than this run's (two file
        names that give one output.name: "my case.toml" and "my_case.toml"), a note naming it."""
        if not self.source or self.source.startswith("<"):
            return ""
        try:
            with h5py.File(h5, "r") as f:
                theirs = f.attrs.get("case_source", "")
        except (OSError, RuntimeError):
            return ""
        theirs = theirs.decode(errors="replace") if isinstance(theirs, bytes) else str(theirs)
        if not theirs or theirs.startswith("<"):
            return ""
        same = os.path.basename(theirs) == os.path.basename(self.source)
        return "" if same else f" (written by another case file, {theirs[:200]}, with the same {name_key})"

    def _refuse_odd_backups(self) -> None:
        """Where --overwrite moves the earlier results (.bak), only earlier backups may stand: a file
        at the checkpoints' or a folder at a file's would stop the move half-way."""
        d, name = self.directory, self.name
        folder_bak = checkpoint_dir(d).with_name(checkpoint_dir(d).name + ".bak") if self.checkpoints else \
            d / "samples.bak"
        for path, folder in ((d / f"{name}.h5.bak", False), (d / f"{name}.xdmf.bak", False), (folder_bak, True)):
            if os.path.lexists(path) and (path.is_symlink() or path.is_dir() != folder):
                self.release()
                what = "a folder" if folder else "a regular file"
                raise CaseError(f"{path}: there but not {what}, where --overwrite keeps the earlier results; "
                                f"move it away")

    def _refuse_odd_entries(self) -> None:
        """The paths the run writes must be regular files (a folder for the checkpoints), or
        absent: a FIFO blocks its open, deaf to SIGTERM; a directory fails the first write."""
        d, name = self.directory, self.name
        for path, kind in ((d / f"{name}.h5", "file"), (d / f"{name}.xdmf", "file"), (d / f"{name}.log", "file"),
                           (checkpoint_dir(d), "folder")):
            if os.path.lexists(path) and not (path.is_file() if kind == "file" else path.is_dir()):
                self.release()
                what = "a regular file" if kind == "file" else "a folder"
                raise CaseError(f"{path}: there but not {what}, which the run writes there; move it away")
        for path in (d / f"{name}.xdmf", d / f"{name}.log"):  # written over or appended to: never an HDF5 file
            if path.is_file() and holds_hdf5(path):
                self.release()
                raise CaseError(f"{path}: is an HDF5 file (through the link to {os.path.realpath(path)}), which the "
                                f"run would write into; move it away" if path.is_symlink() else
                                f"{path}: is an HDF5 file, which the run would write into; move it away")
        xdmf = d / f"{name}.xdmf"
        if xdmf.is_file() and not (d / f"{name}.h5").exists() and not _our_index(xdmf, name):
            self.release()
            raise CaseError(f"{xdmf}: a file that is not the index of this case's results, which the run would "
                            f"write over; move it away, or give another "
                            f"{'output.name' if self.checkpoints else 'study.name'}")
        link = d / LINK
        if os.path.lexists(link) and not (link.is_symlink() or link.is_file()):
            self.release()
            raise CaseError(f"{link}: there but not a link to a checkpoint, which the run writes there; move it away")

    def make_room(self) -> None:
        """With --overwrite, move the earlier results and their checkpoints aside (to .bak, where
        an older .bak goes), after every check passed: a new run never sees an earlier run's
        checkpoints. The results of a run that did not complete do not replace a complete .bak:
        they are removed instead, with their checkpoints."""
        if not self.replace_old:
            return
        h5 = self.directory / f"{self.name}.h5"
        self.replace_old = False
        if not self.checkpoints:  # a study: its file, and the samples' saved runs (output.save_runs)
            for path in (h5, h5.with_suffix(".xdmf")):
                if path.exists():
                    move_aside(path)
            moved = saved_runs_aside(self.directory / SAVED_RUNS)
            log.info(f"moved the earlier results to {h5.name}.bak" + (" (saved runs: samples.bak)" if moved else ""))
            return
        old = checkpoint_dir(self.directory)
        bak = old.with_name(old.name + ".bak")
        link = self.directory / LINK  # points into the checkpoints that go
        if link.is_symlink():
            link.unlink()
        if results_status(h5.with_name(h5.name + ".bak")) == "complete" and results_status(h5) != "complete":
            # an unfinished run (killed or failed after its own --overwrite): the complete backup stays
            for path in (h5, h5.with_suffix(".xdmf")):
                path.unlink(missing_ok=True)
            if old.is_dir() and not old.is_symlink():
                discard_backup(old, _own_checkpoint)
            log.info(f"replaced the results of a run that did not complete; the complete ones stay in {h5.name}.bak")
            return
        for suffix in (".h5", ".xdmf"):
            path = self.directory / f"{self.name}{suffix}"
            if path.exists():
                move_aside(path)
        if bak.is_dir() and not bak.is_symlink():  # the replaced backup's: never beside other results
            discard_backup(bak, _own_checkpoint)
        if old.is_dir() and not old.is_symlink():
            os.replace(old, bak)
        log.info(f"moved the earlier results to {self.name}.h5.bak (checkpoints: {old.name}.bak)")

    def check_space(self, needed_bytes: int) -> None:
        """Refuse a run whose ``needed_bytes`` of results (the whole run's) do not fit on the disk; a
        restart needs only what its results file does not hold yet."""
        free = shutil.disk_usage(self.directory).free
        rest = ""
        if self.restart and needed_bytes:
            h5 = self.directory / f"{self.name}.h5"
            held = h5.stat().st_size if h5.is_file() and not h5.is_symlink() else 0
            needed_bytes, rest = max(needed_bytes - held, 1), "rest of the "
        if needed_bytes and needed_bytes + HEADROOM > free:  # (every write leaves HEADROOM free: it would fail later)
            self.release()
            need = f"about {size(needed_bytes)}" if needed_bytes >= 65536 else "little"
            raise OutputError(f"{self.directory}: the {rest}results need {need}, and every write leaves "
                              f"{size(HEADROOM)} free: {size(needed_bytes + HEADROOM)} in all, only {size(free)} free "
                              f"on that disk; free space, or write fewer snapshots")

    def _lock(self) -> None:
        me = f"{socket.gethostname()} {os.getpid()} {process_start(os.getpid()) or ''}".rstrip()
        for _ in range(3):
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                seen = _identity(self.lock)
                host, pid = read_lock(self.lock)
                if seen is None or _identity(self.lock) != seen:  # replaced or removed while read: look again
                    continue
                garbage = not (pid.isascii() and pid.isdigit() and 0 < int(pid) < 2**31)
                if garbage and _age(self.lock) > GARBAGE_LOCK_AGE:  # not "host pid", and not being written
                    if _remove_stale(self.lock, seen, (host, pid)):
                        log.info(f"removing an unreadable lock {self.lock} (no host and process id a run can have "
                                 f"in it)")
                    continue
                why = None if garbage else stale_lock(host, pid, lock_start(self.lock))
                if why is not None:
                    if _remove_stale(self.lock, seen, (host, pid)):
                        log.info(f"removing a stale lock of process {pid} ({why}) on {self.directory}")
                    continue
                shown = [v if len(v) <= 40 else v[:36] + "..." for v in (pid, host)]
                if garbage:  # (words that are no "host pid", or a pid no process can have: 0, -5, abc)
                    held = "nothing readable" if (host, pid) == ("?", "?") else f"'{shown[1]} {shown[0]}'"
                    raise CaseError(f"{self.directory}: its lock {self.lock} holds no host and process id a run can "
                                    f"have ({held}: a run writing it as it starts?); run again in "
                                    f"{GARBAGE_LOCK_AGE:g} s, when an unreadable lock is removed, or delete it if no "
                                    f"run is starting") from None
                raise CaseError(f"{self.directory}: in use by another run (lock {self.lock} held by process {shown[0]} "
                                f"on {shown[1]}); wait for it, or delete the lock file if that run is gone") from None
            except OSError as exc:  # no inode left for it, a read-only or vanished folder
                self.release()
                full = no_space(exc)
                raise (OutputError if full else CaseError)(
                    f"{self.lock}: cannot create the lock file of this results directory ({exc.strerror})"
                    + ("; free space, then run again" if full else "")) from None
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(me + "\n")
            except OSError as exc:  # a full disk: no empty lock left to block the next run
                self.lock.unlink(missing_ok=True)
                self.release()  # the folders this run made, if empty
                raise OutputError(f"{self.lock}: cannot write the lock file of this results directory "
                                  f"({exc.strerror}); free space, then run again") from None
            self.owned = True
            return
        raise CaseError(f"{self.directory}: could not take the lock {self.lock}")

    def release(self) -> None:
        if self.owned:
            self.lock.unlink(missing_ok=True)
            self.owned = False
        for folder in self.created:  # innermost first: only what we made, only if empty
            try:
                folder.rmdir()
            except OSError:
                break
        self.created = []


def results_status(path: Path) -> str | None:
    """The status a results file records (``complete``, ``running``, ...; None: none readable)."""
    import h5py

    try:
        if not path.is_file():
            return None
        with h5py.File(path, "r") as f:
            status = f.attrs.get("status")
    except (OSError, ValueError):
        return None
    return status.decode() if isinstance(status, bytes) else None if status is None else str(status)


def move_aside(path: Path) -> None:
    """Move ``path`` to ``path.bak``. An XDMF index is written there naming the moved data file
    (``NAME.h5.bak``): moved as it was, it opened the new run's data under the old run's times.
    Where that copy finds no room, the index is removed instead (the data file keeps every
    snapshot), with a warning."""
    bak = path.with_name(path.name + ".bak")
    if path.suffix == ".xdmf" and path.is_file() and not path.is_symlink():
        data = path.with_suffix(".h5").name.encode()
        tmp = bak.with_name(bak.name + ".tmp")
        try:
            text = path.read_bytes()
            tmp.write_bytes(text.replace(b">" + data + b":/", b">" + data + b".bak:/"))
            os.replace(tmp, bak)
            path.unlink()
            return
        except OSError as exc:  # no room for the copy: moved as it is, it would name the new run's data
            tmp.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.unlink()
                log.warning(f"warning: {path}: no room to rewrite this index for {bak.name} ({exc.strerror}); it "
                            f"was removed (the earlier results are whole in {data.decode()}.bak)")
                return
    os.replace(path, bak)


def _our_index(path: Path, name: str) -> bool:
    """Whether ``path`` looks like the XDMF index a run of ``name`` writes (an XDMF document that
    names ``name.h5``): its first 64 KiB are read."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return b"<Xdmf" in head and f"{name}.h5".encode() in head


def guard_output(comm, directory: Path, name: str, overwrite: bool, restart: bool, checkpoints: bool = True,
                 source: str = ""):
    """All ranks: rank 0 checks and locks ``directory``; returns the guard (rank 0) or None
    (``checkpoints``: see :class:`OutputGuard`; ``source``: the case file, named where the results there
    are another's)."""
    guard = OutputGuard(directory, name, checkpoints, source) if comm.rank == 0 else None

    def acquire():
        guard.acquire(overwrite, restart, 0)
        return True
    on_root(comm, acquire, CaseError, keep=(OutputError,))
    return guard


def claim_space(comm, guard: OutputGuard | None, needed: int) -> None:
    """All ranks: rank 0 checks the free space for ``needed`` bytes of results, then (with
    --overwrite) moves the earlier results aside: check first, then move."""
    def claim():
        guard.check_space(needed)
        guard.make_room()
    on_root(comm, claim, CaseError, keep=(OutputError,))
