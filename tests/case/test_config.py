"""Case-file validation: each kind of mistake gives one line naming the file and the key."""

import pytest

from solver.case.load import load_case
from solver.case.schema import SCHEMA
from solver.errors import CaseError

GOOD = """
[mesh]
nx = 4
ny = 3
[material]
k = 1.0
rho = 2.0
c = 3.0
[boundary.left]
type = "dirichlet"
value = 1.0
[time]
dt = 0.5
t_end = 2.0
"""


def test_defaults_and_derived_values():
    case = load_case(GOOD, "case.toml", default_name="case")
    assert case.mesh.cell == "quadrilateral" and case.mesh.lengths == (1.0, 1.0)
    assert not case.steady and case.time.theta == 1.0 and case.name == "case" and case.time.mass == "consistent"
    assert case.solver.preconditioner == "auto"


def test_overrides_parse_toml_values_and_bare_strings():
    case = load_case(GOOD, "case.toml", ["mesh.nx=8", "time.scheme=crank-nicolson",
                                         "boundary.left.value=\"20 + t\"", "mesh.lengths=[2, 1]"])
    assert case.mesh.n[0] == 8 and case.time.theta == 0.5 and case.physics.boundaries[0].value.text == "20 + t"
    assert case.mesh.lengths == (2.0, 1.0)


@pytest.mark.parametrize("edit, message", [
    ("mesh.nx=-3", "case.toml: mesh.nx must be a positive integer, got -3"),
    ("mesh.nx=2.5", "case.toml: mesh.nx must be a positive integer, got 2.5"),
    ("mesh.nx=true", "case.toml: mesh.nx must be a positive integer, got True"),
    ("mesh.nxx=3", "case.toml: unknown key mesh.nxx (allowed: type, file, partitioner, cell, nx, ny, nz, lengths, origin)"),
    ("mesh.cell=tetrahedron", "case.toml: mesh.cell must be one of quadrilateral, triangle for a rectangle"),
    ("material.k=0", "case.toml: material.k must be > 0, got 0.0"),
    ("material.k=\"hot\"", "case.toml: material.k: unknown name 'hot'"),
    ("time.scheme=leapfrog", "case.toml: time.scheme must be one of backward-euler, crank-nicolson, theta"),
    ("time.dt=0.3", "case.toml: time.t_end must be a whole number of time steps"),
    ("boundary.lft.type=dirichlet", "case.toml: boundary.lft: unknown boundary 'lft' for a rectangle "
                                    "(allowed: left, right, bottom, top)"),
    ("boundary.left.type=convective", "case.toml: boundary.left.type must be one of dirichlet, neumann, robin"),
    ("boundary.left.flux=3", "case.toml: boundary.left.flux is not used by a dirichlet boundary (it takes: value)"),
    ("boundary.top.type=robin", "case.toml: boundary.top.h is required for a robin boundary"),
    ("boundary.left.type=robin", "case.toml: boundary.left.h is required for a robin boundary"),
    ("time.dt=\"auto\"", "case.toml: time.dt = \"auto\" is only for time.scheme = \"explicit-euler\""),
    ("material.k=[1, 2, 3]", "case.toml: material.k must be a number or a list of 2 numbers"),
    ("region.a.x=[1, 0]", "case.toml: region.a.x must be [min, max] with min <= max"),
    ("region.a.q=1", "case.toml: unknown key region.a.q (allowed: group, x, y, k, rho, c, latent_heat, solidus, liquidus)"),
    ("boundary.left.value=\"__import__('os')\"", "case.toml: boundary.left.value: "),
    ("solver.rtol=2", "case.toml: solver.rtol must be <= 0.5, got 2.0"),
    ("output.every=0", "case.toml: output.every must be a positive integer, got 0"),
    ("physics.gravity=1", "case.toml: unknown section [physics]"),
])
def test_bad_values_name_file_key_and_allowed(edit, message):
    with pytest.raises(CaseError) as err:
        load_case(GOOD, "case.toml", [edit])
    text = str(err.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_missing_required_key_and_bad_toml():
    with pytest.raises(CaseError, match=r"^c.toml: material.k is required"):
        load_case(GOOD.replace("k = 1.0", ""), "c.toml")
    with pytest.raises(CaseError, match=r"^c.toml: invalid TOML"):
        load_case("[mesh\nnx=", "c.toml")


def test_every_key_is_documented():
    for section, keys in SCHEMA.items():
        for name, key in keys.items():
            assert key.doc, f"{section}.{name} has no description"


def test_readme_input_reference_lists_every_key():
    from pathlib import Path

    from solver.case.schema import BOUNDARY_SCHEMA, REGION_SCHEMA, ROOT_SCHEMA

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    keys = [f"{s}.{k}" for s, ks in SCHEMA.items() for k in ks] + [f"boundary.<name>.{k}" for k in BOUNDARY_SCHEMA]
    keys += [f"region.<name>.{k}" for k in REGION_SCHEMA] + list(ROOT_SCHEMA)
    missing = [k for k in keys if f"| `{k}` |" not in readme]
    assert not missing, f"README input reference lacks {missing}"
