"""``apps.client`` against real servers: the API itself, and small servers that misbehave.

The retry and timeout tests need a server that really answers 429 or 503, or really
never answers; mocks would only test our idea of ``requests``. So the stubs below are
real HTTP servers on 127.0.0.1: one scripted (answers 503/429/4xx as told, then
forwards to the real API), one that accepts connections and never says a word.
"""

import contextlib
import itertools
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
import requests

from apps.client import ApiUnavailable, ClientError, PenguinClient
from apps.client.retry import MAX_WAIT_SECONDS, retry_after_seconds, wait_seconds

from .conftest import as_records
from .servers import free_port, running_api

FEATURES = ["island", "sex", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
ADELIE = {
    "island": "Torgersen",
    "sex": "male",
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181,
    "body_mass_g": 3750,
}
GENTOO = {"island": "Biscoe", "sex": None, "bill_length_mm": 46.1, "flipper_length_mm": 211}


def planned_waits(caplog) -> list[float]:
    """The waits the client announced before each retry ("retry in 0.40 s"), in order.

    What the client decided, read from its log: exact on any machine. Elapsed times only
    give lower bounds (a busy machine can always make a wait longer, never shorter).
    """
    return [
        float(record.getMessage().rsplit("retry in ", 1)[1].removesuffix(" s"))
        for record in caplog.records
        if record.name == "apps.client.client" and "retry in" in record.getMessage()
    ]


@pytest.fixture
def client(api_url) -> Iterator[PenguinClient]:
    with PenguinClient(api_url, timeout=10) as c:
        yield c


# --- the real API ---------------------------------------------------------------------


def test_health(client):
    assert client.live() is True
    ready = client.ready()
    assert ready["status"] == "ready"
    assert set(ready["models"]) == {"species-classifier", "body-mass-regressor"}


def test_models_and_metadata(client):
    models = {m["name"]: m for m in client.models()}
    assert set(models) == {"species-classifier", "body-mass-regressor"}
    assert models["species-classifier"]["task"] == "classification"
    latest = client.model("species-classifier")
    assert latest["version"] == models["species-classifier"]["latest"]
    assert [c["name"] for c in latest["input_schema"]["columns"]] == FEATURES
    pinned = client.model("body-mass-regressor", version=1)
    assert (pinned["name"], pinned["version"], pinned["task"]) == (
        "body-mass-regressor",
        1,
        "regression",
    )


def test_predict_one_and_many(client):
    one = client.predict("species-classifier", ADELIE)
    assert len(one) == 1 and one[0]["prediction"] == "Adelie"
    assert math.isclose(sum(one[0]["probabilities"].values()), 1, abs_tol=1e-5)
    many = client.predict("species-classifier", [ADELIE, GENTOO], version=1)
    assert [p["prediction"] for p in many] == ["Adelie", "Gentoo"]
    masses = client.predict("body-mass-regressor", {"species": "Gentoo", "island": "Biscoe"})
    assert 4000 < masses[0]["prediction"] < 6500


def test_predict_response_is_the_whole_answer(client):
    client.session.headers["X-Request-ID"] = "client-test-1"
    answer = client.predict_response("species-classifier", [ADELIE, GENTOO])
    assert answer["model"] == "species-classifier"
    assert answer["version"] == 1
    assert answer["request_id"] == "client-test-1"
    assert len(answer["predictions"]) == 2


def test_numpy_values_and_nan_are_sent_as_json(client):
    record = {**ADELIE, "bill_length_mm": float("nan"), "flipper_length_mm": pd.Series([181])[0]}
    assert client.predict("species-classifier", record)[0]["prediction"] == "Adelie"


def test_predict_frame_round_trip(client, penguins):
    frame = penguins[FEATURES].iloc[::3]  # a strided index: the result must keep it
    assert frame.isna().any().any(), "the sample should include missing values"
    result = client.predict_frame("species-classifier", frame)
    assert list(result.index) == list(frame.index)
    assert list(result.columns) == [
        *FEATURES,
        "prediction",
        "probability_Adelie",
        "probability_Chinstrap",
        "probability_Gentoo",
    ]
    pd.testing.assert_frame_equal(result[FEATURES], frame)
    expected = client.predict("species-classifier", as_records(frame, FEATURES))
    assert list(result["prediction"]) == [p["prediction"] for p in expected]
    accuracy = (result["prediction"] == penguins.loc[frame.index, "species"]).mean()
    assert accuracy > 0.9
    probabilities = result.filter(like="probability_").sum(axis=1)
    assert ((probabilities - 1).abs() < 1e-5).all()


def test_predict_frame_regression(client, penguins):
    columns = ["species", "island", "sex", "bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
    result = client.predict_frame("body-mass-regressor", penguins[columns].head(20))
    assert list(result.columns) == [*columns, "prediction"]
    assert result["prediction"].between(2500, 6500).all()


def test_invalid_input_error_carries_message_request_id_and_details(client):
    client.session.headers["X-Request-ID"] = "client-test-422"
    with pytest.raises(ClientError) as caught:
        client.predict("species-classifier", [ADELIE, {**ADELIE, "island": "Atlantis"}])
    error = caught.value
    assert not isinstance(error, ApiUnavailable)
    assert (error.status, error.code, error.request_id) == (422, "invalid_input", "client-test-422")
    assert "unknown category" in error.message
    assert error.details == [
        {
            "row": 1,
            "field": "island",
            "message": "unknown category; allowed values are ['Biscoe', 'Dream', 'Torgersen']",
        }
    ]
    assert error.message in str(error) and "client-test-422" in str(error)


def test_unknown_model_and_version(client):
    with pytest.raises(ClientError) as caught:
        client.model("unicorn-detector")
    assert (caught.value.status, caught.value.code) == (404, "model_not_found")
    assert caught.value.request_id  # the client's own id, echoed by the server
    with pytest.raises(ClientError, match=r"has no version '?99'?;"):
        client.predict("species-classifier", ADELIE, version=99)


def test_bad_records_are_refused_before_sending(client):
    with pytest.raises(TypeError, match="dict or a list of dicts"):
        client.predict("species-classifier", "island=Dream")
    with pytest.raises(TypeError, match="record 1"):
        client.predict("species-classifier", [ADELIE, ["Dream"]])


def test_defaults_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("PENGUINS_API_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("PENGUINS_API_KEY", "from-env")
    client = PenguinClient()
    assert client.base_url == "http://127.0.0.1:9"
    assert client.session.headers["X-API-Key"] == "from-env"
    assert "from-env" not in repr(client)
    monkeypatch.delenv("PENGUINS_API_URL")
    monkeypatch.delenv("PENGUINS_API_KEY")
    client = PenguinClient()
    assert client.base_url == "http://127.0.0.1:8000"
    assert "X-API-Key" not in client.session.headers


@pytest.fixture(scope="module")
def keyed_api() -> Iterator[str]:
    with running_api({"API_KEYS": "client-key-1,client-key-2"}) as url:
        yield url


@pytest.mark.slow
def test_api_key(keyed_api, monkeypatch):
    with pytest.raises(ClientError) as caught:
        PenguinClient(keyed_api, api_key="").models()
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")
    assert "X-API-Key" in caught.value.message
    with pytest.raises(ClientError, match="not valid"):
        PenguinClient(keyed_api, api_key="guess").models()
    assert PenguinClient(keyed_api).live()  # health stays open
    monkeypatch.setenv("PENGUINS_API_KEY", "client-key-2")
    assert len(PenguinClient(keyed_api).models()) == 2


@pytest.mark.slow
def test_not_ready_lists_the_servers_problems(registry_copy):
    onnx = registry_copy.root / "species-classifier" / "1" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"tampered")
    with running_api({"API_MODELS_DIR": str(registry_copy.root)}) as url:
        script = Script([], upstream=url)  # counts the requests, forwards them all
        with stub_server(script) as counted:
            client = PenguinClient(counted, retries=3, backoff=1)
            assert client.live()
            with pytest.raises(ClientError) as caught:
                client.ready()
    assert script.attempts == 2, "live, then ready once: a 503 from /health/ready is final"
    error = caught.value
    assert (error.status, error.code) == (503, "not_ready")
    assert len(error.details) == 1 and error.details[0].startswith("species-classifier:")
    assert "sha256" in str(error)


# --- retries, against a server that really answers 429 and 503 -------------------------


class Script:
    """What the stub answers, in order; then it forwards to ``upstream`` (or answers 200)."""

    def __init__(self, answers: list[tuple[int, dict, object]], upstream: str | None = None):
        self.answers = list(answers)
        self.upstream = upstream
        self.seen: list[tuple[float, str, str, str | None]] = []  # time, method, path, id
        self.lock = threading.Lock()

    @property
    def attempts(self) -> int:
        return len(self.seen)

    def gaps(self) -> list[float]:
        times = [t for t, *_ in self.seen]
        return [b - a for a, b in itertools.pairwise(times)]


@contextlib.contextmanager
def stub_server(script: Script) -> Iterator[str]:
    """A threaded HTTP server on a free port that follows ``script``."""

    class Handler(BaseHTTPRequestHandler):
        def handle_one(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with script.lock:
                script.seen.append(
                    (time.monotonic(), self.command, self.path, self.headers.get("X-Request-ID"))
                )
                answer = script.answers.pop(0) if script.answers else None
            if answer is None and script.upstream:
                forwarded = requests.request(
                    self.command,
                    script.upstream + self.path,
                    data=body,
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                    timeout=10,
                )
                status, headers, payload = forwarded.status_code, {}, forwarded.content
            else:
                status, headers, payload = answer or (200, {}, {"status": "alive"})
            kind = "text/html" if isinstance(payload, bytes) else "application/json"
            if not isinstance(payload, bytes):
                payload = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = handle_one

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def api_error(status: int, code: str) -> dict:
    return {"error": {"status": status, "code": code, "message": f"stub {code}", "request_id": "s"}}


UNAVAILABLE = (503, {"Retry-After": "1"}, api_error(503, "service_unavailable"))


def test_503_with_retry_after_is_retried_then_succeeds(api_url, caplog):
    caplog.set_level(logging.INFO, logger="apps.client.client")
    script = Script([UNAVAILABLE, UNAVAILABLE], upstream=api_url)
    with stub_server(script) as url:
        client = PenguinClient(url, retries=3, backoff=0.05)
        started = time.monotonic()
        predictions = client.predict("species-classifier", ADELIE)
        elapsed = time.monotonic() - started
    assert predictions[0]["prediction"] == "Adelie"  # the real API's answer, via the stub
    assert script.attempts == 3
    assert all(method == "POST" for _, method, _, _ in script.seen), "prediction is retried"
    assert len({rid for *_, rid in script.seen}) == 1, "one request id across the retries"
    # Retry-After: 1 wins over the 0.05 s backoff, for each of the two waits.
    assert planned_waits(caplog) == [1, 1]
    assert all(gap >= 0.95 for gap in script.gaps()), script.gaps()
    assert elapsed >= 1.9


def test_429_without_retry_after_backs_off_exponentially(caplog):
    caplog.set_level(logging.INFO, logger="apps.client.client")
    too_many = (429, {}, api_error(429, "too_many_requests"))
    script = Script([too_many, too_many, too_many])
    with stub_server(script) as url:
        assert PenguinClient(url, retries=3, backoff=0.2).ready() == {"status": "alive"}
    assert script.attempts == 4
    assert planned_waits(caplog) == [0.2, 0.4, 0.8]
    first, second, third = script.gaps()
    assert first >= 0.18 and second >= 0.38 and third >= 0.78


def test_gives_up_after_the_retries_with_the_servers_error():
    script = Script([UNAVAILABLE] * 3)
    with stub_server(script) as url, pytest.raises(ClientError) as caught:
        PenguinClient(url, retries=2, backoff=0).models()
    assert script.attempts == 3
    assert not isinstance(caught.value, ApiUnavailable), "the server did answer"
    assert (caught.value.status, caught.value.message) == (503, "stub service_unavailable")


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "bad_request"), (401, "unauthorized"), (404, "model_not_found"), (422, "invalid_input")],
)
def test_client_errors_are_not_retried(status, code):
    script = Script([(status, {"Retry-After": "1"}, api_error(status, code))])
    with stub_server(script) as url, pytest.raises(ClientError) as caught:
        PenguinClient(url, retries=3, backoff=1).predict("species-classifier", ADELIE)
    assert script.attempts == 1
    assert (caught.value.status, caught.value.code, caught.value.request_id) == (status, code, "s")


def test_ready_does_not_retry_503():
    not_ready = (503, {}, {"status": "not ready", "models": {}, "problems": ["m: broken"]})
    script = Script([not_ready])
    with stub_server(script) as url, pytest.raises(ClientError) as caught:
        PenguinClient(url, retries=3, backoff=1).ready()
    assert script.attempts == 1
    assert caught.value.details == ["m: broken"]


def test_non_json_answers_give_a_readable_error():
    script = Script([(502, {}, b"<html>Bad gateway</html>"), (200, {}, b"<html>Hello</html>")])
    with stub_server(script) as url:
        client = PenguinClient(url, retries=0)
        with pytest.raises(ClientError, match="HTTP 502"):
            client.models()
        with pytest.raises(ClientError, match="expected JSON"):
            client.models()  # a 200 that is not JSON


def test_retry_after_parsing_and_cap():
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    in_ten = formatdate(time.time() + 10, usegmt=True)
    assert 8 <= retry_after_seconds(in_ten) <= 10
    assert wait_seconds(0, 0.5) == 0.5
    assert wait_seconds(3, 0.5) == 4
    assert wait_seconds(0, 0.5, "2") == 2
    assert wait_seconds(0, 0.5, "3600") == MAX_WAIT_SECONDS
    assert wait_seconds(20, 0.5) == MAX_WAIT_SECONDS


# --- timeouts and unreachable servers -----------------------------------------------------


@contextlib.contextmanager
def stalling_server() -> Iterator[tuple[str, list]]:
    """Accepts every connection and never answers: what a hung server looks like."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever():
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in accepted:
            connection.close()
        listener.close()


class Counter:
    count = 0


@contextlib.contextmanager
def hanging_up_server() -> Iterator[tuple[str, Counter]]:
    """Accepts each connection, counts it, and closes it at once: a connection error.

    The count goes up before the connection is closed, so by the time a client sees
    its error, the attempt has been counted.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    accepted = Counter()
    stop = threading.Event()

    def accept_forever():
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                connection, _ = listener.accept()
                accepted.count += 1
                connection.close()

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_a_stalled_get_times_out_and_is_retried():
    with stalling_server() as (url, accepted):
        client = PenguinClient(url, timeout=0.3, retries=2, backoff=0.05)
        started = time.monotonic()
        with pytest.raises(ApiUnavailable, match=r"no answer within 0\.3 s") as caught:
            client.models()
        elapsed = time.monotonic() - started
    assert len(accepted) == 3
    assert elapsed >= 3 * 0.3 + 0.05 + 0.1
    assert caught.value.status is None and caught.value.request_id


def test_a_stalled_prediction_is_not_sent_again():
    with stalling_server() as (url, accepted):
        client = PenguinClient(url, timeout=0.3, retries=3, backoff=0.05)
        started = time.monotonic()
        with pytest.raises(ApiUnavailable, match="attempt 1 of 4"):
            client.predict("species-classifier", ADELIE)
        elapsed = time.monotonic() - started
    assert len(accepted) == 1, "a prediction the server may be working on is not sent again"
    assert elapsed >= 0.3


def test_live_is_false_when_nothing_listens():
    client = PenguinClient(f"http://127.0.0.1:{free_port()}", timeout=1, retries=3, backoff=1)
    assert client.live() is False


def test_live_makes_one_attempt_however_many_retries():
    with hanging_up_server() as (url, accepted):
        client = PenguinClient(url, timeout=1, retries=3, backoff=0.01)
        assert client.live() is False
        assert accepted.count == 1, "live() makes one attempt, no retries"
        with pytest.raises(ApiUnavailable, match="after 4 attempts"):
            client.models()  # while the same failure is retried elsewhere
        assert accepted.count == 1 + 4


def test_connection_refused_is_retried_then_api_unavailable(caplog):
    caplog.set_level(logging.INFO, logger="apps.client.client")
    client = PenguinClient(f"http://127.0.0.1:{free_port()}", timeout=1, retries=2, backoff=0.1)
    started = time.monotonic()
    with pytest.raises(ApiUnavailable, match=r"connection refused.*after 3 attempts"):
        client.models()
    assert planned_waits(caplog) == [0.1, 0.2]
    assert time.monotonic() - started >= 0.3
