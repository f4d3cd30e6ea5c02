"""What the test suite promises about itself, checked by running pytest in a subprocess.

* The developer's own settings (``API_*``, ``PENGUINS_*``) change no result: tests and
  the servers they start see only what each test sets.
* Under CI (``CI`` set to anything but false), a missing tool fails the test that needs
  it; on a developer's machine it skips, saying what to install.
"""

import os
import subprocess
import sys

import pytest

from apps.config import REPO_ROOT

pytestmark = pytest.mark.slow  # each test starts pytest again


def pytest_run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_developers_settings_do_not_reach_the_tests(tmp_path):
    leaked = {
        "API_BACKEND": "sklearn",
        "API_KEYS": "a-key-of-my-own",
        "API_MAX_RECORDS": "1",
        "PENGUINS_API_URL": "http://127.0.0.1:9",
        "PENGUINS_MODELS_DIR": str(tmp_path),
    }
    result = pytest_run(
        "tests/test_api_app.py::test_list_models",
        "tests/test_api_app.py::test_predict_one",
        "tests/test_client.py::test_predict_one_and_many",
        "tests/test_client.py::test_health",
        env={**os.environ, **leaked},
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "4 passed" in result.stdout


NO_TOOLS = {"PATH": os.devnull}  # no chromium, newman, npx, podman, docker or apt-get
TOOL_TESTS = [
    ("tests/test_ui_browser.py", "chromium is not installed", "true"),
    ("tests/test_postman.py::test_newman_runs_the_collection_without_failures", "neither", "true"),
    ("tests/test_containers.py", "no container engine", "1"),  # any CI value, not only "true"
]


@pytest.mark.parametrize(("test", "reason", "ci"), TOOL_TESTS, ids=[t for t, *_ in TOOL_TESTS])
def test_under_ci_a_missing_tool_fails(test, reason, ci):
    result = pytest_run(test, "-rs", env={**os.environ, **NO_TOOLS, "CI": ci})
    assert result.returncode not in (0, pytest.ExitCode.NO_TESTS_COLLECTED), result.stdout
    assert f"CI must run this test, but {reason}" in result.stdout, result.stdout[-3000:]


ON_A_LAPTOP = TOOL_TESTS[:2]


@pytest.mark.parametrize(("test", "reason", "ci"), ON_A_LAPTOP, ids=[t for t, *_ in ON_A_LAPTOP])
def test_on_a_developers_machine_a_missing_tool_skips(test, reason, ci):
    env = {k: v for k, v in os.environ.items() if k != "CI"} | NO_TOOLS
    result = pytest_run(test, "-rs", env=env)
    assert result.returncode in (0, pytest.ExitCode.NO_TESTS_COLLECTED), result.stdout[-3000:]
    assert "skipped" in result.stdout and reason in result.stdout
