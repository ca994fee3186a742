"""Temperatures below absolute zero that expressions of x, y, z give on the mesh are refused before
the first step (exit 2, one line naming the key and its lowest value) on every rank count."""

import pytest
from conftest import run_solver

CASE = """temperature_unit = "{unit}"
[mesh]
nx = 4
ny = 4
[material]
k = 1.0
rho = 1.0
c = 1.0
[initial]
temperature = {initial}
[boundary.left]
type = "dirichlet"
value = 300.0
[boundary.right]
type = "robin"
h = 10.0
T_inf = {T_inf}
[time]
dt = 0.1
t_end = 0.2
"""


@pytest.mark.parametrize("nprocs, unit, initial, T_inf, message", [
    (1, "C", '"20 - 400 * x"', "20.0", "initial.temperature must be >= -273.15 C (absolute zero), got -380 "),
    (3, "K", "300.0", '"300 - 400 * y"', "boundary.right.T_inf must be >= 0 K (absolute zero), got -78.8675"),
], ids=["np1-initial", "np3-T_inf"])  # on 3 ranks, only some own facets of the right boundary
def test_expressions_below_absolute_zero_on_the_mesh_are_refused(tmp_path, nprocs, unit, initial, T_inf, message):
    (tmp_path / "case.toml").write_text(CASE.format(unit=unit, initial=initial, T_inf=T_inf))
    proc = run_solver(nprocs, ["case.toml", "--quiet"], cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert errors[0].startswith(f"error: case.toml: {message}") and "Traceback" not in proc.stderr, errors[0]
    assert not list(tmp_path.glob("outputs/case/*.h5"))  # no results written


@pytest.mark.parametrize("nprocs, unit, initial, T_inf", [
    (1, "C", '"-273.15*(sin(x + 0.3)**2 + cos(x + 0.3)**2)"', '"-273.15*(sin(y)**2 + cos(y)**2)"'),
    (3, "K", '"300*(sin(x)**2 + cos(x)**2 - 1)"', '"300*(sin(y)**2 + cos(y)**2 - 1)"'),
], ids=["np1-C", "np3-K"])
def test_expressions_at_absolute_zero_take_their_round_off(tmp_path, nprocs, unit, initial, T_inf):
    """Expressions equal to absolute zero that their round-off puts a few units of the last digit
    below it (-273.15000000000003 C, -3.3e-14 K) are absolute zero: the run completes."""
    (tmp_path / "case.toml").write_text(CASE.format(unit=unit, initial=initial, T_inf=T_inf))
    run_solver(nprocs, ["case.toml", "--quiet"], cwd=tmp_path, timeout=60)
    assert (tmp_path / "outputs/case/case.h5").is_file()


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_value_just_below_absolute_zero_is_shown_in_the_digits_that_put_it_there(tmp_path, nprocs):
    """2e-9 degrees below absolute zero, beyond round-off: refused, the value not rounded to -273.15."""
    (tmp_path / "case.toml").write_text(CASE.format(unit="C", initial="20.0", T_inf='"-273.150000002 + 0*y"'))
    proc = run_solver(nprocs, ["case.toml", "--quiet"], cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert errors[0] == ("error: case.toml: boundary.right.T_inf must be >= -273.15 C (absolute zero), got "
                         "-273.150000002 (its lowest value on the mesh at t = 0)"), errors[0]


@pytest.mark.parametrize("nprocs, unit, T_inf, message", [
    (1, "C", '"20 - 2000 * t"',
     "step 2 (t = 0.2): boundary.right.T_inf must be >= -273.15 C (absolute zero), got -380 "),
    (3, "K", '"300 - 2000 * t"', "step 2 (t = 0.2): boundary.right.T_inf must be >= 0 K (absolute zero), got -100 "),
], ids=["np1-C", "np3-K"])
def test_a_boundary_temperature_that_falls_below_absolute_zero_stops_the_run(tmp_path, nprocs, unit, T_inf, message):
    """An ambient temperature of t that falls below absolute zero during the run (in K, radiation
    would then take its fourth power as a warm surrounding): exit 3 at the step, naming the key,
    its value and the step, after the case file as every error of a step."""
    (tmp_path / "case.toml").write_text(CASE.format(unit=unit, initial="300.0", T_inf=T_inf))
    proc = run_solver(nprocs, ["case.toml", "--quiet"], cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 3 and len(errors) == 1, proc.stderr
    assert errors[0].startswith(f"error: case.toml: {message}"), errors[0]


@pytest.mark.parametrize("edit, key", [("initial.temperature=2e6", "initial.temperature"),
                                       ("boundary.left.value=2e6", "boundary.left.value")])
def test_prescribed_temperatures_outside_the_temperature_range_are_input_errors(tmp_path, edit, key):
    """Known before the first step: exit 2 naming the key (it was exit 3 at step 1, blaming the
    solver or a flux)."""
    (tmp_path / "case.toml").write_text(CASE.format(unit="C", initial="20.0", T_inf="20.0"))
    proc = run_solver(1, ["case.toml", "--quiet", "--set", edit], cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert f"{key} reaches 2e+06, outside run.temperature_range" in errors[0], errors[0]


HELD_AT_ZERO = """temperature_unit = "K"
[mesh]
nx = 8
ny = 8
[material]
k = 1.0
rho = 1.0
c = 1.0
[initial]
temperature = 300.0
[boundary.left]
type = "dirichlet"
value = 0.0
[boundary.right]
type = "dirichlet"
value = 0.0
[time]
scheme = "crank-nicolson"
dt = 0.05
t_end = 0.5
"""


@pytest.mark.parametrize("nprocs", [1, 3])
def test_a_field_that_reaches_absolute_zero_takes_round_off_below_it(tmp_path, nprocs):
    """A body held at 0 K, from 300 K, steady: the solve ends at -7e-14 K (round-off of the 300 K it
    started from), which was refused as outside the temperature range (exit 3). Round-off of the
    solves below absolute zero is taken; an undershoot of the scheme (Crank-Nicolson, -3 K) is not."""
    (tmp_path / "case.toml").write_text(HELD_AT_ZERO)
    run_solver(nprocs, ["case.toml", "--quiet", "--set", 'time.scheme="steady"'], cwd=tmp_path, timeout=60)
    proc = run_solver(nprocs, ["case.toml", "--quiet", "--overwrite"], cwd=tmp_path, check=False, timeout=60)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 3 and len(errors) == 1 and "undershoot" in errors[0], proc.stderr
