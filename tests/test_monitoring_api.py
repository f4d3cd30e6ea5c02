"""Monitoring in the API, through Flask's test client: every protocol is logged, feedback
joins its prediction, the routes are documented, and drift figures reach ``/metrics``."""

import re

import pytest

from apps.api.app import create_app
from apps.monitoring import db, store

from .conftest import RECORD

CLASSIFIER = "species-classifier"
FEEDBACK = f"/v1/models/{CLASSIFIER}/feedback"


@pytest.fixture
def app(tmp_path):
    app = create_app(
        {"API_KEYS": (), "RATE_LIMIT": None, "MONITORING_DB_URL": str(tmp_path / "log.db")}
    )
    yield app
    app.extensions["prediction_log"].close()
    app.extensions["prediction_log"].engine.dispose()


def logged(app) -> list[dict]:
    log = app.extensions["prediction_log"]
    assert log.flush()
    return store.logged_rows(log.engine, CLASSIFIER)


def test_every_protocol_is_logged_with_the_request_id(app):
    client = app.test_client()
    v2 = {
        "inputs": [
            {"name": name, "shape": [1], "datatype": "BYTES" if isinstance(value, str) else "FP64",
             "data": [value]}
            for name, value in RECORD.items()
        ]
    }  # fmt: skip
    answers = [
        client.post(f"/v1/models/{CLASSIFIER}/predict", json={"records": [RECORD, RECORD]}),
        client.post(f"/v1/models/{CLASSIFIER}/versions/1/predict", json={"record": RECORD}),
        client.post(f"/v2/models/{CLASSIFIER}/infer", json=v2),
        client.post("/invocations", json={"dataframe_records": [RECORD]}),
    ]
    assert [a.status_code for a in answers] == [200] * 4
    rows = logged(app)
    ids = [a.headers["X-Request-ID"] for a in answers]
    assert [(r["request_id"], r["row_index"]) for r in rows] == [
        (ids[0], 0), (ids[0], 1), (ids[1], 0), (ids[2], 0), (ids[3], 0)
    ]  # fmt: skip
    assert all(r["inputs"] == RECORD and r["label"] == "Gentoo" for r in rows)
    invalid = client.post(f"/v1/models/{CLASSIFIER}/predict", json={"record": {"island": "Mars"}})
    assert invalid.status_code == 422 and len(logged(app)) == 5  # refused: nothing to log


def test_feedback_is_idempotent_names_the_row_and_404s_the_unknown(app):
    client = app.test_client()
    answer = client.post(
        f"/v1/models/{CLASSIFIER}/predict",
        json={"records": [RECORD, RECORD]},
        headers={"X-Request-ID": "field-7"},
    )
    assert answer.get_json()["request_id"] == "field-7"
    body = {"request_id": "field-7", "row": 1, "truth": "Gentoo"}
    statuses = [client.post(FEEDBACK, json=body).get_json()["status"] for _ in range(2)]
    assert statuses == ["recorded", "unchanged"]
    as_float = client.post(FEEDBACK, json={**body, "row": 1.0}).get_json()  # JSON's 1.0 is 1
    assert as_float["status"] == "unchanged" and as_float["row"] == 1
    corrected = client.post(FEEDBACK, json={**body, "truth": "Adelie"}).get_json()
    assert corrected == {
        "model": CLASSIFIER,
        "request_id": "field-7",
        "row": 1,
        "status": "updated",
    }
    (row,) = store.labelled_rows(app.extensions["prediction_log"].engine, CLASSIFIER)
    assert (row["row_index"], row["true_label"]) == (1, "Adelie")
    for wrong in ({"request_id": "nobody", "truth": "Gentoo"}, {**body, "row": 2}):
        answer = client.post(FEEDBACK, json=wrong)
        assert answer.status_code == 404
        assert answer.get_json()["error"]["code"] == "prediction_not_found"
    assert client.post("/v1/models/unicorn/feedback", json=body).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"request_id": "x", "truth": "Emperor"}, 422, "truth"),
        ({"request_id": "x", "truth": 3}, 422, "truth"),
        # the body's shape (its contract): a 400 naming the field
        ({"request_id": "", "truth": "Gentoo"}, 400, "request_id"),
        ({"request_id": "x", "row": -1, "truth": "Gentoo"}, 400, "row"),
        ({"request_id": "x", "row": True, "truth": "Gentoo"}, 400, "row"),
        ({"request_id": "x", "truth": "Gentoo", "label": "Gentoo"}, 400, None),
        (["x"], 400, None),
    ],
)
def test_bad_feedback_gets_a_clear_4xx(app, body, status, field):
    answer = app.test_client().post(FEEDBACK, json=body)
    assert answer.status_code == status
    error = answer.get_json()["error"]
    if field:
        assert field in error["message"]
    if field and status == 422:  # a value the model cannot have: the schema's details
        assert error["details"][0]["field"] == field


def test_a_regressors_truth_is_a_finite_number(app):
    client = app.test_client()
    record = {k: v for k, v in RECORD.items() if k != "body_mass_g"} | {"species": "Gentoo"}
    answer = client.post("/v1/models/body-mass-regressor/predict", json={"record": record})
    request_id = answer.headers["X-Request-ID"]
    path = "/v1/models/body-mass-regressor/feedback"
    assert client.post(path, json={"request_id": request_id, "truth": "heavy"}).status_code == 422
    ok = client.post(path, json={"request_id": request_id, "truth": 5150})
    assert ok.status_code == 200 and ok.get_json()["status"] == "recorded"


def test_the_monitoring_route_shows_counts_the_latest_report_and_recent_rows(app):
    client = app.test_client()
    for _ in range(3):
        client.post(f"/v1/models/{CLASSIFIER}/predict", json={"record": RECORD})
    logged(app)
    store.save_report(app.extensions["prediction_log"].engine, CLASSIFIER, {"drift": True}, True)
    body = client.get(f"/v1/models/{CLASSIFIER}/monitoring?limit=2").get_json()
    assert (body["predictions"], body["labelled"], body["report"]) == (3, 0, {"drift": True})
    assert len(body["recent"]) == 2 and body["recent"][0]["prediction"] == "Gentoo"
    assert body["recent"][0]["truth"] is None and body["recent"][0]["inputs"] == RECORD
    for limit in ("0", "101", "x"):
        answer = client.get(f"/v1/models/{CLASSIFIER}/monitoring?limit={limit}")
        assert answer.status_code == 400


def test_the_routes_are_in_the_openapi_document_with_the_api_key(tmp_path):
    app = create_app({"API_KEYS": ("k",), "MONITORING_DB_URL": str(tmp_path / "l.db")})
    # the models' classes are for key holders, as everywhere in the document
    document = app.test_client().get("/openapi.json", headers={"X-API-Key": "k"}).get_json()
    feedback = document["paths"][FEEDBACK]["post"]
    assert feedback["security"] == [{"ApiKey": []}] and "401" in feedback["responses"]

    def body_of(operation: dict) -> dict:
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return document["components"]["schemas"][ref.rsplit("/", 1)[1]]

    schema = body_of(feedback)
    assert schema["properties"]["truth"]["enum"] == ["Adelie", "Chinstrap", "Gentoo"]
    regressor = document["paths"]["/v1/models/body-mass-regressor/feedback"]["post"]
    assert body_of(regressor)["properties"]["truth"] == {"type": "number"}
    assert "get" in document["paths"][f"/v1/models/{CLASSIFIER}/monitoring"]
    unauthorised = app.test_client().post(FEEDBACK, json={"request_id": "x", "truth": "Gentoo"})
    assert unauthorised.status_code == 401
    app.extensions["prediction_log"].engine.dispose()


def test_drift_figures_and_log_counters_are_on_metrics(app, tmp_path):
    from apps.monitoring.report import build_report, parse_duration
    from apps.registry import ModelRegistry

    client = app.test_client()
    for _ in range(40):
        client.post(f"/v1/models/{CLASSIFIER}/predict", json={"record": RECORD})
    engine = app.extensions["prediction_log"].engine
    logged(app)
    now = db.now()
    report = build_report(
        engine, ModelRegistry(), CLASSIFIER, now - parse_duration("1d"), now, parse_duration("1d")
    )
    report["created_at"] = now.isoformat()
    store.save_report(engine, CLASSIFIER, report, report["drift"])
    text = client.get("/metrics").get_data(as_text=True)
    assert report["drift"]  # forty identical birds are nothing like the training data
    assert 'monitoring_drift_detected{model="species-classifier",version="1"} 1.0' in text
    assert re.search(r'monitoring_drift_p_value\{column="island",model="species-classifier"', text)
    assert re.search(r"prediction_log_written_total \d", text)


def test_a_failing_listener_never_fails_the_request(app, caplog):
    service = app.extensions["model_service"]
    service.listeners.append(lambda *args: 1 / 0)
    answer = app.test_client().post(f"/v1/models/{CLASSIFIER}/predict", json={"record": RECORD})
    assert answer.status_code == 200
    assert "a prediction listener failed" in caplog.text


def test_logging_can_be_switched_off(tmp_path):
    app = create_app({"PREDICTION_LOG": False, "MONITORING_DB_URL": str(tmp_path / "l.db")})
    assert "prediction_log" not in app.extensions
    listeners = app.extensions["model_service"].listeners
    assert not [f for f in listeners if f.__module__ == "apps.api.extensions.prediction_log"]
    assert app.test_client().post(FEEDBACK, json={}).status_code == 404
    assert not (tmp_path / "l.db").exists()


def test_simulated_time_is_trusted_only_when_switched_on(tmp_path):
    settings = {
        "MONITORING_DB_URL": str(tmp_path / "l.db"),
        "PREDICTION_LOG_SIMULATED_TIME": True,
        "PREDICTION_LOG_RETENTION_DAYS": 0,  # simulated March is months old: keep it
    }
    app = create_app(settings)
    client = app.test_client()
    headers = {"X-Simulated-Time": "2026-03-02T09:30:00+00:00"}
    client.post(f"/v1/models/{CLASSIFIER}/predict", json={"record": RECORD}, headers=headers)
    (row,) = logged(app)
    assert row["logged_at"].isoformat() == "2026-03-02T09:30:00+00:00"
    bad = client.post(f"/v1/models/{CLASSIFIER}/predict", json={"record": RECORD},
                      headers={"X-Simulated-Time": "tuesday"})  # fmt: skip
    assert bad.status_code == 400
    app.extensions["prediction_log"].close()
    app.extensions["prediction_log"].engine.dispose()


def test_a_database_that_is_down_fails_no_prediction(tmp_path):
    from .servers import free_port

    url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/monitoring"
    app = create_app({"MONITORING_DB_URL": url, "PREDICTION_LOG_FLUSH_SECONDS": 0.05})
    client = app.test_client()
    answer = client.post(f"/v1/models/{CLASSIFIER}/predict", json={"record": RECORD})
    assert answer.status_code == 200
    down = client.post(FEEDBACK, json={"request_id": "x", "truth": "Gentoo"})
    assert down.status_code == 503 and down.get_json()["error"]["code"] == "monitoring_unavailable"
    log = app.extensions["prediction_log"]
    assert log.flush(timeout=60) and log.dropped == 1  # counted, after its retries
    log.close()
    log.engine.dispose()
