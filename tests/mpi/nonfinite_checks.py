"""Non-finite input, or input that overflows the system, is refused with its key (exit 2; exit 3 at
the step where one of t goes bad), never run to a "successful" end: every case
of CASES through the command line on every rank, its exit status and error line (rank 0).

Usage: mpirun -n N python nonfinite_checks.py WORKDIR
"""

import contextlib
import io
import sys
from pathlib import Path

from _guard import run

from solver.app.cli import main as solver_main

BASE = """
[mesh]
type = "rectangle"
cell = "triangle"
nx = 6
ny = 6
lengths = [1.0, 1.0]
[material]
k = 1.0
rho = 1.0
c = 1.0
[boundary.left]
type = "dirichlet"
value = 1.0
[boundary.right]
type = "robin"
h = 2.0
T_inf = 0.0
[boundary.top]
type = "neumann"
flux = 1.0
[time]
dt = 0.1
t_end = 0.3
"""
CASES = {
    "source_overflow": ['source.f="1e308 * 10"'],
    "source_division_by_zero": ['source.f="1 / (x - x)"'],
    "source_constant_division": ['source.f="1 / 0"'],
    "source_singular_in_time": ['source.f="1 / (t - 0.2)"'],
    "source_nan_later": ['source.f="where(t > 0.15, 1 / (x - x), 0)"'],
    "source_nan_later_adaptive": ['source.f="where(t > 0.15, 1 / (x - x), 0)"', 'time.dt="adaptive"'],
    "initial_overflow": ['initial.temperature="1e308 * 10"'],
    "dirichlet_log_of_negative": ['boundary.left.value="log(x - x - 1)"'],
    "robin_h_nan_later": ['boundary.right.h="where(t > 0.15, 0 * 1e400, 2.0)"'],
    "robin_T_inf_nan": ['boundary.right.T_inf="sqrt(y - 0.5)"'],
    "robin_h_nan": ['boundary.right.h="2 + sqrt(y - 0.5)"'],
    "neumann_flux_inf": ['boundary.top.flux="exp(1000)"'],
    "huge_capacity": ["material.c=1e308"],
    "huge_source_steady": ['time.scheme="steady"', "source.f=1e300"],
    "huge_lengths": ["mesh.lengths=[1e308, 1e308]"],
    # the nonlinear path (k of T) checks a step's inputs before its Newton solve, as the linear one
    "nonlinear_dirichlet_nan_later": ['material.k="1 + 0 * T"',
                                      'boundary.left.value="where(t > 0.15, sqrt(-1 - x), 1)"'],
    "nonlinear_source_nan_later": ['material.k="1 + 0 * T"', 'source.f="where(t > 0.15, 1 / (x - x), 0)"'],
    "nonlinear_flux_nan_later": ['material.k="1 + 0 * T"', 'boundary.top.flux="where(t > 0.15, sqrt(-1 - x), 0)"'],
    "nonlinear_T_inf_nan_later": ['material.k="1 + 0 * T"', 'boundary.right.T_inf="where(t > 0.15, sqrt(-1 - y), 0)"'],
    "explicit_source_nan_later": ['time.scheme="explicit-euler"', 'time.dt="auto"',
                                  'source.f="where(t > 0.15, 1 / (x - x), 0)"'],
    # finite, but beyond what a solve can take: a constant at the start (exit 2), one of t at its step (exit 3)
    "huge_h": ["boundary.right.h=1e300"],
    "huge_flux": ["boundary.top.flux=1e300"],
    "huge_flux_later": ['boundary.top.flux="1e300 * t"'],
    "huge_source_later": ['source.f="1e300 * t"'],
    "nonlinear_huge_source_later": ['material.k="1 + 0 * T"', 'source.f="1e300 * t"'],
    "huge_h_later": ['boundary.right.h="1e300 * t"'],
}


def main(comm):
    work = Path(sys.argv[1])
    case = work / "case.toml"
    if comm.rank == 0:
        case.write_text(BASE)
    comm.Barrier()
    out = {}
    for name, sets in CASES.items():
        err = io.StringIO()
        args = [str(case), "--quiet", "--overwrite", "--set", f"output.directory={work / 'out'}"]
        for s in sets:
            args += ["--set", s]
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = solver_main(args)
        lines = [ln for ln in err.getvalue().splitlines() if ln.startswith("error:")]
        out[name] = {"status": status, "error": lines,
                     "warnings": [ln for ln in err.getvalue().splitlines() if "Warning" in ln]}
    return out


run(main)
