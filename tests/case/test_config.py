"""Case-file validation: each kind of mistake gives one line naming the file and the key."""

import os

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


def test_a_top_level_key_is_set_like_a_sectioned_one():
    case = load_case(GOOD, "case.toml", ["temperature_unit=K", "initial.temperature=300"])
    assert case.physics.temperature_unit == "K"
    with pytest.raises(CaseError, match=r"--set expects section.key=value \(or temperature_unit=value\), got 'nx=3'"):
        load_case(GOOD, "case.toml", ["nx=3"])


def test_overrides_parse_toml_values_and_bare_strings():
    case = load_case(GOOD, "case.toml", ["mesh.nx=8", "time.scheme=crank-nicolson",
                                         "boundary.left.value=\"20 + t\"", "mesh.lengths=[2, 1]"])
    assert case.mesh.n[0] == 8 and case.time.theta == 0.5 and case.physics.boundaries[0].value.text == "20 + t"
    assert case.mesh.lengths == (2.0, 1.0)


FILE_MESH = """
[mesh]
type = "file"
file = "m.msh"
[material]
k = 1.0
rho = 2.0
c = 3.0
[boundary."cold.side"]
type = "dirichlet"
value = 1.0
[boundary."3"]
type = "robin"
h = 10.0
T_inf = 20.0
[time]
dt = 0.5
t_end = 2.0
"""


def test_a_set_key_may_quote_its_parts_as_toml_does():
    """A mesh group named with a dot, or a number, is a quoted key in TOML ([boundary."cold.side"]):
    --set took the quotes as letters of the name ("unknown key boundary."cold.side"", or a new
    boundary '"3"' without a type). The key is a TOML dotted key: quoted parts whole, bare parts as
    written."""
    case = load_case(FILE_MESH, "case.toml", ['boundary."cold.side".value=5', 'boundary."3".T_inf=30',
                                              "boundary.'3'.h = 12", '"temperature_unit"=K'])
    sides = {bc.name: bc for bc in case.physics.boundaries}
    assert set(sides) == {"cold.side", "3"} and case.physics.temperature_unit == "K"
    assert sides["cold.side"].value.text == "5.0"
    assert sides["3"].T_inf.text == "30.0" and sides["3"].h.text == "12.0"
    case = load_case(FILE_MESH, "case.toml", ['boundary. "a=b\\"c" .type=insulated', "boundary.it's.type=insulated",
                                              'boundary . "cold.side" . value = 9', "time . dt = 0.25"])
    assert {"a=b\"c", "it's"} <= set(case.values["boundary"])
    assert case.values["boundary"]["cold.side"]["value"] == 9  # (blanks about the dots, as in TOML)
    assert case.values["time"]["dt"] == 0.25
    for edit in ('boundary."".value=1', 'boundary."a"b.value=1', 'boundary."a" #x.value=1', 'boundary."a=b"',
                 'boundary."""a""".value=1', 'boundary."a\nb".value=1', 'boundary."\\q".value=1'):
        with pytest.raises(CaseError) as err:
            load_case(FILE_MESH, "case.toml", [edit])
        assert str(err.value).startswith("case.toml: --set expects section.key=value (or temperature_unit=value), "
                                          "got "), edit


@pytest.mark.parametrize("edit, message", [
    ("mesh.nx=-3", "case.toml: mesh.nx must be a positive integer, got -3"),
    ("mesh.nx=2.5", "case.toml: mesh.nx must be a positive integer, got 2.5"),
    ("mesh.nx=true", "case.toml: mesh.nx must be a positive integer, got true"),
    ("mesh.nxx=3", "case.toml: unknown key mesh.nxx (did you mean nx?) (allowed: type, file, partitioner, cell, nx, ny, "
                   "nz, lengths, origin)"),
    ("boundary.left.T_infinity=3", "case.toml: unknown key boundary.left.T_infinity (did you mean T_inf?) (allowed for "
                                   "a dirichlet boundary: type, value)"),
    ("mesh.cell=tetrahedron", "case.toml: mesh.cell must be one of quadrilateral, triangle for a rectangle"),
    ("material.k=0", "case.toml: material.k must be > 0, got 0.0"),
    ("mesh.nz=7", "case.toml: mesh.nz is not used by a rectangle (2D: nx and ny)"),
    ("mesh.partitioner=metis", "case.toml: mesh.partitioner is not used by a rectangle (it is split in blocks of its "
                               "grid; the partitioner splits a mesh file); remove it"),
    ("material.k={table=[[0, 1], [1e-310, 2]]}", "case.toml: material.k: temperatures 0 and 9.99"),
    ("material.k={table=[[0, 1], [1e-8, 1e308]]}", "case.toml: material.k: the slope between points 1 and 2 (values 1 "
                                                  "and 1e+308 at T = 0 and 1e-08) is beyond the range of double"),
    ("study.case=\"base.toml\"", "case.toml: a study file ([study] with its base case), not a case"),
    ("output.times=[1e-300, 2]", "case.toml: output.times: t = 1e-300 s is not a whole number of steps"),  # was t = 0
    ("material.k=1e-310", "case.toml: material.k must be at least 2.23e-308 (the smallest normal double"),
    ("material.rho={table=[[0, 1e-320], [9, 1]]}", "case.toml: material.rho: value 9.99989e-321 at T = 0 is below"),
    ("material.k=\"hot\"", "case.toml: material.k: unknown name 'hot'"),
    ("time.scheme=leapfrog", "case.toml: time.scheme must be one of backward-euler, crank-nicolson, theta"),
    ("time.dt=0.3", "case.toml: time.t_end must be a whole number of time steps"),
    ("material.k=1979-05-27", "case.toml: material.k must be a finite number, got 1979-05-27"),
    ("time.dt=1e-300", "case.toml: time.t_end / time.dt = 2e+300 steps: at most 1e+09"),
    ("time.dt=1e-308", "case.toml: time.dt must be at least 2.23e-308"),
    ("time.dt=1e-9", "case.toml: time.t_end / time.dt = 2e+09 steps: at most 1e+09"),
    ("boundary.lft.type=dirichlet", "case.toml: boundary.lft: unknown boundary 'lft' for a rectangle "
                                    "(allowed: left, right, bottom, top)"),
    ("boundary.left.type=convective", "case.toml: boundary.left.type must be one of dirichlet, neumann, robin"),
    ("boundary.left.flux=3", "case.toml: boundary.left.flux is not used by a dirichlet boundary (it takes: value)"),
    ("boundary.left.type=insulated", "case.toml: boundary.left.value is not used by an insulated boundary (it takes: "
                                     "nothing); "
                                     "remove it, or with --set give the whole boundary anew: "
                                     "--set 'boundary.left={type = \"insulated\"}'"),
    ("boundary.top.type=robin", "case.toml: boundary.top.h is required for a robin boundary"),
    ("boundary.left.type=robin", "case.toml: boundary.left.h is required for a robin boundary"),
    ("time.dt=\"auto\"", "case.toml: time.dt = \"auto\" is only for time.scheme = \"explicit-euler\""),
    ("material.k=[1, 2, 3]", "case.toml: material.k must be one value (a number, an expression or a table) or a "
                             "list of 2"),
    ("region.a.x=[1, 0]", "case.toml: region.a.x must be [min, max] with min <= max"),
    ("region.a.k=3", "case.toml: region.a says where it is by none of its keys: give x/y ranges [min, max] or a "
                     "group (mesh files); the whole body's properties go in [material]"),
    ("region.a.q=1", "case.toml: unknown key region.a.q (allowed: group, x, y, k, rho, c, latent_heat, solidus, liquidus)"),
    ("boundary.left.value=\"__import__('os')\"", "case.toml: boundary.left.value: "),
    ("solver.rtol=2", "case.toml: solver.rtol must be <= 0.5, got 2.0"),
    ("nonlinear.atol=1e30", "case.toml: nonlinear.atol must be <= 1.0, got 1e+30"),  # every step "converged" unsolved
    ("nonlinear.stol=100", "case.toml: nonlinear.stol must be <= 0.001, got 100.0"),  # one iteration, 0.05 C off
    ("output.every=0", "case.toml: output.every must be a positive integer, got 0"),
    ("run.hang_timeout=1e-300", "case.toml: run.hang_timeout must be 0 (off) or at least 1 second, got 1e-300"),
    ("element.degree=2.0", "case.toml: element.degree must be one of 1, 2; got 2.0"),
    ("source.f=" + "1" * 4400, "case.toml: --set source.f: an integer of more than 4300 digits"),
    ("output.write_timeout=0.5", "case.toml: output.write_timeout must be 0 (off) or at least 1 second, got 0.5"),
    ("output.write_timeout=-1", "case.toml: output.write_timeout must be >= 0"),
    ("output.write_timeout=1e10", "case.toml: output.write_timeout must be <= 1000000000.0"),
    ("run.hang_timeout=1e10", "case.toml: run.hang_timeout must be <= 1000000000.0"),
    ("physics.gravity=1", "case.toml: unknown section [physics]"),
    ("mesh.nx=-99999999999999999999", "case.toml: mesh.nx must be a positive integer below 2^63, got -1e+20"),
    (f"mesh.nx={10**400}", "case.toml: mesh.nx must be a positive integer below 2^63, got an integer of 401 digits"),
    (f"material.k={{table=[[0, 1], [{10**400}, 2]]}}", "case.toml: material.k: pair 2: "),
    (f"run.wall_limit=\"{10**400}:00:00\"", "case.toml: run.wall_limit must be a duration such as"),
    (f"material.k={10**400}", "case.toml: material.k must be a finite number, got an integer of 401 digits"),
    (f"initial.temperature={10**400}", "case.toml: initial.temperature: an integer of 401 digits is beyond"),
    (f"source.f=\"1 + {10**400}\"", "case.toml: source.f: an integer of 401 digits is beyond"),
    ("initial.temperature=\"20 + t\"", "case.toml: initial.temperature: unknown name 't' (t, the time, not in a value "
                                     "that holds at t = 0: an expression of x, y, z only) (allowed: x, y, z, pi, e)"),
    ("mesh.lengths=[1.0, \"a\"]", "case.toml: mesh.lengths (entry 2) must be a finite number, got 'a'"),
    ("output.probes=[[0.5, 0.5], [0.1, true]]", "case.toml: output.probes (point 2, coordinate 2) must be a finite "
                                                "number, got true"),
    ("initial.temperature=\"20 + q\"", "case.toml: initial.temperature: unknown name 'q' (allowed: x, y, z, pi, e)"),
    ("source.f=nan", "case.toml: source.f must be a finite number, got nan"),  # (not "overflows with the mesh")
    ("boundary.left.value=\"sqrt(-1)\"", "case.toml: boundary.left.value must be a finite number, got 'sqrt(-1)', "
                                         "which is nan"),
    ("output.interval=1e-9", "case.toml: output.interval = 1e-09 s gives 2e+09 snapshots up to time.t_end = 2 s; "
                             "at most 1,000,000"),
    ("time.dt=1e-6", "case.toml: output.every (default 1) = 1 writes 2e+06 snapshots over the 2e+06 steps to "
                     "time.t_end; at most 1,000,000"),
    ("mesh.nx\n.foo=3", "case.toml: --set mesh.nx\\n.foo=3: nx is not a table"),  # one line, the key escaped
    ("mesh.\x1b[2J\nnx=" + "1" * 4400, "case.toml: --set mesh.\\x1b[2J\\nnx: an integer of more than 4300 digits"),
    ("output.name=2024", "case.toml: --set output.name=2024: TOML reads 2024 as a number, and output.name takes a "
                         "string: quote it, --set 'output.name=\"2024\"'"),
    ("output.directory=2024-01-01", "case.toml: --set output.directory=2024-01-01: TOML reads 2024-01-01 as a date, "
                                    "and output.directory takes a string: quote it, "
                                    "--set 'output.directory=\"2024-01-01\"'"),
    ("output.name=1e3", "case.toml: --set output.name=1e3: TOML reads 1e3 as a number"),
    ("output.name=false", "case.toml: --set output.name=false: TOML reads false as a boolean"),
    ("boundary.left.value=" + "[" * 5000 + "]" * 5000, "case.toml: --set boundary.left.value: invalid TOML: nested "
                                                       "too deeply"),
])
def test_bad_values_name_file_key_and_allowed(edit, message):
    with pytest.raises(CaseError) as err:
        load_case(GOOD, "case.toml", [edit])
    text = str(err.value)
    assert text.startswith(message), text
    assert "\n" not in text


def test_an_output_time_the_adaptive_steps_cannot_tell_from_zero_is_refused():
    """t = 1e-300 s was merged into the initial snapshot (one time the less); 3e-9 s, below time.dt_min,
    is a step of its own."""
    with pytest.raises(CaseError, match="output.times: t = 1e-300 s is within 1e-12 of time.t_end from the start"):
        load_case(GOOD, "case.toml", ['time.dt="adaptive"', "output.times=[1e-300, 2]"])
    load_case(GOOD, "case.toml", ['time.dt="adaptive"', "time.dt_min=1e-6", "output.times=[3e-9, 2]"])


def test_output_times_the_steps_cannot_tell_apart_are_refused():
    """Two output times on one fixed step, or closer than adaptive steps resolve, were written as one
    snapshot (the later time missing, exit 0)."""
    for times in ("[1.0, 1.0000000001]", "[0.5, 1.9999999999]"):  # the second: on the step of t_end
        with pytest.raises(CaseError, match=r"output.times: t = .* fall on the same step of dt = 0.5 s"):
            load_case(GOOD, "case.toml", [f"output.times={times}"])
    with pytest.raises(CaseError, match=r"t = 1.0 s and t = 1.0000000000001 s are within 1e-12 of time.t_end"):
        load_case(GOOD, "case.toml", ['time.dt="adaptive"', "output.times=[1.0, 1.0000000000001, 2]"])
    load_case(GOOD, "case.toml", ['time.dt="adaptive"', "output.times=[1.0, 1.00000000001, 2]"])
    assert load_case(GOOD, "case.toml", ["output.times=[1.0, 1.5]"]).output.times == (1.0, 1.5, 2.0)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_case_file_is_called_empty(text):
    """An empty file was refused as a case that lacks material.k, as if one key were missing."""
    with pytest.raises(CaseError, match=r"^case.toml: the case file holds no keys \(it is empty, or holds only "
                                        r"comments\); a case needs at least \[material\] k, rho and c"):
        load_case(text, "case.toml")


def test_missing_required_key_and_bad_toml():
    with pytest.raises(CaseError, match=r"^c.toml: material.k is required"):
        load_case(GOOD.replace("k = 1.0", ""), "c.toml")
    with pytest.raises(CaseError, match=r"^c.toml: invalid TOML"):
        load_case("[mesh\nnx=", "c.toml")


def test_every_key_is_documented():
    for section, keys in SCHEMA.items():
        for name, key in keys.items():
            assert key.doc, f"{section}.{name} has no description"


KELVIN = 'temperature_unit = "K"\n'
ROBIN_TOP = ["boundary.top.type=robin", "boundary.top.h=1"]


@pytest.mark.parametrize("unit, edits, message", [
    ("", ["initial.temperature=-274"], "initial.temperature must be >= -273.15 C (absolute zero), got -274.0"),
    ("", ["boundary.left.value=\"-273.15 - 1\""], "boundary.left.value must be >= -273.15 C (absolute zero), got "
                                                  "-274.15"),
    (KELVIN, ["boundary.left.value=300", *ROBIN_TOP, "boundary.top.T_inf=-5"],
     "boundary.top.T_inf must be >= 0 K (absolute zero), got -5.0"),
    (KELVIN, ["boundary.left.value=300", "boundary.top.type=radiation", "boundary.top.epsilon=0.5",
              "boundary.top.T_inf=-0.5"], "boundary.top.T_inf must be >= 0 K (absolute zero), got -0.5"),
    ("", ["material.k={table=[[-300, 1], [0, 2]]}"],
     "material.k: the table's temperature T = -300.0 must be >= -273.15 C (absolute zero)"),
    (KELVIN, ["boundary.left.value=300", "region.a.x=[0, 1]", "region.a.c={table=[[-1, 1], [10, 2]]}"],
     "region.a.c: the table's temperature T = -1.0 must be >= 0 K (absolute zero)"),
    (KELVIN, ["boundary.left.value=300", "material.latent_heat=1", "material.solidus=-1", "material.liquidus=1"],
     "material.solidus must be >= 0 K (absolute zero), got -1.0"),
    ("", ["region.a.x=[0, 1]", "region.a.latent_heat=1", "region.a.solidus=-300", "region.a.liquidus=0"],
     "region.a.solidus must be >= -273.15 C (absolute zero), got -300.0"),
    ("", ["run.temperature_range=[-300, 100]"],
     "run.temperature_range: its min must be >= -273.15 C (absolute zero), got [-300.0, 100.0]"),
    (KELVIN, ["boundary.left.value=300", "run.temperature_range=[-1, 100]"],
     "run.temperature_range: its min must be >= 0 K (absolute zero), got [-1.0, 100.0]"),
])
def test_temperatures_below_absolute_zero_are_refused(unit, edits, message):
    with pytest.raises(CaseError) as err:
        load_case(unit + GOOD, "case.toml", edits)
    assert str(err.value) == f"case.toml: {message}"


@pytest.mark.parametrize("unit, edits", [
    ("", ["initial.temperature=\"-273.15 - 1e-13\""]),
    ("", ["boundary.left.value=-273.15000000000003", "material.k={table=[[-273.15000000000003, 1], [0, 2]]}"]),
    (KELVIN, ["boundary.left.value=\"300*(0.1*3 - 0.3) - 1e-14\"", "run.temperature_range=[-1e-12, 100]"]),
], ids=["C-expression", "C-value-and-table", "K-expression-and-range"])
def test_round_off_below_absolute_zero_is_taken(unit, edits):
    """A temperature computed a few units of its last digit below absolute zero is absolute zero."""
    assert load_case(unit + GOOD, "case.toml", edits).physics.temperature_unit == (unit and "K" or "C")


def test_a_refused_temperature_shows_the_digits_that_put_it_below_absolute_zero():
    with pytest.raises(CaseError) as err:
        load_case(GOOD, "case.toml", ["boundary.left.value=-273.150000002"])
    assert str(err.value) == "case.toml: boundary.left.value must be >= -273.15 C (absolute zero), got -273.150000002"


def test_table_file_below_absolute_zero_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "k.csv").write_text("T, k\n-1, 1\n100, 2\n")
    with pytest.raises(CaseError, match=r"^case.toml: material.k: the table's temperature T = -1.0 in k.csv must be "
                                        r">= 0 K \(absolute zero\)$"):
        load_case(KELVIN + GOOD, "case.toml", ["boundary.left.value=300", "material.k={file=\"k.csv\"}"])



def test_a_file_name_holding_a_nul_character_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CaseError, match=r"^case.toml: material.k: .*its name holds a NUL character"):
        load_case(KELVIN + GOOD, "case.toml", ["boundary.left.value=300", 'material.k={file="a\\u0000b.csv"}'])


@pytest.mark.parametrize("rows, message", [
    ("20, 1\n10, 2\n", "k.csv:3: temperatures must increase strictly: 20 then 10 (point 2)"),
    ("# T in C\n20, 1\n\n30, 2\n20, 2\n", "k.csv:6: temperatures must increase strictly: 30 then 20 (point 3)"),
    ("20, 1\n30, -2\n", "value -2 at T = 30 is not > 0 in k.csv"),
    ("0, 1\n1e-10, 2\n", "temperatures 0 and 1e-10 (point 2) are closer than 1e-9 of the larger "
                        "(or of one degree, near 0): the slope between them is beyond what double precision resolves "
                        "in k.csv"),
    ("", "a table needs at least two (T, value) points, got 0 in k.csv"),
    ("20; 1\n30; 2\n", "k.csv:2: expected two columns T, value, got 1 (separated by semicolons? columns are "
                       "separated by commas, and decimals written with points)"),
    ("20\t1\n30\t2\n", "k.csv:2: expected two columns T, value, got 1 (separated by tabs? columns are "
                       "separated by commas, and decimals written with points)"),
])
def test_a_table_file_s_points_out_of_order_or_range_name_the_file(tmp_path, monkeypatch, rows, message):
    """The points of a CSV table that were refused (unsorted, repeated, out of range, too few) did not
    say which file held them (k.csv, beside rho.csv and c.csv); a table of other separators is named
    so. Temperatures out of order are named by their line, not only by their point (a header, comments
    and blank lines come between)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "k.csv").write_text("T, k\n" + rows)
    with pytest.raises(CaseError) as err:
        load_case(GOOD, "case.toml", ["material.k={file=\"k.csv\"}"])
    assert str(err.value) == f"case.toml: material.k: {message}", str(err.value)


def test_the_points_of_all_tables_together_are_bounded_before_any_is_read(tmp_path, monkeypatch):
    """Each table holds at most 100,000 points, but one file named by many regions was read for each
    (120 of 100,000 rows: 2.6 GB and nearly 3 minutes on every rank): refused, counted from the lines."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "k.csv").write_text("T, k\n" + "".join(f"{i}, 1\n" for i in range(49_000)))
    regions = "".join(f"[region.r{i}]\nx = [0, 1]\nk = {{ file = \"k.csv\" }}\n" for i in range(21))
    with pytest.raises(CaseError) as err:
        load_case(GOOD + regions, "case.toml")
    assert str(err.value) == ("case.toml: the tables of the case hold up to 1,029,021 points in all (21 tables; "
                              "region.r0.k: 49,001): at most 1,000,000 (every rank holds every table; a property "
                              "needs far fewer points)"), str(err.value)


@pytest.mark.parametrize("row", ["100,5_0", "1_00,50", "100,0x10"])
def test_a_table_file_number_python_reads_but_a_table_does_not_is_refused(tmp_path, monkeypatch, row):
    """float() reads "5_0" as 50 (the underscores of Python's literals): a typo, refused with its
    line as 0x10 is."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "k.csv").write_text(f"T,k\n0,40\n{row}\n")
    with pytest.raises(CaseError) as err:
        load_case(GOOD, "case.toml", ["material.k={file=\"k.csv\"}"])
    assert str(err.value) == f"case.toml: material.k: k.csv:3: {row.split(',')!r} is not two numbers"

def test_temperature_range_default_follows_the_unit_and_expressions_wait_for_the_mesh():
    assert load_case(GOOD, "case.toml").run.temperature_range == (-273.15, 1.0e6)
    kelvin = load_case(KELVIN + GOOD, "case.toml", ["boundary.left.value=\"300 - 400 * y\""])
    assert kelvin.run.temperature_range == (0.0, 1.0e6 + 273.15)
    assert load_case(KELVIN + GOOD, "case.toml", ["boundary.left.value=0"]).physics.temperature_unit == "K"


def test_long_values_are_shown_as_excerpts():
    """A 1,400-character expression with a syntax error near its end: the message shows the part
    around the error, not the whole text."""
    with pytest.raises(CaseError) as err:
        load_case(GOOD, "case.toml", ['source.f="' + "x+" * 700 + 'foo("'])
    text = str(err.value)
    assert "<here>" in text and "character 1404 of 1404" in text and len(text) < 300, text


LONG = "w" * 2000


@pytest.mark.parametrize("edit", [
    f"{LONG}.x=1", f"mesh.{LONG}=1", f"boundary.{LONG}.type=insulated", f"boundary.left.{LONG}=1",
    f"region.a={{x=[0,1], {LONG}=1}}", f"region.{LONG}={{x=[0,1], k=-1}}", f"mesh.nx.{LONG}=1",
    f"output.name={'9' * 4000}", f'source.f="{LONG}"', f'source.f="{LONG[:1990]}(x)"', f"source.f=\"'{LONG[:1990]}'\"",
    f'material.k={{file="{LONG}.csv"}}',
])
def test_long_names_are_shown_as_excerpts(edit):
    """A key, a section, a boundary or region name, a word of an expression or a table's file name
    of 2,000 characters was shown whole (twice for a boundary): the message shows its start and its length."""
    with pytest.raises(CaseError) as err:
        load_case(GOOD, "case.toml", [edit])
    text = str(err.value)
    assert " characters)" in text and len(text) < 400, text


@pytest.mark.parametrize("edit, message", [
    ("mesh.nx={a=1}", "mesh.nx must be a positive integer, got { a = 1 }"),
    ('mesh.nx={"a b"=[1, {}]}', "mesh.nx must be a positive integer, got { 'a b' = [1, {}] }"),
])
def test_a_table_is_shown_as_toml_writes_it(edit, message):
    """A table given for a number was shown as Python's {'a': 1}."""
    with pytest.raises(CaseError) as err:
        load_case(GOOD, "case.toml", [edit])
    assert str(err.value) == f"case.toml: {message}"


@pytest.mark.parametrize("edit, shown", [
    (f"material.k={{table=[[0, 1], [1, {10**400}]]}}", "pair 2: [1, 1.00e+400] is not two finite numbers"),
    (f"boundary.left.value=[1, -{10**309}]", "got [1, -1.00e+309]"),
    (f"boundary.left.value={{a=[{10**20}]}}", "got { a = [1.00e+20] }"),
])
def test_integers_of_many_digits_inside_lists_are_shown_in_engineering_form(edit, shown):
    """A list or table holding an integer of 400 digits was shown with 96 of them."""
    with pytest.raises(CaseError) as err:
        load_case(GOOD, "case.toml", [edit])
    assert shown in str(err.value), str(err.value)


@pytest.mark.parametrize("edit, message", [
    ("mesh.NX=3", "unknown key mesh.NX (did you mean nx?)"),
    ("MESH.nx=3", "unknown section [MESH] (did you mean mesh?)"),
    ("boundary.left.VALUE=3", "unknown key boundary.left.VALUE (did you mean value?)"),
    ("boundary.Left.type=insulated", "boundary.Left: unknown boundary 'Left' for a rectangle (allowed: left, right, "
                                     "bottom, top) (did you mean left?)"),
])
def test_a_key_or_boundary_in_other_capitals_is_suggested(edit, message):
    """mesh.NX and boundary.Left had no suggestion: the comparison with the known names was case-sensitive."""
    with pytest.raises(CaseError) as err:
        load_case(GOOD, "case.toml", [edit])
    assert str(err.value).startswith(f"case.toml: {message}"), str(err.value)


def test_a_command_to_copy_quotes_set_values_on_one_line():
    """The command that continues a run repeats its --set options: a tab or a newline in one was
    printed as is, breaking the line."""
    import shutil
    import subprocess

    from solver.case.shown import shell_word

    words = ["a b", "plain", "initial.temperature=1\t+ x", "it's\n\x1b[31m\\ \x85 \u2028 \U000e0001 \u00e9"]
    assert shell_word("a b") == "'a b'" and shell_word("initial.temperature=1\t+ x") == "$'initial.temperature=1\\t+ x'"
    assert all("\n" not in shell_word(w) and shell_word(w).isprintable() for w in words)
    if shutil.which("bash"):
        for w in words:
            out = subprocess.run(["bash", "-c", f"printf %s {shell_word(w)}"], capture_output=True, check=True,
                                 env={**os.environ, "LC_ALL": "C.UTF-8"})  # (bash writes \\u in the locale's code)
            assert out.stdout.decode() == w


def test_a_case_file_name_gives_a_valid_output_name():
    """Spaces, brackets or more than 100 characters in the file's name: the results get a valid
    name derived from it; an output.name given in the file must be valid itself."""
    assert load_case(GOOD, "my case (v2).toml", default_name="my case (v2)").name == "my_case_v2"
    assert load_case(GOOD, "x.toml", default_name="a" * 300).name == "a" * 100
    assert load_case(GOOD, "x.toml", default_name="((()))").name == "case"
    assert load_case(GOOD, "x.toml", default_name="Wärme-ü").name == "Warme-u"  # accents dropped, not the letters
    with pytest.raises(CaseError, match="output.name must be 1 to 100 letters"):
        load_case(GOOD, "x.toml", ["output.name=\"my case\""])
    with pytest.raises(CaseError, match=r"not starting with '-' or '.', got '-rf'"):
        load_case(GOOD, "x.toml", ["output.name=\"-rf\""])
    with pytest.raises(CaseError, match=r"got 'aaaa.*\.\.\. \(258 characters\)$"):
        load_case(GOOD, "x.toml", [f"output.name=\"{'a' * 256}\""])


def test_quoted_numbers_and_dates_are_strings_where_a_string_is_taken():
    case = load_case(GOOD, "case.toml", ['output.name="2024"', "output.directory='2024-01-01'"])
    assert case.name == "2024" and case.output.directory == "2024-01-01"


@pytest.mark.parametrize("value, message", [
    ("2024", 'case.toml: output.name must be a non-empty string, got 2024, which TOML reads as a number: write it '
             'in quotes, name = "2024"'),
    ("2024-01-01", 'case.toml: output.name must be a non-empty string, got 2024-01-01, which TOML reads as a date: '
                   'write it in quotes, name = "2024-01-01"'),
    ("true", 'case.toml: output.name must be a non-empty string, got true, which TOML reads as a boolean'),
])
def test_a_number_or_date_in_the_file_where_a_string_is_taken_is_to_be_quoted(value, message):
    with pytest.raises(CaseError) as err:
        load_case(GOOD + f"[output]\nname = {value}\n", "case.toml")
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize("timing", ["times = [0.5, 1.0]", "interval = 0.5", "every = 2"])
def test_a_transient_case_set_steady_ignores_its_output_timing(timing):
    """--set cannot remove a key: the output timing of a transient case is not used by a steady
    run, as its time.dt and time.t_end are not (output.times and interval were refused)."""
    case = load_case(GOOD + f"[output]\n{timing}\n", "case.toml", ["time.scheme=steady", 'time.dt="adaptive"'])
    assert case.steady and case.output.times == () and case.output.interval is None
    case = load_case(GOOD + f"[output]\n{timing}\n", "case.toml")  # still checked in a transient run
    assert case.output.times == ((0.5, 1.0, 2.0) if "times" in timing else (0.5, 1.0, 1.5, 2.0) if "interval" in
                                 timing else ())
    case = load_case(GOOD.replace("[time]", "[time]\nscheme = \"theta\"\ntheta = 0.6"), "case.toml",
                     ["time.scheme=steady"])
    assert case.steady and case.time.theta is None
    with pytest.raises(CaseError, match="output.every and output.interval both choose when to write"):
        load_case(GOOD + "[output]\nevery = 2\n", "case.toml", ["time.scheme=steady", "output.interval=0.5"])


def test_fixed_steps_set_over_an_adaptive_case_drop_its_adaptive_keys():
    """--set cannot remove a key: a fixed dt given over an adaptive case was refused for the case
    file's own time.tolerance; the file's adaptive keys are dropped, those set with --set judged."""
    adaptive = GOOD.replace("dt = 0.5", 'dt = "adaptive"\ntolerance = 1e-4\ndt_min = 1e-4')
    assert load_case(adaptive, "case.toml").time.adaptive.relative == 1e-4
    for dt in ("0.25", '"auto"'):
        sets = [f"time.dt={dt}"] + (["time.scheme=explicit-euler"] if "auto" in dt else [])
        case = load_case(adaptive, "case.toml", sets)
        assert case.time.dt == (0.25 if dt == "0.25" else "auto") and case.time.adaptive is None
    with pytest.raises(CaseError, match='time.tolerance is only used with time.dt = "adaptive"'):
        load_case(adaptive, "case.toml", ["time.dt=0.25", "time.tolerance=1e-3"])
    for sets in (["time.t_end=1.0"], ["time.dt=0.25"]):  # a fixed-step file's own adaptive keys: still refused
        with pytest.raises(CaseError, match='time.tolerance is only used with time.dt = "adaptive"'):
            load_case(adaptive.replace('dt = "adaptive"', "dt = 0.5"), "case.toml", sets)


def test_a_case_file_not_in_utf8_says_where_and_what_to_do(tmp_path):
    """A Latin-1 file was "not a text file"; a binary one still is."""
    from solver.case.load import read_text

    path = tmp_path / "case.toml"
    path.write_bytes(b"# \xe9t\xe9\n" + GOOD.encode())
    with pytest.raises(CaseError, match=r"case.toml: not UTF-8 text \(byte 0xe9 at line 1, column 3\); TOML case "
                                        r"files are UTF-8: save it as UTF-8, or convert it \(from Latin-1: iconv"):
        read_text(path)
    path.write_bytes(b"\xef\xbb\xbf# \xc3\xa9t\xc3\xa9\n\n # \xb0C\n")  # after a byte-order mark and a UTF-8 letter
    with pytest.raises(CaseError, match=r"byte 0xb0 at line 3, column 4\)"):
        read_text(path)
    path.write_bytes(b"\x00\x01\xff")
    with pytest.raises(CaseError, match=r"case.toml: not a text file \(TOML case files are UTF-8\)$"):
        read_text(path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_case_file_in_utf16_is_named_so(tmp_path, encoding):
    """Windows' "Unicode" text was "not a text file", or, without a byte-order mark, a TOML error
    about the NUL characters of its ASCII letters."""
    from solver.case.load import read_text

    path = tmp_path / "case.toml"
    path.write_bytes(GOOD.encode(encoding))
    with pytest.raises(CaseError, match=r"case.toml: UTF-16 text; TOML case files are UTF-8: save it as UTF-8, or "
                                        r"convert it \(iconv -f utf-16 -t utf-8 case.toml > new.toml\)$"):
        read_text(path)


def test_a_case_file_with_a_byte_order_mark_is_read(tmp_path):
    """Some Windows editors start UTF-8 files with a byte-order mark: TOML has none, and the file
    was refused as "Invalid statement (at line 1, column 1)"."""
    from solver.case.load import read_text

    path = tmp_path / "case.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert read_text(path) == GOOD


def test_a_latent_heat_beyond_double_precision_of_the_sensible_heat_is_refused():
    """latent_heat = 1e25 beside c = 3 over a 10-degree range: the enthalpy lost the sensible heat
    and every step kept the field as it was (exit 0, "heat in: none")."""
    melting = ["material.solidus=40.0", "material.liquidus=50.0"]
    with pytest.raises(CaseError, match=r"material.latent_heat = 1e\+25 is 3.3e\+23 times the sensible heat"):
        load_case(GOOD, "case.toml", ["material.latent_heat=1e25", *melting])
    load_case(GOOD, "case.toml", ["material.latent_heat=4e5", *melting])


@pytest.mark.parametrize("solidus, liquidus", [(50.0, 50.0000000000001), (660.0, 660.0000000000005),
                                               (-1e-12, 1e-12)])
def test_a_melting_range_a_few_rounding_steps_wide_is_refused(solidus, liquidus):
    """A range of a few ulps lost 8.6% of the latent heat (T = 90.86 for 90, exit 0); 1e-9 of
    the temperatures (at least 1e-9 degrees) is the narrowest taken."""
    melting = ["material.latent_heat=10", f"material.solidus={solidus!r}"]
    with pytest.raises(CaseError, match=r"material: the melting range from solidus = .* wide, narrower than 1e-09 of "
                                        r"its temperature"):
        load_case(GOOD, "case.toml", [*melting, f"material.liquidus={liquidus!r}"])
    load_case(GOOD, "case.toml", [*melting, f"material.liquidus={solidus + 1e-9 * max(abs(solidus), 1.0) * 1.01!r}"])


def test_a_top_level_key_written_inside_a_section_is_sent_above_it():
    """temperature_unit after [output] was "unknown key output.temperature_unit", with no hint."""
    with pytest.raises(CaseError, match=r"unknown key output.temperature_unit \(allowed: .*\); temperature_unit is "
                                        r"a top-level key: write it above the first \[section\]"):
        load_case(GOOD + '[output]\ntemperature_unit = "K"\n', "case.toml")


def test_a_dotted_key_written_under_another_table_is_sent_to_its_own():
    """``material.k = 3`` under [output] was "unknown key output.material (did you mean interval?)"."""
    with pytest.raises(CaseError) as err:
        load_case(GOOD + "[output]\nmaterial.k = 3.0\n", "case.toml")
    assert "; material.k belongs to [material]: write it under [material], not under [output]" in str(err.value)
    assert "did you mean" not in str(err.value)


def test_a_required_key_s_message_nests_no_parentheses():
    with pytest.raises(CaseError) as err:
        load_case(GOOD, "case.toml", ["boundary.bottom.value=3"])
    assert str(err.value) == ("case.toml: boundary.bottom.type is required (boundary condition kind: unlisted "
                              "boundaries are insulated)"), str(err.value)


def test_an_unknown_top_level_key_is_called_a_key():
    """``temperature_units = "K"`` at the top was reported as an unknown section."""
    with pytest.raises(CaseError, match=r"unknown top-level key temperature_units \(did you mean temperature_unit\?\) "
                                        r"\(sections: "):
        load_case('temperature_units = "K"\n[mesh]\nnx = 2\nny = 2\n', "case.toml")


def test_durations_follow_slurm_s_forms():
    """1:99:00 was taken as 2 h 39 min; 2-10:00 (SLURM: 2 days 10 hours) as 2 days 10 minutes."""
    from solver.case.load import parse_duration

    assert parse_duration("01:30:00") == 5400.0 and parse_duration("90:00") == 5400.0
    assert parse_duration("2-10:00") == (2 * 24 + 10) * 3600.0 and parse_duration("2-01:00:00") == 49 * 3600.0
    assert parse_duration("1:99:00") is None and parse_duration("1:00:60") is None


def test_sizes_just_under_the_next_unit_are_whole_numbers():
    """A disk's free space of 1020 KiB read "only 1e+03 KiB free" (three significant digits)."""
    from solver.case.shown import size

    assert [size(n) for n in (512, 63.5 * 2**10, 1020 * 2**10, 1023.9 * 2**20, 20.3 * 2**20, 1250 * 2**30)] == \
        ["512 bytes", "63.5 KiB", "1020 KiB", "1024 MiB", "20.3 MiB", "1250 GiB"]


@pytest.mark.parametrize("override,key,name", [
    ('material.k={file="k.csv"}', "material.k", "k.csv"),
    ('mesh.file="geometry/part.msh"', "mesh.file", "geometry/part.msh"),
])
def test_a_relative_file_beside_the_case_is_named_from_the_current_directory(tmp_path, monkeypatch, override, key,
                                                                             name):
    """Relative mesh and table paths are taken from the current directory: a file missing there but
    lying beside the case is named by the path that reaches it from here; from the case's own folder
    the same case loads."""
    case = tmp_path / "cases" / "case.toml"
    (case.parent / "geometry").mkdir(parents=True)
    (case.parent / name).write_text("T, k\n0, 40\n500, 30\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CaseError) as err:
        load_case(GOOD, str(case.relative_to(tmp_path)), [override])
    assert str(err.value) == (f"cases/case.toml: {key}: {name} is not in the current directory ({tmp_path}), from "
                              f"which a relative path is taken; the file of that name beside the case is "
                              f"cases/{name}: give that path")
    if key == "material.k":
        monkeypatch.chdir(case.parent)
        assert load_case(GOOD, "case.toml", [override]).values["material"]["k"]["file"] == name


def test_a_dotted_key_of_thousands_of_parts_is_refused_before_it_is_read():
    """Python's TOML reader takes time and memory in the square of a dotted key's parts: 20,000
    parts (a 40 kB line) took 96 s and 1.7 GB on every rank, and a case file may hold 4 MiB. Such a
    key is refused at once, on its line, with its start."""
    import time

    start = time.perf_counter()
    with pytest.raises(CaseError) as err:
        load_case(GOOD + "a" + ".a" * 3000 + " = 1\n", "case.toml")
    text = str(err.value)
    assert text.startswith(f"case.toml:{GOOD.count(chr(10)) + 1}: a dotted key of more than 32 parts (a.a.a.")
    assert len(text) < 250 and time.perf_counter() - start < 0.3
    load_case(GOOD + '[region."a.b"]\nx = [0, 1]\nk = 2.0\n', "case.toml")  # (a quoted part holds dots)


def test_a_table_file_named_by_many_keys_is_read_once(tmp_path, monkeypatch):
    """Nine regions naming one 100,000-point CSV file read it nine times on every rank (12 s, and
    a copy of its points each); it is read once, its points shared by the keys that name it."""
    import solver.case.tables as tables

    monkeypatch.chdir(tmp_path)
    (tmp_path / "k.csv").write_text("T, k\n0, 1\n100, 2\n")
    reads = []
    monkeypatch.setattr(tables, "_read_csv", lambda path, read=tables._read_csv: reads.append(path) or read(path))
    regions = "".join(f'[region.r{i}]\nx = [0, 1]\nk = {{ file = "k.csv" }}\n' for i in range(3))
    values = load_case(GOOD + regions, "case.toml", ['material.c={file="k.csv"}']).values
    assert len(reads) == 1 and all(values["region"][f"r{i}"]["k"]["table"] is values["material"]["c"]["table"]
                                   for i in range(3))
    assert values["material"]["c"] == {"table": [[0.0, 1.0], [100.0, 2.0]], "file": "k.csv"}
    load_case(GOOD + regions, "case.toml")
    assert len(reads) == 2  # (each case reads its files anew)


def test_a_long_region_name_is_cut_in_the_messages_of_the_run(tmp_path):
    """A region of a 5,000-character name that misses the mesh was named whole in the run's warning
    (a 100,000-character name: a line as long); the messages that come with the mesh show its
    start and its length, as those of the case file do."""
    from conftest import run_solver

    name = "r" * 5000
    proc = run_solver(3, ["--set", f"region.{name}.x=[5.0, 6.0]", "--set", f"region.{name}.k=2.0", "--set",
                          "mesh.nx=4", "--set", "mesh.ny=2", "--set", "time.t_end=20.0", "--set",
                          f"output.directory={tmp_path}"], cwd=tmp_path, timeout=90)
    warning = [line for line in proc.stderr.splitlines() + proc.stdout.splitlines() if "selects no cell" in line]
    assert warning and all(len(line) < 200 and "(5000 characters)" in line for line in warning), warning
