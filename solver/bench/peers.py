"""DOLFINx, the peer the benches compare with: whether it is installed (``/usr/bin/python3`` with
dolfinx, and the peer script ``dolfinx_heat.py`` in ``shared/peers/`` beside the project), its
runs of the reference problem under a local ``mpirun`` (each prints one JSON line of timings),
and its figures. No MPI here: an MPI rank launches DOLFINx from an environment stripped of its
own launcher's variables (:func:`launcher_free_environment`)."""

from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path

from solver.bench.cases import DT, ROOT
from solver.errors import ProcessFailed
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


def dolfinx_json(paths: list[str]) -> list[dict]:
    """The JSON lines of dolfinx_heat.py runs saved in files (other lines are skipped)."""
    runs = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if line.startswith("{") and '"t_matrix_create"' in line:
                runs.append(json.loads(line))
    return runs
