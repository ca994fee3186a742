"""This process's resident memory (Linux ``/proc``; no MPI here: the solver bench reads it in a
process that only launches others)."""

from __future__ import annotations

from pathlib import Path


def rss() -> tuple[float, float]:
    """(current, peak since the last reset) resident set size of this process, bytes."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) * 1024.0, int(fields["VmHWM"].split()[0]) * 1024.0


def reset_peak() -> None:
    """Restart this process's peak (VmHWM) from its current RSS (Linux; elsewhere nothing)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
