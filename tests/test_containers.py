"""The container images build, pass hadolint, and serve: ``.ci/containers.sh`` end to end.

The script installs Podman (and its helpers) when missing, builds the API (full and lean
ONNX variants), the UI and the batch job, starts the compose stack and checks it, runs
the batch service on a small file, then tears it all down.
It takes minutes and needs root or password-less sudo for apt-get, so it runs only when
asked: in CI (``CI`` set to anything but false) or with ``RUN_CONTAINER_TESTS=1``. Under CI
a missing engine fails the test instead of skipping it. Deselect it with
``-m "not container"``.
"""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import in_ci, require_tool, skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "containers.sh"
SCRIPT_TIMEOUT = 40 * 60  # a fresh machine: apt-get, the base image and three builds


def docker_engine_answers() -> bool:
    """True when a Docker engine (not just the client) is reachable."""
    if not shutil.which("docker"):
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def why_not_run() -> str | None:
    """The reason to skip, or None when the script should run."""
    if not (in_ci() or os.environ.get("RUN_CONTAINER_TESTS") == "1"):
        return (
            "container tests build images for minutes: they run in CI (CI=true) or with "
            "RUN_CONTAINER_TESTS=1"
        )
    if not sys.platform.startswith("linux"):
        return ".ci/containers.sh runs on Linux only (Podman from Debian/Ubuntu packages)"
    if shutil.which("podman") or docker_engine_answers():
        return None
    if shutil.which("apt-get") and (os.geteuid() == 0 or shutil.which("sudo")):
        return None  # the script installs Podman itself
    return (
        "no container engine: install Podman or start Docker (the script installs Podman "
        "itself where apt-get and root or sudo are available)"
    )


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.timeout(SCRIPT_TIMEOUT + 60)
def test_containers_build_and_serve(tmp_path):
    reason = why_not_run()
    if reason:
        skip_or_fail(reason)
    log_path = tmp_path / "containers.log"
    with open(log_path, "wb") as log:
        # Its own process group: on a timeout, SIGTERM reaches the script, whose trap then
        # tears down what it started, and podman with it.
        process = subprocess.Popen(
            ["bash", str(SCRIPT)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHON": sys.executable},  # for docker/make_certs.py
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            status = process.wait(timeout=SCRIPT_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            status = "timeout"
    output = log_path.read_text(encoding="utf-8", errors="replace")
    print(output[-6000:])  # pytest shows it with -s or -rP; and below, on failure
    assert status == 0, (
        f".ci/containers.sh failed ({status}); its output ends with:\n" + (output[-12000:])
    )
    assert "containers: all checks passed" in output
    assert "batch service: 4 rows read, 3 scored, 1 rejected" in output  # compose profile batch
    assert (ROOT / "artifacts" / "containers.md").is_file()


BLOCKED_REGISTRY = """\
unqualified-search-registries = ["docker.io"]

[[registry]]
location = "docker.io"
blocked = true
"""
"""Podman's registries.conf for a machine whose engine cannot download anything: the
pull fails at once, and nothing leaves this machine."""


@pytest.mark.container
@pytest.mark.slow
def test_notebook_05_skips_cleanly_when_the_engine_cannot_get_the_base_image(tmp_path, monkeypatch):
    """A real engine that answers but cannot pull (offline, or a proxy it does not know):
    the notebook says why and how to fix it, and runs to its end, as with no engine."""
    import nbformat
    from nbclient import NotebookClient

    from .test_notebook_exports import current_environment_kernel_manager

    require_tool("podman", "apt-get install podman")
    root = tmp_path / "checkout"
    (root / "notebooks").mkdir(parents=True)
    (root / "docker").mkdir()
    for name in ["pyproject.toml", *(p.name for p in ROOT.glob("requirements*.txt"))]:
        shutil.copy2(ROOT / name, root / name)
    transcripts = ROOT / "notebooks" / "transcripts"  # shown where a command was skipped
    shutil.copytree(transcripts, root / "notebooks" / "transcripts")
    registries = tmp_path / "registries.conf"
    registries.write_text(BLOCKED_REGISTRY)
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(registries))
    monkeypatch.setenv("COURSE_CONTAINER_ENGINE", "podman")
    monkeypatch.delenv("PYTEST_CURRENT_TEST")  # the notebook skips engines under pytest
    nb = nbformat.read(ROOT / "notebooks" / "05_docker.ipynb", as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        kernel_manager_class=current_environment_kernel_manager(),
        timeout=600,
        resources={"metadata": {"path": str(root / "notebooks")}},
    )
    client.execute()  # raises if any cell fails; the engine only answers info, inspect, pull
    printed = "".join(
        output.get("text", "") for cell in nb.cells for output in cell.get("outputs", [])
    )
    assert "podman answers, but cannot get the base image python:3.11-slim" in printed
    assert "proxy" in printed and "podman pull python:3.11-slim" in printed
    assert "(skipped: podman cannot get python:3.11-slim; run it in a terminal)" in printed
