"""The API through Flask's test client: routes, request ids, security, readiness, logs.

Each test builds the app it needs with ``create_app({...})``, so settings never leak
from one test to another, nor from the machine's environment.
"""

import io
import json
import logging
import math
import re
import sys

import pytest

from apps.api.app import create_app
from apps.api.config import load_settings
from apps.api.observability import setup_json_logging

from . import v2_protocol
from .conftest import CLASSIFIER_INPUTS, MODEL_NAMES, RECORD, as_records
from .keyfiles import key_line

CLASSIFIER = "species-classifier"
REGRESSOR = "body-mass-regressor"
PREDICT = f"/v1/models/{CLASSIFIER}/predict"
PREDICT_MASS = f"/v1/models/{REGRESSOR}/predict"
BOOM_7, BOOM_8 = {"X-Request-ID": "boom-7"}, {"X-Request-ID": "boom-8"}
CLASSES = ["Adelie", "Chinstrap", "Gentoo"]
SECRET = "tok-5ecret-4242"
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")

REGRESSOR_RECORD = {
    "species": "Gentoo",
    "island": "Biscoe",
    "sex": "female",
    "bill_length_mm": 46.0,
    "bill_depth_mm": 14.5,
    "flipper_length_mm": 212.0,
}
OPEN_ROUTES = [
    "/health/live",
    "/health/ready",
    "/ping",
    "/v2/health/live",
    "/v2/health/ready",
    f"/v2/models/{CLASSIFIER}/ready",
    "/openapi.json",
    "/docs",
    "/metrics",
]
PROTECTED = [
    ("GET", "/v1/models", None),
    ("GET", f"/v1/models/{CLASSIFIER}", None),
    ("POST", f"/v1/models/{CLASSIFIER}/predict", {"record": RECORD}),
    ("GET", "/v2", None),
    ("GET", f"/v2/models/{CLASSIFIER}", None),
    ("POST", "/invocations", {"dataframe_records": [RECORD]}),
]


def sample(penguins):
    """About 50 birds: every eighth, and every one with a missing value."""
    frame = penguins[(penguins.index % 8 == 0) | penguins.isna().any(axis=1)]
    assert 45 <= len(frame) <= 60 and frame.isna().any(axis=None)
    return frame


def make_app(**settings):
    """An app with no keys, no rate limit and no CORS unless a test asks for them."""
    return create_app({"API_KEYS": (), "RATE_LIMIT": None, "CORS_ORIGINS": (), **settings})


def call(client, method: str, path: str, **kwargs) -> tuple[int, dict, dict]:
    """Send a request; return the status, the headers and the JSON body (closed response)."""
    with client.open(path, method=method, **kwargs) as response:
        assert response.content_type.startswith("application/json"), response.content_type
        if path.startswith("/v2"):  # the protocol's own schemas, success or error
            v2_protocol.check_answer(path, response.status_code, response.get_json())
        return response.status_code, response.headers, response.get_json()


def assert_error(body: dict, status: int, code: str, path: str = "") -> dict:
    """Our error shape; on the V2 routes, the protocol's. Returns the fields as ours has them."""
    if path.startswith("/v2"):
        message = v2_protocol.check_error(body)
        assert set(body) <= {"error", "code", "request_id", "details"}
        assert body["code"] == code and body["request_id"]
        return {"status": status, "code": code, "message": message, **body}
    assert list(body) == ["error"]
    error = body["error"]
    assert (error["status"], error["code"]) == (status, code)
    assert error["message"] and error["request_id"]
    return error


@pytest.fixture(scope="module")
def app():
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


# --- health and readiness --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health/live", "/ping", "/v2/health/live"])
def test_liveness(client, path):
    status, _, body = call(client, "GET", path)
    assert status == 200
    assert body in ({"status": "alive"}, {"live": True})


def test_ready_lists_every_model_and_its_version(client):
    status, _, body = call(client, "GET", "/health/ready")
    assert status == 200
    assert body == {"status": "ready", "models": dict.fromkeys(sorted(MODEL_NAMES), 1)}
    assert call(client, "GET", "/v2/health/ready")[2] == {"ready": True}
    for name in MODEL_NAMES:
        assert call(client, "GET", f"/v2/models/{name}/ready")[2] == {"name": name, "ready": True}


@pytest.mark.parametrize(
    ("tampered", "backend"),
    [
        ("model.onnx", "onnx"),
        # A file the backend does not read condemns the version too: someone wrote there.
        ("model.joblib", "sklearn"),
        ("model.joblib", "onnx"),
    ],
)
def test_a_tampered_model_makes_the_api_not_ready(registry_copy, tmp_path, tampered, backend):
    path = registry_copy.resolve(CLASSIFIER) / tampered
    path.write_bytes(path.read_bytes()[:-16] + b"\0" * 16)
    client = make_app(MODELS_DIR=registry_copy.root, BACKEND=backend).test_client()

    status, _, body = call(client, "GET", "/health/ready")
    assert status == 503
    assert body["status"] == "not ready"
    assert body["models"] == {REGRESSOR: 1, CLASSIFIER: None}
    (problem,) = body["problems"]
    assert CLASSIFIER in problem and "sha256" in problem
    assert str(tmp_path) not in json.dumps(body)  # no server paths sent to clients
    assert call(client, "GET", "/v2/health/ready")[:1] == (503,)
    # the intact model is still served, the tampered one is not
    assert call(client, "POST", PREDICT_MASS, json={"record": REGRESSOR_RECORD})[0] == 200
    status, _, body = call(client, "POST", PREDICT, json={"record": RECORD})
    assert status == 404
    assert_error(body, 404, "model_not_found")  # fmt: skip


# --- listing and metadata --------------------------------------------------------------


def test_list_models(client):
    status, _, body = call(client, "GET", "/v1/models")
    assert status == 200
    common = {"latest": 1, "production": 1, "versions": [1], "backend": "onnx"}
    assert body == {
        "models": [
            {"name": REGRESSOR, "task": "regression", **common},
            {"name": CLASSIFIER, "task": "classification", **common},
        ]
    }


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_metadata(client, registry, name):
    manifest = registry.manifest(name)
    status, _, body = call(client, "GET", f"/v1/models/{name}")
    assert status == 200
    assert (body["name"], body["version"], body["versions"]) == (name, 1, [1])
    assert body["backend"] == "onnx"
    assert body["task"] == manifest.task
    assert body["input_schema"]["columns"] == manifest.input_columns
    record_schema = body["input_schema"]["record"]
    assert record_schema["additionalProperties"] is False
    assert list(record_schema["properties"]) == [c["name"] for c in manifest.input_columns]
    if name == CLASSIFIER:  # against an expectation of its own, not the manifest again
        expected = {name: allowed for name, _, _, allowed in CLASSIFIER_INPUTS}
        for column in body["input_schema"]["columns"]:
            limits = column.get("categories") or (column["minimum"], column["maximum"])
            assert limits == expected[column["name"]]
        assert record_schema["required"] == ["island"]
    assert body["metrics"] == manifest.data["metrics"] and body["metrics"]
    assert body["outputs"] == manifest.data["outputs"]
    if manifest.task == "classification":
        assert body["outputs"]["classes"] == CLASSES
    # the explicit version says the same
    assert call(client, "GET", f"/v1/models/{name}/versions/1")[2] == body


def test_metadata_names_the_backend():
    client = make_app(BACKEND="sklearn").test_client()
    assert call(client, "GET", f"/v1/models/{CLASSIFIER}")[2]["backend"] == "sklearn"
    assert call(client, "GET", f"/v2/models/{CLASSIFIER}")[2]["platform"] == "sklearn"


def test_v2_metadata(client):
    status, _, body = call(client, "GET", f"/v2/models/{CLASSIFIER}")
    assert status == 200
    assert body["name"] == CLASSIFIER and body["versions"] == ["1"]
    assert [(i["name"], i["datatype"]) for i in body["inputs"]] == [
        ("island", "BYTES"),
        ("sex", "BYTES"),
        ("bill_length_mm", "FP64"),
        ("bill_depth_mm", "FP64"),
        ("flipper_length_mm", "FP64"),
        ("body_mass_g", "FP64"),
    ]
    assert [o["name"] for o in body["outputs"]] == ["predict", "predict_proba"]
    assert call(client, "GET", "/v2")[2]["name"] == "penguins-deploy"


# --- predictions -----------------------------------------------------------------------


def test_predict_one(client):
    status, headers, body = call(
        client, "POST", f"/v1/models/{CLASSIFIER}/predict", json={"record": RECORD}
    )
    assert status == 200
    assert (body["model"], body["version"], body["backend"]) == (CLASSIFIER, 1, "onnx")
    assert body["request_id"] == headers["X-Request-ID"]
    (prediction,) = body["predictions"]
    assert prediction["prediction"] == "Gentoo"
    assert list(prediction["probabilities"]) == CLASSES
    assert math.isclose(sum(prediction["probabilities"].values()), 1, abs_tol=1e-5)
    assert prediction["prediction"] == max(
        prediction["probabilities"], key=prediction["probabilities"].get
    )


def test_predict_many_with_missing_values(client, penguins):
    frame = sample(penguins)
    classifier_columns = ["island", "sex", *[c for c in RECORD if c.endswith(("_mm", "_g"))]]
    records = as_records(frame, classifier_columns)
    status, _, body = call(client, "POST", PREDICT, json={"records": records})
    assert status == 200
    labels = [p["prediction"] for p in body["predictions"]]
    assert len(labels) == len(records)
    accuracy = sum(a == b for a, b in zip(labels, frame["species"], strict=True)) / len(labels)
    assert accuracy > 0.9

    records = as_records(frame, list(REGRESSOR_RECORD))
    status, _, body = call(client, "POST", PREDICT_MASS, json={"records": records})
    assert status == 200
    masses = [p["prediction"] for p in body["predictions"]]
    assert len(masses) == len(records)
    assert all(2000 < m < 7500 for m in masses)


def test_predict_with_an_explicit_version(client):
    body = {"record": REGRESSOR_RECORD}
    latest = call(client, "POST", PREDICT_MASS, json=body)
    pinned = call(client, "POST", f"/v1/models/{REGRESSOR}/versions/1/predict", json=body)
    assert latest[0] == pinned[0] == 200
    assert pinned[2]["version"] == 1
    assert pinned[2]["predictions"] == latest[2]["predictions"]
    assert isinstance(pinned[2]["predictions"][0]["prediction"], float)


# --- request ids -----------------------------------------------------------------------


def test_a_safe_request_id_is_echoed(client):
    attempts = [
        ("GET", "/v1/models", None),
        ("POST", PREDICT, {"record": RECORD}),
        ("GET", "/v1/models/nope", None),
    ]
    for method, path, body in attempts:
        status, headers, answer = call(
            client, method, path, json=body, headers={"X-Request-ID": "trace-42.a_B"}
        )
        assert headers["X-Request-ID"] == "trace-42.a_B"
        if status != 200:
            assert answer["error"]["request_id"] == "trace-42.a_B"
        elif "request_id" in answer:
            assert answer["request_id"] == "trace-42.a_B"


def test_a_request_id_is_generated_otherwise(client):
    ids = set()
    for _ in range(3):
        _, headers, body = call(client, "POST", PREDICT, json={"record": RECORD})
        assert GENERATED_ID.match(headers["X-Request-ID"])
        assert body["request_id"] == headers["X-Request-ID"]
        ids.add(body["request_id"])
    assert len(ids) == 3


@pytest.mark.parametrize(
    "unsafe",
    ["", "x" * 65, "has space", "semi;colon", "<b>", 'quote"d', "pct%0d%0a", "ünï", "a/b"],
)
def test_an_unsafe_request_id_is_replaced(client, unsafe):
    _, headers, body = call(client, "GET", "/v1/models/nope", headers={"X-Request-ID": unsafe})
    assert GENERATED_ID.match(headers["X-Request-ID"])
    assert body["error"]["request_id"] == headers["X-Request-ID"]


def test_a_request_id_with_a_trailing_newline_is_replaced(client):
    # A WSGI server that passes the header value on unchanged; sent as the environ does.
    with client.get("/v1/models", environ_overrides={"HTTP_X_REQUEST_ID": "abc\n"}) as response:
        assert response.status_code == 200
        assert GENERATED_ID.match(response.headers["X-Request-ID"])


# --- API keys ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_app():
    return make_app(API_KEYS=("key-one", "key-two"))


@pytest.fixture
def keyed(keyed_app):
    return keyed_app.test_client()


@pytest.mark.parametrize("path", OPEN_ROUTES)
def test_health_docs_and_metrics_need_no_key(keyed, path):
    with keyed.get(path) as response:
        assert response.status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_401_without_a_key(keyed, method, path, body):
    status, headers, answer = call(keyed, method, path, json=body)
    assert status == 401
    error = assert_error(answer, 401, "unauthorized", path)
    assert "X-API-Key" in error["message"]
    assert headers["WWW-Authenticate"] == "ApiKey"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "key-three"},
        {"X-API-Key": "key-one "},
        {"X-API-Key": "KEY-ONE"},
        {"Authorization": "Bearer key-on"},
        {"Authorization": "Basic key-one"},
    ],
    ids=["unknown", "trailing-space", "case", "prefix", "basic-scheme"],
)
@pytest.mark.parametrize(("method", "path", "body"), PROTECTED[:3])
def test_401_with_an_invalid_key(keyed, method, path, body, headers):
    status, _, answer = call(keyed, method, path, json=body, headers=headers)
    assert status == 401
    assert assert_error(answer, 401, "unauthorized", path)["message"]
    assert "key-one" not in json.dumps(answer)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "key-one"},
        {"X-API-Key": "key-two"},
        {"Authorization": "Bearer key-one"},
        {"Authorization": "bearer key-two"},
    ],
)
@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_both_header_forms_work(keyed, method, path, body, headers):
    status, _, _ = call(keyed, method, path, json=body, headers=headers)
    assert status == 200


def test_keys_from_a_secrets_file_and_from_the_environment(tmp_path):
    secrets = tmp_path / "api-keys"
    lines = [key_line("one", "file-key-1"), key_line("two", "file-key-2")]
    secrets.write_text(f"# one key per line\n{lines[0]}\n\n  {lines[1]}  \n", encoding="utf-8")
    settings = load_settings(environ={"API_KEYS_FILE": str(secrets), "API_KEYS": "env-key"})
    assert settings["API_KEYS"] == ("env-key",)

    client = make_app(**settings).test_client()
    for key in ("env-key", "file-key-1", "file-key-2"):
        assert call(client, "GET", "/v1/models", headers={"X-API-Key": key})[0] == 200
    assert call(client, "GET", "/v1/models", headers={"X-API-Key": "# one key per line"})[0] == 401
    assert call(client, "GET", "/v1/models", headers={"X-API-Key": lines[0].split()[2]})[0] == 401
    assert call(client, "GET", "/v1/models")[0] == 401


def test_an_indented_comment_in_the_secrets_file_is_not_a_key(tmp_path):
    secrets = tmp_path / "api-keys"
    secrets.write_text(key_line("one", "file-key-1") + "\n  # rotated 2026\n", encoding="utf-8")
    client = make_app(**load_settings(environ={"API_KEYS_FILE": str(secrets)})).test_client()
    assert call(client, "GET", "/v1/models", headers={"X-API-Key": "file-key-1"})[0] == 200
    assert call(client, "GET", "/v1/models", headers={"X-API-Key": "# rotated 2026"})[0] == 401


def test_no_keys_configured_means_open(client):
    assert call(client, "GET", "/v1/models")[0] == 200


# --- rate limit --------------------------------------------------------------------------


def test_rate_limit_answers_429_json_with_retry_after():
    client = make_app(RATE_LIMIT="3/minute").test_client()
    path = f"/v1/models/{CLASSIFIER}/predict"
    for _ in range(3):
        assert call(client, "POST", path, json={"record": RECORD})[0] == 200
    status, headers, body = call(client, "POST", path, json={"record": RECORD})
    assert status == 429
    error = assert_error(body, 429, "too_many_requests")
    assert "rate limit" in error["message"] and "3 per 1 minute" in error["message"]
    assert 0 < int(headers["Retry-After"]) <= 60
    assert int(headers["X-RateLimit-Remaining"]) == 0
    # the probes are never limited
    for _ in range(5):
        assert call(client, "GET", "/health/ready")[0] == 200
        assert call(client, "GET", "/v2/health/ready")[0] == 200


def test_the_rate_limit_is_one_budget_across_routes():
    client = make_app(RATE_LIMIT="2/minute").test_client()
    statuses = [
        call(client, "POST", f"/v1/models/{CLASSIFIER}/predict", json={"record": RECORD})[0],
        call(client, "POST", "/invocations", json={"dataframe_records": [RECORD]})[0],
        call(client, "GET", "/v1/models")[0],
    ]
    assert statuses == [200, 200, 429]


def test_rate_limit_counts_each_api_key_apart():
    client = make_app(RATE_LIMIT="2/minute", API_KEYS=("key-one", "key-two")).test_client()
    one, two = {"X-API-Key": "key-one"}, {"Authorization": "Bearer key-two"}
    assert [call(client, "GET", "/v1/models", headers=one)[0] for _ in range(3)] == [200, 200, 429]
    assert [call(client, "GET", "/v1/models", headers=two)[0] for _ in range(3)] == [200, 200, 429]


def test_guessing_keys_is_rate_limited():
    client = make_app(RATE_LIMIT="2/minute", API_KEYS=("key-one",)).test_client()
    statuses = [
        call(client, "GET", "/v1/models", headers={"X-API-Key": f"guess-{i}"})[0] for i in range(5)
    ]
    assert 429 in statuses


# --- CORS --------------------------------------------------------------------------------


def test_no_cors_headers_unless_configured(client):
    for path in ["/v1/models", "/health/live"]:
        _, headers, _ = call(client, "GET", path, headers={"Origin": "https://example.org"})
        assert "Access-Control-Allow-Origin" not in headers


def test_cors_headers_for_the_configured_origins_only():
    client = make_app(CORS_ORIGINS=["https://example.org"]).test_client()
    _, headers, _ = call(client, "GET", "/v1/models", headers={"Origin": "https://example.org"})
    assert headers["Access-Control-Allow-Origin"] == "https://example.org"
    _, headers, _ = call(client, "GET", "/v1/models", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in headers

    preflight = {
        "Origin": "https://example.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Content-Type, X-Request-ID",
    }
    with client.options(f"/v1/models/{CLASSIFIER}/predict", headers=preflight) as response:
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == "https://example.org"
        allowed = response.headers["Access-Control-Allow-Headers"].lower()
        assert "content-type" in allowed and "x-request-id" in allowed


def test_cors_preflight_needs_no_api_key():
    client = make_app(CORS_ORIGINS=["https://example.org"], API_KEYS=("key-one",)).test_client()
    preflight = {
        "Origin": "https://example.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Content-Type, X-API-Key",
    }
    with client.options(f"/v1/models/{CLASSIFIER}/predict", headers=preflight) as response:
        assert response.status_code in (200, 204)
        assert "x-api-key" in response.headers["Access-Control-Allow-Headers"].lower()


# --- error bodies: JSON only, no traceback, no input data --------------------------------


SECRET_TENSOR = {"name": "island", "datatype": "BYTES", "shape": [1], "data": [SECRET]}
ERROR_REQUESTS = [
    ("POST", PREDICT, {"json": {"record": {**RECORD, "island": SECRET}}}, 422),
    ("POST", PREDICT, {"json": {"records": [RECORD, {**RECORD, "body_mass_g": SECRET}]}}, 422),
    ("POST", PREDICT, {"data": f'{{"record": "{SECRET}"', "content_type": "application/json"}, 400),
    ("POST", PREDICT, {"data": f"island={SECRET}", "content_type": "text/plain"}, 415),
    ("POST", f"/v2/models/{CLASSIFIER}/infer", {"json": {"inputs": [SECRET_TENSOR]}}, 422),
    ("POST", "/invocations", {"data": f"island\n{SECRET}\n", "content_type": "text/csv"}, 422),
    ("POST", "/invocations", {"json": {"instances": [{"island": "Dream", "sex": SECRET}]}}, 422),
    ("GET", "/no/such/page", {}, 404),
    ("PATCH", "/v1/models", {}, 405),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "kwargs", "expected"), ERROR_REQUESTS)
def test_errors_are_json_without_traceback_or_input_data(client, method, path, kwargs, expected):
    with client.open(path, method=method, **kwargs) as response:
        text = response.get_data(as_text=True)
        assert response.status_code == expected
        assert response.content_type == "application/json"
    assert SECRET not in text
    assert "Traceback" not in text and 'File "' not in text
    assert "<html" not in text.lower() and "<!doctype" not in text.lower()
    body = json.loads(text)
    assert_error(
        body, expected, body["code"] if path.startswith("/v2") else body["error"]["code"], path
    )


def test_an_unexpected_failure_is_a_500_that_reveals_nothing(app, monkeypatch):
    service = app.extensions["model_service"]

    def broken(model, records):
        raise RuntimeError(f"database password is {SECRET}")

    monkeypatch.setattr(service, "predict", broken)
    status, headers, body = call(
        app.test_client(), "POST", f"/v1/models/{CLASSIFIER}/predict", json={"record": RECORD}
    )
    assert status == 500
    error = assert_error(body, 500, "internal_error")
    assert "request id" in error["message"]
    assert error["request_id"] == headers["X-Request-ID"]
    assert SECRET not in json.dumps(body) and "RuntimeError" not in json.dumps(body)


# --- logs ----------------------------------------------------------------------------


@pytest.fixture
def json_logs(monkeypatch):
    """The API's JSON logging as wsgi.py sets it up, to a captured stderr; restored after."""
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    setup_json_logging("INFO")
    yield lambda: [json.loads(line) for line in stderr.getvalue().splitlines()]
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_json_logs_carry_the_request_id_and_no_input_values(client, json_logs):
    good, bad = {"record": RECORD}, {"record": {**RECORD, "island": SECRET}}
    call(client, "POST", PREDICT, json=good, headers={"X-Request-ID": "log-ok-1"})
    call(client, "POST", PREDICT, json=bad, headers={"X-Request-ID": "log-bad-2"})
    call(client, "POST", "/invocations", data=f"island\n{SECRET}\n", content_type="text/csv")
    entries = json_logs()
    access = [e for e in entries if e["logger"] == "apps.api.access"]
    by_id = {e["request_id"]: e for e in access}
    assert by_id["log-ok-1"]["status"] == 200
    assert by_id["log-bad-2"]["status"] == 422
    assert by_id["log-bad-2"]["route"] == "/v1/models/<name>/predict"
    assert by_id["log-bad-2"]["method"] == "POST"
    assert by_id["log-bad-2"]["duration_ms"] >= 0
    assert any(e["route"] == "/invocations" and GENERATED_ID.match(e["request_id"]) for e in access)
    assert all(e["level"] == "INFO" and e["time"] for e in access)
    text = json.dumps(entries)
    assert SECRET not in text
    for value in ("Biscoe", "45.0", "5000"):
        assert value not in text


def test_the_unexpected_failure_is_logged_with_its_request_id(app, monkeypatch, json_logs):
    service = app.extensions["model_service"]
    monkeypatch.setattr(service, "predict", lambda model, records: 1 / 0)
    call(app.test_client(), "POST", PREDICT, json={"record": RECORD}, headers=BOOM_7)
    entries = json_logs()
    (failure,) = [e for e in entries if e["level"] == "ERROR"]
    assert "ZeroDivisionError" in failure["exception"]
    (access,) = [e for e in entries if e["logger"] == "apps.api.access"]
    assert (access["request_id"], access["status"]) == ("boom-7", 500)


def test_the_traceback_log_entry_carries_the_request_id(app, monkeypatch, json_logs):
    service = app.extensions["model_service"]
    monkeypatch.setattr(service, "predict", lambda model, records: 1 / 0)
    call(app.test_client(), "POST", PREDICT, json={"record": RECORD}, headers=BOOM_8)
    (failure,) = [e for e in json_logs() if e["level"] == "ERROR"]
    assert failure.get("request_id") == "boom-8"


# --- docs and metrics ----------------------------------------------------------------


def predictions_counted(client, labels: str) -> float:
    """The ``api_predictions_total`` counter with these labels (0 before the first)."""
    with client.get("/metrics") as response:
        text = response.get_data(as_text=True)
    found = re.search(rf"^api_predictions_total\{{{labels}\}} (\S+)$", text, re.MULTILINE)
    return float(found[1]) if found else 0.0


def test_openapi_docs_and_metrics(client):
    status, _, document = call(client, "GET", "/openapi.json")
    assert status == 200
    assert f"/v1/models/{CLASSIFIER}/predict" in document["paths"]
    with client.get("/docs") as response:
        assert response.status_code == 200 and response.mimetype == "text/html"
        assert "swagger-ui" in response.get_data(as_text=True)
    with client.get("/docs/static/js/swagger-ui-bundle.js") as response:
        assert response.status_code == 200
    labels = 'class="Gentoo",model="species-classifier",version="1"'
    before = predictions_counted(client, labels)
    call(client, "POST", f"/v1/models/{CLASSIFIER}/predict", json={"record": RECORD})
    with client.get("/metrics") as response:
        text = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert predictions_counted(client, labels) == before + 1, "earlier tests counted too"
    assert 'route="/v1/models/<name>/predict",status="200"' in text
