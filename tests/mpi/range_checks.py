"""Expressions evaluated out of their key's range stop the run on every rank together: every case
of CASES through the command line, its exit status, the error lines of every rank and the status
the results file was left with.

Usage: mpirun -n N python range_checks.py WORKDIR [CASE ...]   (default: every case)
"""

import contextlib
import io
import sys
from pathlib import Path

import h5py
from _guard import run

from solver.app.cli import main as solver_main

BASE = """
temperature_unit = "K"
[mesh]
nx = 6
ny = 6
[material]
k = 100.0
rho = 1.0
c = 1.0
[initial]
temperature = 300.0
[boundary.left]
type = "dirichlet"
value = "300 + 2000*t"
[time]
dt = 0.1
t_end = 0.6
"""
EPSILON = "0.5 + (T - 300) / 1000"  # passes 1 above 800 K: at the right edge at t = 0.4
RADIATION = ["boundary.right.type=\"radiation\"", "boundary.right.T_inf=300.0"]
K = "1 - (T - 300) / 500"  # turns negative above 800 K: at the left edge for t > 0.25
SLOW = ["boundary.left.value=\"300 + 5*t\"", "material.k=1.0"]  # T stays within a few K of 300
ROBIN = ["boundary.right.type=\"robin\"", "boundary.right.h=\"10 - 60*t\"", "boundary.right.T_inf=300.0"]
CASES = {
    "epsilon_above_one": [*RADIATION, f"boundary.right.epsilon=\"{EPSILON}\""],
    "epsilon_above_one_adaptive": [*RADIATION, f"boundary.right.epsilon=\"{EPSILON}\"", "time.dt=\"adaptive\""],
    "epsilon_clamped": [*RADIATION, f"boundary.right.epsilon=\"min(1, {EPSILON})\""],
    "epsilon_above_one_at_start": [*RADIATION, f"boundary.right.epsilon=\"{EPSILON}\"", "initial.temperature=900.0"],
    # k(T) at the nodes of triangles, of quadrilaterals (one axis, a region); k(t) at quadrature points
    "k_negative_triangles": [f"material.k=\"{K}\"", "mesh.cell=\"triangle\""],
    "ky_negative": [f"material.k=[1.0, \"{K}\"]"],
    "region_k_negative": ["region.a.x=[0.0, 0.5]", f"region.a.k=\"{K}\""],
    "c_negative_lumped": [f"material.c=\"{K}\"", "time.mass=\"lumped\""],
    "k_of_t_negative": [*SLOW, "material.k=\"1 - 4*t\""],
    "k_negative_in_a_corner": [*SLOW, "material.k=\"where(x > 0.9 and y > 0.9, 1 - 4*t, 1)\""],  # one rank
    # a linear case: h(t) < 0 after t = 1/6, with fixed and adaptive steps
    "h_negative_later": [*SLOW, *ROBIN],
    "h_negative_later_adaptive": [*SLOW, *ROBIN, "time.dt=\"adaptive\""],
    # so negative that the solve fails first (an indefinite system): still named as h
    "h_far_negative": [*SLOW, *ROBIN[:1], "boundary.right.h=\"10 - 1e6*t\"", *ROBIN[2:],
                       "solver.preconditioner=\"none\""],
}


def main(comm):
    work = Path(sys.argv[1])
    case = work / "case.toml"
    if comm.rank == 0:
        case.write_text(BASE)
    comm.Barrier()
    out = {}
    for name in sys.argv[2:] or CASES:
        sets = CASES[name]
        err = io.StringIO()
        args = [str(case), "--quiet", "--overwrite", "--set", f"output.directory={work / 'out'}"]
        for s in sets:
            args += ["--set", s]
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = solver_main(args)
        lines = [ln for ln in err.getvalue().splitlines() if ln.startswith("error:")]
        lines = sum(comm.allgather(lines), [])  # the error lines of every rank
        results = work / "out" / "case" / "case.h5"
        ending = None
        if comm.rank == 0 and results.exists() and status != 2:
            with h5py.File(results, "r") as f:
                ending = str(f.attrs["status"])
        out[name] = {"status": status, "error": lines, "ending": ending}
        comm.Barrier()
    return out


run(main)
