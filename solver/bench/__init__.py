"""Benchmarks and verification: the commands that run the solver to measure it. ``bench`` reports
how close the solver runs to what the machine can do (:mod:`.machine`, MPI on the current launch),
or launches whole processes to compare the linear solvers with DOLFINx (``bench --solvers``,
:mod:`.solvers`) and to time studies (``bench --study``, :mod:`.study`); ``verify`` measures the
convergence orders of a manufactured solution (:mod:`.verify`). Their arguments
(:mod:`.arguments`) are light: command lines are parsed before MPI starts.
"""

from solver.lazy import exports

WHERE = {"bench_arguments": "arguments", "verify_arguments": "arguments", "bench_command": "machine",
         "solvers_command": "solvers", "throughput_command": "study", "verify_command": "verify"}
__all__ = sorted(WHERE)
__getattr__ = exports(__name__, WHERE)
