"""``python -m apps.stack``: check the models, then run the API and the UI together.

This is what ``python course.py start`` runs. It makes sure the models are present and
verified (as ``python -m apps`` does), starts the API and the Streamlit UI as two child
processes, waits until both answer, prints their addresses, and stops both when you
press Ctrl-C. It works the same on Linux, macOS and Windows.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from apps.__main__ import check_models
from apps.config import REPO_ROOT

HOST = "127.0.0.1"
UI_SCRIPT = REPO_ROOT / "apps" / "ui" / "app.py"
STARTUP_SECONDS = 120
STOP_SECONDS = 15
ON_WINDOWS = os.name == "nt"


class Stop(Exception):
    """Raised by the signal handlers: the user (or a service manager) asked us to stop."""


def port_is_free(port: int, host: str = HOST) -> bool:
    """True if nothing listens on ``host:port``, so a server can start there.

    On Linux and macOS, SO_REUSEADDR lets the probe ignore connections of a server that
    just stopped (TIME_WAIT), as the servers themselves do; on Windows that option would
    mean "share the port", so the probe binds plainly.
    """
    with socket.socket() as probe:
        if not ON_WINDOWS:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def start(name: str, command: list[str], env: dict, log_dir: Path) -> subprocess.Popen:
    """Start a child in its own process group, its output going to ``<log_dir>/<name>.log``.

    Its own group, because Ctrl-C in a terminal signals the whole foreground group: the
    children would each stop on their own, in any order. Instead only this process
    hears Ctrl-C and stops them itself, UI first, then the API.
    """
    if ON_WINDOWS:
        group = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    else:
        group = {"start_new_session": True}
    log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 (closed when the child is)
    try:
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, **group
        )
    finally:
        log.close()  # the child has its own copy of the file handle


def answers(url: str) -> bool:
    """True if ``url`` answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_until_up(children: dict[str, tuple[subprocess.Popen, str]], seconds: float) -> None:
    """Wait until every child answers its health URL; fail if one exits or is too slow."""
    deadline = time.monotonic() + seconds
    waiting = dict(children)
    while waiting:
        for name, (process, url) in list(waiting.items()):
            if process.poll() is not None:
                raise RuntimeError(f"the {name} exited with code {process.returncode}")
            if answers(url):
                del waiting[name]
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {' and the '.join(waiting)} did not answer in {seconds} s")
        time.sleep(0.3)


def stop(process: subprocess.Popen) -> None:
    """Ask a child to stop (SIGTERM, or TerminateProcess on Windows); force it if it hangs.

    gunicorn's master stops its own workers on SIGTERM, so no process-group signal is
    needed, which keeps this portable.
    """
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, to show why a child failed."""
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in text)


def ui_environment(api_url: str) -> dict[str, str]:
    """The UI's environment: the API's URL, and an API key if the API needs one."""
    env = {**os.environ, "PENGUINS_API_URL": api_url}
    if not env.get("PENGUINS_API_KEY"):
        from apps.api.config import api_keys_from

        keys = api_keys_from(os.environ)
        if keys:
            env["PENGUINS_API_KEY"] = keys[0]
    return env


def on_signal(signum, frame) -> None:
    raise Stop(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    """Check the models, start both servers, and wait for Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--ui-port", type=int, default=8501)
    args = parser.parse_args(argv)

    if not check_models():
        print("A model failed its checks (see above): not starting the apps.")
        return 1
    ports = (("API", args.api_port, "--api-port"), ("UI", args.ui_port, "--ui-port"))
    for what, port, option in ports:
        if not port_is_free(port):
            print(
                f"Port {port} is in use, so the {what} cannot start there. Is the stack "
                f"already running? Stop it, or choose another port with {option}."
            )
            return 1

    # SIGINT (Ctrl-C) raises KeyboardInterrupt by itself; SIGTERM (a service manager)
    # and, on Windows, SIGBREAK (Ctrl-Break) would end the process without cleaning up.
    signal.signal(signal.SIGTERM, on_signal)
    if hasattr(signal, "SIGBREAK"):
        signal.signal(signal.SIGBREAK, on_signal)

    api_url, ui_url = f"http://{HOST}:{args.api_port}", f"http://{HOST}:{args.ui_port}"
    log_dir = Path(tempfile.mkdtemp(prefix="penguins-stack-"))
    children: dict[str, tuple[subprocess.Popen, str]] = {}
    stopped_by_user = False
    try:
        api = start("api", api_command(args.api_port), dict(os.environ), log_dir)
        children["API"] = (api, f"{api_url}/health/ready")
        ui = start("ui", ui_command(args.ui_port), ui_environment(api_url), log_dir)
        children["UI"] = (ui, f"{ui_url}/_stcore/health")
        print("Starting the API and the UI ...", flush=True)
        wait_until_up(children, STARTUP_SECONDS)
        print(f"API: {api_url}  (interactive docs: {api_url}/docs)")
        print(f"UI:  {ui_url}")
        print("Press Ctrl-C to stop both.", flush=True)
        while True:
            for name, (process, _) in children.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"the {name} stopped unexpectedly (exit code {process.returncode})"
                    )
            time.sleep(0.5)
    except (KeyboardInterrupt, Stop):
        stopped_by_user = True
        print("\nStopping the UI and the API ...", flush=True)
    except RuntimeError as error:
        print(f"\nProblem: {error}. The end of each log:")
        for name in children:
            log = log_dir / f"{name.lower()}.log"
            print(f"  {log}\n{tail(log)}")
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave a server running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for process, _ in reversed(children.values()):
            stop(process)
    if not stopped_by_user:
        return 1
    shutil.rmtree(log_dir, ignore_errors=True)
    print("Stopped.")
    return 0


def api_command(port: int) -> list[str]:
    """``python -m apps.api``: gunicorn, or waitress on Windows."""
    return [sys.executable, "-m", "apps.api", "--host", HOST, "--port", str(port)]


def ui_command(port: int) -> list[str]:
    """``python -m streamlit run apps/ui/app.py``, headless, on this machine only.

    ``python -m`` (rather than the ``streamlit`` script) puts the working directory,
    the repository, on ``sys.path``, so the app can import ``apps`` without installing.
    """
    return [
        *(sys.executable, "-m", "streamlit", "run", str(UI_SCRIPT)),
        *("--server.port", str(port), "--server.address", HOST),
        *("--server.headless", "true", "--browser.gatherUsageStats", "false"),
    ]


if __name__ == "__main__":
    sys.exit(main())
