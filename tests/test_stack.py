"""``python3 course.py start`` as a learner runs it: both apps answer, and every stop works.

Each test runs the real command in a new session, as a terminal would run it, with the
course's ``.venv`` already set up, and signals it the way a terminal, ``kill`` or a
service manager does. After the stop, both ports must be free and no process that the
stack started may be left. How long the ports took to free up is printed (``-rP``
shows it), never asserted: ``bench/stack_stop.py`` measures it.
"""

import contextlib
import hashlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from apps.config import REPO_ROOT
from apps.stack import port_is_free

from .conftest import require_course_venv
from .servers import free_port

ON_WINDOWS = os.name == "nt"
STARTUP_SECONDS = 180
STOP_SECONDS = 60  # a hang guard only: the stop takes well under a second here
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)
"""The interpreter .venv was made from: the learner's ``python3``."""

pytestmark = pytest.mark.slow


class Stack:
    """A running ``course.py start``: its process, its output so far, and its ports."""

    def __init__(self, process: subprocess.Popen, api_port: int, ui_port: int):
        self.process, self.api_port, self.ui_port = process, api_port, ui_port
        self.lines: queue.Queue[str] = queue.Queue()
        self.output = ""
        self.started: list[psutil.Process] = []  # every process seen under it
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)

    def read_until(self, wanted: list[str], seconds: float) -> str:
        """The output so far, once every wanted text is in it; fail with the output if not."""
        deadline = time.monotonic() + seconds
        while not all(text in self.output for text in wanted):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"not all of {wanted} within {seconds} s; output:\n{self.output}")
            with contextlib.suppress(queue.Empty):
                self.output += self.lines.get(timeout=min(remaining, 1))
        return self.output

    def finish(self, seconds: float = 10) -> str:
        """Everything the process printed, once it has exited."""
        self.reader.join(timeout=seconds)
        while not self.lines.empty():
            self.output += self.lines.get()
        return self.output

    def descendants(self) -> list[psutil.Process]:
        """Its children and theirs, now; remembered, so that none escapes the clean-up."""
        found = psutil.Process(self.process.pid).children(recursive=True)
        self.started += [p for p in found if p not in self.started]
        return found

    def ports_free(self) -> bool:
        return port_is_free(self.api_port) and port_is_free(self.ui_port)


@contextlib.contextmanager
def course_start(*args: str, env: dict | None = None, root: Path = REPO_ROOT) -> Iterator[Stack]:
    """``python3 course.py start --api-port P --ui-port Q [args]`` in a new session.

    Whatever happens in the test, nothing it started is left running afterwards.
    """
    require_course_venv()
    api_port, ui_port = two_free_ports()
    group = (
        {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        if ON_WINDOWS
        else {"start_new_session": True}
    )
    command = [BASE_PYTHON, str(root / "course.py"), "start", "--api-port", str(api_port)]
    process = subprocess.Popen(
        [*command, "--ui-port", str(ui_port), *args],
        cwd=root,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        **group,
    )
    stack = Stack(process, api_port, ui_port)
    try:
        yield stack
    finally:
        if process.poll() is None:
            stack.descendants()
            process.kill()
        for child in stack.started:  # even those a dead stack left behind
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        process.wait(timeout=30)
        stack.finish()
        process.stdout.close()


def two_free_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


def wait_until_up(stack: Stack) -> str:
    api, ui = f"http://127.0.0.1:{stack.api_port}", f"http://127.0.0.1:{stack.ui_port}"
    output = stack.read_until([f"API: {api}", f"UI:  {ui}", "Ctrl-C"], STARTUP_SECONDS)
    assert "verified" in output
    assert requests.get(f"{api}/health/ready", timeout=5).json()["status"] == "ready"
    assert requests.get(f"{ui}/_stcore/health", timeout=5).text == "ok"
    assert "<html" in requests.get(ui, timeout=5).text.lower()
    return output


STOPS = {
    "Ctrl-C in a terminal": (signal.SIGINT, True),
    "SIGINT to course.py": (signal.SIGINT, False),
    "SIGTERM to course.py": (signal.SIGTERM, False),
    "closing the terminal": (getattr(signal, "SIGHUP", None), True),
}
"""How a learner, a script or a service manager stops it: (signal, to the whole group)."""


@pytest.mark.skipif(ON_WINDOWS, reason="POSIX signals; Windows: see the Ctrl-Break test")
@pytest.mark.parametrize("how", list(STOPS))
def test_every_way_of_stopping_stops_both_servers_and_frees_both_ports(how):
    signum, to_group = STOPS[how]
    with course_start() as stack:
        wait_until_up(stack)
        started = stack.descendants()
        assert len(started) >= 3, "the API (a master and its workers) and the UI"
        assert all(p.pid != stack.process.pid for p in started)

        sent = time.monotonic()
        if to_group:
            os.killpg(stack.process.pid, signum)  # what the terminal does
        else:
            os.kill(stack.process.pid, signum)
        while not stack.ports_free() and time.monotonic() - sent < STOP_SECONDS:
            time.sleep(0.01)
        freed_after = time.monotonic() - sent
        code = stack.process.wait(timeout=STOP_SECONDS)
        output = stack.finish()
    print(f"{how}: both ports free after {freed_after:.2f} s")
    assert code == 0, output
    assert "Stopped." in output and "Traceback" not in output
    _, alive = psutil.wait_procs(started, timeout=10)
    assert not alive, f"still running after {how}: {alive}"
    assert stack.ports_free(), f"{how}: a port is still taken"


@pytest.mark.skipif(ON_WINDOWS, reason="SIGKILL is POSIX")
def test_a_crashing_server_stops_the_other_one_and_fails_with_its_log():
    with course_start() as stack:
        wait_until_up(stack)
        started = stack.descendants()
        (api,) = [p for p in started if p.ppid() == stack.process.pid and "apps.api" in p.cmdline()]
        api.kill()  # the API's master dies; its workers are left without it
        code = stack.process.wait(timeout=STOP_SECONDS)
        output = stack.finish()
    assert code == 1
    assert "Problem: the API stopped (exit code -9)" in output
    assert "The end of each log:" in output and "api.log" in output
    assert "Traceback" not in output
    _, alive = psutil.wait_procs(started, timeout=10)
    assert not alive, f"left behind after the crash: {alive}"
    assert stack.ports_free()


def test_a_server_that_fails_at_start_is_reported_with_its_log():
    with course_start(env={"API_BACKEND": "tensorflow"}) as stack:
        code = stack.process.wait(timeout=STARTUP_SECONDS)
        output = stack.finish()
    assert code == 1
    assert "Problem: the API stopped" in output
    assert "API_BACKEND must be one of ['onnx', 'sklearn']" in output, "the API's log tells why"
    assert stack.ports_free()


@pytest.mark.parametrize("which", ["--api-port", "--ui-port"])
def test_a_taken_port_is_named_with_the_option_to_use(which):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with course_start(which, str(port)) as stack:  # the last --x-port wins
            code = stack.process.wait(timeout=STARTUP_SECONDS)
            output = stack.finish()
    assert code == 1
    assert f"Port {port} is in use" in output and f"another port with {which}" in output
    assert "Traceback" not in output


def test_the_same_port_twice_is_refused():
    port = str(free_port())
    with course_start("--api-port", port, "--ui-port", port) as stack:
        assert stack.process.wait(timeout=STARTUP_SECONDS) == 1
        output = stack.finish()
    assert f"cannot share port {port}" in output


@pytest.mark.skipif(not ON_WINDOWS, reason="Ctrl-Break exists on Windows only")
def test_ctrl_break_stops_both_on_windows():
    """A console's Ctrl-C cannot be sent to one process group; Ctrl-Break can, and the
    stack handles both the same way (``StopRequest``)."""
    with course_start() as stack:
        wait_until_up(stack)
        started = stack.descendants()
        stack.process.send_signal(signal.CTRL_BREAK_EVENT)
        assert stack.process.wait(timeout=STOP_SECONDS) == 0
        output = stack.finish()
    assert "Stopped." in output
    _, alive = psutil.wait_procs(started, timeout=10)
    assert not alive
    assert stack.ports_free()


# --- a failed model: the commands the messages suggest, run exactly as written --------


@pytest.fixture
def course_copy(tmp_path: Path) -> Path:
    """What a learner's clone holds (course.py, apps/, models/ and the keys it trusts),
    committed with git, and sharing this checkout's .venv (its stamp says it is up to
    date, so nothing installs)."""
    git = shutil.which("git")
    if git is None or ON_WINDOWS:
        pytest.skip("the suggested commands are run with a POSIX shell and git")
    stamp = REPO_ROOT / ".venv" / ".course-setup-stamp"
    digest = hashlib.sha256()
    for name in ("requirements.txt", "pyproject.toml"):  # as course.py's requirements_digest
        digest.update(name.encode())
        digest.update((REPO_ROOT / name).read_bytes())
    if not stamp.is_file() or stamp.read_text(encoding="utf-8").strip() != digest.hexdigest():
        # The copy's setup would reinstall into the shared .venv, pointing its editable
        # install of apps at this temporary copy: every later test would then import it.
        pytest.fail("the .venv is older than requirements.txt: run `python3 course.py setup`")
    root = tmp_path / "course"
    root.mkdir()
    for name in ("course.py", "pyproject.toml", "requirements.txt", ".gitignore"):
        shutil.copy2(REPO_ROOT / name, root / name)
    ignore = shutil.ignore_patterns("__pycache__", "local-*.pub")
    for folder in ("apps", "models", "trusted_keys"):
        shutil.copytree(REPO_ROOT / folder, root / folder, ignore=ignore)
    (root / ".venv").symlink_to(REPO_ROOT / ".venv", target_is_directory=True)
    with (root / ".gitignore").open("a") as ignored:
        ignored.write(".venv\n")  # a link, which the folder pattern .venv/ does not match
    identity = {"GIT_AUTHOR_NAME": "learner", "GIT_AUTHOR_EMAIL": "learner@example.org"}
    identity |= {"GIT_COMMITTER_NAME": "learner", "GIT_COMMITTER_EMAIL": "learner@example.org"}
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "clone"]):
        subprocess.run([git, *command], cwd=root, env={**os.environ, **identity}, check=True)
    return root


def run_as_written(command: str, root: Path) -> subprocess.CompletedProcess:
    """A command exactly as a message printed it, typed into a shell at the repository root."""
    result = subprocess.run(  # noqa: S602 - a shell, exactly as the learner types it
        command, shell=True, cwd=root, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"`{command}` failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_the_commands_suggested_for_a_failed_model_work_as_written(course_copy):
    root = course_copy
    onnx = root / "models" / "species-classifier" / "1" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"tampered")
    with course_start(root=root) as stack:
        assert stack.process.wait(timeout=STARTUP_SECONDS) == 1
        output = stack.finish()
    assert "not starting the apps" in output
    (failed,) = [line for line in output.splitlines() if "FAILED" in line]
    suggested = re.findall(r"`([^`]+)`", failed)
    assert suggested == ["git checkout models/", "python3 course.py train"], failed

    # Train a new version: the old broken one no longer blocks the apps.
    run_as_written("python3 course.py train", root)
    with course_start(root=root) as stack:
        output = wait_until_up(stack)
        api = f"http://127.0.0.1:{stack.api_port}"
        models = {
            m["name"]: m for m in requests.get(f"{api}/v1/models", timeout=5).json()["models"]
        }
        os.kill(stack.process.pid, signal.SIGTERM)
        assert stack.process.wait(timeout=STOP_SECONDS) == 0
    assert "Not served, having failed its checks: species-classifier v1" in output
    assert models["species-classifier"]["versions"] == [2], "v1 is left out, v2 served"
    assert models["body-mass-regressor"]["versions"] == [1, 2]

    # Or restore the file: every version passes again.
    run_as_written("git checkout models/", root)
    check = subprocess.run(
        [sys.executable, "-m", "apps"], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert check.returncode == 0 and "FAILED" not in check.stdout, check.stdout
