"""Node ids of the mesh formats that name their nodes by id (Abaqus ``.inp``, AVS-UCD ``.avs``,
FLAC3D ``.f3grid``, Nastran ``.bdf``/``.fem``/``.nas``).

meshio maps each id to a row with a dict: of two nodes with one id the later wins without a word
(the elements take its coordinates, the other node is left unused), and a later ``*NODE`` section
of an Abaqus file replaces the earlier ones (the elements refer to the ids of the last). The mesh
would be another without a word, as Gmsh files' repeated tags would (:mod:`solver.mesh.gmsh_tags`):
:func:`watched_node_ids` counts each node section's nodes and ids while meshio reads (a Nastran
mesh keeps its GRID ids), and :func:`check_node_ids` refuses such files, and a Nastran GRID given
in a coordinate system of its own (CP), whose coordinates meshio would take as basic ones.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from solver.errors import CaseError

READERS = {  # meshio's module of each format, and its functions that read nodes
    ".inp": ("meshio.abaqus._abaqus", ("_read_nodes",)),
    ".avs": ("meshio.avsucd._avsucd", ("_read_nodes",)),
    ".f3grid": ("meshio.flac3d._flac3d", ("_read_point_ascii", "_read_point_binary")),
}


@contextlib.contextmanager
def watched_node_ids(path: Path):
    """While meshio reads ``path``: a list of (nodes, distinct ids) of each node section it reads
    (FLAC3D: one, filled at the end; empty for other formats)."""
    sections: list[tuple[int, int]] = []
    reader = READERS.get(Path(path).suffix.lower())
    if reader is None:
        yield sections
        return
    import importlib

    module = importlib.import_module(reader[0])
    originals = {name: getattr(module, name) for name in reader[1]}
    ids: list[int] = []  # (FLAC3D: the id of each point, as meshio reads them one by one)

    def watched(original):
        def read(*args):
            out = original(*args)
            if isinstance(out[0], int):  # one point: (id, coordinates)
                ids.append(out[0])
            else:  # a section: its points and its dict of ids
                points, found = (out[0], out[1]) if isinstance(out[1], dict) else (out[1], out[0])
                sections.append((len(points), len(found)))
            return out
        return read

    for name, original in originals.items():
        setattr(module, name, watched(original))
    try:
        yield sections
    finally:
        for name, original in originals.items():
            setattr(module, name, original)
        if ids:
            sections.append((len(ids), len(np.unique(ids))))


def check_node_ids(path: Path, sections: list[tuple[int, int]], mesh=None) -> None:
    """Refuse a file with node ids given twice, an Abaqus file with several ``*NODE`` sections, or
    a Nastran GRID with a coordinate system (``mesh``: meshio's, once read)."""
    if len(sections) > 1:
        raise CaseError(f"{path}: {len(sections)} *NODE sections: the mesh reader keeps the nodes of the last one "
                        f"only, and the elements would take other nodes' coordinates or fail; put every node in "
                        f"one *NODE section (ids unique)")
    ids = getattr(mesh, "points_id", None)  # (Nastran's GRID ids)
    if ids is not None and len(ids):
        sections = [(len(ids), len(np.unique(ids)))]
    twice = sum(n - distinct for n, distinct in sections)
    if twice:
        raise CaseError(f"{path}: {twice} node id{'s are' if twice > 1 else ' is'} given to two nodes: the mesh "
                        f"reader keeps the later node of each id, and the elements would take its coordinates "
                        f"without a word; give each node an id of its own")
    systems = np.asarray(mesh.point_data.get("nastran:ref", [])) if mesh is not None else np.zeros(0)
    if np.any(systems != 0):
        raise CaseError(f"{path}: {np.count_nonzero(systems != 0)} GRID cards give their coordinates in a "
                        f"coordinate system of their own (CP), which the mesh reader does not apply: the nodes "
                        f"would lie elsewhere; give the coordinates in the basic system (CP blank or 0)")
