"""python -m solver.fem.kernels: compile every kernel of the four cell types into numba's cache."""

import time

from solver.compiled import AVAILABLE
from solver.fem.kernels.warm import warm_up

if not AVAILABLE:
    raise SystemExit("numba is not available: nothing to compile")
for name in ("triangle", "quadrilateral", "tetrahedron", "hexahedron"):
    start = time.perf_counter()
    warm_up(name)
    print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
