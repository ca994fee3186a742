"""Node tags of ASCII Gmsh files: a tag 0, a negative or repeated tag in $Nodes, or an element
referring to node 0, to a negative id or to a tag $Nodes lacks are refused with one line naming
the file, the section and the tag (meshio would silently read another node); valid files, with
sparse and unordered tags, pass and read as before. Serial and fast: small files in tmp_path."""

import re
import warnings

import meshio
import pytest
from conftest import ROOT

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


WRITERS = {"2.2": msh22, "4.1": msh41, "4.0": msh40}


def write(folder, version, name="mesh.msh", crlf=False, **kwargs):
    path = folder / name
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
def test_very_sparse_tags_pass(tmp_path, version):
    """Tags far apart (no lookup table): checked by search."""
    check_gmsh_tags(write(tmp_path, version, tags=(5, 2**40, 9, 12)))
    refused(write(tmp_path, version, name="bad.msh", tags=(5, 2**40, 9, 12), refs=[[5, 2**40, 9], [5, 9, 2**40 + 1]]),
            f"element 102 in $Elements refers to node {2**40 + 1} that")


def test_the_geometries_of_the_repository_pass(tmp_path):
    """The example meshes (binary 4.1: not scanned) and their ASCII 2.2 copies (scanned)."""
    meshes = sorted((ROOT / "inputs" / "geometry").glob("*.msh"))
    assert meshes
    for path in meshes:
        check_gmsh_tags(path)
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
                          ("other.vtk", msh22(tags=(0, 2, 3, 4)).encode()),
                          ("binary.msh", b"$MeshFormat\n4.1 1 8\n\x01\x00\x00\x00\n$EndMeshFormat\n")]:
        (tmp_path / name).write_bytes(content)
        check_gmsh_tags(tmp_path / name)


@pytest.mark.parametrize("version", ["2.2", "4.1"])
def test_reading_a_bad_file_raises_case_error(tmp_path, version):
    """End to end: solver.mesh.files.read refuses before meshio remaps the tag."""
    path = write(tmp_path, version, refs=[[1, 2, 3], [1, 3, 0]])
    with pytest.raises(CaseError, match=re.escape(f"{path}: element 102 in $Elements refers to node 0")):
        read(path)
