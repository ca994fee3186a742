"""Files named by the user (case files, tables, mesh files, checkpoints) are opened only when they
are regular files of a sane size: a FIFO would block, a device such as /dev/zero never ends."""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_CASE_BYTES = 4 << 20  # a case file is a few kB
MAX_TABLE_BYTES = 64 << 20  # a property table is a few kB; 64 MiB is millions of rows
MISSING, DIRECTORY = "no such file", "is a directory"  # two answers of file_problem callers tell apart
NAME_MAX, PATH_MAX = 255, 4096  # bytes of one part of a file's name, and of the whole name (Linux)


def file_problem(path: str | Path, max_bytes: int | None = None) -> str | None:
    """Why ``path`` cannot be read as an input file (missing, a directory, not a regular file,
    too large), or None. Does not open it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return MISSING
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    except ValueError:  # (os.stat refuses a name holding a NUL character, as no file has)
        return "cannot read it (its name holds a NUL character, which no file name has)"
    if stat.S_ISDIR(st.st_mode):
        return DIRECTORY
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device or special file"
        return f"is {kind}, not a regular file"
    if max_bytes is not None and st.st_size > max_bytes:
        return f"is {st.st_size / 2**20:.3g} MiB, more than the {max_bytes / 2**20:.0f} MiB such a file may have"
    if st.st_dev in _kernel_devices():  # (a regular file of size 0 whose read may block: /proc/kmsg)
        return "is a file the kernel makes (in /proc or /sys), not an input file"
    return None


def _kernel_devices(cache: list = []) -> set:  # noqa: B006 - filled once per process
    """The devices of the kernel's own file systems (/proc, /sys), whose files claim size 0 and may
    block a reader forever."""
    if not cache:
        found = set()
        for root in ("/proc", "/sys"):
            try:
                found.add(os.stat(root).st_dev)
            except OSError:
                pass
        cache.append(found)
    return cache[0]


def name_problem(path: str | Path) -> str | None:
    """Why a file or folder to be written cannot be named ``path`` (a character that does not print:
    a newline, a control character; a part longer than :data:`NAME_MAX` bytes, a whole longer than
    :data:`PATH_MAX`), or None. Does not look at the file system."""
    text = str(path)
    odd = next((c for c in text if not c.isprintable()), None)
    if odd is not None:
        return f"its name holds a character that does not print ({ascii(odd)[1:-1]}); give a plain name"
    size = len(text.encode("utf-8", "surrogateescape"))
    if size > PATH_MAX:
        return f"its name is {size} bytes, more than the {PATH_MAX} a path may have"
    longest = max(text.split(os.sep), key=lambda part: len(part.encode("utf-8", "surrogateescape")))
    if len(longest.encode("utf-8", "surrogateescape")) > NAME_MAX:
        return f"a part of its name is {len(longest.encode('utf-8', 'surrogateescape'))} bytes, more than the " \
               f"{NAME_MAX} a file or folder name may have"
    return None


def holds_hdf5(path: str | Path) -> bool:
    """Whether ``path`` is a regular file (links followed) that starts with HDF5's signature:
    results, a study or a checkpoint, never to be written over by a file of another kind."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as f:
            return f.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def not_utf8(exc: UnicodeDecodeError) -> str:
    """Where the decoded bytes stop being UTF-8: "byte 0xb0 at line 1, column 4" (columns count
    characters, from 1), or "" for bytes that hold a NUL: a binary file, not text in another encoding."""
    data = exc.object  # (after a byte-order mark that utf-8-sig took off)
    if b"\0" in data:
        return ""
    before = data[:exc.start].decode("utf-8", "replace")
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return f"byte 0x{data[exc.start]:02x} at line {line}, column {column}"


def utf16(data: bytes) -> bool:
    """Whether ``data`` is UTF-16 text (Windows' "Unicode text"): a UTF-16 byte-order mark, or a NUL
    in every other byte of its start as ASCII letters have in UTF-16, and the whole decodes to text
    without NULs, mostly ASCII at its start (as tables and case files are)."""
    head = data[:256]
    ascii_half = len(head) >= 4 and any(head) and (not any(head[0::2]) or not any(head[1::2]))
    if len(data) % 2 or not (data.startswith((b"\xff\xfe", b"\xfe\xff")) or ascii_half):
        return False
    encoding = "utf-16" if not ascii_half else "utf-16-be" if not any(head[0::2]) else "utf-16-le"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return "\0" not in text and 2 * sum(c.isascii() for c in text[:128]) >= len(text[:128])
