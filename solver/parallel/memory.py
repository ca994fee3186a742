"""The memory a run takes per node, and the memory this machine has available: what the checks
before a run (:mod:`solver.app.preflight`) and before a bench (:mod:`solver.bench.fits`) compare."""

from __future__ import annotations

# Bytes per node a run needs on its ranks, all arrays and factors included (measured: 2D P1
# block-Jacobi LU ~ 0.6 KiB; 3D is dominated by the LU fill, hence the larger figure).
BYTES_PER_NODE = {2: 1200, 3: 6000}


def memory_available() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (None where unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
