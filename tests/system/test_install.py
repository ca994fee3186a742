"""The environment holds exactly the versions constraints.txt pins (the bootstrap installs through it)."""

import re
from importlib import metadata

from conftest import ROOT


def test_installed_versions_are_the_locked_ones():
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", (ROOT / "constraints.txt").read_text(), re.M))
    assert {"numpy", "scipy", "h5py", "mpi4py", "pyamg", "meshio"} <= set(pins)
    wrong = {}
    for name, version in pins.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"installed versions differ from constraints.txt (pinned, installed): {wrong}"
