"""A test run never touches the working tree: nbval runs the notebooks in a scratch copy.

The proof is a small repository made here, with this repository's ``conftest.py`` and
pytest settings, one committed module and one notebook that rewrites it with
``%%writefile``, as the course's notebooks do. A contributor edits the module without
committing; then pytest runs the notebook. The notebook must pass, and the edit must
still be there.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from apps.config import REPO_ROOT

COMMITTED = 'VALUE = "committed"\n'
EDITED = 'VALUE = "my uncommitted work"\n'

pytestmark = pytest.mark.slow


def notebook() -> nbformat.NotebookNode:
    """A notebook that writes ``apps/probe.py`` and shows where it imported it from."""
    write = nbformat.v4.new_code_cell(f"%%writefile ../apps/probe.py\n{COMMITTED}", id="write")
    write.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="Overwriting ../apps/probe.py\n")
    ]
    show = nbformat.v4.new_code_cell(
        "import pathlib\nimport apps.probe\n"
        "print(apps.probe.VALUE, pathlib.Path(apps.probe.__file__).parent.parent.name)",
        id="show",
    )
    show.outputs = [nbformat.v4.new_output("stream", name="stdout", text="committed checkout\n")]
    write.execution_count, show.execution_count = 1, 2  # nbval compares cells that ran
    return nbformat.v4.new_notebook(cells=[write, show])


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A git repository laid out like this one, with an uncommitted edit in ``apps/``."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is needed to make the repository")
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "apps").mkdir()
    for name in ("conftest.py", "pyproject.toml", "notebooks/sanitize.cfg"):
        if (REPO_ROOT / name).exists():
            shutil.copy2(REPO_ROOT / name, root / name)
    (root / "apps" / "__init__.py").write_text("")
    (root / "apps" / "probe.py").write_text(COMMITTED)
    nbformat.write(notebook(), root / "notebooks" / "01_probe.ipynb")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_CONFIG_GLOBAL": ""}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "start"]):
        subprocess.run([git, *command], cwd=root, env=env, check=True, capture_output=True)
    (root / "apps" / "probe.py").write_text(EDITED)
    return root


def pytest_in(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "notebooks/01_probe.ipynb", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_running_a_notebook_keeps_uncommitted_edits_in_apps(repository):
    result = pytest_in(repository)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 passed" in result.stdout
    assert (repository / "apps" / "probe.py").read_text() == EDITED


def test_not_slow_leaves_the_notebooks_out(repository):
    result = pytest_in(repository, "-m", "not slow")
    assert "2 deselected" in result.stdout, result.stdout[-3000:]
    assert result.returncode == pytest.ExitCode.NO_TESTS_COLLECTED
