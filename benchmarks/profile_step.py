"""Where the time of an implicit time step goes: pyinstrument on rank 0 around the time loop.

    mpirun -n 2 .venv/bin/python benchmarks/profile_step.py --dim 2 --dofs 1e6 --preconditioner bjacobi

Needs ``pip install pyinstrument`` (a profiling tool, not a dependency of the solver). Prints
pyinstrument's call tree of rank 0 and the CG iterations per step.
"""

import argparse

from mpi4py import MPI

from solver.bench.cases import simulation


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dim", type=int, default=2, choices=(2, 3))
    p.add_argument("--dofs", type=float, default=1e6)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--preconditioner", default="bjacobi")
    args = p.parse_args()
    from pyinstrument import Profiler

    comm = MPI.COMM_WORLD
    sim = simulation(comm, args.dim, args.dofs, args.steps, args.preconditioner)
    profiler = Profiler(interval=0.001)
    comm.Barrier()
    profiler.start()
    iterations = 0
    while sim.step_index < sim.n_steps:
        iterations += sim.advance().iterations
    comm.Barrier()
    profiler.stop()
    if comm.rank == 0:
        print(f"{sim.mesh.n_global_nodes} DOFs on {comm.size} ranks, {args.preconditioner}: "
              f"{iterations / args.steps:.1f} CG iterations per step")
        print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
