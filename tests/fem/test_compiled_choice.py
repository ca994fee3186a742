"""The run's choice of compiled kernels: small linear problems take the NumPy path and never
import numba (its start costs more than their whole assembly); large or nonlinear ones compile."""

import json
import subprocess
import sys

import pytest

import solver.compiled as compiled

pytestmark = pytest.mark.skipif(not compiled.AVAILABLE, reason="numba is not installed")


def test_worth_compiling_follows_size_and_linearity(monkeypatch):
    monkeypatch.setattr(compiled, "FORCED", False)
    small, large = compiled.SMALL_WORK // 9, compiled.SMALL_WORK // 9 + 1
    assert not compiled.worth_compiling(small, 3, linear=True)
    assert compiled.worth_compiling(large, 3, linear=True)
    assert compiled.worth_compiling(10, 3, linear=False)
    monkeypatch.setattr(compiled, "FORCED", True)
    assert compiled.worth_compiling(10, 3, linear=True)
    monkeypatch.setattr(compiled, "AVAILABLE", False)
    assert not compiled.worth_compiling(10**9, 3, linear=False)


RUN = """
import json, sys
from solver.app.cli import main
code = main([sys.argv[1], "--set", "mesh.nx=%d", "--set", "mesh.ny=%d", "--set", "time.t_end=10",
             "--set", "output.directory=" + sys.argv[2], "--overwrite", "--quiet"])
print(json.dumps({"code": code, "numba": "numba" in sys.modules}))
"""


@pytest.mark.parametrize("n, imported", [(8, False), (400, True)])
def test_small_runs_do_not_start_numba(tmp_path, n, imported):
    """A whole run of the 2D example: 128 cells on the NumPy path without numba in the process,
    320K cells compiled."""
    out = subprocess.run([sys.executable, "-c", RUN % (n, n), "inputs/plate.toml", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                           "SOLVER_NUMBA": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "numba": imported}


def test_a_first_run_compiles_each_kernel_once_on_any_ranks(tmp_path, monkeypatch):
    """From an empty cache, one rank compiles the kernels the reference problem needs, side by side
    with a helper process per idle core, no kernel in both; two ranks compile them (and a few
    more, side by side) between them, no kernel on both; a later run loads them all."""
    import os

    from conftest import run_script

    from conftest import MPI_SCRIPTS

    def one_process(cache, out):  # not under mpirun, which binds a rank to one core
        env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
        proc = subprocess.run([sys.executable, str(MPI_SCRIPTS / "compile_checks.py"), str(out)], env=env,
                              capture_output=True, text=True, timeout=300)
        return json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])

    compiled, helpers, cores = {}, {}, {}
    for ranks in (1, 2):
        monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / f"cache{ranks}"))
        r = one_process(tmp_path / "cache1", tmp_path / "out1") if ranks == 1 else \
            run_script(ranks, "compile_checks.py", str(tmp_path / f"out{ranks}"), timeout=300)
        assert all(p["code"] == 0 for p in r["per_rank"]), r
        compiled[ranks] = [p["compiled"] for p in r["per_rank"]]
        helpers[ranks] = [p["helpers"] for p in r["per_rank"]]
        cores[ranks] = r["per_rank"][0]["cores"]
    own, beside = compiled[1][0], helpers[1][0]
    assert not set(own) & set(beside) and helpers[2] == [[], []], (own, beside, helpers[2])
    assert bool(beside) == (cores[1] > 1), (cores, beside)
    one = own + beside
    assert len(one) >= 8 and any(k.startswith("matrix_kernel.") for k in one), one
    first, second = (set(k) for k in compiled[2])
    assert first and second and not first & second, compiled[2]
    assert set(one) <= first | second, (one, compiled[2])
    again = run_script(2, "compile_checks.py", str(tmp_path / "again"), timeout=300)
    assert [p["compiled"] for p in again["per_rank"]] == [[], []], again
    again = one_process(tmp_path / "cache1", tmp_path / "again1")["per_rank"][0]
    assert again["compiled"] == again["helpers"] == [], again


def test_a_corrupt_kernel_cache_is_replaced_with_one_warning(tmp_path):
    """A truncated cache index (a full disk, a killed write) no longer breaks every later run: the
    cache folder is emptied, the kernels compiled again, and the user warned once."""
    code = "from solver.la.symmetric import warm_tasks\nfor _, task in warm_tasks(): task()\nprint('ok')"
    env = {**__import__("os").environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def run():
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)

    assert run().returncode == 0
    indexes = sorted((tmp_path / "cache").rglob("*symmetric_subtract*.nbi"))
    assert indexes
    indexes[0].write_bytes(indexes[0].read_bytes()[:50])
    broken = run()
    assert broken.returncode == 0 and broken.stdout.strip() == "ok", broken.stderr
    assert broken.stderr.count("warning: the compiled-kernel cache") == 1, broken.stderr
    again = run()
    assert again.returncode == 0 and "warning" not in again.stderr, again.stderr


def test_a_kernel_cache_on_a_full_disk_compiles_in_memory_with_one_warning(tmp_path):
    """The cache's disk is full: numba compiled each kernel, failed to save it (ENOSPC), and the
    run ended with exit 74 ("cannot write the output"), the cache taken for one that could not be
    read. The kernels compile in memory, with one warning naming the cache, and the cache is not
    marked as holding them (the next run's helpers compile them again, into the cache if it has room)."""
    import os

    from solver.app.faults import fill_disk

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        fill_disk(disk)
        code = "from solver.la.symmetric import warm_tasks\nfrom solver.compiled import compile_beside\n" \
               "compile_beside(warm_tasks() * 2, cores=2)\nfor _, task in warm_tasks(): task()\nprint('ok')"
        env = {**os.environ, "NUMBA_CACHE_DIR": str(disk / "cache")}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
        warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
        assert len(warnings) == 1 and "cannot save compiled kernels in the cache" in warnings[0], proc.stderr
        assert "No space left on device" in warnings[0] and "Traceback" not in proc.stderr, proc.stderr
        assert not list((disk / "cache").rglob("*.nbc"))
        assert not list((disk / "cache").rglob("solver-warm/*"))  # not marked warm: the next run compiles
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_cache_folder_that_is_a_file_is_named_in_one_warning(tmp_path):
    """NUMBA_CACHE_DIR naming a file: the kernels compile all the same, and the user is told once
    that the folder asked for is not used."""
    code = "from solver.la.symmetric import warm_tasks\nfor _, task in warm_tasks(): task()\nprint('ok')"
    (tmp_path / "cache").write_text("not a folder")
    env = {**__import__("os").environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
    assert proc.stderr.count("warning: the compiled-kernel cache") == 1 and str(tmp_path / "cache") in proc.stderr \
        and "Traceback" not in proc.stderr, proc.stderr
