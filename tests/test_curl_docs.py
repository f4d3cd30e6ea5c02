"""Every documented cURL example runs against a real server and answers what it says.

Examples rot silently: a route is renamed, a body gains a field, and the docs go on
showing a call that no longer works. So every ``curl`` line of a ```` ```bash ```` or
```` ```sh ```` block in ``docs/calling-the-api.md`` and ``README.md``, and every
``!curl`` line of notebook 03, is run here with bash against the server the doc tells
the reader to run: the stack of ``python3 course.py start`` (``python -m apps.stack``),
started with the doc's own key. Each must print the HTTP status written next to it:

* in Markdown, a trailing ``# -> 200`` comment, or a ``# -> 200`` line just above;
* in the notebook, a ``# -> 200`` comment line just above the ``answer = !curl`` line (a
  trailing comment would reach the shell, and Windows' ``cmd`` has no comments).

Each example prints its status last, with ``-w '...%{http_code}...'``. The host and
port ``http://127.0.0.1:8000`` are replaced by the test server's; ``$PENGUINS_API_KEY``
and ``$PENGUINS_API_URL`` come from the environment, as they would on a learner's
machine. IPython expands ``$NAME`` itself and reads ``{{``/``}}`` as literal braces;
the same is done here, so a notebook line runs exactly as the notebook runs it.
"""

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from .conftest import skip_or_fail
from .servers import running_stack

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "docs" / "calling-the-api.md", ROOT / "README.md"]
NOTEBOOK = ROOT / "notebooks" / "03_api_clients.ipynb"
DOC_HOST = "http://127.0.0.1:8000"
START = re.compile(r"^API_KEYS=(?P<key>\S+) python3 course\.py start\b", re.MULTILINE)
"""The doc's command that starts the server its examples call."""
EXPECT = re.compile(r"#\s*->\s*(\d{3})\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Example:
    where: str
    command: str
    status: int | None  # None: the example forgot to say; the test fails


def markdown_examples(path: Path) -> list[Example]:
    """``curl`` commands of the bash/sh blocks, continuation lines joined."""
    if not path.exists():
        return []
    examples: list[Example] = []
    language = None  # None: outside a fenced block
    pending: list[str] = []
    expected_above = None
    start = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line.strip())
        if fence:
            language = fence[1] if language is None else None
            expected_above = None
            continue
        if language not in ("bash", "sh"):
            continue
        if not pending:
            start = number
        pending.append(line.rstrip().removesuffix("\\").rstrip())
        if line.rstrip().endswith("\\"):
            continue
        command = " ".join(part.strip() for part in pending)
        pending = []
        if command.startswith("curl"):
            trailing = EXPECT.search(command)
            status = int(trailing[1]) if trailing else expected_above
            examples.append(Example(f"{path.name}:{start}", command, status))
        above = EXPECT.fullmatch(command)
        expected_above = int(above[1]) if above and command.startswith("#") else None
    return examples


NOTEBOOK_CURL = re.compile(r"^(?:\w+\s*=\s*)?!(curl\b.*)$")


def notebook_examples(path: Path) -> list[Example]:
    """``!curl`` commands (also ``answer = !curl``) of the notebook, as IPython runs them.

    IPython joins lines ending with a backslash, fills in ``$NAME`` (here: bash, from the
    environment) and reads ``{{`` and ``}}`` as single braces.
    """
    if not path.exists():
        return []
    examples = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        for number, line in enumerate(lines):
            match = NOTEBOOK_CURL.match(line.strip())
            if not match:
                continue
            parts, follow = [match[1]], number
            while parts[-1].endswith("\\") and follow + 1 < len(lines):
                parts[-1] = parts[-1].removesuffix("\\").rstrip()
                follow += 1
                parts.append(lines[follow].strip())
            command = " ".join(parts).replace("{{", "{").replace("}}", "}")
            above = EXPECT.search(lines[number - 1]) if number else None
            examples.append(
                Example(f"{path.name} cell {index}", command, int(above[1]) if above else None)
            )
    return examples


def notebook_bodies_cell(path: Path) -> str | None:
    """The notebook cell that writes the request bodies its ``!curl`` lines send."""
    if not path.exists():
        return None
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and re.search(r"^BODIES = ", cell.source, re.MULTILINE):
            return cell.source
    return None


DOC_EXAMPLES = [e for path in DOCUMENTS for e in markdown_examples(path)]
NOTEBOOK_EXAMPLES = notebook_examples(NOTEBOOK)
ALL_EXAMPLES = DOC_EXAMPLES + NOTEBOOK_EXAMPLES


def test_the_examples_are_found():
    """Guards the parser: a change of format must not make every example vanish."""
    assert len(DOC_EXAMPLES) >= 30, [e.where for e in DOC_EXAMPLES]
    assert len(NOTEBOOK_EXAMPLES) >= 8, [e.where for e in NOTEBOOK_EXAMPLES]
    commands = " ".join(e.command for e in ALL_EXAMPLES)
    for route in ("/health/live", "/v1/models", "/predict", "/v2/", "/infer", "/invocations"):
        assert route in commands


def doc_api_key() -> str:
    """The key the doc starts the stack with (and the examples then send)."""
    found = START.search(DOCUMENTS[0].read_text(encoding="utf-8"))
    assert found, f"{DOCUMENTS[0].name} must say how to start the server: API_KEYS=... {START}"
    return found["key"]


@pytest.fixture(scope="module")
def shell_env(tmp_path_factory):
    """The stack as the doc starts it, and the environment a learner's shell would have."""
    bash, curl = shutil.which("bash"), shutil.which("curl")
    if not (bash and curl):
        skip_or_fail("the cURL examples need bash and curl on PATH (Git Bash on Windows)")
    key = doc_api_key()
    bodies = tmp_path_factory.mktemp("bodies")
    source = notebook_bodies_cell(NOTEBOOK)
    if source:
        namespace: dict = {}
        # the notebook's own cell that writes the example bodies, run as a reader runs it
        exec(compile(source, f"{NOTEBOOK.name} (bodies cell)", "exec"), namespace)  # noqa: S102
        bodies = Path(namespace["BODIES"])
    with running_stack({"API_KEYS": key}) as (url, _):
        env = {
            **os.environ,
            "PENGUINS_API_KEY": key,
            "PENGUINS_API_URL": url,
            "BODIES": str(bodies),
        }
        yield url, env
    if source:
        shutil.rmtree(bodies, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("example", ALL_EXAMPLES, ids=[e.where for e in ALL_EXAMPLES])
def test_example_answers_the_documented_status(example, shell_env, tmp_path):
    url, env = shell_env
    assert example.status is not None, (
        f"{example.where}: say which status the example answers with a '# -> NNN' comment"
    )
    assert "%{http_code}" in example.command, (
        f"{example.where}: print the status with -w '\\n%{{http_code}}\\n' like the others"
    )
    command = example.command.replace(DOC_HOST, url)
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{example.where}: curl failed\n{result.stderr}"
    lines = result.stdout.rstrip("\n").splitlines()
    assert lines, f"{example.where}: no output"
    status = int(lines[-1])
    body = "\n".join(lines[:-1])
    assert status == example.status, f"{example.where}: got {status}, documented {example.status}"
    if body.startswith("{"):
        answer = json.loads(body)
        assert ("error" in answer) == (status >= 400), body


def test_a_broken_example_fails(shell_env, tmp_path):
    """The check above really fails when an example no longer answers what it says."""
    broken = Example(
        "broken", f"curl -s -w '\\n%{{http_code}}\\n' {DOC_HOST}/v1/models   # -> 200", 200
    )
    with pytest.raises(AssertionError, match="got 401, documented 200"):
        test_example_answers_the_documented_status(broken, shell_env, tmp_path)
