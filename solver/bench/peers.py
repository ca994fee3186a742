"""DOLFINx, the peer the benches compare with: whether it is installed (``/usr/bin/python3`` with
dolfinx, and the peer script ``dolfinx_heat.py`` in ``shared/peers/`` beside the project), its
runs of the reference problem under a local ``mpirun`` (each prints one JSON line of timings),
and its figures. No MPI here: an MPI rank launches DOLFINx from an environment stripped of its
own launcher's variables (:func:`launcher_free_environment`)."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
from pathlib import Path

from solver.bench.cases import DT, ROOT
from solver.errors import CaseError, ProcessFailed
from solver.parallel.launcher import mpirun_command, mpirun_environment

PEER_SCRIPT = ROOT.parent / "shared" / "peers" / "dolfinx_heat.py"
PEER_PYTHON = "/usr/bin/python3"


def launcher_free_environment() -> dict:
    """This environment without what an MPI launcher set for its ranks, plus what a local mpirun
    needs: a rank can start another mpirun with it (DOLFINx's runs)."""
    launcher = ("OMPI_MCA_orte", "OMPI_MCA_ess", "OMPI_MCA_pmix", "OMPI_MCA_initial_wdir", "OMPI_MCA_shmem",
                "OMPI_MCA_mpi_oversubscribe")
    env = {k: v for k, v in mpirun_environment().items()
           if not k.startswith(("PMIX_", "PMI_")) and not k.startswith(launcher)
           and not (k.startswith("OMPI_") and not k.startswith(("OMPI_MCA_", "OMPI_ALLOW_RUN_AS_ROOT")))}
    env["OMP_NUM_THREADS"] = "1"
    return env


def dolfinx_available(script: Path, from_mpi_rank: bool = False) -> bool:
    """/usr/bin/python3 imports dolfinx and the peer script exists; asked from an MPI rank, with
    the environment of a process no launcher started (:func:`launcher_free_environment`)."""
    if not script.is_file() or not Path(PEER_PYTHON).exists():
        return False
    env = launcher_free_environment() if from_mpi_rank else None
    return subprocess.run([PEER_PYTHON, "-c", "import dolfinx"], env=env, capture_output=True).returncode == 0


def dolfinx_run(ranks: int, n: int, dim: int, script: Path, directory: Path, timeout: float = 1800,
                degree: int = 1) -> dict:
    """DOLFINx's figures of the reference problem with Lagrange elements of ``degree`` (no time
    step, jacobi): its one JSON line. Its form cache (FFCx's compiled forms) is kept in ``directory``."""
    cmd = [*mpirun_command(ranks), PEER_PYTHON, str(script), str(n), "0", str(DT), "0", "--pc", "jacobi",
           "--dim", str(dim), "--degree", str(degree)]
    directory.mkdir(parents=True, exist_ok=True)
    env = {**launcher_free_environment(), "PEERS_DIR": str(directory)}
    proc = subprocess.run(cmd, env=env, cwd=directory, capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise ProcessFailed(f"bench: DOLFINx's run ({' '.join(cmd)})", proc.returncode or 1, proc.stderr)
    return json.loads(lines[-1])


def dolfinx_figures(runs: list[dict]) -> dict:
    """The assembly and set-up figures of DOLFINx runs of one (dim, ranks): medians, ranges, and
    per million cells per rank."""
    r = runs[0]
    cells = (2 * r["N"] ** 2 if r["dim"] == 2 else 6 * r["N"] ** 3) / r["ranks"] / 1e6
    keys = {"pattern": "t_matrix_create", "first": "t_matrix_values", "reassembly": "t_matrix_reassemble"}
    out = {"N": r["N"], "dim": r["dim"], "ranks": r["ranks"], "runs": len(runs), "per_million": {}, "range": {}}
    for name, key in keys.items():
        values = [x[key] for x in runs]
        out[name + "_s"] = statistics.median(values)
        out["per_million"][name] = statistics.median(values) / cells
        out["range"][name] = [min(values) / cells, max(values) / cells]  # per million cells per rank
    setups = [x["t_mesh"] + x.get("t_setup", 0.0) + x["t_assemble_matrix"] + x["t_solver_setup"] for x in runs]
    out["setup_s"] = statistics.median(setups)
    out["range"]["setup"] = [min(setups), max(setups)]
    return out


MAX_PEER_BYTES = 64 << 20  # a run is one line of about 1 kB
PEER_TIMES = ("t_matrix_create", "t_matrix_values", "t_matrix_reassemble", "t_mesh", "t_assemble_matrix",
              "t_solver_setup")  # seconds, each read by dolfinx_figures (t_setup too, where given)
PEER_SIDES = {2: 16384, 3: 1000}  # cells per side a run's N may have: the reference set-up is run at it


def dolfinx_json(paths: list[str]) -> list[dict]:
    """The runs of dolfinx_heat.py saved in files (:func:`read_dolfinx_json`)."""
    runs = []
    for path in paths:
        try:
            runs += read_dolfinx_json(path)
        except ValueError as exc:
            raise CaseError(f"--dolfinx-json {path}: {exc}") from None
    return runs


def read_dolfinx_json(path: str | Path) -> list[dict]:
    """The runs of dolfinx_heat.py in the file ``path``: its JSON lines that name t_matrix_create
    (other lines, a log's, are skipped), each with what :func:`dolfinx_figures` reads. Raises
    ValueError saying what is wrong; read with the command line, so that a bad file fails before
    the measurements rather than after them."""
    from solver.case.inputfiles import file_problem, holds_hdf5

    problem = file_problem(path, MAX_PEER_BYTES)
    if problem is not None:
        raise ValueError(problem)
    if holds_hdf5(path):
        raise ValueError("is an HDF5 file, not the JSON lines dolfinx_heat.py prints")
    try:
        text = Path(path).read_bytes().decode()
    except OSError as exc:
        raise ValueError(f"cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not text (byte {exc.start} is not UTF-8), not the JSON lines dolfinx_heat.py "
                         f"prints") from None
    runs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not (line.startswith("{") and '"t_matrix_create"' in line):
            continue
        try:
            run = json.loads(line)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError; a number of 5000 digits; deep nesting
            why = f"{exc.msg.removesuffix(' at')} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) \
                else "nested too deep" if isinstance(exc, RecursionError) else "a number too long"
            raise ValueError(f"line {number}: not valid JSON ({why})") from None
        problem = _run_problem(run)
        if problem is not None:
            raise ValueError(f"line {number}: {problem}")
        runs.append(run)
    if not runs:
        raise ValueError("no run of dolfinx_heat.py in it (a JSON line that names t_matrix_create)")
    return runs


def _run_problem(run) -> str | None:
    """What a run's JSON object lacks or holds out of range, or None."""
    def integer(v):
        return isinstance(v, int) and not isinstance(v, bool)

    if not isinstance(run, dict):
        return "not a JSON object"
    missing = [k for k in ("dim", "N", "ranks", *PEER_TIMES) if k not in run]
    if missing:
        return f"lacks {', '.join(missing)} (each run of dolfinx_heat.py has them)"
    dim, n, ranks, degree = run["dim"], run["N"], run["ranks"], run.get("degree", 1)
    if not (integer(dim) and dim in PEER_SIDES):
        return f"dim {str(dim)[:40]}: 2 or 3"
    if not (integer(n) and 1 <= n <= PEER_SIDES[dim]):
        return f"N {str(n)[:40]}: cells per side from 1 to {PEER_SIDES[dim]} in {dim}D"
    if not (integer(ranks) and 1 <= ranks <= 4096):
        return f"ranks {str(ranks)[:40]}: from 1 to 4096"
    if not (integer(degree) and degree in (1, 2)):
        return f"degree {str(degree)[:40]}: 1 or 2"
    for key in (*PEER_TIMES, "t_setup"):
        value = run.get(key, 0.0)
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not (number and (value > 0 or key == "t_setup" and value == 0)):
            return f"{key} {str(value)[:40]}: seconds, a finite number above 0"
    return None
