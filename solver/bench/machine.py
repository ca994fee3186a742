"""``python -m solver bench``: how close the solver runs to what the machine can do.

Every figure is measured in the same run and reported as a ratio to a reference measured
beside it: the sparse matrix-vector product against a STREAM-like triad, the distributed
product against the local one, a PCG iteration against a product, parallel HDF5 against a
plain file write, two ranks against one. Run it on the ranks to compare with (default: all
cores; ``python -m solver bench`` launches ``mpirun`` itself), e.g.::

    python -m solver bench --quick                   # small sizes, under two minutes
    python -m solver bench --dofs-2d 1e6 --dofs-3d 1e6 --json outputs/bench.json

"1 rank" figures run on rank 0 alone while the other ranks sleep (not spin); "N ranks" figures
run on all ranks at once. Times are the best of ``--repeat`` runs. The figures:
:mod:`solver.bench.figures` and :mod:`solver.bench.assembly`; the table: :mod:`solver.bench.report`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from solver.bench.arguments import FULL, PARTS, QUICK
from solver.bench.assembly import DOLFINX_MESHES, assembly, compare_with_dolfinx
from solver.bench.figures import hdf5_write, linear_algebra, stream, time_steps
from solver.bench.fits import check_fits
from solver.bench.peers import PEER_SCRIPT, dolfinx_available, dolfinx_json, dolfinx_run
from solver.bench.report import table
from solver.bench.timing import alone
from solver.errors import CaseError


def measure(comm, sizes: dict, directory: Path, report, parts=PARTS, peer: dict | None = None) -> dict:
    """Every figure of ``parts`` on 1 rank and on all (the JSON's content); ``peer``: DOLFINx's runs
    read from files, and its script when it is to be run (rank 0 launches it)."""
    r = {"ranks": comm.size, "sizes": sizes, "host": os.uname().nodename, "cores": os.cpu_count(),
         "parts": list(parts)}
    repeat = sizes["repeat"]
    report(f"bench on {comm.size} ranks ({os.cpu_count()} cores): sizes {sizes}")
    if "steps" in parts:
        time_step_figures(comm, sizes, r, report)
    if "stream" in parts or "linalg" in parts:
        r["stream_1"] = alone(comm, lambda c: stream(c, sizes["stream"], repeat))
        r["stream_N"] = stream(comm, sizes["stream"], repeat)
        report("  stream done")
    if "linalg" in parts:
        r["linalg_1"] = alone(comm, lambda c: linear_algebra(c, sizes["dofs_2d"], repeat, r["stream_1"]["daxpy_GBs"]))
        r["linalg_N"] = linear_algebra(comm, sizes["dofs_2d"], repeat, r["stream_N"]["daxpy_GBs"])
        report("  linear algebra done")
    if "assembly" in parts:
        cells_3d = sizes.get("cells_3d") or sizes["cells"]
        meshes = sizes.get("meshes")
        r["assembly_1"] = alone(comm, lambda c: assembly(c, sizes["cells"], cells_3d, repeat, meshes))
        r["assembly"] = assembly(comm, sizes["cells"], cells_3d, repeat, meshes)
        report("  assembly done")
        runs = list((peer or {}).get("runs", []))
        if peer and peer.get("script"):  # rank 0 launches DOLFINx while the others wait (sleeping)
            script, cache = Path(peer["script"]), Path(peer["cache"])
            for name, dim, degree in DOLFINX_MESHES:
                if name not in r["assembly"]:
                    continue
                n = r["assembly"][name]["n"]
                alone(comm, lambda c: dolfinx_run(1, 4, dim, script, cache, degree=degree))  # forms compiled
                for ranks in sorted({1, comm.size}):
                    for _ in range(peer.get("repeat", 1)):
                        runs.append(alone(comm, lambda c: dolfinx_run(ranks, n, dim, script, cache, degree=degree)))
                report(f"  DOLFINx {name} done")
        if runs:
            r["dolfinx"] = compare_with_dolfinx(comm, r, runs, report)
    if "hdf5" in parts:
        r["hdf5"] = hdf5_write(comm, sizes["dofs_2d"], repeat, directory)
    return r


def time_step_figures(comm, sizes: dict, r: dict, report) -> None:
    """The time loops of the 2D and 3D plates (AMG; Jacobi too in 2D), on 1 rank and on all, into ``r``."""
    for dim, key in ((2, "dofs_2d"), (3, "dofs_3d")):  # memory-sensitive parts first
        pc = "amg"  # the distributed multigrid: iterations independent of the ranks
        one = alone(comm, lambda c: time_steps(c, dim, sizes[key], sizes["steps"], pc))
        many = time_steps(comm, dim, sizes[key], sizes["steps"], pc)
        r[f"steps_{dim}d"] = {"1": one, "N": many, "speedup_step": one["step_s"] / many["step_s"],
                              "speedup_with_setup": (one["setup_s"] + one["loop_s"]) /
                              (many["setup_s"] + many["loop_s"])}
        report(f"  time steps {dim}D done")
        if dim == 2:
            oneJ = alone(comm, lambda c: time_steps(c, 2, sizes[key], sizes["steps"], "jacobi"))
            manyJ = time_steps(comm, 2, sizes[key], sizes["steps"], "jacobi")
            r["steps_2d_jacobi"] = {"1": oneJ, "N": manyJ, "speedup_step": oneJ["step_s"] / manyJ["step_s"]}


def bench_command(args, comm) -> int:
    """The machine figures on ``comm`` (the arguments: :func:`solver.bench.arguments.bench_arguments`)."""
    sizes = dict(QUICK if args.quick else FULL)
    for key in ("dofs_2d", "dofs_3d", "cells", "cells_3d", "stream", "steps", "repeat"):
        value = getattr(args, key)
        if value is not None:
            sizes[key] = int(value)
    if args.meshes:
        sizes["meshes"] = [m.replace("-", " ") for m in args.meshes.split(",")]
    parts = tuple(PARTS if not args.only else args.only.split(","))  # checked with the arguments
    check_fits(comm, sizes, parts)
    peer = {"runs": dolfinx_json(args.dolfinx_json), "repeat": args.dolfinx_repeat,
            "cache": str(Path(args.json).resolve().parent / "dolfinx_cache")}
    if args.dolfinx != "no" and "assembly" in parts:
        script = Path(args.dolfinx_script) if args.dolfinx_script else PEER_SCRIPT
        found = comm.bcast(dolfinx_available(script, from_mpi_rank=True) if comm.rank == 0 else None, root=0)
        if found:
            peer["script"] = str(script)
        elif args.dolfinx == "yes":
            raise CaseError(f"bench: DOLFINx not found (needs /usr/bin/python3 with dolfinx and {script})")
    path = Path(args.json)

    def report(text):
        if comm.rank == 0:
            print(text, file=sys.stderr, flush=True)

    def make_scratch():  # beside the figures: a folder the figures can be written into, else exit 2
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return tempfile.mkdtemp(prefix="bench-", dir=path.parent)
        except OSError as exc:
            return CaseError(f"--json {path}: cannot write into its folder {path.parent} ({exc.strerror or exc})")

    scratch = comm.bcast(make_scratch() if comm.rank == 0 else None)
    if isinstance(scratch, CaseError):
        raise scratch
    try:
        r = measure(comm, sizes, Path(scratch), report, parts, peer)
    except BaseException:  # no collective here: the error ends the run (cli aborts the others)
        if comm.rank == 0:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(scratch, ignore_errors=True)
    if comm.rank == 0:
        print(table(r), flush=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(r, indent=1))
        tmp.replace(path)
        print(f"\nfigures: {path}", flush=True)
    return 0
