"""The shell commands the documentation shows in ``{command}`` blocks, extracted page by page.

A block is written in a page as::

    ```{command}
    :small: --set mesh.nx=8 --set mesh.ny=8
    :status: 2
    mpirun -n 2 python -m solver inputs/plate.toml
    # a comment line is shown, not run
    ```

``:small:`` (optional) words appended to each ``python -m solver`` line of the block when it is
tested, to keep the run small; ``:status:`` (optional, default 0) the exit status every line of the
block is expected to end with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```\{command\}[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
OPTION = re.compile(r"^:(\w+):[ \t]*(.*)$")


@dataclass(frozen=True)
class Command:
    page: str
    line: str  # as shown
    small: str  # appended to python -m solver when tested
    status: int

    @property
    def tested(self) -> str:
        if self.small and "python -m solver" in self.line:
            return f"{self.line} {self.small}"
        return self.line


def pages() -> list[Path]:
    """Every documentation page, the README's short form aside."""
    return sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)


def commands(page: Path) -> list[Command]:
    """The commands of one page, in order."""
    found = []
    for block in BLOCK.finditer(page.read_text()):
        options, body = {}, []
        for line in block.group(1).splitlines():
            match = OPTION.match(line.strip())
            if match and not body:
                options[match.group(1)] = match.group(2).strip()
            elif line.strip() and not line.lstrip().startswith("#"):
                body.append(line.strip())
        unknown = set(options) - {"small", "status"}
        if unknown:
            raise ValueError(f"{page}: unknown {{command}} options {sorted(unknown)}")
        found += [Command(str(page.relative_to(ROOT)), line, options.get("small", ""),
                          int(options.get("status", 0))) for line in body]
    return found
