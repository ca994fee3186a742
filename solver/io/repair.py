"""A results file cut short by a failed write, made readable again for a restart.

When the disk fills while the ranks write a snapshot through MPI-IO, HDF5 may have recorded a
larger end of file in its superblock than the disk received: the file then refuses to open
("truncated file: eof = X, ... stored_eof = Y"), although everything its listed snapshots hold
lies before X. :func:`extend_truncated` pads such a file with zeros up to Y (what the failed
write would have filled), so that HDF5 opens it; the restart then checks the snapshots it lists
against its checkpoint and cuts the failed one away, as after any failed write. Rank 0, serial.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import h5py

from solver.errors import CaseError

log = logging.getLogger("solver")

_TRUNCATED = re.compile(r"truncated file: eof = (\d+), sblock->base_addr = (\d+), stored_eof = (\d+)")
MAX_PADDING = 1 << 34  # bytes a failed write may have left missing (16 GiB: far more than one snapshot)


def extend_truncated(h5_path: Path) -> bool:
    """Pad ``h5_path`` to the end of file its superblock records, where HDF5 refuses to open it as
    truncated; True when it did (and the file opens now)."""
    try:
        with h5py.File(h5_path, "r"):
            return False
    except OSError as exc:
        found = _TRUNCATED.search(str(exc))
    if found is None:
        return False
    eof, base, stored = (int(v) for v in found.groups())
    size = os.path.getsize(h5_path)
    if not (size == eof and base == 0 and eof < stored <= eof + MAX_PADDING):
        return False
    try:
        os.truncate(h5_path, stored)
        with h5py.File(h5_path, "r") as f:
            _check_listed(f, size)
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        os.truncate(h5_path, size)  # as it was: nothing of ours made it worse
        raise CaseError(f"{h5_path}: the failed write cut the results file short in what its listed snapshots "
                        f"need ({str(exc).splitlines()[0][:100]}): they cannot be read back, and a restart "
                        f"continues its results file; run the case again (--overwrite keeps this file as .bak)") \
            from None
    log.warning(f"warning: {h5_path} was cut short by a failed write ({eof} of {stored} bytes); padded to open "
                f"it: its listed snapshots are checked against the checkpoint, the unfinished one goes")
    return True


def _check_listed(f: h5py.File, size: int) -> None:
    """What a restart keeps of a results file lies within its first ``size`` bytes: its times,
    time-step and probe tables, and the snapshots its times list (the failed write's own one may
    lie beyond, padded: the restart cuts it away). Raises where HDF5 cannot read an index, or
    where kept data lies in the padding."""
    listed = f["time"].shape[0]
    kept = [f["time"], *(f[name] for name in ("step", "steps", "probes") if name in f)]
    for group in f["fields"].values():
        kept += [group[key] for key in group.keys() if key.isdigit() and int(key) < listed]
    for item in kept:
        for ds in (item.values() if isinstance(item, h5py.Group) else [item]):
            if isinstance(ds, h5py.Dataset) and not _within(ds, size):
                raise ValueError(f"{ds.name} lies beyond the {size} bytes written")


def _within(ds: h5py.Dataset, size: int) -> bool:
    """Whether the stored data of ``ds`` ends within the first ``size`` bytes of its file."""
    offset = ds.id.get_offset()
    if offset is not None:
        return offset + ds.id.get_storage_size() <= size
    if ds.chunks is None:  # compact, or not allocated
        return True
    for i in range(ds.id.get_num_chunks()):
        chunk = ds.id.get_chunk_info(i)
        if chunk.byte_offset + chunk.size > size:
            return False
    return True
