"""The notebooks are the source of ``apps/``: re-running them must give the committed files.

Every module in ``apps/`` is written by a ``%%writefile ../apps/...`` cell, so that the code a
learner reads is the code the apps run. These tests fail when the two drift apart: someone
edited a file in ``apps/`` by hand, or changed a notebook without re-running it.

* The fast test reads the notebooks without running them and compares each cell with its
  file, which names the exact cell to fix.
* The slow test runs every notebook, top to bottom, in a scratch checkout whose ``apps/``
  starts empty, and compares what they wrote with what git tracks. It is the real proof:
  it also catches a module that no notebook writes, or a notebook that only works because
  a file from an earlier run was lying around.

Line endings are compared as ``\\n``: ``%%writefile`` writes text mode (``\\r\\n`` on
Windows), and git may convert line endings on checkout; neither is a drift.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
WRITEFILE = re.compile(r"^%%writefile(?P<append>\s+(?:-a|--append))?\s+(?P<target>\S+)\s*$")
EXPORTS = ("apps", "docker", ".dockerignore", "deploy")
"""What notebooks write: the apps' package, the container files and their ignore list,
and the files that deploy them (schedules, services)."""
KERNEL_TIMEOUT = 600
PROBE_MARK = "course-test-probe:"


def notebook_paths(folder: Path = NOTEBOOKS) -> list[Path]:
    """The course notebooks in the order a learner runs them (01, 02, ...)."""
    return sorted(folder.glob(NOTEBOOK_GLOB))


def normalise(data: bytes) -> bytes:
    """Line endings as ``\\n``, so a Windows checkout compares equal to a Linux one."""
    return data.replace(b"\r\n", b"\n")


def tracked_apps_files(root: Path = ROOT) -> list[str]:
    """Exported files (see ``EXPORTS``) as POSIX paths relative to the root, as committed.

    git knows what is committed; a folder walk would also pick up stray local files.
    Without git (a downloaded zip), the walk is the best we have. A file deleted from the
    working tree but not from git is still listed, so its absence shows up below.
    """
    if shutil.which("git") and (root / ".git").exists():
        result = subprocess.run(
            ["git", "ls-files", "-z", "--", *EXPORTS],
            cwd=root,
            capture_output=True,
            check=True,
        )
        return sorted(name for name in result.stdout.decode().split("\0") if name)
    return exported_files(root)


def exported_files(root: Path) -> list[str]:
    """The exported files present under ``root``, as POSIX paths relative to it."""
    names = []
    for export in EXPORTS:
        path = root / export
        if path.is_dir():
            names += files_under(path, relative_to=root)
        elif path.is_file():
            names.append(export)
    return sorted(names)


def export_name(target: str) -> str | None:
    """``../apps/x.py`` -> ``apps/x.py``; None for a target outside ``EXPORTS``."""
    name = target.removeprefix("../")
    if name != target and name.split("/", 1)[0] in EXPORTS:
        return name
    return None


def files_under(folder: Path, relative_to: Path) -> list[str]:
    """Every file under a folder (``__pycache__`` aside) as a POSIX path relative to another."""
    return sorted(
        path.relative_to(relative_to).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )


def writefile_cells(notebook: Path) -> list[tuple[int, str, str, bool]]:
    """``(cell index, target path, body, appends)`` of each ``%%writefile`` cell of a notebook.

    The body is what IPython writes: everything after the magic line, plus the final
    newline that IPython adds to a cell that does not end with one.
    """
    cells = []
    for index, cell in enumerate(nbformat.read(notebook, as_version=4).cells):
        if cell.cell_type != "code" or not cell.source.startswith("%%writefile"):
            continue
        first, _, body = cell.source.partition("\n")
        match = WRITEFILE.match(first)
        if match is None:
            pytest.fail(f"{notebook.name} cell {index}: cannot parse {first!r}")
        if body and not body.endswith("\n"):
            body += "\n"
        cells.append((index, match["target"], body, bool(match["append"])))
    return cells


def unified_diff(expected: bytes, actual: bytes, name: str, source: str) -> str:
    """A readable diff: what is committed (``a/``) against what the notebook writes (``b/``)."""
    return "".join(
        difflib.unified_diff(
            expected.decode("utf-8", "replace").splitlines(keepends=True),
            actual.decode("utf-8", "replace").splitlines(keepends=True),
            fromfile=f"a/{name} (committed)",
            tofile=f"b/{name} ({source})",
        )
    )


def test_every_apps_file_is_written_by_the_cells_of_one_notebook():
    """Fast and precise: each committed module equals what its notebook's cells write.

    A module is written by one ``%%writefile`` cell, optionally followed by
    ``%%writefile -a`` cells of the same notebook that append to it (so that a lesson can
    build a module in small steps). No kernel is started, so this runs in a second and
    names the notebook and cells to fix.
    """
    writers: dict[str, list[tuple[str, str, bool]]] = {}
    problems = []
    for notebook in notebook_paths():
        for index, target, body, appends in writefile_cells(notebook):
            where = f"{notebook.name} cell {index}"
            name = export_name(target)
            if name is None:
                problems.append(f"{where}: writes {target}, outside ../{{{', '.join(EXPORTS)}}}")
                continue
            writers.setdefault(name, []).append((where, body, appends))

    tracked = tracked_apps_files()
    for name in tracked:
        cells = writers.get(name, [])
        if not cells:
            problems.append(f"{name}: no notebook cell writes it (add a %%writefile cell)")
            continue
        places = ", ".join(where for where, _, _ in cells)
        starts = [where for where, _, appends in cells if not appends]
        notebooks = {where.split(" cell ")[0] for where, _, _ in cells}
        if starts != [cells[0][0]] or len(notebooks) > 1:
            problems.append(
                f"{name}: written by {places}; keep one %%writefile cell, then only "
                "%%writefile -a cells, all in one notebook"
            )
            continue
        path = ROOT / name
        committed = normalise(path.read_bytes()) if path.exists() else b""
        written = normalise("".join(body for _, body, _ in cells).encode("utf-8"))
        if committed != written:
            diff = unified_diff(committed, written, name, places)
            problems.append(f"{name}: differs from {places}; re-run the notebook\n{diff}")
    for name in sorted(set(writers) - set(tracked)):
        places = ", ".join(where for where, _, _ in writers[name])
        problems.append(f"{name}: written by {places}, but not committed (git add it)")

    assert not problems, "notebooks and apps/ disagree:\n\n" + "\n\n".join(problems)


def current_environment_kernel_manager():
    """A kernel manager class whose ``python3`` is this interpreter, whatever else is installed.

    A learner may have another ``python3`` kernel registered (system-wide or in their home
    folder); the notebooks must run with the course's pinned packages instead.
    """
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class CurrentEnvironmentSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return self.kernel_spec_class(resource_dir=RESOURCES, **get_kernel_dict())

    class CurrentEnvironmentKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self):
            return CurrentEnvironmentSpecs(data_dir=self.data_dir)

    return CurrentEnvironmentKernelManager


PROBE_SOURCE = f"""\
import sys
import apps.config
print({PROBE_MARK!r}, sys.executable)
print({PROBE_MARK!r}, apps.config.__file__)
"""


def run_notebook(notebook: Path, root: Path) -> str:
    """Execute a notebook in ``root/notebooks`` and return where its kernel found ``apps``.

    One extra cell, added at the end of this in-memory copy only, prints the interpreter
    and the file ``apps.config`` was imported from, so the test can prove that the kernel
    used the regenerated package and not the one installed from the repository.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE_SOURCE))
    client = NotebookClient(
        nb,
        kernel_name="python3",
        kernel_manager_class=current_environment_kernel_manager(),
        timeout=KERNEL_TIMEOUT,
        resources={"metadata": {"path": str(root / "notebooks")}},
    )
    try:
        client.execute()
    except CellExecutionError as error:
        pytest.fail(f"{notebook.name} failed in the scratch checkout:\n{error}", pytrace=False)
    stream = "".join(
        output.get("text", "")
        for output in nb.cells[-1].get("outputs", [])
        if output.get("output_type") == "stream"
    )
    return stream


@pytest.mark.slow
def test_running_the_notebooks_regenerates_apps(tmp_path, monkeypatch):
    """Run every notebook in a checkout with an empty ``apps/`` and compare the result.

    ``PYTHONPATH`` points the kernel (and the subprocesses it starts) at the scratch
    checkout, so each notebook imports the modules that the notebooks before it wrote,
    exactly as on a fresh machine; the registry is found next to them, in the copy of
    ``models/``.
    """
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copytree(NOTEBOOKS, root / "notebooks")
    shutil.copytree(ROOT / "models", root / "models")
    shutil.copytree(ROOT / "postman", root / "postman")  # notebook 03 reads the collection
    (root / "trusted_keys").mkdir()  # the committed trust list: the course's public key
    shutil.copy2(ROOT / "trusted_keys" / "course.pub", root / "trusted_keys")
    pinned = [ROOT / "pyproject.toml", ROOT / "environment.yml", *ROOT.glob("requirements*.txt")]
    for requirements in pinned:
        shutil.copy2(requirements, root / requirements.name)  # notebooks 01 and 05 read them
    shutil.copytree(ROOT / "hashes", root / "hashes")  # what the Dockerfiles install
    (root / "apps").mkdir()
    (root / "docker").mkdir()

    monkeypatch.setenv("PYTHONPATH", str(root))
    monkeypatch.delenv("PENGUINS_MODELS_DIR", raising=False)  # use the copied registry
    for name in ("PENGUINS_TRUSTED_KEYS", "PENGUINS_SIGNING_KEY"):  # and its trust list
        monkeypatch.delenv(name, raising=False)
    notebooks = notebook_paths(root / "notebooks")
    assert notebooks, f"no {NOTEBOOK_GLOB} in {NOTEBOOKS}"
    for notebook in notebooks:
        probe = run_notebook(notebook, root)
        seen = [line.split(PROBE_MARK, 1)[1].strip() for line in probe.splitlines()]
        assert len(seen) == 2, f"the probe cell printed nothing useful: {probe!r}"
        executable, module = seen
        assert os.path.samefile(executable, sys.executable), (
            f"{notebook.name} ran on {executable}, not on {sys.executable}"
        )
        assert Path(module).resolve().is_relative_to(root.resolve()), (
            f"{notebook.name} imported apps from {module}, not from the scratch checkout "
            f"{root}: PYTHONPATH did not reach the kernel"
        )

    expected = tracked_apps_files()
    produced = exported_files(root)
    missing = sorted(set(expected) - set(produced))
    extra = sorted(set(produced) - set(expected))
    diffs = []
    for name in sorted(set(expected) & set(produced)):
        committed = normalise((ROOT / name).read_bytes()) if (ROOT / name).exists() else b""
        written = normalise((root / name).read_bytes())
        if committed != written:
            diffs.append(unified_diff(committed, written, name, "regenerated"))

    report = []
    if missing:
        report.append("committed but not written by any notebook:\n  " + "\n  ".join(missing))
    if extra:
        report.append("written by a notebook but not committed:\n  " + "\n  ".join(extra))
    if diffs:
        report.append("differ from what the notebooks write:\n" + "\n".join(diffs))
    assert not report, "re-running the notebooks does not give apps/:\n\n" + "\n\n".join(report)
