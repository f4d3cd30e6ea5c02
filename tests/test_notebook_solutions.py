"""Notebooks 02, 03 and 04: every folded solution passes its exercise's self-check.

The committed notebooks leave each answer as ``answer_N = None`` (the self-check then only
says so), so nbval cannot tell whether the checks accept the right answers. This runs a
copy of each notebook whose answer cells hold the code of the solution folded below them,
which also catches a solution that drifted from the code it is about. Like nbval, it runs
in a scratch copy of the working tree, so that the notebooks' ``%%writefile`` cells never
touch the files being edited.
"""

import os
import re
import shutil

import nbformat
import pytest

from conftest import working_tree_files  # the repository's root conftest: nbval's copy

from .test_notebook_exports import NOTEBOOKS, ROOT, current_environment_kernel_manager

ANSWER = re.compile(r"^answer_(\d+) = None\b.*$", re.MULTILINE)
"""The placeholder line of an answer cell (it may hold other lines too)."""
SOLUTION_CODE = re.compile(r"<details>.*?```python\n(.*?)```", re.DOTALL)


def with_solutions(notebook: nbformat.NotebookNode) -> list[int]:
    """Put each folded solution's code in place of its answer cell's placeholder; the
    exercise numbers filled."""
    filled = []
    for index, cell in enumerate(notebook.cells):
        match = ANSWER.search(cell.source) if cell.cell_type == "code" else None
        if not match:
            continue
        solution = next(
            c
            for c in notebook.cells[index + 1 :]
            if c.cell_type == "markdown" and "<details" in c.source
        )
        code = SOLUTION_CODE.search(solution.source)
        assert code, f"exercise {match[1]}: its solution has no ```python block"
        assert f"answer_{match[1]} =" in code[1], (
            f"exercise {match[1]}: the solution sets no answer"
        )
        cell.source = cell.source[: match.start()] + code[1].strip() + cell.source[match.end() :]
        filled.append(int(match[1]))
    return filled


@pytest.mark.slow
@pytest.mark.parametrize("name", ["02_rest_api", "03_api_clients", "04_streamlit_ui"])
def test_the_solutions_pass_the_self_checks(name, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    filled = with_solutions(notebook)
    assert filled == list(range(1, len(filled) + 1)) and len(filled) >= 5, filled
    for path in working_tree_files(ROOT):
        copy = tmp_path / path.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path), prepend=os.pathsep)
    for variable in list(os.environ):  # the notebooks' servers must not see this shell's keys
        if variable.upper().startswith(("API_", "PENGUINS_")):
            monkeypatch.delenv(variable)
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
    missing = [n for n in filled if f"exercise {n}: right" not in printed]
    assert not missing, f"{name}: these self-checks did not accept their solutions: {missing}"
