"""python -m solver.fem.kernels: compile every kernel of the linear and quadratic cell types into
numba's cache (quadratic cells twice: with the affine map of structured meshes and with the
isoparametric map of curved or Gmsh ones)."""

import time

from solver.compiled import AVAILABLE
from solver.fem.kernels.warm import warm_up
from solver.mesh.cells import CELL_TYPES, QUADRATIC_TYPES

if not AVAILABLE:
    raise SystemExit("numba is not available: nothing to compile")
for name, affine in [(name, None) for name in CELL_TYPES] + [(name, a) for name in QUADRATIC_TYPES
                                                               for a in (True, False)]:
    start = time.perf_counter()
    warm_up(name, affine=affine)
    kind = "" if affine is None else " (affine)" if affine else " (curved)"
    print(f"{name}{kind}: {time.perf_counter() - start:.1f} s", flush=True)
