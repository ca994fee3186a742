"""The README is short, its example case runs, and its links lead to pages that exist; the pages the
code names exist too."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import run_solver

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_is_short():
    assert len(README.splitlines()) <= 250


def test_readme_links_lead_to_files():
    targets = re.findall(r"\]\(([^)#]+)\)", README)
    assert len(targets) > 20
    missing = [t for t in targets if not t.startswith("http") and not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_readme_example_case_runs(tmp_path):
    case = re.search(r"```toml\n(.*?)```", README, re.S).group(1)
    (tmp_path / "plate.toml").write_text(case)
    done = run_solver(2, ["plate.toml", "--set", "mesh.nx=8", "--set", "mesh.ny=4", "--set", "time.t_end=20"],
                      cwd=tmp_path)
    assert "results: outputs/plate/plate.h5" in done.stdout


def test_pages_named_by_the_code_exist():
    """Messages, --help and comments send readers to documentation pages by path: each exists."""
    sources = [*ROOT.joinpath("solver").rglob("*.py"), *ROOT.joinpath("inputs").rglob("*.toml"),
               *ROOT.joinpath("jobs").glob("*"), ROOT / ".ci" / "bootstrap.sh", ROOT / "pyproject.toml"]
    named = {m for path in sources if path.is_file() for m in re.findall(r"docs/[\w/]+\.md", path.read_text())}
    assert "docs/reference/case_keys.md" in named
    missing = sorted(page for page in named if not (ROOT / page).is_file())
    assert not missing, f"pages named in the code that do not exist: {missing}"
    assert "README" not in (ROOT / "solver" / "app" / "commands.py").read_text()
