"""``python -m solver export RESULTS --format vtu|xdmf|csv [--field NAME ...]``: a results file through
meshio, or CSV, with every nodal field (temperature, liquid_fraction, ...) or the ones named."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from solver.errors import CaseError
from solver.io.results_reader import Results
from solver.mesh.cells import CELLS
from solver.post.targets import output_target


def refuse_run_files(out: Path, results: Path) -> None:
    """meshio writes the XDMF's data beside it as ``<stem>.h5``: refuse a target whose data file
    is the results file read, or the results file of any run (it would be overwritten)."""
    import h5py

    side = out.with_suffix(".h5")
    if not os.path.lexists(side):
        return
    if not side.is_file():  # h5py (and meshio) would wait on a FIFO, or fail on a directory
        raise CaseError(f"-o {out}: its data file {side} is there but not a regular file; choose another name")
    same = side.resolve() == results.resolve()
    try:
        with h5py.File(side, "r") as f:
            ours = "run_id" in f.attrs or "solver_study" in f.attrs
    except OSError:
        ours = False
    if same or ours:
        what = "the results file being exported" if same else "the results file of a run"
        raise CaseError(f"-o {out}: its data file {side} is {what}, which it would overwrite; choose another name")


def export_command(args) -> int:
    """A results file as vtu, xdmf or CSV (the arguments: :func:`solver.post.arguments.export_arguments`)."""
    import meshio

    if args.all and (args.step is not None or args.time is not None):  # rather than ignore them
        given = "--step" if args.step is not None else "--time"
        raise CaseError(f"export --all writes every snapshot: {given} chooses one; give one of them")

    if args.output == "-" and (args.format != "csv" or args.all):
        raise CaseError("export -o -: standard output takes one snapshot as CSV (--format csv, without --all)")

    with Results(args.results) as r:
        names = [r.check_field(n) for n in dict.fromkeys(args.field)] if args.field else list(r.fields)
        if args.output == "-":  # one snapshot's CSV to standard output (for a pipe)
            i = r.index(args.step, args.time)
            data = np.column_stack([r.points, *(r.field(i, n) for n in names)])
            np.savetxt(sys.stdout, data, delimiter=",", header=",".join(["x", "y", "z"][: r.dim] + names),
                       comments="", fmt="%.17g")
            return 0
        meshio_type = CELLS[r.cell_type].meshio
        indices = range(r.require_snapshots()) if args.all else [r.index(args.step, args.time)]
        stem = Path(args.output) if args.output else r.path.with_suffix("")
        written = []
        if args.format == "xdmf":  # by default not <name>.xdmf, the run's own index beside its <name>.h5
            default = stem.with_name(stem.name + "_export.xdmf")
            out = output_target(default if not args.output else Path(args.output), (".xdmf",))
            out = out.resolve()
            refuse_run_files(out, r.path)
            try:
                with contextlib.chdir(out.parent):  # meshio writes its .h5 into the working directory
                    with meshio.xdmf.TimeSeriesWriter(out.name) as w:
                        w.write_points_cells(r.points, [(meshio_type, r.cells)])
                        for i in indices:
                            w.write_data(float(r.times[i]), point_data={n: r.field(i, n) for n in names})
            except OSError as exc:  # (HDF5's errors name no file: the target's, not the results read)
                raise CaseError(f"-o {out}: cannot write it or its data file {out.with_suffix('.h5').name} "
                                f"({str(exc).splitlines()[0][:160]})") from None
            written.append(out)
        if args.all and args.output and stem.suffix:  # -o series.vtu: series_000000.vtu, ...
            if stem.suffix.lower() != f".{args.format}":  # -o x.csv with vtu wrote x.csv_000000.vtu
                raise CaseError(f"-o {args.output}: unknown extension {stem.suffix!r}; allowed: .{args.format} (with "
                                f"--all, -o names the series: series or series.{args.format} gives "
                                f"series_000000.{args.format}, ...)")
            stem = stem.with_suffix("")
        targets = []  # every target checked before the first is written (not a series cut short by a FIFO)
        for i in indices if args.format != "xdmf" else []:
            suffix = f"_{i:06d}" if args.all else ""
            out = Path(f"{stem}{suffix}.{args.format}") if (args.all or not args.output) else Path(args.output)
            targets.append((i, output_target(out, (f".{args.format}",))))
        pvd = output_target(Path(f"{stem}.pvd"), (".pvd",)) if args.all and args.format == "vtu" else None
        for i, out in targets:
            if args.format == "vtu":  # VTK points are 3D: a 2D mesh lies in z = 0
                points = np.pad(r.points, ((0, 0), (0, 3 - r.dim)))
                meshio.write(out, meshio.Mesh(points, [(meshio_type, r.cells)],
                                              point_data={n: r.field(i, n) for n in names}))
            else:
                cols = ["x", "y", "z"][: r.dim] + names
                data = np.column_stack([r.points, *(r.field(i, n) for n in names)])
                np.savetxt(out, data, delimiter=",", header=",".join(cols), comments="",
                           fmt="%.17g")
            written.append(out)
        if pvd is not None:  # the series with its times, for ParaView
            entries = "".join(f'    <DataSet timestep="{float(r.times[i])!r}" file="{out.name}"/>\n'
                              for i, out in zip(indices, written))
            pvd.write_text('<?xml version="1.0"?>\n<VTKFile type="Collection" version="0.1">\n  <Collection>\n'
                           f"{entries}  </Collection>\n</VTKFile>\n")
            written.append(pvd)
    for w in written:
        print(w)
    return 0
