"""Node tags of Gmsh files, ASCII and binary: a tag 0, a negative or repeated tag in $Nodes, or an
element referring to node 0, to a negative id or to a tag $Nodes lacks are refused with one line
naming the file, the section and the tag (meshio would silently read another node); valid files,
with sparse and unordered tags, pass and read as before. Serial and fast: small files in tmp_path
(and one solver run on 1 and 3 ranks)."""

import re
import tracemalloc
import warnings

import meshio
import numpy as np
import pytest
from conftest import ROOT, run_solver

from solver.errors import CaseError
from solver.mesh.files import read
from solver.mesh.gmsh_tags import check_gmsh_tags

XY = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
TRIANGLES = [(0, 1, 2), (0, 2, 3)]  # node indices; element tags 101 and 102
LINES = {1: (3, 0), 2: (1, 2), 3: (0, 1), 4: (2, 3)}  # physical tag (= element tag): node indices
NAMES = ('$PhysicalNames\n5\n1 1 "left"\n1 2 "right"\n1 3 "bottom"\n1 4 "top"\n2 5 "domain"\n'
         '$EndPhysicalNames\n')


def connectivity(tags, refs):
    """Node tags of the two triangles: ``refs`` or the default through ``tags``."""
    return refs if refs is not None else [[tags[i] for i in t] for t in TRIANGLES]


def msh22(tags=(1, 2, 3, 4), refs=None):
    """The unit square in MSH 2.2 ASCII: named boundary lines and two triangles."""
    elements = [f"{k} 1 2 {k} {k} {tags[a]} {tags[b]}" for k, (a, b) in LINES.items()]
    elements += [f"{101 + i} 2 2 5 1 {' '.join(map(str, t))}" for i, t in enumerate(connectivity(tags, refs))]
    nodes = [f"{t} {x} {y} 0" for t, (x, y) in zip(tags, XY)]
    return ("$MeshFormat\n2.2 0 8\n$EndMeshFormat\n" + NAMES
            + f"$Nodes\n{len(nodes)}\n" + "\n".join(nodes) + "\n$EndNodes\n"
            + f"$Elements\n{len(elements)}\n" + "\n".join(elements) + "\n$EndElements\n")


def msh41(tags=(1, 2, 3, 4), refs=None):
    """The same square in MSH 4.1 ASCII: the nodes in two entity blocks (left and right edges),
    a block per boundary line and one for the triangles."""
    entities = "".join(f"{k} 0 0 0 1 1 0 1 {k} 0\n" for k in LINES) + "1 0 0 0 1 1 0 1 5 4 1 2 3 4\n"
    blocks = []
    for curve, (i, j) in ((1, (0, 3)), (2, (1, 2))):
        blocks.append(f"1 {curve} 0 2\n{tags[i]}\n{tags[j]}\n{XY[i][0]} {XY[i][1]} 0\n{XY[j][0]} {XY[j][1]} 0\n")
    elements = "".join(f"1 {k} 1 1\n{k} {tags[a]} {tags[b]}\n" for k, (a, b) in LINES.items())
    tri = connectivity(tags, refs)
    elements += "2 1 2 2\n" + "".join(f"{101 + i} {' '.join(map(str, t))}\n" for i, t in enumerate(tri))
    return ("$MeshFormat\n4.1 0 8\n$EndMeshFormat\n" + NAMES
            + f"$Entities\n0 4 1 0\n{entities}$EndEntities\n"
            + f"$Nodes\n2 {len(tags)} {min(tags)} {max(tags)}\n" + "".join(blocks) + "$EndNodes\n"
            + f"$Elements\n5 6 1 102\n{elements}$EndElements\n")


def msh40(tags=(1, 2, 3, 4), refs=None):
    """The square's two triangles in MSH 4.0 ASCII (no entities, no names)."""
    nodes = "".join(f"{t} {x} {y} 0\n" for t, (x, y) in zip(tags, XY))
    tri = "".join(f"{101 + i} {' '.join(map(str, t))}\n" for i, t in enumerate(connectivity(tags, refs)))
    return (f"$MeshFormat\n4.0 0 8\n$EndMeshFormat\n$Nodes\n1 4\n1 2 0 4\n{nodes}$EndNodes\n"
            f"$Elements\n1 2\n1 2 2 2\n{tri}$EndElements\n")


def _ints(values, dtype="i"):
    return np.asarray(values, dtype=np.int64).astype(dtype).tobytes()


def _header(version):
    return f"$MeshFormat\n{version} 1 8\n".encode() + _ints([1]) + b"\n$EndMeshFormat\n"


def msh22_binary(tags=(1, 2, 3, 4), refs=None):
    """msh22 in binary (meshio's layout): records ``int tag, 3 double``, element blocks of ``int``."""
    nodes = np.zeros(4, dtype=[("tag", "i"), ("x", "d", (3,))])
    nodes["tag"], nodes["x"][:, :2] = tags, XY
    lines = [[k, k, k, tags[a], tags[b]] for k, (a, b) in LINES.items()]
    tri = [[101 + i, 5, 1, *t] for i, t in enumerate(connectivity(tags, refs))]
    return (_header("2.2") + NAMES.encode() + b"$Nodes\n4\n" + nodes.tobytes() + b"\n$EndNodes\n$Elements\n6\n"
            + _ints([1, 4, 2]) + _ints(lines) + _ints([2, 2, 2]) + _ints(tri) + b"\n$EndElements\n")


def msh41_binary(tags=(1, 2, 3, 4), refs=None):
    """msh41 in binary: ``size_t`` counts, tags and element records, ``int`` entity headers."""
    size = "u8"
    entities = _ints([0, 4, 1, 0], size)
    for k in LINES:
        entities += _ints([k]) + np.array([0, 0, 0, 1, 1, 0], "d").tobytes() + _ints([1], size) + _ints([k]) \
            + _ints([0], size)
    entities += _ints([1]) + np.array([0, 0, 0, 1, 1, 0], "d").tobytes() + _ints([1], size) + _ints([5]) \
        + _ints([4], size) + _ints([1, 2, 3, 4])
    nodes = _ints([2, 4, 1, 4], size)
    for curve, (i, j) in ((1, (0, 3)), (2, (1, 2))):
        nodes += _ints([1, curve, 0]) + _ints([2], size) + _ints([tags[i], tags[j]], size)
        nodes += np.array([[*XY[i], 0], [*XY[j], 0]], "d").tobytes()
    elements = _ints([5, 6, 1, 102], size)
    for k, (a, b) in LINES.items():
        elements += _ints([1, k, 1]) + _ints([1], size) + _ints([k, tags[a], tags[b]], size)
    tri = [[101 + i, *t] for i, t in enumerate(connectivity(tags, refs))]
    elements += _ints([2, 1, 2]) + _ints([2], size) + _ints(tri, size)
    return (_header("4.1") + NAMES.encode() + b"$Entities\n" + entities + b"\n$EndEntities\n$Nodes\n" + nodes
            + b"\n$EndNodes\n$Elements\n" + elements + b"\n$EndElements\n")


def msh40_binary(tags=(1, 2, 3, 4), refs=None):
    """msh40 in binary (meshio's layout): ``unsigned long`` counts, records ``int tag, 3 double``."""
    nodes = np.zeros(4, dtype=[("tag", "i"), ("x", "d", (3,))])
    nodes["tag"], nodes["x"][:, :2] = tags, XY
    tri = [[101 + i, *t] for i, t in enumerate(connectivity(tags, refs))]
    return (_header("4.0") + b"$Nodes\n" + _ints([1, 4], "L") + _ints([1, 2, 0]) + _ints([4], "L") + nodes.tobytes()
            + b"\n$EndNodes\n$Elements\n" + _ints([1, 2], "L") + _ints([1, 2, 2]) + _ints([2], "L") + _ints(tri)
            + b"\n$EndElements\n")


WRITERS = {"2.2": msh22, "4.1": msh41, "4.0": msh40}
BINARY = {"2.2": msh22_binary, "4.1": msh41_binary, "4.0": msh40_binary}


def write(folder, version, name="mesh.msh", crlf=False, binary=False, **kwargs):
    path = folder / name
    if binary:
        path.write_bytes(BINARY[version](**kwargs))
        return path
    text = WRITERS[version](**kwargs)
    path.write_bytes((text.replace("\n", "\r\n") if crlf else text).encode())
    return path


def refused(path, message):
    """check_gmsh_tags raises one line naming the file and ``message``."""
    with pytest.raises(CaseError, match=re.escape(f"{path}: {message}")) as info:
        check_gmsh_tags(path)
    assert "\n" not in str(info.value)


def triangles_xy(data):
    """The triangles' corner coordinates, each triangle's corners sorted, triangles sorted."""
    return sorted(tuple(sorted(map(tuple, tri.tolist()))) for tri in data.points[data.cells].round(12))


BAD = [
    ({"tags": (1, 0, 3, 4)}, "node tag 0 in $Nodes is invalid (node tags are positive integers)"),
    ({"tags": (1, 2, -3, 4)}, "node tag -3 in $Nodes is invalid"),
    ({"tags": (5, 2, 3, 2)}, "node tag 2 appears twice in $Nodes"),
    ({"refs": [[1, 2, 3], [1, 3, 0]]},
     "element 102 in $Elements refers to node 0 that $Nodes does not define (node tags are positive integers)"),
    ({"refs": [[-4, 2, 3], [1, 3, 4]]}, "element 101 in $Elements refers to node -4 that"),
    ({"refs": [[1, 2, 3], [1, 3, 9]]}, "element 102 in $Elements refers to node 9 that $Nodes does not define"),
    ({"tags": (10, 20, 30, 40), "refs": [[10, 20, 30], [10, 30, 4]]}, "element 102 in $Elements refers to node 4 that"),
]


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
@pytest.mark.parametrize("version", ["2.2", "4.1", "4.0"])
@pytest.mark.parametrize("kwargs, message", BAD, ids=["tag0", "negative", "repeated", "ref0", "ref_negative",
                                                      "ref_missing", "ref_missing_sparse"])
def test_bad_tags_are_refused_with_the_tag_named(tmp_path, version, crlf, kwargs, message):
    refused(write(tmp_path, version, crlf=crlf, **kwargs), message)


@pytest.mark.parametrize("version", ["2.2", "4.1"])
def test_a_bad_reference_in_a_boundary_line_names_that_element(tmp_path, version):
    path = write(tmp_path, version)
    text = path.read_text()
    bad = text.replace("\n3 1 2 3 3 1 2\n", "\n3 1 2 3 3 1 0\n") if version == "2.2" else \
        text.replace("1 3 1 1\n3 1 2\n", "1 3 1 1\n3 0 2\n")
    assert bad != text
    path.write_text(bad)
    refused(path, "element 3 in $Elements refers to node 0 that $Nodes does not define")


@pytest.mark.parametrize("version", ["2.2", "4.1"])
def test_unusual_whitespace_is_checked_too(tmp_path, version):
    """Tabs, doubled and trailing blanks: the line-by-line reading of $Nodes gives way to the
    token-by-token one, which still finds the bad tag."""
    path = write(tmp_path, version, tags=(1, 2, 0, 4))
    lines = path.read_text().split("\n")
    path.write_text("\n".join(f" {line}\t " if line[:1].isdigit() or line[:1] == "-" else line for line in lines))
    refused(path, "node tag 0 in $Nodes is invalid")


TAGS = {"contiguous": (1, 2, 3, 4), "sparse unordered": (10, 3, 1000000, 7), "increasing with gaps": (2, 5, 11, 12)}


@pytest.mark.parametrize("tags", TAGS.values(), ids=TAGS.keys())
@pytest.mark.parametrize("version", ["2.2", "4.1", "4.0"])
def test_valid_files_pass_and_read_as_before(tmp_path, version, tags):
    expected = read(write(tmp_path, version, name="plain.msh"))
    path = write(tmp_path, version, tags=tags)
    check_gmsh_tags(path)
    check_gmsh_tags(write(tmp_path, version, name="crlf.msh", crlf=True, tags=tags))
    data = read(path)
    assert data.cell_type == "triangle" and len(data.cells) == 2
    assert triangles_xy(data) == triangles_xy(expected)
    if version != "4.0":
        assert sorted(data.groups.boundary) == ["bottom", "left", "right", "top"]
        assert data.groups.region == {"domain": 5}
        assert len(data.facets) == 4 and sorted(data.facet_tags.tolist()) == [1, 2, 3, 4]


@pytest.mark.parametrize("version", ["2.2", "4.1", "4.0"])
def test_very_sparse_tags_are_refused_before_meshio_reads_them(tmp_path, version):
    """Tags far beyond the number of nodes: meshio holds arrays as long as the largest tag (25 nodes
    up to tag 2e8 took 1.7 GB; 2^40, 8 TiB). Sparse tags up to a million pass (and their references
    are checked by search)."""
    refused(write(tmp_path, version, tags=(5, 2**40, 9, 12)), "node tags reach 1.1e+12 for 4 nodes")
    refused(write(tmp_path, version, name="bad.msh", tags=(5, 10**6, 9, 12), refs=[[5, 10**6, 9], [5, 9, 10**6 + 1]]),
            f"element 102 in $Elements refers to node {10**6 + 1} that")


def test_the_geometries_of_the_repository_pass(tmp_path):
    """The example meshes (binary 4.1, as Gmsh writes them) and their ASCII 2.2 copies pass; a
    tag 0 put into either is found."""
    meshes = sorted((ROOT / "inputs" / "geometry").glob("*.msh"))
    assert meshes
    for path in meshes:
        check_gmsh_tags(path)
        data = path.read_bytes()
        first_tag = data.index(b"\n$Nodes\n") + 8 + 4 * 8 + 3 * 4 + 8  # after the header and the first block's
        (tmp_path / "binary.msh").write_bytes(data[:first_tag] + bytes(8) + data[first_tag + 8:])
        refused(tmp_path / "binary.msh", "node tag 0 in $Nodes")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mesh = meshio.read(path)
            ascii_copy = tmp_path / path.name
            meshio.write(ascii_copy, mesh, file_format="gmsh22", binary=False)
        check_gmsh_tags(ascii_copy)
        text = ascii_copy.read_text()
        start = text.index("$Nodes\n")
        first_node = text[start:].split("\n")[2]
        ascii_copy.write_text(text[:start] + text[start:].replace(first_node, "0" + first_node[1:], 1))
        refused(ascii_copy, "node tag 0 in $Nodes")


def test_what_the_scan_cannot_follow_is_left_to_meshio(tmp_path):
    """Never another exception: binary files, other formats and corrupt text pass unchecked."""
    corrupt = tmp_path / "corrupt.msh"
    corrupt.write_text(msh22(refs=[[1, 2, 3], [1, 3, 0]]).replace("101 2 2 5 1", "101 2 x 5 1"))
    check_gmsh_tags(corrupt)
    with pytest.raises(CaseError, match="cannot read the mesh"):
        read(corrupt)
    for name, content in [("empty.msh", b""), ("junk.msh", b"\x00\xff$Nodes\n$Elements\n"),
                          ("truncated.msh", msh41(refs=[[1, 2, 3], [1, 3, 0]]).encode()[:250]),
                          ("truncated_binary.msh", msh41_binary(refs=[[1, 2, 3], [1, 3, 0]])[:600]),
                          ("other.vtk", msh22(tags=(0, 2, 3, 4)).encode()),
                          ("binary.msh", b"$MeshFormat\n4.1 1 8\n\x01\x00\x00\x00\n$EndMeshFormat\n")]:
        (tmp_path / name).write_bytes(content)
        assert check_gmsh_tags(tmp_path / name) is (name == "other.vtk")


@pytest.mark.parametrize("text, block", [(msh41(), "1 1 0 2\n"), (msh40(), "1 2 0 4\n")], ids=["4.1", "4.0"])
def test_a_node_count_the_file_has_no_lines_for_allocates_nothing(tmp_path, text, block):
    """A 200-byte file whose node block claims 3e8 nodes: the scan is left at once (it took 2.4 GB for
    their line numbers)."""
    path = tmp_path / "claims.msh"
    path.write_text(text.replace(block, block[:-2] + "300000000\n", 1))
    tracemalloc.start()
    try:
        assert check_gmsh_tags(path) is False  # left to meshio, which refuses it
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10e6, peak
    with pytest.raises(CaseError, match="cannot read the mesh"):
        read(path)


@pytest.mark.parametrize("version", ["2.2", "4.1"])
def test_reading_a_bad_file_raises_case_error(tmp_path, version):
    """End to end: solver.mesh.files.read refuses before meshio remaps the tag."""
    path = write(tmp_path, version, refs=[[1, 2, 3], [1, 3, 0]])
    with pytest.raises(CaseError, match=re.escape(f"{path}: element 102 in $Elements refers to node 0")):
        read(path)


@pytest.mark.parametrize("version", ["2.2", "4.1", "4.0"])
@pytest.mark.parametrize("kwargs, message", BAD, ids=["tag0", "negative", "repeated", "ref0", "ref_negative",
                                                      "ref_missing", "ref_missing_sparse"])
def test_bad_tags_of_binary_files_are_refused_the_same_way(tmp_path, version, kwargs, message):
    refused(write(tmp_path, version, binary=True, **kwargs), message)


@pytest.mark.parametrize("tags", TAGS.values(), ids=TAGS.keys())
@pytest.mark.parametrize("version", ["2.2", "4.1", "4.0"])
def test_valid_binary_files_read_as_their_ascii_twins(tmp_path, version, tags):
    """Binary 2.2 takes only the tags 1..n in order (meshio reads no other): the others are
    refused in one line instead of meshio's bare ReadError."""
    path = write(tmp_path, version, binary=True, tags=tags)
    if version == "2.2" and tags != (1, 2, 3, 4):
        refused(path, f"node tag {tags[0] if tags[0] != 1 else tags[1]} in $Nodes is number ")
        return
    check_gmsh_tags(path)
    data, expected = read(path), read(write(tmp_path, version, name="ascii.msh", tags=tags))
    assert data.cell_type == "triangle" and triangles_xy(data) == triangles_xy(expected)
    assert np.array_equal(data.facets, expected.facets) and np.array_equal(data.facet_tags, expected.facet_tags)
    assert data.groups == expected.groups


def test_meshio_reads_a_bad_binary_tag_as_another_node(tmp_path):
    """Why binary files are scanned: meshio maps a node tag 0 of a binary 4.1 file onto the slot
    of the largest tag, without a word: element 101 (nodes 1, 2, 3) gets the node tagged 0 (at
    (1, 1), after node 3 in the file) in place of node 3 (at (0, 1))."""
    path = write(tmp_path, "4.1", binary=True, tags=(1, 2, 0, 3), refs=[[1, 2, 3], [1, 3, 2]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = meshio.read(path)
    assert m.points[m.cells_dict["triangle"][0], :2].tolist() == [list(XY[0]), list(XY[1]), list(XY[2])]
    refused(path, "node tag 0 in $Nodes is invalid")


@pytest.mark.parametrize("nprocs", [1, 3])
def test_the_solver_refuses_a_bad_binary_file(tmp_path, nprocs):
    path = write(tmp_path, "4.1", binary=True, refs=[[1, 2, 3], [1, 3, 7]])
    (tmp_path / "case.toml").write_text(f'[mesh]\nfile = "{path}"\n[material]\nk = 1.0\nrho = 1.0\nc = 1.0\n'
                                        '[boundary.left]\ntype = "dirichlet"\nvalue = 1.0\n[time]\nscheme = "steady"\n')
    proc = run_solver(nprocs, ["case.toml", "--quiet"], cwd=tmp_path, check=False, timeout=60)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{path}: element 102 in $Elements refers to node 7 that $Nodes does not define" in errors[0], errors


@pytest.mark.parametrize("version", ["2.2", "4.1", "4.0"])
def test_what_the_scan_skipped_is_refused(tmp_path, version):
    """Ways past the scan, each read by meshio with a node moved (1.12 W for 1 W, exit 0): a tag
    that is not an integer (meshio cuts 3.5 to node 3), ``$MeshFormat`` after 64 KiB of
    ``$Comments``, a second ``$Nodes`` section (meshio keeps the last). Now each is refused in
    one line, and a Gmsh file that meshio reads but the scan cannot follow is refused too."""
    refused(write(tmp_path, version, name="fraction.msh", tags=(1, 2, 3.5, 4), refs=[[1, 2, 3], [1, 3, 4]]),
            "node tag 3.5 in $Nodes is not an integer")
    repeated = WRITERS[version](tags=(1, 2, 3, 3))
    comments = "$Comments\n" + ("x" * 99 + "\n") * 700 + "$EndComments\n"
    (tmp_path / "comments.msh").write_text(comments + repeated)
    refused(tmp_path / "comments.msh", "node tag 3 appears twice in $Nodes")
    text = WRITERS[version]()
    nodes = text[text.index("$Nodes"):text.index("$EndNodes") + len("$EndNodes\n")]
    (tmp_path / "two.msh").write_text(text.replace(nodes, nodes + nodes))
    refused(tmp_path / "two.msh", "the file has more than one $Nodes section")


def test_a_gmsh_file_whose_tags_the_scan_cannot_follow_is_refused_once_meshio_reads_it(tmp_path, monkeypatch):
    import solver.mesh.gmsh_tags as tags

    path = write(tmp_path, "4.1")
    assert check_gmsh_tags(path) is True
    monkeypatch.setattr(tags, "_scan", lambda path: None)
    assert check_gmsh_tags(path) is False
    with pytest.raises(CaseError, match=re.escape(f"{path}: its $Nodes and $Elements sections do not follow")):
        read(path)


def test_valid_files_laid_out_otherwise_pass(tmp_path):
    """Lines of blanks alone, and the $Elements header split over two lines (meshio reads numbers,
    not lines): read as before, not refused as a layout the scan cannot follow."""
    text = msh41()
    (tmp_path / "blank.msh").write_text(text.replace("$EndElements", "   \n\t\n$EndElements"))
    (tmp_path / "split.msh").write_text(text.replace("$Elements\n5 6 1 102\n", "$Elements\n5 6\n1 102\n"))
    expected = read(write(tmp_path, "4.1"))
    for name in ("blank.msh", "split.msh"):
        assert check_gmsh_tags(tmp_path / name) is True
        assert triangles_xy(read(tmp_path / name)) == triangles_xy(expected)
    (tmp_path / "bad.msh").write_text(msh41(refs=[[1, 2, 3], [1, 3, 0]]).replace("$Elements\n5 6 1 102\n",
                                                                               "$Elements\n5 6\n1 102\n"))
    refused(tmp_path / "bad.msh", "element 102 in $Elements refers to node 0")
