"""Disk space set aside for a results file's end record.

The last write of a run, its end record, needs a little room. If another program fills the disk
between the last snapshot and the end, a write that fails half-way through HDF5's metadata flush
leaves a file that no longer opens, with every snapshot in it (and, through the MPI-IO driver,
ranks that part ways inside HDF5's collective close and hang). So the writer flushes every
table it appends to, closes the file with nothing left to write, and writes the end record on
rank 0 alone; and rank 0 fills a small hidden file beside the results file when it creates or
reopens it, and removes it just before the end: the end record then finds the room it needs,
whoever filled the disk meanwhile. Before the end record, the closed file is extended by that
room (:func:`extend`), so that HDF5 writes into blocks the disk has already given: another
program that fills the disk at that very moment makes the extension fail, whole, instead of
HDF5's flush. Where the room is not there, the end record is not attempted, and the file stays
as its last flush left it: readable, with all its snapshots.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

SIZE = 1 << 16  # bytes: the end record's attributes and the metadata the close flushes, with room to spare


def path_for(h5_path: Path) -> Path:
    return h5_path.with_name(f".{h5_path.name}.reserve")


def keep(h5_path: Path) -> None:
    """Set :data:`SIZE` bytes aside beside ``h5_path`` (rank 0; nothing where they do not fit)."""
    path = path_for(h5_path)
    if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
        return  # not ours (a FIFO would block the open): no reserve
    try:
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644),
                  "wb") as f:
            f.write(b"\0" * SIZE)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        release(h5_path)


def extend(h5_path: Path) -> None:
    """Append :data:`SIZE` zero bytes to the closed HDF5 file ``h5_path`` (rank 0), on the disk
    before HDF5 needs them: the end record's metadata, allocated at the end of the file, then
    lands in blocks the disk has given already (HDF5 ignores bytes past its end of file, and
    trims them when it closes the file). On a full disk this fails as a whole (OSError), the file
    as it was."""
    size = os.path.getsize(h5_path)
    try:
        with open(h5_path, "r+b") as f:
            f.seek(size)
            f.write(b"\0" * SIZE)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        os.truncate(h5_path, size)
        raise


def release(h5_path: Path) -> None:
    """Give the space back (rank 0; idempotent; only a regular file of that name is removed)."""
    path = path_for(h5_path)
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):
            os.unlink(path)
    except OSError:
        pass
