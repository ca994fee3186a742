"""``python -m solver export RESULTS --format vtu|xdmf|csv [--field NAME ...]``: a results file through
meshio, or CSV, with every nodal field (temperature, liquid_fraction, ...) or the ones named."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from solver.case.inputfiles import holds_hdf5
from solver.errors import CaseError
from solver.io.parking import park
from solver.io.results_reader import Results
from solver.mesh.cells import CELLS
from solver.post.targets import Staging, output_target, write_failed

MESHIO_DATASET = re.compile(r"data[0-9]+")  # the names meshio's XDMF writer gives its datasets
MAX_XDMF_BYTES = 64 << 20  # an XDMF larger than this is not an earlier export's index (not parsed)
# the characters an XML 1.0 document may hold (a name with others cannot go into the .pvd or .xdmf)
XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_name(name: str, out: Path, where: str) -> None:
    """Refuse a file name that an XML document cannot hold (control characters, undecodable bytes)."""
    if XML_CHARS.search(name):
        raise CaseError(f"-o: the name {name!r} cannot be written into the {where} (XML takes no control "
                        "characters or undecodable bytes); choose another name")


def earlier_export(xdmf: Path, side: Path) -> bool:
    """Whether ``side`` is the data file of an earlier XDMF export to ``xdmf``: a regular file (not a
    link) holding only meshio's datasets (``data0``, ``data1``, ...; no groups, no attributes), each
    of them, and nothing else, named as heavy data by the existing ``xdmf``."""
    import h5py

    try:
        if not stat.S_ISREG(os.lstat(side).st_mode) or not stat.S_ISREG(os.stat(xdmf).st_mode):
            return False
        if os.stat(xdmf).st_size > MAX_XDMF_BYTES:
            return False
        root = ET.parse(xdmf).getroot()
    except (OSError, ET.ParseError):
        return False
    if root.tag != "Xdmf":
        return False
    referenced = set()
    for item in root.iter("DataItem"):
        if "Reference" in item.attrib:  # (meshio's writer uses xi:include, not references)
            return False
        if item.get("Format") != "HDF":
            return False
        filename, sep, dataset = (item.text or "").strip().rpartition(":/")
        if not sep or filename != side.name or not MESHIO_DATASET.fullmatch(dataset):
            return False
        referenced.add(dataset)
    if not referenced:
        return False
    try:
        with h5py.File(side, "r") as f:
            if len(f.attrs) or set(f.keys()) != referenced:
                return False
            return all(isinstance(f.get(name, getlink=True), h5py.HardLink)
                       and isinstance(f[name], h5py.Dataset) and not len(f[name].attrs) for name in referenced)
    except Exception:  # noqa: BLE001 (a damaged or truncated file, whatever h5py raises: not an export's)
        return False


def refuse_run_files(out: Path, results: Path) -> None:
    """meshio writes the XDMF's data beside it as ``<stem>.h5`` (truncating any file there): refuse a
    name with ':' (the index's ``FILE:/DATASET`` could not be split), and a target whose data file
    is already there, unless it is the data file of an earlier export to the same target
    (:func:`earlier_export`): the results file read, a run's, a study's, any other HDF5 file,
    damaged or not, or any other file is never written over."""
    import h5py

    side = out.with_suffix(".h5")
    xml_name(side.name, out, ".xdmf")
    if ":" in side.name:  # the index names the data as FILE:/DATASET, which readers split at the first ':'
        raise CaseError(f"-o {out}: an XDMF export's name cannot hold ':' (its index would name the data as "
                        f"{side.name}:/data0, which readers cannot split); choose another name")
    if not os.path.lexists(side):
        return
    if not side.is_file():  # h5py (and meshio) would wait on a FIFO, or fail on a directory
        raise CaseError(f"-o {out}: its data file {side} is there but not a regular file; it is not written over: "
                        "choose another name, or move it away first")
    todo = "choose another name"
    if side.resolve() == results.resolve():
        what = "the results file being exported"
    else:
        try:
            with h5py.File(side, "r") as f:
                what = ("the results file of a run" if "run_id" in f.attrs else
                        "the file of a study" if "solver_study" in f.attrs else None)
        except Exception:  # noqa: BLE001 (not HDF5, or damaged: told below)
            what = None
        if what is None:
            if earlier_export(out, side):  # the same export again: its own data file is rewritten
                return
            what = (f"{'an HDF5 file' if holds_hdf5(side) else 'a file'}{' (a link)' if os.path.islink(side) else ''} "
                    f"that is not the data of an earlier export to {out.name}")
            todo = "choose another name, or move it away first"
    raise CaseError(f"-o {out}: its data file {side} is {what}, which it would overwrite; it is not written over: "
                    f"{todo}")


def write_pvd(path: Path, steps: list[tuple[float, str]]) -> None:
    """A ParaView collection of ``(time, file name)``, names escaped as XML attributes."""
    root = ET.Element("VTKFile", type="Collection", version="0.1")
    collection = ET.SubElement(root, "Collection")
    for t, name in steps:
        ET.SubElement(collection, "DataSet", timestep=repr(float(t)), file=name)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n")


def snapshot(r: Results, args) -> int:
    """The snapshot that ``--step`` or ``--time`` picks; a ``--time`` between snapshots is told on
    standard error with the time of the one taken (fields are not interpolated in time, and an
    exported file holds no time of its own)."""
    i = r.index(args.step, args.time)
    taken = float(r.times[i])
    if args.time is not None and abs(taken - args.time) > 1e-9 * max(1.0, abs(args.time)):
        print(f"note: --time {args.time:g}: the nearest snapshot, at t = {taken:g} s, is exported "
              f"(snapshot {i}; snapshots are not interpolated in time)", file=sys.stderr)
    return i


def export_command(args) -> int:
    """A results file as vtu, xdmf or CSV (the arguments: :func:`solver.post.arguments.export_arguments`)."""
    staging = Staging()
    try:
        return _export(args, staging)
    finally:
        staging.close()


def _export(args, staging: Staging) -> int:
    import meshio
    from meshio.xdmf.main import XdmfWriter

    if args.all and (args.step is not None or args.time is not None):  # rather than ignore them
        given = "--step" if args.step is not None else "--time"
        raise CaseError(f"export --all writes every snapshot: {given} chooses one; give one of them")

    if args.output == "-" and (args.format != "csv" or args.all):
        raise CaseError("export -o -: standard output takes one snapshot as CSV (--format csv, without --all)")

    with Results(args.results) as r:
        names = [r.check_field(n) for n in dict.fromkeys(args.field)] if args.field else list(r.fields)
        if args.output == "-":  # one snapshot's CSV to standard output (for a pipe)
            i = snapshot(r, args)
            data = np.column_stack([r.points, *(r.field(i, n) for n in names)])
            np.savetxt(sys.stdout, data, delimiter=",", header=",".join(["x", "y", "z"][: r.dim] + names),
                       comments="", fmt="%.17g")
            return 0
        meshio_type = CELLS[r.cell_type].meshio
        indices = range(r.require_snapshots()) if args.all else [snapshot(r, args)]
        stem = Path(args.output) if args.output else r.path.with_suffix("")
        written = []
        if args.format == "xdmf":  # by default not <name>.xdmf, the run's own index beside its <name>.h5
            default = stem.with_name(stem.name + "_export.xdmf")
            out = output_target(default if not args.output else Path(args.output), (".xdmf",))
            out = out.resolve()
            refuse_run_files(out, r.path)
            side = out.with_suffix(".h5")
            reading = False
            # one snapshot: one Uniform grid, which meshio.read (and ParaView) reads; --all: a temporal collection
            writer = meshio.xdmf.TimeSeriesWriter(out.name) if args.all else XdmfWriter.__new__(XdmfWriter)
            try:  # meshio writes its .h5 into the working directory: the staging folder, then both moved
                staged = staging.path(out)
                staging.path(side, follow=False)  # (meshio writes it beside the staged index)
                with contextlib.chdir(staged.parent):
                    if not args.all:  # (made before its __init__ opens the .h5: parked below if a write fails)
                        reading = True
                        point_data = {n: r.field(indices[0], n) for n in names}
                        reading = False
                        writer.__init__(out.name, meshio.Mesh(r.points, [(meshio_type, r.cells)],
                                                              point_data=point_data))
                        writer.h5_file.close()
                    else:
                        with writer as w:
                            w.write_points_cells(r.points, [(meshio_type, r.cells)])
                            for i in indices:
                                reading = True
                                point_data = {n: r.field(i, n) for n in names}
                                reading = False
                                w.write_data(float(r.times[i]), point_data=point_data)
                staging.commit()
            except (OSError, RuntimeError) as exc:  # (HDF5's errors name no file; a failed write can fail its
                if reading:  # close with a RuntimeError) the target's, not an error of the results read
                    raise
                if hasattr(writer, "h5_file"):  # kept open: HDF5 would retry the failed writes and crash at exit
                    park(writer.h5_file)
                raise write_failed(out, exc, f"it or its data file {side.name}") from None
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
        if pvd is not None:  # the .pvd names each file: one that XML cannot hold is refused before any is written
            for _, out in targets:
                xml_name(out.name, out, ".pvd")
        for i, out in targets:
            point_data = {n: r.field(i, n) for n in names}  # (read before: a read error is not the target's)
            try:
                if args.format == "vtu":  # VTK points are 3D: a 2D mesh lies in z = 0
                    points = np.pad(r.points, ((0, 0), (0, 3 - r.dim)))
                    meshio.write(staging.path(out), meshio.Mesh(points, [(meshio_type, r.cells)],
                                                                 point_data=point_data), file_format="vtu")
                else:
                    cols = ["x", "y", "z"][: r.dim] + names
                    data = np.column_stack([r.points, *point_data.values()])
                    np.savetxt(staging.path(out), data, delimiter=",", header=",".join(cols), comments="",
                               fmt="%.17g")
            except OSError as exc:
                raise write_failed(out, exc) from None
            written.append(out)
        if pvd is not None:  # the series with its times, for ParaView
            try:
                write_pvd(staging.path(pvd), [(r.times[i], out.name) for i, out in targets])
            except OSError as exc:
                raise write_failed(pvd, exc) from None
            written.append(pvd)
        try:
            staging.commit()
        except OSError as exc:
            raise write_failed(written[0], exc) from None
    for w in written:
        print(w)
    return 0
