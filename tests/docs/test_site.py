"""The documentation site builds with no warning, and its generated references are complete:
every case-file key in the key reference, every command and option in the command reference."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

from solver.app.commands import build_parser
from solver.case.schema import BOUNDARY_SCHEMA, REGION_SCHEMA, ROOT_SCHEMA, SCHEMA

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           "-d", str(out / "doctrees"), str(ROOT / "docs"), str(out / "html")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and not done.stderr.strip(), f"make docs fails or warns:\n{done.stderr[-6000:]}"
    return out / "html"


def page_text(site: Path, name: str) -> str:
    """A built page's text, its markup removed."""
    return html.unescape(re.sub(r"<[^>]+>", " ", (site / name).read_text()))


def test_site_builds_without_warnings(site):
    assert (site / "index.html").is_file()
    for page in ("getting_started", "guide/index", "tutorials/index", "reference/case_keys", "performance"):
        assert (site / f"{page}.html").stat().st_size > 5000, page


def test_key_reference_lists_every_key(site):
    text = (site / "reference" / "case_keys.html").read_text()
    tables = re.split(r"<table", text)[1:]
    parts = [ROOT_SCHEMA, *SCHEMA.values(), BOUNDARY_SCHEMA, REGION_SCHEMA]
    assert len(tables) == len(parts)
    for table, keys in zip(tables, parts):
        shown = set(re.findall(r'<span class="pre">([A-Za-z_]+)</span>', table))
        missing = set(keys) - shown
        assert not missing, f"the key reference lacks {sorted(missing)}"


def test_command_reference_lists_every_command_and_option(site):
    raw = (site / "reference" / "commands.html").read_text()
    text = page_text(site, "reference/commands.html")
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        assert f'<section id="python-m-solver-{name}"' in raw, name
        for action in sub._actions:
            for option in action.option_strings:
                assert option in text, f"{name} {option}"
