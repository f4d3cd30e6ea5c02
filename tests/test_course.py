"""``course.py``, the course's (and CI's) entry point, run as a learner runs it.

Set-up: a project of its own in a temporary folder (this ``course.py``, an empty
requirements file, a package with no code), so that creating and updating a real
virtual environment is fast and never touches this checkout's ``.venv``. The other
subcommands run on this checkout, whose ``.venv`` is set up already.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from apps.config import REPO_ROOT

from .conftest import require_course_venv

BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)
"""The interpreter .venv was made from: the learner's ``python3``."""

TINY_PROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "tiny-course"
version = "0.1.0"

[tool.setuptools]
packages = []
"""


def course(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BASE_PYTHON, str(cwd / "course.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "course.py").write_bytes((REPO_ROOT / "course.py").read_bytes())
    (root / "pyproject.toml").write_text(TINY_PROJECT)
    (root / "requirements.txt").write_text("# no packages\n")
    return root


@pytest.mark.slow
def test_setup_installs_once_then_only_when_the_requirements_change(project):
    stamp = project / ".venv" / ".course-setup-stamp"

    first = course("setup", cwd=project)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "creating the virtual environment" in first.stdout
    assert "installing the pinned packages" in first.stdout
    assert re.fullmatch(r"[0-9a-f]{64}\n", stamp.read_text())

    again = course("setup", cwd=project)
    assert again.returncode == 0
    assert "environment is up to date" in again.stdout
    assert "installing" not in again.stdout, "nothing changed: nothing to install"

    (project / "requirements.txt").write_text("# no packages, still\n")
    changed = course("setup", cwd=project)
    assert changed.returncode == 0
    assert "installing the pinned packages" in changed.stdout
    good = stamp.read_text()

    (project / "requirements.txt").write_text("./no-such-folder\n")
    broken = course("setup", cwd=project)
    assert broken.returncode != 0
    assert "installation failed (exit code" in broken.stdout
    assert stamp.read_text() == good, "a failed install must not be stamped as done"
    retried = course("setup", cwd=project)
    assert "installing the pinned packages" in retried.stdout, "the next run tries again"


def test_usage_mistakes_exit_2_with_the_reason():
    assert course().returncode == 2
    extra = course("lint", "--fix")
    assert extra.returncode == 2 and "unrecognized arguments: --fix" in extra.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("def test_ok():\n    pass\n", 0),
        ("def test_broken():\n    assert False\n", 1),
        ("# no tests at all\n", 1),
    ],
    ids=["passing", "failing", "no tests"],
)
def test_the_test_command_passes_on_the_exit_code_and_counts_no_tests_as_failure(
    tmp_path, source, code
):
    require_course_venv()
    (tmp_path / "test_sample.py").write_text(source)
    result = course("test", str(tmp_path / "test_sample.py"), "-p", "no:cacheprovider")
    assert result.returncode == code, result.stdout[-2000:] + result.stderr[-2000:]
    if source.startswith("#"):
        assert "no tests were collected: the suite is broken" in result.stderr


@pytest.mark.slow
def test_train_trains_a_new_version_of_each_model(tmp_path):
    require_course_venv()
    result = course("train", "--models-dir", str(tmp_path / "models"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for name in ("species-classifier", "body-mass-regressor"):
        assert f"saved {name} v1" in result.stdout
        assert (tmp_path / "models" / name / "1" / "manifest.json").is_file()
