"""API keys: hashed in the key file, scoped (401 / 403), rotated with no restart.

The key file holds hashes only; a request's key is hashed and compared with every entry
in constant time; a key that lacks a route's scope gets 403, no key (or a wrong one)
401. The same matrix is checked on the real gunicorn server, and a rotation (add a key,
move, remove the old one) is run with the key command against a running server.
"""

import hmac
import json
import os
import stat
import subprocess
import sys

import pytest
import requests

from apps.api import keys as keys_module
from apps.api.app import create_app
from apps.api.config import SettingsError, load_settings
from apps.api.keys import KeyRing, make_key, parse_line, read_key_file
from apps.client import ClientError, PenguinClient
from apps.config import REPO_ROOT
from apps.stack import key_problem

from .conftest import RECORD
from .keyfiles import key_line
from .servers import running_api

CLASSIFIER = "species-classifier"
PREDICT_KEY, ADMIN_KEY, BOTH_KEY = "p" * 43, "a" * 43, "b" * 43
PREDICT_ROUTE = ("POST", f"/v1/models/{CLASSIFIER}/predict", {"record": RECORD})
ADMIN_ROUTE = ("GET", "/v1/admin/keys", None)
# key -> (status on the predict route, status on the admin route)
MATRIX = {
    None: (401, 401),
    "not-a-key-of-this-server": (401, 401),
    PREDICT_KEY: (200, 403),
    ADMIN_KEY: (403, 200),
    BOTH_KEY: (200, 200),
}


def keys_command(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """``python -m apps.api.keys ...``, what ``python3 course.py key ...`` runs."""
    return subprocess.run(
        [sys.executable, "-m", "apps.api.keys", *args],
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "api_keys.txt"
    lines = [
        key_line("reader", PREDICT_KEY),
        key_line("operator", ADMIN_KEY, ("admin",)),
        key_line("both", BOTH_KEY, ("predict", "admin")),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- the key file ----------------------------------------------------------------------


def test_a_new_key_is_long_random_and_its_line_holds_only_its_hash():
    key, entry = make_key("ui-2026-11", ["predict"])
    other, _ = make_key("ui-2026-11", ["predict"])
    assert len(key) == 43 and key != other
    line = entry.line()
    assert key not in line
    assert parse_line(line) == entry
    assert line.split() == ["ui-2026-11", "predict", "sha256:" + entry.digest.hex()]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("a-plain-secret-key-0123456789\n", "line 1, is not 'name scopes sha256:<hash>'"),
        ("# ok\nui predict a-plain-secret-key-0123456789\n", "line 2, is not"),
        ("ui predict sha256:abc\n", "line 1, has a hash that is not 64 hexadecimal digits"),
        ("ui root sha256:" + "0" * 64 + "\n", "scopes must be some of predict, admin"),
        ("u i predict sha256:" + "0" * 64 + "\n", "line 1, is not"),
        (
            "ui predict sha256:" + "0" * 64 + "\nui admin sha256:" + "1" * 64 + "\n",
            "two lines have the same name",
        ),
        (
            "ui predict sha256:" + "0" * 64 + "\nops admin sha256:" + "0" * 64 + "\n",
            "two lines have the same key",
        ),
        ("# no key yet\n\n", "which holds no key"),
    ],
    ids=[
        "plain-key",
        "plain-key-in-a-line",
        "short-hash",
        "unknown-scope",
        "spaces-in-name",
        "same-name",
        "same-key",
        "no-key",
    ],
)
def test_a_bad_key_file_stops_the_start_and_never_echoes_a_key(tmp_path, content, reason):
    path = tmp_path / "api_keys.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        create_app(load_settings(environ={"API_KEYS_FILE": str(path)}))
    assert reason in str(caught.value)
    assert "a-plain-secret-key" not in str(caught.value)


def test_the_key_command_writes_the_hash_to_the_key_file_and_the_key_apart(tmp_path):
    key_file, key_path = tmp_path / "secrets" / "api_keys.txt", tmp_path / "secrets" / "ui.txt"
    made = keys_command(
        "new", "--name", "ui", "--add-to", str(key_file), "--save-key", str(key_path)
    )
    assert made.returncode == 0, made.stderr
    key = key_path.read_text(encoding="utf-8").strip()
    assert key not in made.stdout and key not in key_file.read_text(encoding="utf-8")
    (entry,) = read_key_file(key_file)
    assert (entry.name, entry.scopes) == ("ui", {"predict"})
    assert KeyRing((entry,)).match(key) == entry
    if os.name == "posix":
        for path in (key_file, key_path):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    again = keys_command("new", "--name", "ui", "--add-to", str(key_file))
    assert again.returncode == 1 and "already has a key named ui" in again.stderr
    admin = keys_command("new", "--name", "ops", "--scope", "predict", "--scope", "admin")
    assert admin.returncode == 0
    assert "ops  admin,predict  sha256:" in admin.stdout and "key:  " in admin.stdout


def test_the_key_command_hashes_a_key_you_have_lists_and_removes(key_file):
    hashed = keys_command("hash", "--name", "legacy", stdin=PREDICT_KEY + "\n")
    assert hashed.stdout.strip() == key_line("legacy", PREDICT_KEY)
    short = keys_command("hash", "--name", "weak", stdin="password\n")
    assert short.returncode == 1 and "20 characters or more" in short.stderr

    listed = keys_command("list", str(key_file))
    assert listed.stdout.split("\n")[:3] == [
        "reader  predict",
        "operator  admin",
        "both  admin,predict",
    ]
    assert keys_command("remove", str(key_file), "--name", "reader").returncode == 0
    assert [k.name for k in read_key_file(key_file)] == ["operator", "both"]
    missing = keys_command("remove", str(key_file), "--name", "reader")
    assert missing.returncode == 1 and "has no key named reader" in missing.stderr


def test_the_last_key_cannot_be_removed(tmp_path):
    path = tmp_path / "keys.txt"
    path.write_text(key_line("only", PREDICT_KEY) + "\n", encoding="utf-8")
    refused = keys_command("remove", str(path), "--name", "only")
    assert refused.returncode == 1 and "add its successor first" in refused.stderr


def test_a_key_is_compared_with_every_entry_without_stopping_early(monkeypatch):
    entries = tuple(make_key(f"k{i}", ["predict"]) for i in range(5))
    ring = KeyRing(tuple(entry for _, entry in entries))
    compared, compare = [], hmac.compare_digest

    def counting(a, b):
        compared.append(b)
        return compare(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", counting)
    assert ring.match(entries[0][0]) == entries[0][1]  # the first entry matches ...
    assert len(compared) == 5  # ... and the other four are compared all the same
    assert ring.match("wrong") is None and len(compared) == 10


# --- scopes, with the test client --------------------------------------------------------


@pytest.fixture(scope="module")
def scoped():
    app = create_app(
        {
            "API_KEYS": (PREDICT_KEY,),
            "API_ADMIN_KEYS": (ADMIN_KEY,),
            "RATE_LIMIT": None,
        }
    )
    return app.test_client()


@pytest.mark.parametrize(("method", "path", "body"), [PREDICT_ROUTE, ("GET", "/v1/models", None)])
@pytest.mark.parametrize(
    ("key", "status"), [(None, 401), ("wrong", 401), (PREDICT_KEY, 200), (ADMIN_KEY, 403)]
)
def test_model_routes_need_the_predict_scope(scoped, method, path, body, key, status):
    headers = {"X-API-Key": key} if key else {}
    with scoped.open(path, method=method, json=body, headers=headers) as response:
        assert response.status_code == status
        if status != 200:
            assert (
                response.get_json()["error"]["code"]
                == {401: "unauthorized", 403: "forbidden"}[status]
            )
    if status == 403:
        assert "'predict' scope" in response.get_json()["error"]["message"]


@pytest.mark.parametrize(
    ("key", "status"), [(None, 401), ("wrong", 401), (PREDICT_KEY, 403), (ADMIN_KEY, 200)]
)
def test_admin_routes_need_the_admin_scope(scoped, key, status):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with scoped.get("/v1/admin/keys", headers=headers) as response:
        assert response.status_code == status
        answer = response.get_json()
    if status == 200:
        assert answer == {
            "keys": [
                {"name": "api-keys-1", "scopes": ["predict"]},
                {"name": "api-admin-keys-1", "scopes": ["admin"]},
            ]
        }
        assert PREDICT_KEY not in json.dumps(answer)
    if status == 403:
        assert "'admin' scope" in answer["error"]["message"]


def test_the_openapi_document_names_the_scope_of_each_route(scoped):
    document = scoped.get("/openapi.json", headers={"X-API-Key": PREDICT_KEY}).get_json()
    admin = document["paths"]["/v1/admin/keys"]["get"]
    predict = document["paths"][f"/v1/models/{CLASSIFIER}/predict"]["post"]
    assert "'admin' scope" in admin["responses"]["403"]["description"]
    assert "'predict' scope" in predict["responses"]["403"]["description"]
    assert admin["security"] == predict["security"] == [{"ApiKey": []}]


def test_without_any_key_every_route_is_open():
    client = create_app({"API_KEYS": (), "RATE_LIMIT": None}).test_client()
    assert client.get("/v1/admin/keys").get_json() == {"keys": []}
    assert client.get("/v1/models").status_code == 200


def test_the_stack_says_when_the_ui_has_no_key_to_send():
    assert "PENGUINS_API_KEY" in key_problem({"API_KEYS_FILE": "secrets/api_keys.txt"})
    assert key_problem({"API_KEYS_FILE": "f", "PENGUINS_API_KEY": "k"}) is None
    assert key_problem({"API_KEYS": "k"}) is None and key_problem({}) is None


# --- the real server ---------------------------------------------------------------------


def status_of(url: str, route: tuple, key: str | None) -> int:
    method, path, body = route
    headers = {"X-API-Key": key, "Connection": "close"} if key else {"Connection": "close"}
    with requests.request(method, url + path, json=body, headers=headers, timeout=10) as answer:
        return answer.status_code


@pytest.mark.slow
def test_scopes_on_the_real_server(key_file):
    with running_api({"API_BACKEND": "onnx", "API_KEYS_FILE": str(key_file)}) as url:
        for open_path in ("/health/ready", "/metrics", "/openapi.json", "/docs"):
            assert status_of(url, ("GET", open_path, None), None) == 200, open_path
        seen = {
            key: (status_of(url, PREDICT_ROUTE, key), status_of(url, ADMIN_ROUTE, key))
            for key in MATRIX
        }
        listing = requests.get(url + "/v1/admin/keys", headers={"X-API-Key": ADMIN_KEY}, timeout=10)
        with pytest.raises(ClientError) as refused:  # the client says so, and does not retry
            PenguinClient(url, api_key=ADMIN_KEY, retries=3).models()
    assert (refused.value.status, refused.value.code) == (403, "forbidden")
    assert seen == MATRIX
    assert [k["name"] for k in listing.json()["keys"]] == ["reader", "operator", "both"]


@pytest.mark.slow
def test_a_rotation_on_a_running_server_needs_no_restart(tmp_path):
    """The documented steps: add the new key, move the client, remove the old key."""
    key_file, log = tmp_path / "api_keys.txt", tmp_path / "server.log"
    old_key = tmp_path / "old.txt"
    assert keys_command(
        "new", "--name", "ui-old", "--add-to", str(key_file), "--save-key", str(old_key)
    ).returncode == 0  # fmt: skip
    env = {"API_BACKEND": "onnx", "API_KEYS_FILE": str(key_file), "LOG_LEVEL": "INFO"}
    with running_api(env, log_path=log) as url:
        old = old_key.read_text(encoding="utf-8").strip()
        assert {status_of(url, PREDICT_ROUTE, old) for _ in range(10)} == {200}

        new_key = tmp_path / "new.txt"
        made = keys_command(
            "new", "--name", "ui-new", "--add-to", str(key_file), "--save-key", str(new_key)
        )
        assert made.returncode == 0, made.stderr
        new = new_key.read_text(encoding="utf-8").strip()
        # Both keys are valid now, whichever worker answers: each reads the file again.
        both = [status_of(url, PREDICT_ROUTE, key) for _ in range(10) for key in (old, new)]
        assert set(both) == {200}

        assert keys_command("remove", str(key_file), "--name", "ui-old").returncode == 0
        assert {status_of(url, PREDICT_ROUTE, old) for _ in range(10)} == {401}
        assert {status_of(url, PREDICT_ROUTE, new) for _ in range(10)} == {200}
    used = [
        json.loads(line).get("key")
        for line in log.read_text(encoding="utf-8").splitlines()
        if line.startswith("{") and '"request"' in line
    ]
    assert used.count("ui-old") == 20 and used.count("ui-new") == 20  # the access log says who
