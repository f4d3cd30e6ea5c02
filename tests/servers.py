"""Start the real API server (gunicorn or waitress) on a free port, and stop it after.

Tests talk to it over real sockets with real clients, as a user would. The server runs
in its own process group so that stopping it also stops its workers.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from apps.config import REPO_ROOT


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_api(
    env: dict[str, str] | None = None,
    server: str = "gunicorn",
    python: str = sys.executable,
    log_path: Path | None = None,
    startup_seconds: float = 60,
) -> Iterator[str]:
    """Run ``python -m apps.api`` with extra environment; yield its base URL."""
    port = free_port()
    full_env = {**os.environ, "API_WORKERS": "2", "LOG_LEVEL": "WARNING", **(env or {})}
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [python, "-m", "apps.api", "--host", "127.0.0.1", "--port", str(port), "--server", server],
        cwd=REPO_ROOT,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_live(base_url, process, startup_seconds)
        yield base_url
    finally:
        _stop(process)
        if log_path:
            log.close()


def _wait_until_live(base_url: str, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API server exited with code {process.returncode}")
        try:
            if requests.get(f"{base_url}/health/live", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the API server did not answer within {seconds} s")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (graceful), then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
