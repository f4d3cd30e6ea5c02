"""Notebook 06's exercises: with the solutions filled in, every self-check passes.

The committed notebook leaves each answer as None (its check then only says so), so
nbval cannot tell whether the checks accept the solutions. This runs a copy with the
answers of the folded solutions, which also catches a solution that drifted from the code.
"""

import re

import nbformat
import pytest

from .test_notebook_exports import NOTEBOOKS, current_environment_kernel_manager

SOLUTIONS = {
    "answer_1": "7502",
    "answer_2": "[True, False, True, False, True]",
    "answer_3": "0.01",
    "answer_4": "(40, 0)",
    "answer_5": '"15 6 * * 1-5"',
}


@pytest.mark.slow
def test_the_solutions_pass_the_self_checks(tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOKS / "06_batch_scoring.ipynb", as_version=4)
    filled = set()
    for cell in notebook.cells:
        match = re.match(r"(answer_\d) = None", cell.source)
        if cell.cell_type == "code" and match:
            cell.source = f"{match[1]} = {SOLUTIONS[match[1]]}"
            filled.add(match[1])
    assert filled == set(SOLUTIONS)
    NotebookClient(
        notebook,
        kernel_name="python3",
        kernel_manager_class=current_environment_kernel_manager(),
        timeout=600,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    printed = "".join(
        output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
    )
    for number in range(1, len(SOLUTIONS) + 1):
        assert f"exercise {number}: right" in printed
