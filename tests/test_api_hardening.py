"""What a client can make the API give away or keep: bounded answers and labels, no
redirects, and an OpenAPI document that shows no more than the routes that need a key.
"""

import json
import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apps.api.app import create_app
from apps.api.errors import MAX_NAME, MAX_PROBLEMS

from .conftest import MODEL_NAMES, RECORD
from .keyfiles import write_key_file
from .servers import running_api

NATIVE = "/v1/models/species-classifier/predict"
KEY = {"X-API-Key": "key-one"}


def make_app(**settings):
    return create_app({"API_KEYS": (), "RATE_LIMIT": None, **settings})


# --- answers that cannot grow without bound --------------------------------------------


def test_an_error_echoes_a_bounded_number_of_short_field_names():
    """Thousands of long unknown field names once came back whole: 1.3 MB in, 5.3 MB out."""
    fields = {f"unknown_field_{i:05d}_" + "x" * 200: 1 for i in range(6000)}
    body = json.dumps({"record": {**RECORD, **fields}}).encode()
    assert len(body) > 1_300_000
    with (
        make_app()
        .test_client()
        .post(NATIVE, data=body, content_type="application/json") as response
    ):
        assert response.status_code == 422
        answer = response.get_data()
        error = response.get_json()["error"]
    assert len(answer) < 20_000
    assert len(error["details"]) == MAX_PROBLEMS
    assert all(len(d["field"]) <= MAX_NAME for d in error["details"])
    assert "(and 5999 more problems; details lists the first 100 of 6000" in error["message"]
    assert len(error["message"]) < 300


def test_a_few_problems_are_all_listed_as_before():
    with (
        make_app()
        .test_client()
        .post(
            NATIVE, json={"record": {**RECORD, "island": "Atlantis", "bill_length_mm": 460}}
        ) as response
    ):
        error = response.get_json()["error"]
    assert error["message"].endswith("(and 1 more problems)")
    assert [d["field"] for d in error["details"]] == ["island", "bill_length_mm"]


def test_unknown_top_level_keys_are_echoed_briefly():
    body = {"record": RECORD, **{"k" * 300 + str(i): 0 for i in range(5000)}}
    with make_app().test_client().post(NATIVE, json=body) as response:
        assert response.status_code == 400
        message = response.get_json()["error"]["message"]
    assert "and 4990 more" in message
    assert len(message) < 1000


def test_invented_http_methods_share_one_metrics_label():
    client = make_app().test_client()
    for method in ("BREW", "WHEN", "X-ANYTHING-1", "X-ANYTHING-2"):
        with client.open("/health/live", method=method) as response:
            assert response.status_code == 405
    with client.get("/metrics") as response:
        text = response.get_data(as_text=True)
    methods = {
        sample.labels["method"]
        for family in text_string_to_metric_families(text)
        if family.name == "api_requests"
        for sample in family.samples
    }
    assert "other" in methods
    assert methods <= {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"}


# --- no redirects, whatever the path and the Host header ---------------------------------


def raw_get(base_url: str, path: str, host: str) -> bytes:
    """A GET with exactly this path and Host header, as an attacker's link would send."""
    address = base_url.removeprefix("http://").split(":")
    with socket.create_connection((address[0], int(address[1])), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.slow
@pytest.mark.parametrize(
    "path",
    ["//evil.example/v1/models", "//evil.example/", "/v1//models", "//evil.example//v1/models"],
)
def test_no_url_redirects_to_the_host_the_request_names(api_url, path):
    answer = raw_get(api_url, path, "evil.example")
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert not 300 <= status < 400, head
    assert b"evil.example" not in head
    assert b"location:" not in head.lower()
    assert json.loads(body)["error"]["status"] == status


# --- OpenAPI: public routes and formats, the models' schemas for key holders ------------


def model_words() -> set[str]:
    """What only key holders may read about the models: columns, categories, classes."""
    client = make_app().test_client()
    words = set()
    for name in MODEL_NAMES:
        metadata = client.get(f"/v1/models/{name}").get_json()
        for column in metadata["input_schema"]["columns"]:
            words.add(column["name"])
            words.update(column.get("categories") or [])
        words.update(metadata.get("classes") or [])
    return words


def test_the_public_document_holds_nothing_the_metadata_route_protects():
    client = make_app(API_KEYS=("key-one",)).test_client()
    public = client.get("/openapi.json")
    full = client.get("/openapi.json", headers=KEY)
    assert public.status_code == full.status_code == 200
    words = model_words()
    assert {"island", "bill_length_mm", "Gentoo", "Dream"} <= words
    public_text, full_text = public.get_data(as_text=True), full.get_data(as_text=True)
    leaked = sorted(w for w in words if json.dumps(w) in public_text)
    assert not leaked, f"the public document shows {leaked}"
    assert all(json.dumps(w) in full_text for w in words)
    # the routes are the same; only their schemas differ
    assert public.get_json()["paths"].keys() == full.get_json()["paths"].keys()
    for name in MODEL_NAMES:
        assert client.get(f"/v1/models/{name}").status_code == 401
        assert client.get(f"/v1/models/{name}", headers=KEY).status_code == 200


def test_a_wrong_key_gets_the_public_document():
    client = make_app(API_KEYS=("key-one",)).test_client()
    public = client.get("/openapi.json").get_json()
    assert client.get("/openapi.json", headers={"X-API-Key": "guess"}).get_json() == public


def test_without_keys_everyone_gets_the_full_document():
    client = make_app().test_client()
    text = client.get("/openapi.json").get_data(as_text=True)
    assert all(json.dumps(w) in text for w in model_words())


def test_the_public_document_is_valid_openapi():
    import schemathesis

    document = make_app(API_KEYS=("key-one",)).test_client().get("/openapi.json").get_json()
    schemathesis.openapi.from_dict(document).validate()


@pytest.mark.slow
def test_the_real_server_serves_the_same_two_documents(tmp_path):
    keys = write_key_file(tmp_path / "keys", "key-one")
    import requests

    with running_api({"API_BACKEND": "onnx", "API_KEYS_FILE": str(keys)}) as url:
        public = requests.get(f"{url}/openapi.json", timeout=10).text
        full = requests.get(f"{url}/openapi.json", headers=KEY, timeout=10).text
    assert '"island"' not in public and '"island"' in full
