"""Every command the user guide and the tutorials show runs, page by page, at a small size.

Each page's commands run in order in a scratch directory that holds copies of ``inputs/`` and
``jobs/`` (so that one command may read what an earlier one wrote), with ``python`` the
interpreter of this suite and Open MPI allowed to oversubscribe. A command that no longer works, or
ends with another exit status than its block says, fails the page's test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from doc_commands import ROOT, commands, pages

PAGES = [p for p in pages() if commands(p)]


def scratch_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", MPLBACKEND="Agg")
    env.pop("SOLVER_STATUS_FILE", None)
    return env


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT / "docs")) for p in PAGES])
def test_page_commands_run(page, tmp_path):
    for folder in ("inputs", "jobs"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    env = scratch_env()
    for command in commands(page):
        done = subprocess.run(["bash", "-c", command.tested], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == command.status, (
            f"{command.page}: `{command.tested}` ended with {done.returncode}, expected {command.status}\n"
            f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def test_guide_and_tutorials_show_commands():
    """The pages readers follow step by step carry checked commands."""
    shown = {p.relative_to(ROOT / "docs").parts[0] for p in PAGES}
    assert {"guide", "tutorials"} <= shown, shown
