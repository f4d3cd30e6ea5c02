"""The API on real servers (gunicorn, waitress) over real sockets, as clients see it.

The same birds go through every protocol (native, Open Inference Protocol V2, MLflow's
four JSON layouts and CSV) and both backends, and must get the same answers. The
ONNX server is also run with scikit-learn, SciPy and pandas made impossible to import,
to prove that a lean image without them works.
"""

import csv
import io
import json
import math
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from apps.config import REPO_ROOT

from . import v2_protocol
from .conftest import RECORD, as_records
from .keyfiles import write_key_file
from .servers import running_api

pytestmark = pytest.mark.slow

CLASSIFIER = "species-classifier"
REGRESSOR = "body-mass-regressor"
CLASSIFIER_COLUMNS = [
    "island",
    "sex",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
]
REGRESSOR_COLUMNS = [
    "species",
    "island",
    "sex",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
]
COLUMNS = {CLASSIFIER: CLASSIFIER_COLUMNS, REGRESSOR: REGRESSOR_COLUMNS}
BLOCKED = ("sklearn", "scipy", "pandas")


@pytest.fixture(scope="module")
def birds(penguins):
    """About 50 birds: every eighth, and every one with a missing value."""
    frame = penguins[(penguins.index % 8 == 0) | penguins.isna().any(axis=1)]
    assert 45 <= len(frame) <= 60 and frame.isna().any(axis=None)
    return {name: as_records(frame, columns) for name, columns in COLUMNS.items()}


def post(url: str, **kwargs) -> dict:
    """POST and return the JSON answer, which must be a 200."""
    with requests.post(url, timeout=30, **kwargs) as response:
        assert response.status_code == 200, response.text[:500]
        return response.json()


# --- one answer per protocol -----------------------------------------------------------


def native(base_url: str, name: str, records: list[dict], headers=None) -> tuple[list, list]:
    """Predictions and probability rows (None for a regressor) from the native route."""
    body = post(f"{base_url}/v1/models/{name}/predict", json={"records": records}, headers=headers)
    assert (body["model"], body["version"]) == (name, 1)
    predictions = body["predictions"]
    values = [p["prediction"] for p in predictions]
    if "probabilities" not in predictions[0]:
        return values, None
    return values, [list(p["probabilities"].values()) for p in predictions]


def v2(base_url: str, name: str, records: list[dict]) -> tuple[list, list]:
    """The same from the V2 ``infer`` route: one tensor per column, as MLServer sends."""
    inputs = []
    for column in COLUMNS[name]:
        values = [record[column] for record in records]
        numeric = column not in ("species", "island", "sex")
        inputs.append(
            {
                "name": column,
                "datatype": "FP64" if numeric else "BYTES",
                "shape": [len(values)],
                "data": values,
            }
        )
    body = post(f"{base_url}/v2/models/{name}/infer", json={"id": "batch-1", "inputs": inputs})
    v2_protocol.validate("inference_response", body)
    assert (body["model_name"], body["model_version"], body["id"]) == (name, "1", "batch-1")
    outputs = {output["name"]: output for output in body["outputs"]}
    values = outputs["predict"]["data"]
    assert outputs["predict"]["shape"] == [len(records)]
    if "predict_proba" not in outputs:
        return values, None
    proba = outputs["predict_proba"]
    rows, classes = proba["shape"]
    assert rows == len(records)
    flat = proba["data"]
    return values, [flat[i * classes : (i + 1) * classes] for i in range(rows)]


def mlflow_bodies(records: list[dict]) -> dict[str, dict]:
    """The four JSON layouts of MLflow's scoring protocol for the same records."""
    columns = list(records[0])
    return {
        "dataframe_split": {
            "dataframe_split": {
                "columns": columns,
                "data": [[r[c] for c in columns] for r in records],
                "index": list(range(len(records))),
            }
        },
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": {c: [r[c] for r in records] for c in columns}},
    }


def as_csv(records: list[dict]) -> str:
    """CSV with a header, an empty cell for a missing value."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in records)
    return buffer.getvalue()


def mlflow_answers(base_url: str, records: list[dict]) -> dict[str, list]:
    """Predictions from ``/invocations`` for every JSON layout and for CSV."""
    answers = {
        layout: post(f"{base_url}/invocations", json=body)["predictions"]
        for layout, body in mlflow_bodies(records).items()
    }
    answers["csv"] = post(
        f"{base_url}/invocations",
        data=as_csv(records).encode(),
        headers={"Content-Type": "text/csv; charset=utf-8"},
    )["predictions"]
    return answers


def assert_close(a: list | None, b: list | None, relative: bool = False) -> None:
    if a is None or b is None:
        assert a is b is None
        return
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if isinstance(x, list):
            assert_close(x, y, relative)
        elif relative:
            assert math.isclose(x, y, rel_tol=1e-4), (x, y)
        else:
            assert math.isclose(x, y, abs_tol=1e-4), (x, y)


# --- the same answer whatever the protocol -----------------------------------------------


def test_every_protocol_gives_the_same_species(api_url, birds, penguins):
    records = birds[CLASSIFIER]
    labels, probabilities = native(api_url, CLASSIFIER, records)
    assert len(labels) == len(records)
    assert set(labels) <= {"Adelie", "Chinstrap", "Gentoo"}
    assert all(math.isclose(sum(row), 1, abs_tol=1e-5) for row in probabilities)

    v2_labels, v2_probabilities = v2(api_url, CLASSIFIER, records)
    assert v2_labels == labels
    assert v2_probabilities == probabilities  # same server, same backend: exactly equal

    answers = mlflow_answers(api_url, records)
    assert list(answers) == ["dataframe_split", "dataframe_records", "instances", "inputs", "csv"]
    for layout, answer in answers.items():
        assert answer == labels, layout


def test_every_protocol_gives_the_same_body_mass(api_url, birds):
    records = birds[REGRESSOR]
    masses, probabilities = native(api_url, REGRESSOR, records)
    assert probabilities is None
    assert all(isinstance(m, float) and 2000 < m < 7500 for m in masses)
    v2_masses, _ = v2(api_url, REGRESSOR, records)
    assert v2_masses == masses


def test_onnx_and_sklearn_give_the_same_answers(api_url, api_url_sklearn, birds):
    for name in (CLASSIFIER, REGRESSOR):
        records = birds[name]
        onnx_values, onnx_proba = native(api_url, name, records)
        sklearn_values, sklearn_proba = native(api_url_sklearn, name, records)
        if name == CLASSIFIER:
            assert onnx_values == sklearn_values
            assert_close(onnx_proba, sklearn_proba)
        else:
            assert_close(onnx_values, sklearn_values, relative=True)
        v2_values, v2_proba = v2(api_url_sklearn, name, records)
        assert_close(v2_proba, sklearn_proba)
        if name == CLASSIFIER:
            assert v2_values == sklearn_values
        else:
            assert_close(v2_values, sklearn_values, relative=True)
    with requests.get(f"{api_url_sklearn}/v1/models/{CLASSIFIER}", timeout=10) as response:
        assert response.json()["backend"] == "sklearn"
    onnx_labels, _ = native(api_url, CLASSIFIER, birds[CLASSIFIER])
    assert mlflow_answers(api_url_sklearn, birds[CLASSIFIER])["csv"] == onnx_labels


def test_waitress_serves_the_same_answers(api_url, birds):
    with running_api({"API_BACKEND": "onnx"}, server="waitress") as waitress_url:
        for name in (CLASSIFIER, REGRESSOR):
            assert native(waitress_url, name, birds[name]) == native(api_url, name, birds[name])
            assert v2(waitress_url, name, birds[name]) == v2(api_url, name, birds[name])
        assert mlflow_answers(waitress_url, birds[CLASSIFIER]) == mlflow_answers(
            api_url, birds[CLASSIFIER]
        )
        with requests.post(
            f"{waitress_url}/v1/models/{CLASSIFIER}/predict",
            json={"record": {**RECORD, "island": "Atlantis"}},
            headers={"X-Request-ID": "waitress-1"},
            timeout=10,
        ) as response:
            assert response.status_code == 422
            assert response.headers["Content-Type"] == "application/json"
            error = response.json()["error"]
            assert (error["code"], error["request_id"]) == ("invalid_input", "waitress-1")
        with requests.get(f"{waitress_url}/health/ready", timeout=10) as response:
            assert response.status_code == 200


# --- API keys and rate limit on a real server ----------------------------------------


def test_api_keys_and_rate_limit(tmp_path):
    secrets = write_key_file(tmp_path / "api-keys", "reader-key", "burst-key")
    env = {"API_BACKEND": "onnx", "API_KEYS_FILE": str(secrets), "API_RATE_LIMIT": "3/minute"}
    with running_api(env) as url:
        predict = f"{url}/v1/models/{CLASSIFIER}/predict"
        with requests.get(f"{url}/health/ready", timeout=10) as response:
            assert response.status_code == 200  # probes carry no key
        with requests.get(f"{url}/v1/models", timeout=10) as response:
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"] == "ApiKey"
        with requests.get(f"{url}/v1/models", headers={"X-API-Key": "nope"}, timeout=10) as r:
            assert r.status_code == 401
        for headers in ({"X-API-Key": "reader-key"}, {"Authorization": "Bearer reader-key"}):
            with requests.get(f"{url}/v1/models", headers=headers, timeout=10) as response:
                assert response.status_code == 200

        # The 2 workers share one count (a SQLite file, by default): at "3/minute",
        # the first three of seven requests pass and the other four are refused.
        statuses, refusal = [], None
        for _ in range(7):
            with requests.post(
                predict, json={"record": RECORD}, headers={"X-API-Key": "burst-key"}, timeout=10
            ) as response:
                statuses.append(response.status_code)
                if response.status_code == 429:
                    refusal = (response.headers, response.json())
        assert statuses == [200] * 3 + [429] * 4
        headers, body = refusal
        assert headers["Content-Type"] == "application/json"
        assert int(headers["Retry-After"]) > 0
        assert body["error"]["code"] == "too_many_requests"
        # another key has its own allowance
        with requests.post(
            predict, json={"record": RECORD}, headers={"X-API-Key": "reader-key"}, timeout=10
        ) as response:
            assert response.status_code == 200


# --- an ONNX server without scikit-learn, SciPy or pandas ------------------------------

BOOTSTRAP = f"""
    '''Run ``python bootstrap.py -m module args...`` with some packages impossible to import.'''
    import os
    import runpy
    import sys

    BLOCKED = {BLOCKED!r}


    class Blocker:
        '''A meta path finder that refuses the blocked packages and their submodules.'''

        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked: this process must run without it")
            return None


    already = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
    if already:
        raise SystemExit(f"imported before the blocker was installed: {{already}}")
    sys.meta_path.insert(0, Blocker())
    if len(sys.argv) < 3 or sys.argv[1] != "-m":
        raise SystemExit("usage: python bootstrap.py -m module [args...]")
    module = sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    sys.path.insert(0, os.getcwd())  # as ``python -m`` does
    runpy.run_module(module, run_name="__main__", alter_sys=True)
"""

PROBE = """
    import importlib
    import json

    result = {}
    for name in ["sklearn", "sklearn.pipeline", "scipy", "scipy.sparse", "pandas",
                 "pandas.core.frame", "numpy", "onnxruntime", "apps.api.app"]:
        try:
            importlib.import_module(name)
            result[name] = "imported"
        except ImportError:
            result[name] = "blocked"
    print(json.dumps(result))
"""


@pytest.fixture
def bootstrap(tmp_path) -> Path:
    path = tmp_path / "bootstrap.py"
    path.write_text(textwrap.dedent(BOOTSTRAP), encoding="utf-8")
    return path


def test_the_import_blocker_works(bootstrap, tmp_path):
    (tmp_path / "probe_imports.py").write_text(textwrap.dedent(PROBE), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(bootstrap), "-m", "probe_imports"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "sklearn": "blocked",
        "sklearn.pipeline": "blocked",
        "scipy": "blocked",
        "scipy.sparse": "blocked",
        "pandas": "blocked",
        "pandas.core.frame": "blocked",
        "numpy": "imported",
        "onnxruntime": "imported",
        "apps.api.app": "imported",
    }


def test_the_sklearn_backend_cannot_start_under_the_blocker(bootstrap, tmp_path):
    log = tmp_path / "server.log"
    with (
        pytest.raises(RuntimeError, match="exited"),
        running_api({"API_BACKEND": "sklearn"}, python_args=[str(bootstrap)], log_path=log),
    ):
        pass  # pragma: no cover - the server must not become live
    assert "is blocked: this process must run without it" in log.read_text(errors="replace")


def test_the_onnx_server_runs_without_sklearn_scipy_and_pandas(bootstrap, tmp_path, api_url, birds):
    log = tmp_path / "server.log"
    env = {"API_BACKEND": "onnx"}
    with running_api(env, python_args=[str(bootstrap)], log_path=log) as url:
        with requests.get(f"{url}/health/ready", timeout=10) as response:
            assert response.status_code == 200, response.text
        for name in (CLASSIFIER, REGRESSOR):
            assert native(url, name, birds[name]) == native(api_url, name, birds[name])
            assert v2(url, name, birds[name]) == v2(api_url, name, birds[name])
        assert mlflow_answers(url, birds[CLASSIFIER]) == mlflow_answers(api_url, birds[CLASSIFIER])
        with requests.get(f"{url}/metrics", timeout=10) as response:
            assert "api_predictions_total" in response.text
    assert "Traceback" not in log.read_text(errors="replace")


# --- metrics summed over the workers, and JSON logs ----------------------------------


def _samples(text: str, metric: str) -> dict[tuple, float]:
    for family in text_string_to_metric_families(text):
        if family.name == metric:
            return {
                tuple(sorted(s.labels.items())): s.value
                for s in family.samples
                if s.name == f"{metric}_total"
            }
    return {}


def test_metrics_are_summed_over_two_workers(tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    log = tmp_path / "server.log"
    env = {
        "API_BACKEND": "onnx",
        "API_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LOG_LEVEL": "INFO",
    }
    secret = "tok-5ecret-4242"
    with running_api(env, log_path=log) as url:
        sent = {"classifier": 0, "regressor": 0, "invalid": 0}

        def classify(_):
            post(f"{url}/v1/models/{CLASSIFIER}/predict", json={"records": [RECORD, RECORD]})

        # Concurrent requests, each on its own connection, until both workers served some.
        with ThreadPoolExecutor(max_workers=8) as pool:
            for _ in range(20):
                list(pool.map(classify, range(16)))
                sent["classifier"] += 16
                if len(list(metrics_dir.glob("counter_*.db"))) >= 2:
                    break
        assert len(list(metrics_dir.glob("counter_*.db"))) >= 2, "one worker served everything"

        regressor_record = {"species": "Gentoo", "island": "Biscoe", "sex": "female"}
        for _ in range(3):
            post(f"{url}/v1/models/{REGRESSOR}/predict", json={"record": regressor_record})
            sent["regressor"] += 1
        for i in range(2):
            with requests.post(
                f"{url}/v1/models/{CLASSIFIER}/predict",
                json={"record": {**RECORD, "island": secret}},
                headers={"X-Request-ID": f"metrics-bad-{i}"},
                timeout=10,
            ) as response:
                assert response.status_code == 422
                sent["invalid"] += 1

        scrapes = []
        for _ in range(4):  # whichever worker answers, the sums are the same
            with requests.get(f"{url}/metrics", timeout=10) as response:
                assert response.status_code == 200
                scrapes.append(response.text)
    predictions = [_samples(text, "api_predictions") for text in scrapes]
    assert all(p == predictions[0] for p in predictions)
    classifier_key = (("class", "Gentoo"), ("model", CLASSIFIER), ("version", "1"))
    regressor_key = (("class", ""), ("model", REGRESSOR), ("version", "1"))
    assert predictions[0] == {classifier_key: 2 * sent["classifier"], regressor_key: 3}

    requests_total = _samples(scrapes[-1], "api_requests")
    route = "/v1/models/<name>/predict"
    ok = (("method", "POST"), ("route", route), ("status", "200"))
    invalid = (("method", "POST"), ("route", route), ("status", "422"))
    assert requests_total[ok] == sent["classifier"] + sent["regressor"]
    assert requests_total[invalid] == sent["invalid"]
    assert requests_total[(("method", "GET"), ("route", "/health/live"), ("status", "200"))] >= 1

    entries = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = {e.get("request_id"): e for e in entries if e["logger"] == "apps.api.access"}
    assert access["metrics-bad-0"]["status"] == 422
    assert access["metrics-bad-1"]["route"] == route
    assert secret not in log.read_text()


# --- limits of the server itself ---------------------------------------------------------


def test_a_very_long_url_still_gets_a_json_error(api_url):
    with requests.get(f"{api_url}/v1/models/{'n' * 5000}", timeout=10) as response:
        assert response.status_code in (404, 414)
        assert response.headers["Content-Type"] == "application/json"
