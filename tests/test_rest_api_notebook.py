"""Notebook 02's exercises: with the folded solutions filled in, every self-check passes.

The committed notebook leaves each answer as None (its check then only says so), so
nbval cannot tell whether the checks accept the solutions. This runs a copy in which each
answer cell is replaced by the code of the solution shown below it, in a scratch folder,
which also catches a solution that drifted from the code or from its check.
"""

import os
import re
import shutil

import nbformat
import pytest

from .test_notebook_exports import NOTEBOOKS, ROOT, current_environment_kernel_manager

NOTEBOOK = NOTEBOOKS / "02_rest_api.ipynb"
ANSWER = re.compile(r"^(answer_\d+) = None\b.*$", re.MULTILINE)
SOLUTION_CODE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def with_solutions(notebook) -> list[str]:
    """Replace each answer cell's placeholder by the code of the next folded solution."""
    filled = []
    for index, cell in enumerate(notebook.cells):
        match = ANSWER.search(cell.source) if cell.cell_type == "code" else None
        if match is None:
            continue
        solution = next(
            c.source
            for c in notebook.cells[index + 1 :]
            if c.cell_type == "markdown" and "<details>" in c.source
        )
        code = SOLUTION_CODE.search(solution)
        assert code, f"the solution after {match[1]} shows no Python code"
        assert f"{match[1]} =" in code[1], f"the solution does not set {match[1]}"
        cell.source = cell.source[: match.start()] + code[1].strip() + cell.source[match.end() :]
        filled.append(match[1])
    return filled


@pytest.mark.slow
def test_the_solutions_pass_the_self_checks(tmp_path, monkeypatch):
    """Run in a scratch copy (its ``%%writefile`` cells must not touch the working tree)."""
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    filled = with_solutions(notebook)
    assert filled == [f"answer_{number}" for number in range(1, len(filled) + 1)]
    for folder in ("apps", "models", "notebooks", "trusted_keys"):
        shutil.copytree(
            ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path), prepend=os.pathsep)
    for name in list(os.environ):
        if name.upper().startswith(("API_", "PENGUINS_")):
            monkeypatch.delenv(name)
    NotebookClient(
        notebook,
        kernel_name="python3",
        kernel_manager_class=current_environment_kernel_manager(),
        timeout=600,
        resources={"metadata": {"path": str(tmp_path / "notebooks")}},
    ).execute()
    printed = "".join(
        output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
    )
    for number in range(1, len(filled) + 1):
        assert f"exercise {number}: right" in printed
