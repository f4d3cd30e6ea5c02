"""Start the real API server (gunicorn or waitress), or the whole stack, on free ports.

Tests talk to it over real sockets with real clients, as a user would. Starting,
waiting and stopping are the apps' own (:mod:`apps.processes`), as the stack does it;
on Windows, where gunicorn cannot run, the default server is waitress.
"""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from apps.processes import (
    ON_WINDOWS,
    ServerExited,
    free_port,
    running,
    spawn,
    wait_until_answers,
)

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
    base_url = f"http://127.0.0.1:{port}"
    with running(command, f"{base_url}/health/live", full_env, log_path, startup_seconds):
        yield base_url


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
    api, ui = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ui_port}"
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "stack.log"
        env = {**without_app_settings(os.environ), **(env or {})}
        process = spawn([sys.executable, "-m", "apps.stack", *ports], env, log)
        try:
            for url in (f"{api}/health/ready", f"{ui}/_stcore/health"):
                try:
                    wait_until_answers(url, process, startup_seconds)
                except ServerExited:
                    raise ServerExited(log.read_text("utf-8", "replace")) from None
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


@contextlib.contextmanager
def running_ui(api_url: str, log_path: Path | None = None, startup_seconds: float = 60):
    """Run the Streamlit UI as the stack runs it, calling the API at ``api_url``."""
    from apps.stack import ui_command

    port = free_port()
    env = {**without_app_settings(os.environ), "PENGUINS_API_URL": api_url}
    url = f"http://127.0.0.1:{port}"
    with running(ui_command(port), f"{url}/_stcore/health", env, log_path, startup_seconds):
        yield url
