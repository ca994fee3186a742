"""One HDF5 file written by all ranks together: datasets in the canonical numbering, written block
by block (:class:`solver.parallel.BlockRedistributor`), series that grow by one row per output,
and attributes. Results files and checkpoints are both block files.

Two variants differ only in who holds the file and how blocks reach it:

* :class:`MpioBlockFile`: every rank opens the file with h5py's ``mpio`` driver and writes its
  own block (collective hyperslab writes); metadata operations are collective.
* :class:`GatheredBlockFile`: rank 0 alone opens it (serial h5py, when h5py lacks MPI); the
  blocks travel to rank 0 one rank at a time.

Values of series and attributes are written by rank 0 in both.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import shutil
import stat
from pathlib import Path

import h5py
import numpy as np
from mpi4py import MPI

from solver.errors import CaseError, OutputError
from solver.io.deadline import bounded
from solver.io.parking import park, parked  # noqa: F401 (the writers' names for them)
from solver.parallel.blocks import BlockRedistributor
from solver.parallel.buffers import whole

log = logging.getLogger(__name__)
SERIES_CHUNK = 256
HEADROOM = 1 << 20  # bytes a write leaves free on the disk (for HDF5's metadata and the end record)
METADATA_BYTES = 1 << 16  # HDF5 metadata of a new dataset, and its chunk rounding, at most


def free_bytes(folder: Path) -> int | None:
    """Free space on the disk holding ``folder`` (None where unknown)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _fallocate():
    """libc's fallocate(2), or None (not Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.fallocate
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    call.restype = ctypes.c_int
    return call


_FALLOCATE = None if os.environ.get("SOLVER_TEST_NO_SET_ASIDE") else _fallocate()  # (tests: the path without)
KEEP_SIZE = 1  # FALLOC_FL_KEEP_SIZE: blocks past the end of the file, its size unchanged


def _end_of(path: Path) -> int | None:
    try:
        return os.stat(path, follow_symlinks=False).st_size
    except OSError:
        return None


def give_back(path: Path, end: int) -> None:
    """Free what :func:`set_aside` took past the end of ``path`` up to ``end`` and the write did
    not use (rank 0): blocks past the end of a file stay its own until it is cut."""
    if _FALLOCATE is None:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        size = os.fstat(fd).st_size
        if stat.S_ISREG(os.fstat(fd).st_mode) and end > size:
            os.ftruncate(fd, size)  # (its own size: only the blocks past its end go)
    except OSError:
        pass  # (nothing lost but the room)
    finally:
        os.close(fd)


def set_aside(path: Path, nbytes: int) -> None:
    """Have the disk give ``nbytes`` past the end of the file ``path`` now (rank 0), its size
    unchanged: the write that follows (HDF5 allocates past its end of file) then lands in blocks
    the disk has given, and another program that fills the disk meanwhile makes this call fail,
    whole (OSError, ENOSPC), instead of HDF5's metadata flush half-way, which could leave every
    listed snapshot unreadable. Where the file system cannot (no fallocate), nothing is set aside."""
    if _FALLOCATE is None or nbytes <= 0:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return  # not there yet, a link or not ours to open: the write itself says what is wrong
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        if _FALLOCATE(fd, KEEP_SIZE, os.fstat(fd).st_size, nbytes) != 0:
            code = ctypes.get_errno()
            if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise OSError(code, os.strerror(code))
    finally:
        os.close(fd)


def write_or_fail(comm, path: Path, what: str, steps, needed: int = 0, headroom: int = HEADROOM,
                  close_alone: bool = False) -> None:
    """Run the write ``steps`` (callables, or one) on every rank, all or nothing as far as the
    ranks can tell.

    First rank 0 checks that ``needed`` bytes fit on the disk with ``headroom`` to spare;
    if not, nothing is written. Then every rank runs every step, even after one failed on it
    (the steps are HDF5's collective operations: a rank that skipped the rest would leave the
    others waiting). An OSError (or an HDF5 error) on any rank is shared, and every rank raises
    :class:`OutputError` naming ``path`` and ``what``. ``close_alone``: the last step (the
    file's close, after a flush) runs only once every rank has run the others without error: a
    collective close of a file whose writes failed retries them, and hangs under MPI-IO.
    A write that parts the ranks inside HDF5 ends the process (:mod:`solver.io.deadline`)."""
    with bounded(path, what, needed):
        _write_or_fail(comm, path, what, steps, needed, headroom, close_alone)


def _write_or_fail(comm, path: Path, what: str, steps, needed: int, headroom: int, close_alone: bool) -> None:
    problem = None
    if comm.rank == 0 and needed:
        free = free_bytes(path.parent)
        if free is not None and free < needed + headroom:
            spare = f" (and {headroom / 2**20:.0f} MiB to spare)" if headroom else ""
            problem = f"no room on its disk: it needs {needed / 2**20:.2f} MiB{spare}, {free / 2**20:.2f} MiB free"
    aside = None  # (rank 0: the end of what was set aside)
    if comm.rank == 0 and problem is None and needed and path.suffix != ".xdmf":  # (the XDMF index: rank 0's text)
        try:
            end = _end_of(path)
            set_aside(path, needed)
            aside = None if end is None else end + needed
        except OSError as exc:
            problem = f"no room on its disk: the {needed / 2**20:.2f} MiB it needs could not be set aside " \
                      f"({exc.strerror})"
    problem = comm.bcast(problem, root=0)
    failed_steps = False
    steps = list(steps) if isinstance(steps, (list, tuple)) else [steps]
    for batch in ([steps[:-1], steps[-1:]] if close_alone else [steps]):
        if problem is not None:
            break
        for step in batch:
            try:
                step()
            except (OSError, RuntimeError) as exc:  # h5py: OSError for I/O, RuntimeError for some HDF5 errors
                if problem is None:
                    problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    free = free_bytes(path.parent)
                    if free is not None and free < HEADROOM:
                        problem += f"; the disk is full ({free / 2**20:.2f} MiB free)"
        failed = np.array([problem is not None], dtype=np.int64)
        comm.Allreduce(MPI.IN_PLACE, failed, op=MPI.MAX)
        if failed[0]:
            problem = next(p for p in comm.allgather(problem) if p is not None)
            failed_steps = True
    if aside is not None and not failed_steps:
        give_back(path, aside)
    if problem is not None:
        raise OutputError(f"{path}: cannot write {what} ({problem})", broken=failed_steps)


def write_temporary_or_fail(comm, tmp: Path, file, what: str, steps, needed: int = 0) -> None:
    """:func:`write_or_fail` for ``file``, open at the temporary path ``tmp`` (renamed once
    complete), its last step the file's close (run once the others, a flush last, succeeded on
    every rank): on failure, a file whose write failed is parked (:func:`park`) and ``tmp`` is
    removed, so that nothing unfinished is left behind (a second Ctrl-C on the way too)."""
    try:
        write_or_fail(comm, tmp, what, steps, needed, close_alone=True)
    except KeyboardInterrupt:  # stopping at once (exit 130), on whichever rank it came
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    except OutputError as exc:
        if exc.broken:
            park(file)
        if comm.rank == 0:
            tmp.unlink(missing_ok=True)
        raise


def h5py_has_mpi() -> bool:
    return bool(h5py.get_config().mpi)


def choose_driver(driver: str, comm) -> str:
    """``output.driver`` resolved: auto is mpio when h5py has MPI, else gathered (with a warning)."""
    if driver == "auto":
        driver = "mpio" if h5py_has_mpi() else "gathered"
        if driver == "gathered" and comm.size > 1 and comm.rank == 0:
            log.warning("warning: h5py was built without MPI; writing the results through rank 0 "
                        "(slower; rebuild h5py with HDF5_MPI=ON for parallel output)")
    elif driver == "mpio" and not h5py_has_mpi():
        raise CaseError("output.driver = \"mpio\" needs h5py built with MPI; use \"auto\" or \"gathered\"")
    return driver


class BlockFile:
    """What both variants share; ``self.file`` is None on ranks that do not hold the file."""

    def __init__(self, path: Path, comm, mode: str = "w"):
        self.path, self.comm = Path(path), comm
        self.file = self._open(mode)

    def _open(self, mode: str):
        raise NotImplementedError

    def _shared(self, value):
        """A value read by the ranks holding the file, on every rank."""
        return value

    # ---------------------------------------------------------------- blocks of the canonical numbering
    def write_blocks(self, name: str, block: np.ndarray, dist: BlockRedistributor):
        """Create dataset ``name`` of ``dist.n_global`` rows; this rank's block is ``block``."""
        raise NotImplementedError

    def read_block(self, name: str, dist: BlockRedistributor) -> np.ndarray:
        """This rank's block of dataset ``name``."""
        raise NotImplementedError

    def check_block(self, name: str, block: np.ndarray, dist: BlockRedistributor) -> None:
        """Read this rank's block of ``name`` back and compare it with what was written: a write
        that failed on a full disk is not always reported (MPI-IO's collective writes, HDF5's
        buffered ones), and a snapshot must never be listed with zeros in place of its values."""
        if not np.array_equal(self.read_block(name, dist), block, equal_nan=True):
            raise OSError(f"{name}: the values read back differ from those written (a write the file system "
                          f"did not report as failed)")

    # ---------------------------------------------------------------- series and attributes
    def read_all(self, name: str):
        """A whole (small) dataset on every rank; None when it does not exist."""
        value = self.file[name][()] if self.file is not None and name in self.file else None
        return self._shared(value)

    def read_attr(self, name: str, key: str, default=None):
        """An attribute of the object ``name`` (``"/"``: the file) on every rank."""
        value = default
        if self.file is not None and name in self.file:
            value = self.file[name].attrs.get(key, default)
            value = value.decode() if isinstance(value, bytes) else value
        return self._shared(value)

    def create_series(self, name: str, dtype, width: int | None = None) -> None:
        """An empty dataset that grows by rows (scalars, or rows of ``width``)."""
        if self.file is None:
            return
        row = () if width is None else (width,)
        self.file.create_dataset(name, shape=(0,) + row, maxshape=(None,) + row,
                                 chunks=(SERIES_CHUNK,) + row, dtype=dtype)

    def append_rows(self, name: str, rows) -> None:
        """Append rows (rank 0's values) to a series."""
        if self.file is None:
            return
        ds = self.file[name]
        n = ds.shape[0]
        rows = np.asarray(rows)
        ds.resize((n + len(rows),) + ds.shape[1:])
        if self.comm.rank == 0 and len(rows):
            ds[n:] = rows

    def append(self, name: str, value) -> None:
        """Append one value to a series of scalars."""
        self.append_rows(name, [value])

    def truncate(self, name: str, length: int) -> None:
        if self.file is not None:
            ds = self.file[name]
            ds.resize((length,) + ds.shape[1:])

    def create_group(self, name: str) -> None:
        if self.file is not None:
            self.file.require_group(name)

    def write_array(self, name: str, array: np.ndarray) -> None:
        """A small dataset holding ``array`` (the same on every rank; rank 0 writes it), unless the
        file has ``name`` already."""
        if self.file is None or name in self.file:
            return
        ds = self.file.create_dataset(name, shape=array.shape, dtype=array.dtype)
        if self.comm.rank == 0:
            ds[...] = array

    def list_members(self, group: str) -> list[str]:
        """Names in ``group`` (empty when it does not exist), on every rank."""
        names = sorted(self.file[group]) if self.file is not None and group in self.file else []
        return self._shared(names)

    def delete(self, name: str) -> None:
        if self.file is not None and name in self.file:
            del self.file[name]

    def set_attrs(self, path: str, attrs: dict) -> None:
        if self.file is not None:
            node = self.file[path]
            for k, v in attrs.items():
                node.attrs[k] = v

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class MpioBlockFile(BlockFile):
    """Every rank opens the file with the mpio driver and writes its own block."""

    driver = "mpio"

    def _open(self, mode: str):
        return h5py.File(self.path, mode, driver="mpio", comm=self.comm)

    def write_blocks(self, name, block, dist):
        ds = self.file.create_dataset(name, shape=(dist.n_global,) + block.shape[1:], dtype=block.dtype)
        if dist.n_global >= self.comm.size:  # every rank has a block: one collective write
            with ds.collective:
                ds[dist.start:dist.start + len(block)] = block
        elif len(block):
            ds[dist.start:dist.start + len(block)] = block
        return ds

    def read_block(self, name, dist):
        ds = self.file[name]
        if all(dist.starts[1:] > dist.starts[:-1]):
            with ds.collective:
                return native(ds[dist.start:dist.stop])
        return native(ds[dist.start:dist.stop])


class GatheredBlockFile(BlockFile):
    """Rank 0 owns the file (serial h5py); blocks travel to it one rank at a time."""

    driver = "gathered"

    _BLOCK, _DTYPE = 77, 78  # message tags

    def _open(self, mode: str):
        file, error = None, None
        if self.comm.rank == 0:
            try:
                file = h5py.File(self.path, mode)
            except OSError as exc:
                error = exc
        error = self.comm.bcast(error, root=0)
        if error is not None:
            raise error
        return file

    def _shared(self, value):
        return self.comm.bcast(value, root=0)

    def write_blocks(self, name, block, dist):
        comm = self.comm
        block = np.ascontiguousarray(block)
        if comm.rank != 0:
            comm.Send(whole(block), dest=0, tag=self._BLOCK)
            return None
        ds, error = None, None
        try:
            ds = self.file.create_dataset(name, shape=(dist.n_global,) + block.shape[1:], dtype=block.dtype)
            ds[dist.start:dist.start + len(block)] = block
        except (OSError, RuntimeError) as exc:
            error = exc
        for r in range(1, comm.size):  # every block is received, even after an error: no rank waits forever
            lo, hi = int(dist.starts[r]), int(dist.starts[r + 1])
            buf = np.empty((hi - lo,) + block.shape[1:], dtype=block.dtype)
            comm.Recv(whole(buf), source=r, tag=self._BLOCK)
            if error is None:
                try:
                    ds[lo:hi] = buf
                except (OSError, RuntimeError) as exc:
                    error = exc
        if error is None:
            try:  # while ds lives: HDF5 buffers small writes, and a failure when ds is released goes unseen
                self.file.flush()
            except (OSError, RuntimeError) as exc:
                error = exc
        if error is not None:
            raise error
        return ds

    def read_block(self, name, dist):
        comm = self.comm
        if comm.rank != 0:
            dtype = np.dtype(comm.recv(source=0, tag=self._DTYPE))
            buf = np.empty(dist.stop - dist.start, dtype=dtype)
            comm.Recv(whole(buf), source=0, tag=self._BLOCK)
            return buf
        ds = self.file[name]
        for r in range(1, comm.size):
            block = np.ascontiguousarray(native(ds[int(dist.starts[r]):int(dist.starts[r + 1])]))
            comm.send(block.dtype.str, dest=r, tag=self._DTYPE)
            comm.Send(whole(block), dest=r, tag=self._BLOCK)
        return native(ds[dist.start:dist.stop])


MPIO_MAX_PATH = 200  # bytes of a path given to MPI-IO: Open MPI copies "<path>.locktest.<rank>" into 256 of them


def native(array: np.ndarray) -> np.ndarray:
    """``array`` in this machine's byte order (h5py reads a dataset in the order it was stored, and
    MPI sends only native numbers)."""
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def open_block_file(path: Path, comm, driver: str, mode: str = "w") -> BlockFile:
    """Open (collectively) a block file with ``driver`` (mpio or gathered); a failure on any rank
    is a CaseError on every rank. A path longer than MPIO_MAX_PATH bytes is written gathered: past
    them, Open MPI's shared file pointer overflows its buffer and aborts the process (the files
    are the same)."""
    if driver == "mpio" and len(os.fsencode(str(path))) > MPIO_MAX_PATH:
        driver = "gathered"
    ok = np.array([1], dtype=np.int64)
    error, file = "", None
    if mode == "w":  # a link left at a new file's name (a temporary's): replaced, never written through
        if comm.rank == 0 and os.path.islink(path):
            os.unlink(path)
        comm.Barrier()
    try:
        with bounded(path, "the file's creation" if mode == "w" else "the file's opening"):
            file = (MpioBlockFile if driver == "mpio" else GatheredBlockFile)(path, comm, mode)
    except OSError as exc:
        ok[0], error = 0, str(exc).splitlines()[0]
    comm.Allreduce(MPI.IN_PLACE, ok, op=MPI.MIN)
    if not ok[0]:
        verb = "create" if mode == "w" else "open"
        full = np.array([int(no_space(error))], dtype=np.int64)
        comm.Allreduce(MPI.IN_PLACE, full, op=MPI.MAX)
        raise (OutputError if full[0] else CaseError)(f"{path}: cannot {verb} the file "
                                                      f"({error or 'failed on another rank'})")
    return file


def no_space(error: str | BaseException) -> bool:
    """Whether an error says that the disk (its blocks, its inodes or a quota) is full."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error).lower()
    return any(words in text for words in ("no space left", "no_space", "quota exceeded", "disk quota"))
