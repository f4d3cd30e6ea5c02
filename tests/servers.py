"""Start the real API server (gunicorn or waitress), or the whole stack, on free ports.

Tests talk to it over real sockets with real clients, as a user would. The server runs
in its own process group (a new session on Linux and macOS) so that stopping it also
stops its workers. On Windows, where gunicorn cannot run, the default is waitress, a
single process stopped with ``terminate()``.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import requests

from apps.config import REPO_ROOT

ON_WINDOWS = os.name == "nt"
DEFAULT_SERVER = "waitress" if ON_WINDOWS else "gunicorn"
ISOLATED_PREFIXES = ("API_", "PENGUINS_")
"""The apps' settings: a test server gets the ones its test gives, and no others."""
SESSION_SETTINGS = ("PENGUINS_TRUSTED_KEYS", "PENGUINS_SIGNING_KEY")
"""Except the test run's own signing key and trust list (see tests/conftest.py)."""


def without_app_settings(environ: dict) -> dict[str, str]:
    """A copy of an environment without any ``API_*`` or ``PENGUINS_*`` variable, but the
    test run's signing settings."""
    return {
        k: v
        for k, v in environ.items()
        if not k.upper().startswith(ISOLATED_PREFIXES) or k in SESSION_SETTINGS
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_api(
    env: dict[str, str] | None = None,
    server: str | None = None,
    python: str = sys.executable,
    log_path: Path | None = None,
    startup_seconds: float = 60,
    python_args: Sequence[str] = (),
    host: str = "127.0.0.1",
) -> Iterator[str]:
    """Run ``python -m apps.api`` with extra environment; yield its base URL.

    ``server`` is ``gunicorn`` or ``waitress`` (default: gunicorn, or waitress on
    Windows). ``python_args`` go between the interpreter and ``-m apps.api``: a wrapper
    script given there receives ``-m apps.api --host ...`` as its own arguments. ``host``
    is the address to listen on; the server is always called on 127.0.0.1.
    """
    server = server or DEFAULT_SERVER
    port = free_port()
    # Only the settings given here: never the developer's own API_* or PENGUINS_*.
    full_env = {**without_app_settings(os.environ), "API_WORKERS": "2", "LOG_LEVEL": "WARNING"}
    full_env.update(env or {})
    command = [
        python,
        *python_args,
        "-m",
        "apps.api",
        "--host",
        host,
        "--port",
        str(port),
        "--server",
        server,
    ]
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    if ON_WINDOWS:
        group = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    else:
        group = {"start_new_session": True}
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, **group
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
            with requests.get(f"{base_url}/health/live", timeout=1) as response:
                if response.status_code == 200:
                    return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the API server did not answer within {seconds} s")


def _stop(process: subprocess.Popen) -> None:
    """Stop the server gracefully, then forcefully if it lingers.

    POSIX: SIGTERM to the whole process group (gunicorn's master and its workers), then
    SIGKILL. Windows: ``terminate()`` then ``kill()`` (waitress is a single process).
    """
    if process.poll() is not None:
        return
    _signal_group(process, graceful=True)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        _signal_group(process, graceful=False)
        process.wait(timeout=5)


def _signal_group(process: subprocess.Popen, graceful: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        if ON_WINDOWS and graceful:
            process.terminate()
        elif ON_WINDOWS:
            process.kill()
        else:
            os.killpg(process.pid, signal.SIGTERM if graceful else signal.SIGKILL)


@contextlib.contextmanager
def running_stack(
    env: dict[str, str] | None = None, startup_seconds: float = 180
) -> Iterator[tuple[str, str]]:
    """Run ``python -m apps.stack`` (what ``course.py start`` runs) on free ports.

    Yields the API's and the UI's base URLs once both answer. Stopped as a user stops
    it (SIGTERM; Ctrl-Break on Windows): the stack stops both servers itself.
    """
    import psutil

    api_port = free_port()
    ui_port = free_port()
    while ui_port == api_port:
        ui_port = free_port()
    ports = ["--api-port", str(api_port), "--ui-port", str(ui_port)]
    if ON_WINDOWS:
        group = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    else:
        group = {"start_new_session": True}
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "apps.stack", *ports],
            cwd=REPO_ROOT,
            env={**without_app_settings(os.environ), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            **group,
        )
        api, ui = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ui_port}"
        try:
            for url in (f"{api}/health/ready", f"{ui}/_stcore/health"):
                _wait_for(url, process, startup_seconds, log)
            yield api, ui
        finally:
            children = psutil.Process(process.pid).children(recursive=True)
            process.send_signal(signal.CTRL_BREAK_EVENT if ON_WINDOWS else signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            for child in children:  # nothing may outlive the test, whatever happened
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()


def _wait_for(url: str, process: subprocess.Popen, seconds: float, log) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode("utf-8", "replace")
            raise RuntimeError(f"the stack exited with code {process.returncode}:\n{output}")
        with contextlib.suppress(requests.ConnectionError), requests.get(url, timeout=1) as answer:
            if answer.status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {seconds} s")
