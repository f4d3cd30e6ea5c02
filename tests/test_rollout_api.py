"""The API's side of a rollout: the version named in every answer, the prediction log of a
version swapped in, readiness and metrics, and the model repository routes (index, load,
unload), in the app and against a live gunicorn server with tritonclient.
"""

import shutil

import pytest
import requests
from sqlalchemy import select

from apps import training
from apps.api.app import create_app
from apps.monitoring import db
from apps.registry import ModelRegistry
from apps.registry.aliases import PRODUCTION

from .conftest import RECORD
from .servers import running_api

CLASSIFIER = "species-classifier"
PREDICT = f"/v1/models/{CLASSIFIER}/predict"


@pytest.fixture(scope="module")
def with_v2(tmp_path_factory) -> ModelRegistry:
    """A registry whose classifier has a version 2 (read-only for the tests that use it)."""
    root = tmp_path_factory.mktemp("registry") / "models"
    shutil.copytree(ModelRegistry().root, root)
    registry = ModelRegistry(root)
    training.train_and_register(registry, CLASSIFIER)
    registry.set_alias(CLASSIFIER, PRODUCTION, 1, "pin")
    return registry


@pytest.fixture
def registry_v2(with_v2, tmp_path) -> ModelRegistry:
    """A private copy of it, that a test may change."""
    shutil.copytree(with_v2.root, tmp_path / "models")
    return ModelRegistry(tmp_path / "models")


def app_for(registry: ModelRegistry, **config):
    return create_app({"MODELS_DIR": registry.root, "PREDICTION_LOG": False, **config})


def test_every_protocol_names_the_version_that_answered(registry_v2):
    app = app_for(registry_v2)
    client, watcher = app.test_client(), app.extensions["rollout"]
    v2_body = {"inputs": [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str)
                           else "FP64", "data": [v]} for k, v in RECORD.items()]}  # fmt: skip
    for version in (1, 2):
        registry_v2.set_alias(CLASSIFIER, PRODUCTION, version, "promote")
        watcher.check()
        bodies = [(PREDICT, {"record": RECORD}), (f"/v2/models/{CLASSIFIER}/infer", v2_body),
                  ("/invocations", {"dataframe_records": [RECORD]})]  # fmt: skip
        for path, body in bodies:
            answer = client.post(path, json=body)
            assert answer.status_code == 200
            assert answer.headers["X-Model-Version"] == f"{CLASSIFIER}/{version}"
    explicit = client.post(f"/v1/models/{CLASSIFIER}/versions/1/predict", json={"record": RECORD})
    assert explicit.headers["X-Model-Version"] == f"{CLASSIFIER}/1"  # versioned routes still work
    assert "X-Model-Version" not in client.get("/v1/models").headers  # no prediction, no header


def test_a_version_swapped_in_is_logged_like_the_others(registry_copy, tmp_path):
    """A version registered after the server started has no entry in the log's table of
    versions: its predictions must still be logged, under its own version."""
    url = str(tmp_path / "log.db")
    app = create_app({"MODELS_DIR": registry_copy.root, "MONITORING_DB_URL": url})
    training.train_and_register(registry_copy, CLASSIFIER)  # v2, after start-up
    registry_copy.set_alias(CLASSIFIER, PRODUCTION, 2, "promote")
    app.extensions["rollout"].check()
    client = app.test_client()
    for _ in range(3):
        assert client.post(PREDICT, json={"record": RECORD}).json["version"] == 2
    app.extensions["prediction_log"].close()
    engine = db.connect(url)
    with engine.connect() as connection:
        logged = connection.execute(select(db.predictions.c.version)).scalars().all()
    engine.dispose()
    assert logged == [2, 2, 2]


def refusals(client) -> float:
    """``rollout_switches_total`` of refused switches to v2 (counted by this process)."""
    name = 'rollout_switches_total{model="species-classifier",outcome="refused",version="2"} '
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(name)]
    return float(lines[0].rpartition(" ")[2]) if lines else 0.0


def test_readiness_and_metrics_show_a_refused_version(registry_v2):
    apps = {backend: app_for(registry_v2, BACKEND=backend) for backend in ("onnx", "sklearn")}
    client = apps["onnx"].test_client()
    (registry_v2.resolve(CLASSIFIER, 2) / "model.skops").write_bytes(b"not a model")
    registry_v2.set_alias(CLASSIFIER, PRODUCTION, 2, "promote", "broken")
    before = refusals(client)
    for app in apps.values():  # the ONNX app refuses it too: a version is trusted whole
        app.extensions["rollout"].check()
        ready = app.test_client().get("/health/ready")
        assert ready.status_code == 200 and ready.json["models"][CLASSIFIER] == 1
        assert "model.skops has sha256" in ready.json["refused"][CLASSIFIER]
    apps["onnx"].extensions["rollout"].check()  # not tried again until the alias changes
    assert refusals(client) == before + 2
    assert client.post(PREDICT, json={"record": RECORD}).json["version"] == 1


# --- the model repository extension ----------------------------------------------------------

INDEX, LOAD, UNLOAD = (
    "/v2/repository/index",
    f"/v2/repository/models/{CLASSIFIER}/load",
    f"/v2/repository/models/{CLASSIFIER}/unload",
)


def test_the_index_lists_every_version_with_its_state_and_aliases(registry_v2):
    client = app_for(registry_v2).test_client()
    bare = client.post(INDEX)  # tritonclient sends no body, and no Content-Type
    assert bare.status_code == 200
    assert bare.json == [
        {"name": "body-mass-regressor", "version": "1", "state": "READY", "reason": "",
         "aliases": ["production"]},
        {"name": CLASSIFIER, "version": "1", "state": "READY", "reason": "",
         "aliases": ["production"]},
        {"name": CLASSIFIER, "version": "2", "state": "READY", "reason": "", "aliases": []},
    ]  # fmt: skip
    assert client.post(INDEX, json={"ready": True}).json == bare.json
    refused = client.post(INDEX, json={"ready": "yes"})
    assert refused.status_code == 400 and "ready" in refused.json["error"]


def test_unload_and_load_again(registry_v2):
    client = app_for(registry_v2).test_client()
    answer = client.post(UNLOAD, json={"parameters": {"unload_dependents": False}})
    assert (answer.status_code, answer.json) == (
        200, {"name": CLASSIFIER, "state": "UNAVAILABLE", "version": None})  # fmt: skip
    predicted = client.post(PREDICT, json={"record": RECORD})
    assert predicted.status_code == 404 and "unloaded" in predicted.json["error"]["message"]
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json["unloaded"] == [CLASSIFIER]
    index = client.post(INDEX, json={}).json
    assert [e["state"] for e in index if e["name"] == CLASSIFIER] == ["UNAVAILABLE"] * 2
    assert client.post(INDEX, json={"ready": True}).json[0]["name"] == "body-mass-regressor"
    answer = client.post(LOAD, json={})
    assert (answer.status_code, answer.json) == (
        200, {"name": CLASSIFIER, "state": "READY", "version": "1"})  # fmt: skip
    assert client.post(PREDICT, json={"record": RECORD}).json["version"] == 1
    assert "unloaded" not in client.get("/health/ready").json


def test_repository_mistakes_are_clear_4xx(registry_v2):
    client = app_for(registry_v2).test_client()
    unknown = client.post("/v2/repository/models/nope/load", json={})
    assert unknown.status_code == 404 and unknown.json["error"] == (
        "no model named 'nope' is configured here"
    )
    config = client.post(LOAD, json={"parameters": {"config": "{}"}})
    assert (
        config.status_code == 400 and "models come only from the registry" in config.json["error"]
    )
    wrong = client.post(UNLOAD, json={"parameters": {"unload_dependents": "no"}})
    assert wrong.status_code == 400
    text = client.post(LOAD, data="load", content_type="text/plain")
    assert text.status_code == 415


def test_loading_a_broken_production_version_is_a_409_and_changes_nothing(registry_v2):
    app = app_for(registry_v2)
    client = app.test_client()
    (registry_v2.resolve(CLASSIFIER, 1) / "model.onnx").write_bytes(b"changed")
    answer = client.post(LOAD, json={})
    assert answer.status_code == 409
    assert answer.json["error"].startswith(f"{CLASSIFIER} could not be loaded: ")
    assert "sha256" in answer.json["error"]
    assert client.post(PREDICT, json={"record": RECORD}).json["version"] == 1  # still in memory


@pytest.mark.slow
def test_tritonclient_unloads_and_loads_on_every_worker(registry_v2, request):
    """A repository request reaches one worker; every worker must follow it."""
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    env = {"API_MODELS_DIR": str(registry_v2.root), "API_WORKERS": "3"}
    with running_api(env) as url:
        client = triton.InferenceServerClient(url.removeprefix("http://"))
        request.addfinalizer(client.close)

        def statuses(count: int = 60) -> set[int]:
            """A new connection each time, so that the requests spread over the workers."""
            return {requests.post(url + PREDICT, json={"record": RECORD}, timeout=10,
                                  headers={"Connection": "close"}).status_code
                    for _ in range(count)}  # fmt: skip

        def settle(status: int) -> None:
            """Until every worker has followed (a batch of answers, all alike), then again."""
            for _ in range(100):
                if statuses(30) == {status}:
                    break
            assert statuses() == {status}

        index = client.get_model_repository_index()
        assert {(e["name"], e["version"], e["state"]) for e in index} >= {
            (CLASSIFIER, "2", "READY")
        }
        client.unload_model(CLASSIFIER)
        settle(404)  # the other workers read the server's state within a poll (0.2 s)
        assert not client.is_model_ready(CLASSIFIER)
        client.load_model(CLASSIFIER)
        settle(200)
        with pytest.raises(InferenceServerException, match="no model named 'nope'"):
            client.load_model("nope")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_repository_routes_conform_to_the_document(registry_v2):
    """Fuzzed from the server's own document, as ``test_api_fuzz`` does the other routes,
    on a server of their own: they unload models."""
    import schemathesis
    from schemathesis import GenerationMode

    from .test_api_fuzz import fuzz, operations

    env = {"API_MODELS_DIR": str(registry_v2.root), "API_WORKERS": "1"}
    with running_api(env) as url, requests.Session() as session:
        document = requests.get(f"{url}/openapi.json", timeout=10).json()
        schema = schemathesis.openapi.from_dict(document)
        schema.config.update(base_url=url)
        found = list(operations(schema, changes_the_server=True))
        assert len(found) == 5  # the index, and load and unload for each of two models
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for operation in found:
                assert fuzz(operation, mode, session) > 0
