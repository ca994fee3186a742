"""Rank-aware logging: what each rank prints, where, and what the log file keeps."""

import errno
import io
import logging
import re
from types import SimpleNamespace

from solver.app import log as logs


def configure(rank, quiet=False):
    out = io.StringIO()
    logs.setup(SimpleNamespace(rank=rank, size=4), quiet=quiet, stream=out)
    return out, logging.getLogger("solver.test")


def test_rank_zero_prints_messages_and_warnings_go_to_stderr(capsys):
    out, log = configure(0)
    log.info("mesh: 10 nodes")
    log.warning("stopping at step 3")
    assert out.getvalue() == "mesh: 10 nodes\n"
    assert capsys.readouterr().err == "stopping at step 3\n"


def test_other_ranks_print_only_their_own_warnings(capsys):
    out, log = configure(2)
    log.info("mesh: 10 nodes")
    log.warning("a warning every rank logs alike")
    log.warning("only this rank saw it", extra=logs.LOCAL)
    assert out.getvalue() == ""
    assert capsys.readouterr().err == "rank 2: only this rank saw it\n"


def test_quiet_keeps_warnings(capsys):
    out, log = configure(0, quiet=True)
    log.info("progress")
    log.warning("warning: slow output")
    assert out.getvalue() == "" and capsys.readouterr().err == "warning: slow output\n"


def test_log_file_has_times_levels_and_progress_lines(tmp_path):
    out, log = configure(0)
    logs.attach_file(tmp_path / "run.log", rank=0)
    try:
        log.info("mesh: 10 nodes")
        log.info("step 1/2", extra=logs.PROGRESS)
        log.warning("stopping")
    finally:
        logs.detach_file()
    log.info("after the run")
    lines = (tmp_path / "run.log").read_text().splitlines()
    assert len(lines) == 3
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (INFO|WARNING) ", ln) for ln in lines)
    assert lines[1].endswith("step 1/2") and "WARNING" in lines[2]
    assert out.getvalue() == "mesh: 10 nodes\nafter the run\n"  # progress lines stay out of the console


class _FullDisk(io.RawIOBase):
    """A file on a full disk: every write fails with ENOSPC."""

    def writable(self):
        return True

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_log_file_on_a_full_disk_is_closed_with_one_warning(tmp_path, capsys):
    """The disk filled while the log was written: the lines it refused stayed in the stream's
    buffer, and closing the log flushed them again and raised ENOSPC (a run ended as an internal
    error, exit 1, with its lock left behind). The close is quiet; one warning says so."""
    out, log = configure(0)
    logs.attach_file(tmp_path / "run.log", rank=0)
    logs._file.stream.close()
    logs._file.stream = io.TextIOWrapper(io.BufferedWriter(_FullDisk()), encoding="utf-8")
    log.info("mesh: 10 nodes")
    log.warning("stopping")
    logs.detach_file()
    err = capsys.readouterr().err
    assert err.count("cannot write the log file") == 1 and "Traceback" not in err, err
    assert out.getvalue() == "mesh: 10 nodes\n" and logs._file is None
