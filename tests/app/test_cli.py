"""Command line: the default case, progress and summary, and every kind of bad input."""

import time

import pytest
from conftest import ROOT, run_solver

BAD = [
    (["--set", "mesh.nx=-3"], "mesh.nx must be a positive integer, got -3"),
    (["--set", "mesh.nx=4.5"], "mesh.nx must be a positive integer, got 4.5"),
    (["--set", "mesh.colour=1"], "unknown key mesh.colour (allowed:"),
    (["--set", "material.k=-1"], "material.k must be > 0, got -1.0"),
    (["--set", "time.scheme=\"rk4\""], "time.scheme must be one of backward-euler, crank-nicolson, theta"),
    (["--set", "boundary.north.type=dirichlet"], "unknown boundary 'north' for a rectangle"),
    (["--set", "boundary.left.value=\"__import__('os').system('true')\""], "boundary.left.value:"),
    (["--set", "mesh.nx=1", "--set", "mesh.ny=1"], "cannot be split among"),
]


@pytest.mark.parametrize("nprocs", [1, 3])
@pytest.mark.parametrize("args, message", BAD, ids=[m.split()[0] for _, m in BAD])
def test_bad_input_exit_2_with_one_message(tmp_path, nprocs, args, message):
    if "cannot be split" in message and nprocs == 1:
        pytest.skip("a 1x1 mesh fits on one rank")
    start = time.monotonic()
    proc = run_solver(nprocs, [str(ROOT / "inputs" / "plate.toml"), *args], cwd=tmp_path, check=False,
                      timeout=30)
    assert time.monotonic() - start < 30
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    if "cannot be split" not in message:
        assert "plate.toml" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("nprocs", [1, 3])
def test_missing_or_unreadable_case_file(tmp_path, nprocs):
    proc = run_solver(nprocs, ["no/such/case.toml"], cwd=tmp_path, check=False, timeout=30)
    assert proc.returncode == 2 and "no/such/case.toml: cannot read case file" in proc.stderr
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00garbage")
    proc = run_solver(nprocs, ["bin.toml"], cwd=tmp_path, check=False, timeout=30)
    assert proc.returncode == 2 and "bin.toml: not a text file" in proc.stderr
    proc = run_solver(nprocs, [str(tmp_path)], cwd=tmp_path, check=False, timeout=30)
    assert proc.returncode == 2 and "is a directory" in proc.stderr
    proc = run_solver(nprocs, ["--bogus"], cwd=tmp_path, check=False, timeout=30)
    assert proc.returncode == 2 and "command line: unrecognized arguments: --bogus" in proc.stderr


def test_default_case_prints_progress_summary_and_paths(tmp_path):
    proc = run_solver(2, [], cwd=tmp_path)
    out = proc.stdout
    assert "mesh: 861 nodes, 800 quadrilateral cells on 2 ranks" in out
    assert out.count("step ") >= 10 and "iterations" in out and "residual" in out
    assert "DOFs on 2 ranks" in out and "wall time: mesh" in out and "solve" in out
    h5 = tmp_path / "outputs" / "default" / "default.h5"
    assert "results: outputs/default/default.h5" in out and h5.exists()
    assert h5.with_suffix(".xdmf").exists()


def test_non_convergence_is_reported_with_step_and_advice(tmp_path):
    proc = run_solver(3, [str(ROOT / "inputs" / "plate.toml"), "--set", "solver.preconditioner=none",
                          "--set", "solver.max_iterations=2", "--set", f"output.directory={tmp_path}"],
                      cwd=tmp_path, check=False, timeout=60)
    assert proc.returncode == 3
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "step 1 (t = 5)" in errors[0] and "did not converge in 2 iterations" in errors[0]
    assert "solver.preconditioner" in errors[0]
