"""``python -m solver bench`` in a tiny configuration: every figure is printed and lands in the
JSON file (no timing is asserted: the figures are for docs/performance.md and for people)."""

import json
import subprocess
import sys

import pytest

from conftest import mpi_env

TINY = ["--dofs-2d", "4000", "--dofs-3d", "2000", "--cells", "4000", "--stream", "100000", "--steps", "2",
        "--repeat", "1", "--dolfinx", "no"]


def test_bench_launches_itself_on_two_ranks_and_reports_every_figure(tmp_path):
    env = {k: v for k, v in mpi_env().items() if not k.startswith(("OMPI_COMM_WORLD", "PMIX_", "PMI_"))}
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "solver", "bench", *TINY, "--ranks", "2", "--json", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(out.read_text())
    assert r["ranks"] == 2
    for key in ("numpy_GBs", "daxpy_GBs"):
        assert r["stream_1"][key] > 0 and r["stream_N"][key] > 0
    for part in ("linalg_1", "linalg_N"):
        assert set(r[part]) >= {"spmv_GBs", "spmv_fraction_of_fused_triad", "halo_overhead", "pcg_iteration_over_spmv"}
    assert set(r["assembly"]) == {"P1 2D", "Q1 2D", "P1 3D", "Q1 3D", "P2 2D", "P2 3D"}
    for key in ("steps_2d", "steps_2d_jacobi", "steps_3d"):
        assert r[key]["1"]["ranks"] == 1 and r[key]["N"]["ranks"] == 2 and r[key]["speedup_step"] > 0
        assert r[key]["N"]["bytes_per_dof"] > 0 and r[key]["N"]["peak_rss_MB"] > 0
    assert r["hdf5"]["hdf5_GBs"] > 0 and r["hdf5"]["plain_GBs"] > 0
    for label in ("STREAM-like triad", "SpMV bandwidth / NumPy triad", "SpMV bandwidth / fused (daxpy) triad",
                  "distributed SpMV (halo)", "one PCG-Jacobi iteration", "assembly P1 2D", "assembly Q1 3D",
                  "speed-up of the time loop", "bytes per DOF", "HDF5 / plain"):
        assert label in proc.stdout, label
    assert not [p for p in out.parent.iterdir() if p.name.startswith("bench-")]  # scratch removed


def test_assembly_figures_beside_dolfinx_runs_given_as_json(tmp_path):
    """--only assembly with DOLFINx's JSON lines from a file: pattern, first assembly and
    reassembly per million cells per rank, and the ratios ours / DOLFINx (1 and N ranks, 2D, 3D,
    P1 and P2; the reference set-up with P1)."""
    env = {k: v for k, v in mpi_env().items() if not k.startswith(("OMPI_COMM_WORLD", "PMIX_", "PMI_"))}
    peer = tmp_path / "dolfinx.jsonl"
    lines = ["not json: a log line"]
    for dim, n, degree in ((2, 32, 1), (3, 8, 1), (2, 32, 2), (3, 8, 2)):
        for ranks in (1, 2):
            lines.append(json.dumps({"dim": dim, "N": n, "degree": degree, "ranks": ranks,
                                     "t_matrix_create": 0.01 * degree / ranks,
                                     "t_matrix_values": 0.02 / ranks, "t_matrix_reassemble": 0.015 / ranks,
                                     "t_mesh": 0.5, "t_setup": 1.0, "t_assemble_matrix": 0.03, "t_solver_setup": 0.01}))
    peer.write_text("\n".join(lines) + "\n")
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "solver", "bench", "--only", "assembly", "--cells", "2000",
                           "--repeat", "1", "--ranks", "2", "--dolfinx", "no", "--dolfinx-json", str(peer),
                           "--json", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(out.read_text())
    assert r["parts"] == ["assembly"] and "stream_1" not in r and "hdf5" not in r
    for name in ("P1 2D", "Q1 2D", "P1 3D", "Q1 3D", "P2 2D", "P2 3D"):
        for part in ("assembly", "assembly_1"):
            figures = r[part][name]["per_million"]
            assert set(figures) == {"pattern", "first", "reassembly", "pattern_K_M"} and min(figures.values()) > 0
    assert set(r["dolfinx"]) == {f"P{p} {d}D {n}" for p in (1, 2) for d in (2, 3) for n in ("1", "N")}
    for name, cmp in r["dolfinx"].items():
        if name.startswith("P1"):
            assert set(cmp["ratio"]) == {"pattern", "first", "reassembly", "setup"}
            assert cmp["ratio"]["setup"] == pytest.approx(cmp["ours_setup"]["setup_s"] / 1.54)
        else:  # P2: the assembly only (the reference set-up is P1's)
            assert set(cmp["ratio"]) == {"pattern", "first", "reassembly"} and cmp["ours_setup"] is None
    for p in (1, 2):
        pattern = r["dolfinx"][f"P{p} 2D 1"]["dolfinx"]["per_million"]["pattern"]
        assert pattern == pytest.approx(0.01 * p / (2 * 32 ** 2 / 1e6))
        ours = r["assembly_1"][f"P{p} 2D"]["per_million"]["pattern"]
        assert r["dolfinx"][f"P{p} 2D 1"]["ratio"]["pattern"] == pytest.approx(ours / pattern)
    for label in ("pattern (Assembler)", "reassembly of M + dt K", "ours/DOLFINx", "reference problem set-up"):
        assert label in proc.stdout, label


@pytest.mark.parametrize("target", ["file/x.json", "/proc/x.json"])
def test_a_figures_file_in_a_folder_that_cannot_be_made_is_refused_before_measuring(tmp_path, target):
    """--json below a file (or in /proc) ended in an internal error (FileExistsError, exit 1)."""
    (tmp_path / "file").write_text("")
    proc = subprocess.run([sys.executable, "-m", "solver", "bench", "--quick", "--only", "stream", "--ranks", "1",
                           "--json", target], cwd=tmp_path, env=mpi_env(), capture_output=True, text=True, timeout=120)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "cannot write into its folder" in errors[0], proc.stderr


def test_a_study_that_fails_ends_bench_study_with_its_status_and_its_line(tmp_path):
    """--n 100000: the first study, refused (its mesh cannot fit in memory), ended bench --study with a
    traceback and exit status 1; it ends with the study's status and error line."""
    proc = subprocess.run([sys.executable, "-m", "solver", "bench", "--study", "--n", "100000", "--ranks", "1",
                           "--repeat", "1", "--steps", "1", "--json", str(tmp_path / "study.json")],
                          cwd=tmp_path, env=mpi_env(), capture_output=True, text=True, timeout=120)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "bench --study: the study even.toml" in errors[0] and "mesh 100000 x 100000" in errors[0], errors[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "study.json").exists()


@pytest.mark.parametrize("form", [["--solvers", "--n", "4", "--ranks", "1", "--no-peer"],
                                  ["--accuracy", "--dim", "2", "--p1", "4", "8", "--p2", "2", "4", "--ranks", "1"],
                                  ["--study", "--n", "4", "--ranks", "1", "--steps", "1"]])
def test_a_figures_file_of_the_process_forms_that_cannot_be_written_is_refused_before_measuring(tmp_path, form):
    """--json below a file: --solvers and --accuracy ended in an internal error (FileExistsError, exit 1),
    --study so too, after its whole measurement."""
    (tmp_path / "file").write_text("")
    proc = subprocess.run([sys.executable, "-m", "solver", "bench", *form, "--repeat", "1", "--json", "file/x.json"],
                          cwd=tmp_path, env=mpi_env(), capture_output=True, text=True, timeout=120)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "cannot write into its folder" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("form, sig", [(["--study", "--n", "4", "--ranks", "1", "--repeat", "50"], "SIGTERM"),
                                       (["--solvers", "--n", "4", "--ranks", "1", "--no-peer", "--repeat", "50"],
                                        "SIGHUP")])
def test_a_stop_signal_ends_a_bench_and_the_process_it_waits_for(tmp_path, form, sig):
    """SIGTERM or SIGHUP to a bench while its measured process runs: 128 + the signal at once, with
    that process ended too (the bench kept the signal for a graceful stop it never made, and ran on
    to its end)."""
    import os
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "solver", "bench", *form, "--json", str(tmp_path / "b.json")],
                            cwd=tmp_path, env=mpi_env(grace=True), stderr=subprocess.PIPE, text=True)
    deadline, children = time.monotonic() + 90, []
    while time.monotonic() < deadline and proc.poll() is None and not children:
        time.sleep(0.1)
        children = [int(pid) for pid in open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()] \
            if os.path.exists(f"/proc/{proc.pid}/task/{proc.pid}/children") else []
    proc.send_signal(getattr(signal, sig))
    try:
        err = proc.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"bench {form[0]} went on after {sig}")
    assert proc.returncode == 128 + getattr(signal, sig) and "Traceback" not in err, err
    assert err.strip().endswith(f"stopped by {sig}"), err
    time.sleep(1.0)
    for child in children:
        assert not os.path.exists(f"/proc/{child}") or "zombie" in open(f"/proc/{child}/status").read(), child
