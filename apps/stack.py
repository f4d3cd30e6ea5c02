"""``python -m apps.stack``: check the models, then run the API and the UI together.

This is what ``python3 course.py start`` runs. It makes sure the models are present and
verified (as ``python -m apps`` does), starts the API and the Streamlit UI as two child
processes, waits until both answer, prints their addresses, and stops both when asked:
Ctrl-C, ``kill`` (SIGTERM) or a closed terminal (SIGHUP) on Linux and macOS; Ctrl-C or
Ctrl-Break on Windows. It returns only once both servers have exited, so their ports
are free again.
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
from collections.abc import Mapping
from pathlib import Path

from apps.__main__ import check_models
from apps.config import REPO_ROOT
from apps.processes import ON_WINDOWS, answer, spawn, stop_all

HOST = "127.0.0.1"
UI_SCRIPT = REPO_ROOT / "apps" / "ui" / "app.py"
STARTUP_SECONDS = 120
TICK = 0.2  # seconds between two looks at the children and at the stop flag
MODELS_FAILED = "A model failed its checks (see above): not starting the apps."


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


def port_problem(api_port: int, ui_port: int) -> str | None:
    """Why the servers cannot start on these ports, or None if they can."""
    if api_port == ui_port:
        return f"The API and the UI cannot share port {api_port}: choose two ports."
    for what, port, option in (("API", api_port, "--api-port"), ("UI", ui_port, "--ui-port")):
        if not port_is_free(port):
            return (
                f"Port {port} is in use, so the {what} cannot start there. Is the stack "
                f"already running? Stop it, or choose another port with {option}."
            )
    return None


class Stop(BaseException):
    """A stop signal arrived before any server was started.

    A ``BaseException``, like ``KeyboardInterrupt``: an ``except Exception`` in the code
    it interrupts (the model checks, training) must not swallow it.
    """


class StopRequest:
    """Catches the signals that mean "stop", and remembers the first one.

    A Python signal handler runs in the main thread between any two of its steps. Before
    the servers start (while the models are checked, which may mean training them) the
    first signal raises :class:`Stop`, so the wait ends at once. Once a server may be
    running, an exception there could fall between starting a child and recording it,
    leaving a server that nobody stops; so from then on the handler only sets a flag,
    which the main loop checks between steps, and later signals (a second Ctrl-C, the
    SIGHUP of a closing terminal after a Ctrl-C) change nothing: the clean-up always
    runs to its end.
    """

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")
    """Ctrl-C; ``kill`` and service managers; a closed terminal; Ctrl-Break (Windows)."""

    def __init__(self) -> None:
        self.received: str | None = None
        self.raises = True

    def __call__(self, signum: int, frame: object) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name
            if self.raises:
                raise Stop(self.received)

    def install(self) -> "StopRequest":
        """Handle every stop signal this OS has, except a SIGHUP that ``nohup`` ignores."""
        for name in self.SIGNALS:
            number = getattr(signal, name, None)
            if number is None:
                continue  # SIGHUP does not exist on Windows, SIGBREAK only there
            if name == "SIGHUP" and signal.getsignal(number) == signal.SIG_IGN:
                continue  # started with nohup: the user asked to outlive the terminal
            signal.signal(number, self)
        return self


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
        from apps.api.config import plain_keys_from

        keys = plain_keys_from(os.environ.get("API_KEYS", ""))
        if keys:
            env["PENGUINS_API_KEY"] = keys[0]
    return env


def key_problem(environ: Mapping[str, str]) -> str | None:
    """Why the UI could not call the API: its key file holds hashes, which cannot be sent."""
    if environ.get("API_KEYS_FILE") and not (
        environ.get("API_KEYS") or environ.get("PENGUINS_API_KEY")
    ):
        return (
            "API_KEYS_FILE holds hashes of keys, which the UI cannot send: set "
            "PENGUINS_API_KEY to a key with the predict scope for the UI (the key that "
            "`python3 course.py key new` printed)."
        )
    return None


Children = dict[str, tuple[subprocess.Popen, str]]
"""``{"API": (process, health URL), ...}``."""


def check_alive(children: Children) -> None:
    """Fail, naming the child, if one of them has exited."""
    for name, (process, _) in children.items():
        if process.poll() is not None:
            raise RuntimeError(f"the {name} stopped (exit code {process.returncode})")


def wait_until_up(children: Children, seconds: float, stop: StopRequest) -> bool:
    """Wait until every child answers 200 on its health URL; False if a stop came first.

    Fails if a child exits, answers 503 (the API's models failed their checks: waiting
    longer will not help), or is not up in time.
    """
    deadline = time.monotonic() + seconds
    waiting = dict(children)
    while waiting and not stop.received:
        check_alive(children)
        for name, (_, url) in list(waiting.items()):
            status, body = answer(url)
            if status == 200:
                del waiting[name]
            elif status == 503:
                reason = body.decode("utf-8", "replace")
                raise RuntimeError(f"the {name} is not ready: {reason}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the {' and the '.join(waiting)} did not answer in {seconds} s")
        time.sleep(TICK)
    return not stop.received


def watch(children: Children, stop: StopRequest) -> None:
    """Return when a stop is requested; fail if a child stops on its own before that."""
    while not stop.received:
        check_alive(children)
        time.sleep(TICK)


def main(argv: list[str] | None = None) -> int:
    """Check the models, start both servers, and run until asked to stop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--ui-port", type=int, default=8501)
    args = parser.parse_args(argv)
    stop = StopRequest().install()
    try:
        problem = None if check_models() else MODELS_FAILED
        problem = problem or key_problem(os.environ) or port_problem(args.api_port, args.ui_port)
        stop.raises = False  # from here on, a signal only sets stop.received
    except Stop:
        print("\nStopped before starting the apps.")
        return 0
    if problem:
        print(problem)
        return 1

    api_url, ui_url = f"http://{HOST}:{args.api_port}", f"http://{HOST}:{args.ui_port}"
    log_dir = Path(tempfile.mkdtemp(prefix="penguins-stack-"))
    children: Children = {}
    try:
        api = spawn(api_command(args.api_port), dict(os.environ), log_dir / "api.log")
        children["API"] = (api, f"{api_url}/health/ready")
        ui = spawn(ui_command(args.ui_port), ui_environment(api_url), log_dir / "ui.log")
        children["UI"] = (ui, f"{ui_url}/_stcore/health")
        print("Starting the API and the UI ...", flush=True)
        if wait_until_up(children, STARTUP_SECONDS, stop):
            print(f"API: {api_url}  (interactive docs: {api_url}/docs)")
            print(f"UI:  {ui_url}")
            print("Press Ctrl-C to stop both.", flush=True)
            watch(children, stop)
    except RuntimeError as error:
        print(f"\nProblem: {error}. The end of each log:", flush=True)
        for name in children:
            log = log_dir / f"{name.lower()}.log"
            print(f"  {log}\n{tail(log)}")
        return 1
    finally:
        if stop.received:
            print(f"\n{stop.received}: stopping the UI and the API ...", flush=True)
        stop_all([process for process, _ in reversed(children.values())])
    shutil.rmtree(log_dir, ignore_errors=True)
    print("Stopped.", flush=True)
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
