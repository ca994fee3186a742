"""The files that ``plot`` and ``export`` write: checked before anything is written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from solver.case.inputfiles import holds_hdf5
from solver.errors import CaseError

PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".tif", ".tiff", ".eps", ".ps")
MAX_PIXELS = 10_000  # a plot's width or height at most


def output_target(path: str | Path, suffixes: tuple[str, ...], option: str = "-o") -> Path:
    """The file to write for ``path``: the first of ``suffixes`` added when it has no extension;
    refused (exit 2) when its extension is not one of ``suffixes``, when it names a directory, a
    device, a FIFO or any file that is not regular, an HDF5 file (through a link too), a link to an
    existing file of another kind (by extension: one without any is not judged), or when its folder
    does not exist."""
    if str(path) == "-":  # (export -o - of a CSV is read before: it writes no file)
        raise CaseError(f"{option} -: this writes a {suffixes[0]} file, not to standard output; give a file name")
    path = Path(path)
    if path.name.lower() in suffixes or path.name in ("", ".", ".."):  # "-o .png": an extension without a name
        raise CaseError(f"{option} {path}: no file name before the extension; give one (e.g. out{suffixes[0]})")
    for candidate in dict.fromkeys((path, path if path.suffix else path.with_name(path.name + suffixes[0]))):
        try:
            mode = os.stat(candidate).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CaseError(f"{option} {candidate}: cannot write it ({exc.strerror})") from None
        if stat.S_ISDIR(mode):
            raise CaseError(f"{option} {candidate}: is a directory; give a file name")
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device or special file"
            raise CaseError(f"{option} {candidate}: is {kind}, not a regular file")
        if holds_hdf5(candidate):  # results, a study or a checkpoint, maybe through a link: never written over
            raise CaseError(f"{option} {candidate}: is an HDF5 file{_through_link(candidate)} (results, a study or a "
                            f"checkpoint?), which this would overwrite; give another name")
        real = Path(os.path.realpath(candidate))
        if os.path.islink(candidate) and candidate.suffix and real.suffix and \
                _kind(real.suffix) != _kind(candidate.suffix):
            raise CaseError(f"{option} {candidate}: is a link to {real}, a file of another kind, which this would "
                            f"overwrite with a {candidate.suffix} file; give another name")
    if not path.suffix:
        path = path.with_name(path.name + suffixes[0])
    if path.suffix.lower() not in suffixes:
        raise CaseError(f"{option} {path}: unknown extension {path.suffix!r}; allowed: {', '.join(suffixes)}")
    folder = path.parent
    if not folder.is_dir():
        raise CaseError(f"{option} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise CaseError(f"{option} {path}: folder {folder} is not writable")
    return path


SAME_KIND = {".jpeg": ".jpg", ".tiff": ".tif"}


def _kind(suffix: str) -> str:
    """A file's kind from its extension (.jpg and .jpeg are one)."""
    return SAME_KIND.get(suffix.lower(), suffix.lower())


def _through_link(path: Path) -> str:
    return f" (through the link to {os.path.realpath(path)})" if os.path.islink(path) else ""


def plot_size(size: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` in pixels, each between 16 and :data:`MAX_PIXELS`."""
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise CaseError(f"--size {size}: expected WIDTHxHEIGHT in pixels, e.g. 1000x700") from None
    if not (16 <= w <= MAX_PIXELS and 16 <= h <= MAX_PIXELS):
        raise CaseError(f"--size {size}: width and height from 16 to {MAX_PIXELS} pixels")
    return w, h
