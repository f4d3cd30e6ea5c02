"""Every relative link in the README, CONTRIBUTING and docs/ leads to a file that exists.

A learner follows the README only; an instructor plans from docs/instructor-guide.md and
its notes. A link to a file that was moved or never written is a dead end for both.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
"""A Markdown link's target: ``[text](target)``."""


def relative_targets(page: Path) -> list[str]:
    """The page's links to files of this repository (no web addresses, no in-page anchors)."""
    targets = [match.group(1) for match in LINK.finditer(page.read_text(encoding="utf-8"))]
    return [t for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file(page):
    missing = [
        target
        for target in relative_targets(page)
        if not (page.parent / target.split("#")[0]).exists()
    ]
    assert not missing, f"{page.relative_to(ROOT)} links to files that do not exist: {missing}"
