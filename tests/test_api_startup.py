"""Starting and stopping the real server: settings it must refuse, warnings it must give,
and nothing left behind in the temporary folder.
"""

import json
import os
import signal
import time

import psutil
import pytest

from .servers import running_api

pytestmark = pytest.mark.slow

SERVERS = [
    pytest.param(
        "gunicorn", marks=pytest.mark.skipif(os.name == "nt", reason="no gunicorn on Windows")
    ),
    "waitress",
]
OPEN_WARNING = "no API keys are configured and the server listens on"


def log_lines(path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


# --- a key file without a key ------------------------------------------------------------


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize(
    "content",
    ["# python3 was not found, so no key was written\n", "", "\n   \n# rotated\n"],
    ids=["comment", "empty", "blank-and-comment"],
)
def test_a_key_file_without_a_key_stops_the_server(server, content, tmp_path):
    keys = tmp_path / "api_key.txt"
    keys.write_text(content, encoding="utf-8")
    log = tmp_path / "server.log"
    env = {"API_BACKEND": "onnx", "API_KEYS_FILE": str(keys)}
    with (
        pytest.raises(RuntimeError, match=r"exited with code [1-9]"),
        running_api(env, server=server, log_path=log),
    ):
        pass  # pragma: no cover - the server must not start
    text = "\n".join(log_lines(log))
    assert f"API_KEYS_FILE names {keys}, which holds no key" in text
    assert "Traceback" not in text


def test_a_missing_key_file_stops_the_server(tmp_path):
    log = tmp_path / "server.log"
    env = {"API_BACKEND": "onnx", "API_KEYS_FILE": str(tmp_path / "nowhere.txt")}
    with pytest.raises(RuntimeError, match="exited"), running_api(env, log_path=log):
        pass  # pragma: no cover
    text = "\n".join(log_lines(log))
    assert "API_KEYS_FILE: cannot read" in text and "Traceback" not in text


# --- a warning when the server is open to the network ------------------------------------


@pytest.mark.parametrize("server", SERVERS)
def test_no_keys_on_every_interface_is_warned_about(server, tmp_path):
    log = tmp_path / "server.log"
    with running_api({"API_BACKEND": "onnx"}, server=server, log_path=log, host="0.0.0.0"):
        pass
    warnings = [
        json.loads(line) for line in log_lines(log) if line.startswith("{") and OPEN_WARNING in line
    ]
    assert len(warnings) == 1, log_lines(log)
    assert warnings[0]["level"] == "WARNING"
    assert "0.0.0.0" in warnings[0]["message"] and "API_KEYS" in warnings[0]["message"]


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize(
    ("host", "env"),
    [("127.0.0.1", {}), ("0.0.0.0", {"API_KEYS": "a-key"})],
    ids=["loopback-without-keys", "every-interface-with-keys"],
)
def test_no_warning_when_the_server_is_local_or_keyed(server, host, env, tmp_path):
    log = tmp_path / "server.log"
    with running_api({"API_BACKEND": "onnx", **env}, server=server, log_path=log, host=host):
        pass
    assert not [line for line in log_lines(log) if OPEN_WARNING in line]


# --- the run's temporary folder ----------------------------------------------------------


@pytest.fixture
def private_tmp(tmp_path):
    """A temporary folder for the server alone: other test runs use the shared one."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


def ours(folder) -> list[str]:
    """The server's own entries in a temporary folder (ONNX Runtime keeps one file of its
    own there, ``.ses``, which it reuses from run to run)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("api-"))


@pytest.mark.skipif(os.name == "nt", reason="waitress (one process) needs no shared folder")
def test_a_stopped_server_leaves_no_folder_behind(private_tmp):
    env = {"API_BACKEND": "onnx", "TMPDIR": str(private_tmp), "API_RATE_LIMIT": "100/minute"}
    with running_api(env):
        during = ours(private_tmp)
    assert [name.startswith("api-server-") for name in during] == [True]
    assert ours(private_tmp) == []


@pytest.mark.skipif(os.name == "nt", reason="SIGHUP reloads gunicorn, which Windows lacks")
def test_a_reloaded_server_leaves_no_folder_behind(private_tmp):
    env = {"API_BACKEND": "onnx", "TMPDIR": str(private_tmp)}
    with running_api(env) as url:
        master = next(
            p for p in psutil.Process().children() if p.environ().get("TMPDIR") == str(private_tmp)
        )
        workers = {p.pid for p in master.children()}
        master.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while not ({p.pid for p in master.children()} - workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert {p.pid for p in master.children()} - workers, "the server did not reload"
        assert len(ours(private_tmp)) == 1
        assert url
    assert ours(private_tmp) == []


@pytest.mark.parametrize("server", SERVERS)
def test_a_failed_start_leaves_no_folder_behind(server, private_tmp, tmp_path):
    env = {"API_BACKEND": "no-such-backend", "TMPDIR": str(private_tmp)}
    log = tmp_path / "server.log"
    with (
        pytest.raises(RuntimeError, match="exited"),
        running_api(env, server=server, log_path=log),
    ):
        pass  # pragma: no cover
    assert "API_BACKEND must be one of ['onnx', 'sklearn']" in "\n".join(log_lines(log))
    assert ours(private_tmp) == []
