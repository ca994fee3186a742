"""The documentation describes the code as it is: no page narrates how it was developed.

Every page (README.md and docs/) is searched for words that tell the story of the development
(work sessions, numbered rounds, issue numbers, "previously", "no longer", ...). The changelog is a
history by nature: only the first kind (sessions, rounds, issue numbers) is refused there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROCESS = [r"\bsessions?\b", r"\b(first|second|third|fourth|previous|earlier|last|next|this|development) rounds?\b",
           r"\bround \d", r"\bissues? ?#?\d+", r"(?<![\w&])#\d{1,4}\b", r"\bticket\b"]
NARRATION = [r"\bpreviously\b", r"\bused to\b", r"\bno longer\b", r"\bearlier (measurement|figure|version)s?\b",
             r"\bbefore this change\b", r"\bwas \S+ (and is )?now\b"]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md",
         *sorted(p for p in (ROOT / "docs").rglob("*") if p.suffix in (".md", ".py") and "_build" not in p.parts)]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_does_not_narrate_development(page):
    patterns = PROCESS + ([] if page.name == "CHANGELOG.md" else NARRATION)
    found = [f"{page.relative_to(ROOT)}:{n}: {line.strip()[:120]}"
             for n, line in enumerate(page.read_text().splitlines(), 1)
             for pattern in patterns if re.search(pattern, line, re.I)]
    assert not found, "\n".join(found)


def test_the_patterns_catch_narration():
    """The search itself can fail: each kind of phrase it exists for is caught."""
    samples = ["measured in session 12", "the previous round", "fixed in issue #31", "see #28",
               "it previously used block Jacobi", "the README no longer lists it"]
    for sample in samples:
        assert any(re.search(p, sample, re.I) for p in PROCESS + NARRATION), sample
    for sample in ("a round-off error", "# Heading", "colour #1f77b4", "the rounded fin tips"):
        assert not any(re.search(p, sample, re.I) for p in PROCESS + NARRATION), sample
