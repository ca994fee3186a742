"""Elements of a mesh file in several physical groups (rank 0, while it reads the file).

Gmsh puts an element in every physical group of its entity: a side in ``hot`` and in ``walls``, a
surface in ``plate`` and in ``copper``. MSH 2.2 lists such an element once per group; MSH 4 lists it
once, and meshio's reader tags it with its entity's first group alone (the entities' groups are read
here from the file's ``$Entities`` section, named or not). Read as one tag per element, the side was
left out of ``walls`` and the surface out of ``copper`` without a word, and the cells listed twice
were refused as overlapping.

* A boundary element is kept once per group it is in (facets are a list of (element, tag)).
* A cell is kept once, with one tag that stands for its groups together: its own group's tag, or,
  when it is in several, a code beyond every tag of the file (:attr:`MeshGroups.shared` lists the
  tags of each code; :meth:`MeshGroups.region_tags` gives every tag a group's cells carry).

Costs a pass over the tags, and, where a file tags cells with more than one group, a sort of one
key per cell (its nodes' sum and sum of squares) to find cells listed more than once.
"""

from __future__ import annotations

import numpy as np

from solver.errors import CaseError

MAX_SHARED_GROUPS = 62  # distinct groups among the cells in more than one (a bit each in one int64)


def entity_groups(path) -> tuple | None:
    """The physical groups of each entity of an MSH 4 file (per dimension: entity tag -> tags),
    read by meshio's own reader of its ``$Entities`` section; None for other files, or files
    without the section."""
    from meshio.gmsh import _gmsh40, _gmsh41

    try:
        with open(path, "rb") as f:
            line = f.readline()
            while line and line.strip() != b"$MeshFormat":
                line = f.readline()
            words = f.readline().split()
            if len(words) < 3 or not words[0].startswith(b"4"):
                return None
            version, ascii_, size = words[0].decode(), words[1] == b"0", int(words[2])
            while True:
                line = f.readline()
                if not line or line.strip() in (b"$Nodes", b"$Elements"):
                    return None
                if line.strip() == b"$Entities":
                    break
            if version.startswith("4.0"):
                return _gmsh40._read_entities(f, ascii_)
            return _gmsh41._read_entities(f, ascii_, size)[0]
    except Exception:  # noqa: BLE001  (a damaged file: meshio's read says what is wrong with it)
        return None


def other_groups(m, groups: tuple | None, meshio_type: str, gdim: int,
                 tags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, tags): the elements of ``meshio_type`` (rows in the order of its blocks, one after
    another) in a physical group of dimension ``gdim`` besides the one ``tags`` gives them, from the
    groups of their entities (``groups``: :func:`entity_groups`; each block of an MSH 4 file is
    one entity's); empty where there are none."""
    entities = (m.cell_data or {}).get("gmsh:geometrical")
    if groups is None or entities is None or len(entities) != len(m.cells):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    blocks = [i for i, b in enumerate(m.cells) if b.type == meshio_type]
    offsets = np.cumsum([0] + [len(m.cells[i].data) for i in blocks])
    rows, extra = [], []
    for k, i in enumerate(blocks):  # one per entity: a few
        if not len(entities[i]):
            continue
        of_entity = groups[gdim].get(int(entities[i][0]), []) if gdim < len(groups) else []
        if len(of_entity) < 2:
            continue
        block = np.arange(offsets[k], offsets[k + 1])
        for tag in of_entity:
            r = block[tags[block] != int(tag)]
            rows.append(r)
            extra.append(np.full(len(r), int(tag), dtype=np.int64))
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(rows), np.concatenate(extra)


def facets_in_every_group(m, groups: tuple | None, meshio_type: str, gdim: int, facets: np.ndarray,
                          tags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The boundary elements with one row more for each other group they are in."""
    rows, extra = other_groups(m, groups, meshio_type, gdim, tags)
    if not len(rows):
        return facets, tags
    return np.concatenate([facets, facets[rows]]), np.concatenate([tags, extra])


def cells_once(path, m, groups: tuple | None, meshio_type: str, gdim: int, cells: np.ndarray,
               tags: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """(cells, tags, shared): the cells with each listed once (the first time), tagged with their
    group's tag or with a code for the groups they are in together (``shared``: code -> tags)."""
    rows, extra = other_groups(m, groups, meshio_type, gdim, tags)
    if len(tags) and tags.min() != tags.max():  # cells listed once per group (MSH 2.2)
        first = _first_listing(cells)  # (a cell listed again in its own group is not merged: it overlaps)
        again = np.flatnonzero((first != np.arange(len(cells))) & (tags != tags[first]))
        if len(again):
            rows, extra = np.concatenate([first[rows], first[again]]), np.concatenate([extra, tags[again]])
            keep = np.ones(len(cells), dtype=bool)
            keep[again] = False
            renumber = np.cumsum(keep) - 1
            cells, tags, rows = cells[keep], tags[keep], renumber[rows]
    if not len(rows):
        return cells, tags, {}
    return (cells, *_codes(path, tags, rows, extra))


def _first_listing(cells: np.ndarray) -> np.ndarray:
    """For each cell, the first row of ``cells`` with the same nodes (itself when it is listed once)."""
    ids = cells.astype(np.int64)
    key = np.stack([ids.sum(axis=1), (ids * ids).sum(axis=1)], axis=1)  # the same for the same nodes in any order
    order = np.lexsort(key.T[::-1])
    same = np.all(key[order[1:]] == key[order[:-1]], axis=1)
    first = np.arange(len(cells))
    if not same.any():
        return first
    candidates = np.unique(np.concatenate([order[1:][same], order[:-1][same]]))
    nodes = np.sort(cells[candidates], axis=1)
    _, index, inverse = np.unique(nodes, axis=0, return_index=True, return_inverse=True)
    first[candidates] = candidates[index[inverse.ravel()]]
    return first


def _codes(path, tags: np.ndarray, rows: np.ndarray, extra: np.ndarray) -> tuple[np.ndarray, dict]:
    """Each cell's tag: its own, or a code for the set of groups it is in (rows, extra: the other
    memberships)."""
    multi = np.unique(rows)
    pairs = np.unique(np.stack([np.concatenate([multi, rows]), np.concatenate([tags[multi], extra])], axis=1), axis=0)
    groups = np.unique(pairs[:, 1])
    if len(groups) > MAX_SHARED_GROUPS:
        raise CaseError(f"{path}: cells are in more than one physical group of {len(groups)} groups (at most "
                        f"{MAX_SHARED_GROUPS} groups may share cells); put each cell in fewer groups")
    bits = np.zeros(len(tags), dtype=np.int64)
    np.add.at(bits, pairs[:, 0], np.left_shift(1, np.searchsorted(groups, pairs[:, 1])).astype(np.int64))
    masks, inverse = np.unique(bits[multi], return_inverse=True)
    top = int(max(tags.max(), groups.max())) + 1  # codes above every tag, or below where there is no room
    step, start = (1, top) if top + len(masks) < 2**31 else (-1, int(min(tags.min(), groups.min())) - 1)
    shared, codes = {}, np.empty(len(masks), dtype=np.int64)
    for i, mask in enumerate(masks.tolist()):  # one per set of groups: a few
        members = tuple(int(g) for j, g in enumerate(groups) if mask >> j & 1)
        codes[i] = members[0] if len(members) == 1 else start + step * len(shared)
        if len(members) > 1:
            shared[int(codes[i])] = members
    tags = tags.copy()
    tags[multi] = codes[inverse.ravel()]
    return tags, shared
