"""``python -m apps.stack`` as a learner runs it: both apps answer, and Ctrl-C stops both."""

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import psutil
import pytest
import requests

from apps.config import REPO_ROOT

from .servers import free_port

ON_WINDOWS = os.name == "nt"
STARTUP_SECONDS = 180

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def running_stack(*args: str) -> Iterator[tuple[subprocess.Popen, "queue.Queue[str]"]]:
    """Run the stack in its own process group, as a terminal would; collect its output.

    Whatever happens in the test, nothing it started is left running afterwards.
    """
    if ON_WINDOWS:
        group = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    else:
        group = {"start_new_session": True}
    process = subprocess.Popen(
        [sys.executable, "-m", "apps.stack", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        **group,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield process, lines
    finally:
        if process.poll() is None:
            for child in psutil.Process(process.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            process.kill()
        process.wait(timeout=30)
        reader.join(timeout=10)
        process.stdout.close()


def read_until(lines: "queue.Queue[str]", wanted: list[str], seconds: float) -> str:
    """The output so far, once every wanted text is in it; fail with the output if not."""
    output, deadline = "", time.monotonic() + seconds
    while not all(text in output for text in wanted):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"not all of {wanted} in the output within {seconds} s:\n{output}")
        try:
            output += lines.get(timeout=min(remaining, 1))
        except queue.Empty:
            continue
    return output


def interrupt(process: subprocess.Popen) -> None:
    """What Ctrl-C does in a terminal (Ctrl-Break on Windows, the signal a group can get)."""
    if ON_WINDOWS:
        process.send_signal(signal.CTRL_BREAK_EVENT)
    else:
        process.send_signal(signal.SIGINT)


def refuses(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        return True
    return False


def two_free_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


def test_stack_starts_the_api_and_the_ui_and_ctrl_c_stops_both():
    api_port, ui_port = two_free_ports()
    api, ui = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{ui_port}"
    with running_stack("--api-port", str(api_port), "--ui-port", str(ui_port)) as (process, lines):
        output = read_until(lines, [f"API: {api}", f"UI:  {ui}", "Ctrl-C"], STARTUP_SECONDS)
        assert "verified" in output
        assert requests.get(f"{api}/health/ready", timeout=5).json()["status"] == "ready"
        assert requests.get(f"{ui}/_stcore/health", timeout=5).text == "ok"
        assert "<html" in requests.get(ui, timeout=5).text.lower()
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 2, "the API and the UI should be child processes"

        interrupt(process)
        assert process.wait(timeout=60) == 0
        output += read_until(lines, ["Stopped."], 10)
    assert "Traceback" not in output
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"still running after Ctrl-C: {alive}"
    assert refuses(f"{api}/health/live")
    assert refuses(f"{ui}/_stcore/health")


def test_stack_says_plainly_when_a_port_is_taken():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with running_stack("--api-port", str(port), "--ui-port", str(free_port())) as stack:
            process, lines = stack
            assert process.wait(timeout=120) == 1
            output = read_until(lines, ["--api-port"], 10)
    assert f"Port {port} is in use" in output
    assert "Traceback" not in output
