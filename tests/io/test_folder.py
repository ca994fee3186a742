"""A run's lock judged by the readers as a starting run judges it (solver.io.folder)."""

import os
import socket

from solver.io.folder import RUN_LOCK, process_start, run_holds, stale_lock


def test_a_live_run_holds_its_folder(tmp_path):
    me = (socket.gethostname(), str(os.getpid()), process_start(os.getpid()))
    (tmp_path / RUN_LOCK).write_text(" ".join(me) + "\n")
    assert run_holds(tmp_path) and stale_lock(*me) is None


def test_a_lock_whose_pid_is_another_process_now_is_stale(tmp_path):
    """The pid lives, but its process started at another time than the lock's writer: a reused pid."""
    other_start = str(int(process_start(os.getpid())) + 1)
    (tmp_path / RUN_LOCK).write_text(f"{socket.gethostname()} {os.getpid()} {other_start}\n")
    assert not run_holds(tmp_path)
    assert stale_lock(socket.gethostname(), str(os.getpid()), other_start) == "gone: its pid is another process's now"


def test_locks_that_cannot_be_judged_hold(tmp_path):
    """Another host's run, or a lock being written (no "host pid" yet), may hold the folder; no lock,
    or one that is not a regular file, does not."""
    lock = tmp_path / RUN_LOCK
    assert not run_holds(tmp_path)
    lock.write_text(f"{socket.gethostname()} 4194304999\n")  # a pid no process can have: gone
    assert not run_holds(tmp_path)
    lock.write_text("elsewhere.example 12345\n")
    assert run_holds(tmp_path)
    lock.write_text("")
    assert run_holds(tmp_path)
    lock.unlink()
    lock.mkdir()
    assert not run_holds(tmp_path)
