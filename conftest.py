"""How pytest runs the notebooks (nbval): in a scratch copy of the repository, as slow tests.

The notebooks write the apps' code with ``%%writefile ../apps/...`` cells (notebook 05
also writes ``docker/``). Run in place, every test run would rewrite those files, and a
contributor's uncommitted edits would be lost. So nbval runs each notebook in a scratch
checkout instead: the files of the working tree (those git tracks, and new files it does
not ignore) copied once per test run into a temporary folder. The kernel starts in the
copy's ``notebooks/`` folder with ``PYTHONPATH`` pointing at the copy, so the notebooks
import, and write, only the copy; and, like every test, it gets none of the developer's
``API_*`` or ``PENGUINS_*`` settings. Outputs are compared with the stored ones as usual:
the notebook in the copy is the same file.

Every notebook is also marked ``slow``, so ``-m "not slow"`` leaves them all out.
"""

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
NOT_COPIED = {".git", ".venv", "venv", "artifacts", "secrets", "__pycache__", ".ruff_cache"}
"""Without git (a downloaded zip): folders that are not part of the course's files."""
INSTALLED = ("vendor",)
"""Folders that the set-up installs into the repository (git ignores them): the copy gets
them too, as a learner's checkout has them (notebook 10's page needs onnxruntime-web)."""
SCRATCH = pytest.StashKey[Path]()


def working_tree_files(root: Path) -> list[Path]:
    """The files of the working tree as they are now, uncommitted edits and new files included."""
    if shutil.which("git") and (root / ".git").exists():
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
        names = [root / name for name in listed.split("\0") if name]
    else:
        names = [
            path
            for path in root.rglob("*")
            if not NOT_COPIED.intersection(path.relative_to(root).parts)
        ]
    return [path for path in names if path.is_file()]  # not files deleted since a commit


def scratch_checkout(config: pytest.Config) -> Path:
    """The run's scratch copy of the repository, made the first time a notebook needs it."""
    if SCRATCH not in config.stash:
        scratch = Path(tempfile.mkdtemp(prefix="penguins-notebooks-")) / "checkout"
        for path in working_tree_files(ROOT):
            target = scratch / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        for folder in INSTALLED:
            if (ROOT / folder).is_dir():
                shutil.copytree(ROOT / folder, scratch / folder)
        config.stash[SCRATCH] = scratch
    return config.stash[SCRATCH]


def pytest_unconfigure(config: pytest.Config) -> None:
    if SCRATCH in config.stash:
        shutil.rmtree(config.stash[SCRATCH].parent, ignore_errors=True)


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    """Swap nbval's notebook collector for one that runs the notebook in the scratch copy."""
    collectors = yield
    try:
        from nbval.plugin import IPyNbFile
    except ImportError:  # nbval is not installed: nothing collects notebooks
        return collectors
    swapped = []
    for collector in collectors:
        if type(collector) is IPyNbFile and file_path.is_relative_to(ROOT):
            collector = notebook_in_scratch_class(IPyNbFile).from_parent(parent, path=file_path)
            collector.add_marker(pytest.mark.slow)
        swapped.append(collector)
    return swapped


@functools.cache
def notebook_in_scratch_class(base: type) -> type:
    """nbval's collector, starting its kernel in the scratch copy (made at first use)."""

    class NotebookInScratch(base):
        def setup(self) -> None:
            scratch = scratch_checkout(self.config)
            copy = scratch / self.path.relative_to(ROOT)
            if not copy.exists():  # a notebook git ignores: copy it too
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(self.path, copy)
            here = self.path
            with pytest.MonkeyPatch.context() as patch:
                for name in list(os.environ):
                    if name.upper().startswith(("API_", "PENGUINS_")):
                        patch.delenv(name)
                patch.setenv("PYTHONPATH", str(scratch), prepend=os.pathsep)
                # nbval starts the kernel in the folder of the notebook's path.
                self.path = copy
                try:
                    super().setup()
                finally:
                    self.path = here

    return NotebookInScratch
