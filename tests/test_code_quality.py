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


def run_mypy(*args: str) -> subprocess.CompletedProcess:
    """Run mypy from the pinned environment with the settings in pyproject.toml."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_mypy():
    """Type-check apps/ as `python course.py lint` does (files and settings: pyproject.toml)."""
    result = run_mypy()
    assert result.returncode == 0, "mypy found type errors in apps/:\n" + (
        result.stdout + result.stderr
    )


def test_mypy_settings_catch_a_type_error(tmp_path):
    """The settings check code for real: a function returning the wrong type fails."""
    module = tmp_path / "wrong.py"
    module.write_text('def count() -> int:\n    return "three"\n', encoding="utf-8")
    result = run_mypy(str(module))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[return-value]" in result.stdout
