"""The Makefile tells a newcomer its targets: ``make help`` prints its header, which names every
target it declares phony (a newcomer's first guess once printed "No rule to make target")."""

import re
import subprocess

from conftest import ROOT


def test_make_help_names_every_target_without_building_anything():
    proc = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    phony = re.search(r"^\.PHONY:(.*)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    named = set(re.findall(r"make (\w+)", proc.stdout))
    assert set(phony) - {"all"} <= named, (phony, proc.stdout)
    assert not proc.stdout.startswith("#") and "bootstrap if needed" in proc.stdout
