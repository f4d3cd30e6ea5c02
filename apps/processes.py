"""Run a server in the background: start it, wait until it answers, stop it and its workers.

One way for everything that starts a server as a child process: the stack that
``python3 course.py start`` runs, the tests, the benchmarks and the notebooks. What makes
it work on every machine is written here once:

* the child gets a process group of its own (a new session on Linux and macOS): a stop
  then reaches a gunicorn master's workers too, and a Ctrl-C in the terminal reaches
  only the program that started it, which stops its children in order;
* "up" means its health URL answers 200, not merely that the process exists;
* a stop is polite first (SIGTERM; on Windows, ``terminate``), forceful if the child
  hangs, and then sweeps its group, so a crashed master's workers cannot keep the port.

Standard library only, so that any app and any script can use it.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, cast

from apps.config import REPO_ROOT

ON_WINDOWS = os.name == "nt"
STOP_SECONDS = 15
"""How long a child may take to stop by itself before it is killed."""


class ServerExited(RuntimeError):
    """The server stopped while we waited for it to answer; its log says why."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the system picks it)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def spawn(
    command: Sequence[str], env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen:
    """Start ``command`` from the repository's root, in a process group of its own.

    Its output goes to the file ``log`` (or nowhere). On Windows a new process group
    also keeps the console's Ctrl-C away from it: its parent stops it.
    """
    group: dict[str, Any]
    if sys.platform == "win32":  # ON_WINDOWS, in the form type checkers understand
        group = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    else:
        group = {"start_new_session": True}
    output: IO[bytes] | int = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(  # noqa: S603 - the caller's own command, never a client's
            list(command), cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, **group
        )
    finally:
        if not isinstance(output, int):
            output.close()  # the child has its own copy of the file handle


def answer(url: str, timeout: float = 1.0) -> tuple[int | None, bytes]:
    """The status and body of a GET of ``url``; ``None`` when nothing answers in time."""
    if not url.startswith(("http://", "https://")):  # a health URL, never a file: or ftp:
        raise ValueError(f"not an http(s) URL: {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (checked)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError):
        return None, b""


def wait_until_answers(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    """Wait until ``url`` answers 200; fail if the process exits first, or if time is up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            program = cast("list[str]", process.args)[0]  # spawn() passes a list
            raise ServerExited(f"{program} exited with code {process.returncode}")
        if answer(url)[0] == 200:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


def send_stop(process: subprocess.Popen, force: bool = False) -> None:
    """SIGTERM (or SIGKILL) to the child's process group; on Windows, Ctrl-Break (or kill).

    Graceful first, so that a server finishes what it queued (the API flushes its
    prediction log). Only while the child has not been waited for: until then its
    process id, which is also its group's id, cannot belong to anyone else.
    """
    if process.poll() is not None:
        return
    if sys.platform == "win32":  # waitress and streamlit: single processes, groups of their own
        if force:
            process.kill()
        else:
            process.send_signal(signal.CTRL_BREAK_EVENT)
        return
    signum = signal.SIGKILL if force else signal.SIGTERM
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:  # in no group of its own
        process.send_signal(signum)


def stop_all(processes: Sequence[subprocess.Popen], seconds: float = STOP_SECONDS) -> None:
    """Ask every child to stop at once, wait for all, and kill those that hang.

    Then, on Linux and macOS, kill whatever is left in each child's group: the workers of
    a gunicorn master that crashed would otherwise keep the port. A group's id is not
    reused while any member of the group lives, so this reaches only what the child left.
    """
    for process in processes:
        send_stop(process)
    deadline = time.monotonic() + seconds
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            send_stop(process, force=True)
            process.wait(timeout=5)
        if not ON_WINDOWS:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def running(
    command: Sequence[str],
    health_url: str,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    startup_seconds: float = 60,
) -> Iterator[subprocess.Popen]:
    """Start a server, wait until ``health_url`` answers, and stop it however the block ends."""
    process = spawn(command, env, log)
    try:
        wait_until_answers(health_url, process, startup_seconds)
        yield process
    finally:
        stop_all([process])
