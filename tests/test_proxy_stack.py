"""The production stack in real containers: nginx in front of two API replicas and Redis.

One stack is started for the module (Podman, ``--scale api=2``), with a fresh local
certificate authority (``docker/make_certs.py``) and key, and every test talks to it
over real sockets on 127.0.0.1, as a client on the network would:

* TLS: ``curl --cacert`` and ``requests`` with ``verify=`` the CA succeed; plain HTTP is
  redirected; TLS 1.0 and 1.1 are refused by the server; HSTS is sent;
* the proxy's own refusals are JSON, and ``X-Request-ID`` goes through (or is made);
* 50 slow clients, sending their headers a byte at a time, do not delay a health check
  by more than a second (the figure is printed);
* one replica killed during a load of predictions: no request fails;
* the rate limit, counted in Redis, holds across both replicas (limit +- 1);
* the hardening of every container, and the key files readable by their owner only;
* no secret in any image: each image's history and every file of every layer (from
  ``podman save``) are searched for the keys, the CA's and the server's private keys, and
  a canary file put in ``secrets/`` (inside the build context) before the build.

Like ``tests/test_containers.py`` it runs in CI or with ``RUN_CONTAINER_TESTS=1``, after
``.ci/containers.sh`` has made the base image (it builds what is missing, from cache).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tarfile
import threading
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from apps.api.keys import make_key
from tools.containers import BASE_IMAGE, ROOT, Stack

from .conftest import RECORD, skip_or_fail
from .servers import free_port
from .test_containers import why_not_run

RATE_LIMIT = 2000
"""Per key and minute: the load test spreads over keys to stay under it; the limit test
uses a key of its own and reaches it in seconds."""
KEYS = 12
PREDICT = "/v1/models/species-classifier/predict"
CONTAINER_USER = 10001

pytestmark = [pytest.mark.container, pytest.mark.slow]


def make_secrets(folder: Path) -> dict[str, Path]:
    """A local CA and server certificate, and a key file with ``KEYS`` keys."""
    subprocess.run(
        [
            sys.executable,
            "docker/make_certs.py",
            str(folder / "tls"),
            "--owner",
            str(CONTAINER_USER),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    plain = [make_key(f"client-{n}", ["predict"]) for n in range(KEYS)]
    keys, ui_key = folder / "api_keys.txt", folder / "ui_api_key.txt"
    keys.write_text("".join(entry.line() + "\n" for _, entry in plain))  # hashes only
    ui_key.write_text(plain[0][0] + "\n")
    for path in (keys, ui_key):
        path.chmod(0o600)
        os.chown(path, CONTAINER_USER, CONTAINER_USER)
    return {"tls": folder / "tls", "keys": keys, "ui_key": ui_key, "plain": [k for k, _ in plain]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    reason = why_not_run()
    if reason:
        skip_or_fail(reason)
    if os.geteuid() != 0:
        skip_or_fail("the stack test runs as root (the key files are given to user 10001)")
    workdir = tmp_path_factory.mktemp("stack")
    made = make_secrets(workdir)
    # A secret where a careless Dockerfile (COPY . .) or .dockerignore would pick it up.
    canary = ROOT / "secrets" / f"layer-canary-{secrets.token_hex(4)}.txt"
    canary.parent.mkdir(exist_ok=True)
    made["canary"] = secrets.token_urlsafe(24)
    canary.write_text(made["canary"] + "\n")
    ports = {"HTTP_PORT": free_port(), "HTTPS_PORT": free_port(), "UI_PORT": free_port()}
    env = {
        "VERSION": "ci",
        "API_KEYS_SECRET": str(made["keys"]),
        "UI_KEY_SECRET": str(made["ui_key"]),
        "TLS_CERT_FILE": str(made["tls"] / "server.pem"),
        "TLS_KEY_FILE": str(made["tls"] / "server.key"),
        "API_RATE_LIMIT": f"{RATE_LIMIT}/minute",
        **{name: str(port) for name, port in ports.items()},
    }
    with Stack("penguins-proxy-test", workdir, env) as running, removing(canary):
        if running.podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
            skip_or_fail(f"no {BASE_IMAGE}: run .ci/containers.sh first (it makes it)")
        running.remove()  # a stack left by a killed run
        running.compose("build", "api", "proxy", "redis", timeout=1800)
        running.compose("up", "-d", "--no-build", "--scale", "api=2", "redis", "api")
        for container in running.containers("api"):
            running.wait_healthy(container)
        # The proxy resolves the replicas' names when it starts: once they exist.
        running.compose("up", "-d", "--no-build", "--no-deps", "proxy")
        (proxy,) = running.containers("proxy")
        running.wait_healthy(proxy, seconds=60)
        running.base = f"https://127.0.0.1:{ports['HTTPS_PORT']}"
        running.http_base = f"http://127.0.0.1:{ports['HTTP_PORT']}"
        running.ca = str(made["tls"] / "ca.pem")
        running.keys = made["plain"]
        running.made = made
        wait_until_ready(running)
        yield running


@contextlib.contextmanager
def removing(path: Path):
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def wait_until_ready(stack, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if requests.get(stack.base + "/health/ready", verify=stack.ca, timeout=5).ok:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the stack did not answer through the proxy")
        time.sleep(1)


def predict(session: requests.Session, stack, key: str, **headers) -> requests.Response:
    return session.post(
        stack.base + PREDICT,
        json={"record": RECORD},
        headers={"X-API-Key": key, **headers},
        verify=stack.ca,
        timeout=30,
    )


# --- TLS --------------------------------------------------------------------------------


def test_curl_with_the_local_ca_succeeds(stack):
    curl = shutil.which("curl") or skip_or_fail("curl is missing (Debian: curl)")
    ready = stack.base + "/health/ready"
    result = subprocess.run(
        [curl, "-sS", "--cacert", stack.ca, "-o", "/dev/null", "-w", "%{http_code}", ready],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.stdout == "200", result.stderr
    # Without the CA, the certificate is not trusted: the CA is what makes it work.
    untrusted = subprocess.run(
        [curl, "-sS", "-o", "/dev/null", ready],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert untrusted.returncode == 60, untrusted  # curl: peer certificate cannot be verified


def test_requests_with_the_local_ca_succeeds_and_gets_hsts(stack):
    response = requests.get(stack.base + "/v1/models", verify=stack.ca, timeout=10)
    assert response.status_code == 401  # through the proxy to the API, which wants a key
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(stack.base + "/health/ready", timeout=10)  # the system's CAs only


def test_plain_http_is_redirected_to_https(stack):
    response = requests.post(
        stack.http_base + PREDICT + "?x=1", json={}, allow_redirects=False, timeout=10
    )
    assert response.status_code == 308  # keeps the method and body, unlike 301 and 302
    assert response.headers["Location"] == stack.base + PREDICT + "?x=1"


def handshake(stack, version: ssl.TLSVersion) -> str:
    """Connect with TLS at exactly ``version``; the version agreed, or the error."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(stack.ca)
    with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    context.set_ciphers("ALL:@SECLEVEL=0")  # let this client offer what old ones did
    port = int(stack.base.rsplit(":", 1)[1])
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            return tls.version()
    except ssl.SSLError as error:
        return f"refused: {error.reason}"


SERVER_REFUSALS = ("refused: TLSV1_ALERT_PROTOCOL_VERSION", "refused: UNSUPPORTED_PROTOCOL")


def test_only_tls_12_and_13_are_accepted(stack):
    assert handshake(stack, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    assert handshake(stack, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        answer = handshake(stack, old)
        # The server's alert, not this client's refusal to try: the hello was sent.
        assert answer in (
            "refused: TLSV1_ALERT_PROTOCOL_VERSION",
            "refused: UNSUPPORTED_PROTOCOL",
        ), (
            old,
            answer,
        )


# --- what the proxy adds ------------------------------------------------------------------


def test_request_ids_pass_through_or_are_made(stack):
    given = requests.get(
        stack.base + "/v1/models/none",
        headers={"X-Request-ID": "trace-123"},
        verify=stack.ca,
        timeout=30,
    )
    assert given.headers["X-Request-ID"] == "trace-123"
    assert given.json()["error"]["request_id"] == "trace-123"  # the API saw the same id
    made = requests.get(stack.base + "/v1/models/none", verify=stack.ca, timeout=30)
    assert len(made.headers["X-Request-ID"]) == 32
    assert made.json()["error"]["request_id"] == made.headers["X-Request-ID"]


def test_the_proxys_refusals_are_json(stack):
    too_large = requests.post(
        stack.base + PREDICT,
        data=b"x" * (8 * 1024 * 1024 + 1),
        headers={"Content-Type": "application/json", "X-API-Key": stack.keys[0]},
        verify=stack.ca,
        timeout=60,
    )
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "body_too_large"
    metrics = requests.get(stack.base + "/metrics", verify=stack.ca, timeout=10)
    assert metrics.status_code == 404 and metrics.json()["error"]["code"] == "not_found"


# --- slow clients -------------------------------------------------------------------------

SLOW_CLIENTS = 50
SLOW_SECONDS = 6.0  # under nginx's client_header_timeout (10 s): all of them stay connected
HEALTH_BOUND = 1.0  # the behaviour asked of the stack: a health check is never delayed more


def slow_client(stack, stop: threading.Event, sent: list[int], index: int) -> None:
    """Open TLS, then send a request's headers one byte every 0.1 s, never finishing."""
    context = ssl.create_default_context(cafile=stack.ca)
    port = int(stack.base.rsplit(":", 1)[1])
    header = b"GET /health/ready HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 10_000
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        for byte in header:
            if stop.is_set():
                return
            tls.sendall(bytes([byte]))
            sent[index] += 1
            stop.wait(0.1)


def test_fifty_slow_clients_do_not_delay_a_health_check(stack):
    stop = threading.Event()
    sent = [0] * SLOW_CLIENTS
    threads = [
        threading.Thread(target=slow_client, args=(stack, stop, sent, i), daemon=True)
        for i in range(SLOW_CLIENTS)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # every slow client is connected and trickling
    latencies = []
    deadline = time.monotonic() + SLOW_SECONDS - 1.0
    while time.monotonic() < deadline:
        start = time.perf_counter()
        response = requests.get(stack.base + "/health/ready", verify=stack.ca, timeout=10)
        latencies.append(time.perf_counter() - start)
        assert response.status_code == 200
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    # The attack was on: every slow client was still sending when the checks ran.
    assert min(sent) >= 40, sorted(sent)[:5]
    worst, median = max(latencies), sorted(latencies)[len(latencies) // 2]
    print(
        f"\n{SLOW_CLIENTS} slow clients: {len(latencies)} health checks through the proxy, "
        f"median {median * 1000:.0f} ms, worst {worst * 1000:.0f} ms"
    )
    assert worst < HEALTH_BOUND, latencies


# --- replicas -----------------------------------------------------------------------------


def upstreams(stack, request_id_prefix: str) -> Counter:
    """Which replica (address) served the requests whose id starts with the prefix."""
    (proxy,) = stack.containers("proxy")
    logs = stack.podman("logs", proxy).stdout.splitlines()
    served = Counter()
    for line in logs:
        if request_id_prefix in line:
            entry = json.loads(line)
            if entry["request_id"].startswith(request_id_prefix):
                served[entry["upstream"]] += 1
    return served


def test_the_rate_limit_holds_across_replicas(stack):
    key = stack.keys[-1]  # a key the other tests do not use

    def one(n):
        with requests.Session() as session:
            return predict(session, stack, key, **{"X-Request-ID": f"limit-{n}"}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = Counter(pool.map(one, range(RATE_LIMIT + 100)))
    served = upstreams(stack, "limit-")
    print(f"\nrate limit {RATE_LIMIT}/minute, 2 replicas: {dict(statuses)}; served {dict(served)}")
    assert set(statuses) <= {200, 429}, statuses
    assert RATE_LIMIT - 1 <= statuses[200] <= RATE_LIMIT + 1, statuses
    assert len(served) >= 2, f"one replica served everything: {served}"


LOAD_THREADS = 4
LOAD_SECONDS = 12.0


def test_killing_a_replica_under_load_fails_no_request(stack):
    statuses = Counter()
    errors = []
    stop = threading.Event()
    counting = threading.Lock()

    def load(offset):
        keys = stack.keys[:-1]  # not the rate-limit test's key
        with requests.Session() as session:
            for n in itertools.count(offset):
                if stop.is_set():
                    return
                try:
                    response = predict(session, stack, keys[n % len(keys)])
                    with counting:
                        statuses[response.status_code] += 1
                except requests.RequestException as error:
                    errors.append(repr(error))

    replicas = stack.containers("api")
    assert len(replicas) == 2, replicas
    threads = [threading.Thread(target=load, args=(n,)) for n in range(LOAD_THREADS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(3)
        before = sum(statuses.values())
        stack.podman("kill", replicas[0])  # SIGKILL: no goodbye, requests in flight cut
        time.sleep(LOAD_SECONDS - 3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    print(
        f"\nkilled {replicas[0]} after {before} predictions; {sum(statuses.values())} in all: "
        f"{dict(statuses)}, {len(errors)} errors"
    )
    assert before > 0 and sum(statuses.values()) > before  # load ran before and after
    assert not errors, errors[:3]
    assert set(statuses) == {200}, statuses


# --- hardening and secrets ------------------------------------------------------------


@pytest.mark.parametrize("service", ["proxy", "api", "redis"])
def test_every_container_is_hardened(stack, service):
    for container in stack.containers(service):
        facts = stack.inspect(container)
        host = facts["HostConfig"]
        assert facts["EffectiveCaps"] in (None, []), facts["EffectiveCaps"]  # cap_drop: ALL
        assert host["ReadonlyRootfs"] is True
        assert any("no-new-privileges" in option for option in host["SecurityOpt"] or [])
        assert 0 < host["PidsLimit"] <= 256
        assert host["LogConfig"]["Type"] in ("json-file", "k8s-file")
        assert host["LogConfig"]["Size"] not in (None, "", "0B", "-1B") or host["LogConfig"].get(
            "Config", {}
        ).get("max-size")


def test_key_files_are_readable_by_their_owner_only(stack):
    (api, *_) = stack.containers("api")
    (proxy,) = stack.containers("proxy")
    for container, path in ((api, "/run/secrets/api_keys"), (proxy, "/run/secrets/tls_key")):
        mode = stack.podman("exec", container, "stat", "-L", "-c", "%a %u", path).stdout
        assert mode.split() == ["600", str(CONTAINER_USER)], (container, path, mode)


def layer_files(archive: Path):
    """(name, bytes) of every file of every layer of a ``podman save`` archive."""
    with tarfile.open(archive) as image:
        for member in image:
            if not member.isfile():
                continue
            blob = image.extractfile(member)
            if member.name.endswith(".tar") or member.name.endswith("/layer.tar"):
                with tarfile.open(fileobj=blob, mode="r|*") as layer:
                    for entry in layer:
                        if entry.isfile():
                            yield member.name + ":" + entry.name, layer.extractfile(entry).read()
            else:
                yield member.name, blob.read()


def needles_of(made: dict) -> dict[str, bytes]:
    found = {"canary": made["canary"].encode()}
    keys = made["plain"]
    found |= {f"api key {n}": key.encode() for n, key in enumerate(keys)}
    for name in ("ca.key", "server.key"):  # a line from the middle of each PEM
        lines = (made["tls"] / name).read_text().splitlines()
        found[name] = lines[len(lines) // 2].encode()
    return found


@pytest.mark.parametrize("service", ["proxy", "api", "redis"])
def test_no_secret_is_in_any_image_layer(stack, service, tmp_path):
    (container, *_) = stack.containers(service)
    image = stack.inspect(container)["Image"]
    needles = needles_of(stack.made)
    history = stack.podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert not [name for name, needle in needles.items() if needle.decode() in history]
    archive = tmp_path / "image.tar"
    stack.podman("save", "--format", "docker-archive", "-o", str(archive), image, timeout=600)
    files = leaks = 0
    for name, data in layer_files(archive):
        files += 1
        for what, needle in needles.items():
            if needle in data:
                leaks += 1
                print(f"{what} found in {name}")
    print(f"\n{service}: {files} files searched for {len(needles)} secrets")
    assert files > 1000  # the layers were really read (a Debian base alone has thousands)
    assert leaks == 0
