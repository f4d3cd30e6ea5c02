"""Lint and formatting are part of the suite, so `course.py test` alone says "ready to commit".

ruff also checks the notebooks (see ``[tool.ruff]`` in pyproject.toml): the code learners
copy from them should be as clean as the apps it becomes.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [["check", "."], ["format", "--check", "."]],
    ids=["ruff-check", "ruff-format"],
)
def test_ruff(command):
    """Run ruff from the pinned environment, as `python course.py lint` and CI do."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    hint = "fix with: python -m ruff check --fix . && python -m ruff format ."
    assert result.returncode == 0, f"ruff {' '.join(command)} failed ({hint}):\n" + (
        result.stdout + result.stderr
    )
