"""The files that ``plot`` and ``export`` write: checked before anything is written, then written
into a staging folder beside each and moved into place (:class:`Staging`), so that a write that
fails (a full disk) leaves no partial file and the files that were there as they were."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import stat
import tempfile
from pathlib import Path

from solver.case.inputfiles import holds_hdf5, name_problem
from solver.errors import CaseError, OutputError, SolverExit

PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".tif", ".tiff", ".eps", ".ps")
MAX_PIXELS = 10_000  # a plot's width or height at most


def output_target(path: str | Path, suffixes: tuple[str, ...], option: str = "-o") -> Path:
    """The file to write for ``path``: the first of ``suffixes`` added when it has no extension;
    refused (exit 2) when its extension is not one of ``suffixes``, when it names a directory, a
    device, a FIFO or any file that is not regular, a name no file may have (:func:`name_problem`),
    an HDF5 file (through a link too), a link to an existing file of another kind (by extension:
    one without any is not judged), a link into a folder that does not exist, or when its folder
    does not exist."""
    if str(path) == "-":  # (export -o - of a CSV is read before: it writes no file)
        raise CaseError(f"{option} -: this writes a {suffixes[0]} file, not to standard output; give a file name")
    problem = name_problem(path)
    if problem:
        raise CaseError(f"{option} {path}: {problem}")
    path = Path(path)
    if path.name.lower() in suffixes or path.name in ("", ".", ".."):  # "-o .png": an extension without a name
        raise CaseError(f"{option} {path}: no file name before the extension; give one (e.g. out{suffixes[0]})")
    for candidate in dict.fromkeys((path, path if path.suffix else path.with_name(path.name + suffixes[0]))):
        try:
            mode = os.stat(candidate).st_mode
        except FileNotFoundError:
            real = Path(os.path.realpath(candidate))
            if os.path.islink(candidate) and not real.parent.is_dir():  # a write through it would fail
                raise CaseError(f"{option} {candidate}: is a link to {real}, in a folder that does not exist; "
                                f"give another name, or create {real.parent}") from None
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


class Staging:
    """The files of one command written first into a hidden folder beside each target, then moved
    onto the targets together (:meth:`commit`): a write that fails, or is stopped, leaves no
    partial file beside its targets, and the files that were there as they were."""

    def __init__(self) -> None:
        self.folders: dict[Path, Path] = {}
        self.moves: list[tuple[Path, Path]] = []

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def path(self, target: Path, follow: bool = True) -> Path:
        """Where to write ``target`` for now (under the same name, in a folder beside it). A target
        that is a link is written where it points (the link kept), as a write through it would;
        not with ``follow`` False (a file another writes beside its staged sibling)."""
        if follow and target.is_symlink() and Path(os.path.realpath(target)).parent.is_dir():
            target = Path(os.path.realpath(target))
        folder = target.parent
        if folder not in self.folders:
            self.folders[folder] = Path(tempfile.mkdtemp(prefix=".export-", dir=folder))
        staged = self.folders[folder] / target.name
        self.moves.append((staged, target))
        return staged

    def commit(self) -> None:
        """Move every staged file onto its target; a stop signal waits until all are moved."""
        held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        before = signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            for staged, target in self.moves:
                try:  # (a file replaced keeps its permissions)
                    shutil.copymode(target, staged)
                except OSError:
                    pass
                os.replace(staged, target)
            self.moves = []
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)

    def close(self) -> None:
        for folder in self.folders.values():
            shutil.rmtree(folder, ignore_errors=True)
        self.folders = {}


NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)  # the output's fault (exit 74), not the request's
HDF5_ERRNO = re.compile(r"\berrno = ([0-9]+)")  # HDF5 gives the errno inside its message


def os_error(exc: BaseException | None) -> OSError | None:
    """The OSError behind ``exc``: itself, or one it was raised while handling (matplotlib's PDF
    writer, its write failed, fails again closing its stream with an AttributeError)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__context__
    return None


def error_number(exc: BaseException) -> int | None:
    """The errno of a write's error: the OSError's, or the one HDF5 writes into its message."""
    if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno > 0:
        return exc.errno
    found = HDF5_ERRNO.search(str(exc))
    return int(found.group(1)) if found else None


def why(exc: BaseException) -> str:
    """An error's reason in a few words on one line: the system's words for its errno (HDF5's
    message spans lines, with a time stamp and a buffer address), else its first line; never the
    staging folder's name (an OSError's file name is left out)."""
    number = error_number(exc)
    if number is not None:
        return os.strerror(number)
    text = str(exc).splitlines()[0].strip() if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def write_failed(target: Path | str, exc: BaseException, what: str = "it", option: str = "-o") -> SolverExit:
    """The error of ``target`` not written: exit 74 (:class:`OutputError`) when the disk, a quota or
    the largest file size ran out, or the device failed (free space and run it again); else exit 2
    (:class:`CaseError`: a target that cannot be written, e.g. a read-only folder)."""
    kind = OutputError if error_number(exc) in NO_ROOM else CaseError
    return kind(f"{option} {target}: cannot write {what} ({why(exc)}); the files there are as they were")


def save_figure(fig, out: Path, option: str = "-o") -> None:
    """``fig`` saved as ``out`` (in the format its extension names) through a staging folder beside
    it (:class:`Staging`): a write that fails leaves no partial file, and a picture that was there
    as it was; the error is :func:`write_failed`'s (exit 74 for a full disk)."""
    with Staging() as staging:
        try:
            fig.savefig(staging.path(out), dpi=100, format=_kind(out.suffix).lstrip("."))
            staging.commit()
        except Exception as exc:  # noqa: BLE001 (a writer may fail again cleaning up: the OSError behind it)
            cause = os_error(exc)
            if cause is None:
                raise
            raise write_failed(out, cause, option=option) from None
