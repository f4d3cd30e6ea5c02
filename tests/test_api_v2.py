"""The Open Inference Protocol (V2) as its clients speak it: JSON, binary, and its errors.

The first part drives the app through Flask's test client with bodies built by hand,
byte by byte, as the protocol and its binary tensor data extension describe them. The
second part starts the real gunicorn server and calls it with ``tritonclient``, the
protocol's reference client, in every mode it offers, and compares its answers with
the native route's for the same birds. Every V2 answer is validated against the
protocol's own schemas (:mod:`tests.v2_protocol`). Malformed requests and each
datatype rule are in the error catalogue, ``tests/test_api_errors.py``.
"""

import json
import math
import struct

import numpy as np
import pytest

from apps.api.app import create_app
from apps.api.contracts import InputTensor
from apps.api.errors import ApiError
from apps.api.v2_tensors import decode

from . import v2_protocol
from .conftest import RECORD
from .v2_protocol import BINARY_HEADER

CLASSIFIER = "species-classifier"
REGRESSOR = "body-mass-regressor"
INFER = f"/v2/models/{CLASSIFIER}/infer"
CATEGORIES = ("species", "island", "sex")
BIRDS = [
    RECORD,
    {**RECORD, "island": "Torgersen", "sex": "female", "bill_length_mm": 39.1,
     "bill_depth_mm": 18.7, "flipper_length_mm": 181.0, "body_mass_g": 3750.0},
    {**RECORD, "island": "Dream", "bill_length_mm": 46.5, "bill_depth_mm": 17.9,
     "flipper_length_mm": 192.0, "body_mass_g": 3500.0},
]  # fmt: skip


@pytest.fixture(scope="module")
def client():
    return create_app({"API_KEYS": (), "RATE_LIMIT": None}).test_client()


def json_tensor(name: str, values: list, datatype: str | None = None) -> dict:
    datatype = datatype or ("BYTES" if name in CATEGORIES else "FP64")
    return {"name": name, "datatype": datatype, "shape": [len(values)], "data": values}


def columns(birds: list[dict]) -> dict[str, list]:
    return {name: [bird[name] for bird in birds] for name in birds[0]}


def json_request(birds: list[dict], **extra) -> dict:
    return {"inputs": [json_tensor(n, v) for n, v in columns(birds).items()], **extra}


def bytes_elements(values: list[str]) -> bytes:
    """BYTES as binary data: each element a 4-byte little-endian length, then UTF-8."""
    encoded = [value.encode() for value in values]
    return b"".join(struct.pack("<I", len(e)) + e for e in encoded)


def binary_request(birds: list[dict], number_type: str = "<f8", **extra) -> tuple[bytes, dict]:
    """Every input as binary data: the body and its headers, built by hand."""
    inputs, blobs = [], []
    for name, values in columns(birds).items():
        if name in CATEGORIES:
            datatype, blob = "BYTES", bytes_elements(values)
        else:
            datatype = {"<f8": "FP64", "<f4": "FP32"}[number_type]
            numbers = [math.nan if v is None else v for v in values]
            blob = np.array(numbers, dtype=number_type).tobytes()
        inputs.append(
            {
                "name": name,
                "datatype": datatype,
                "shape": [len(values)],
                "parameters": {"binary_data_size": len(blob)},
            }
        )
        blobs.append(blob)
    header = json.dumps({"inputs": inputs, **extra}).encode()
    return header + b"".join(blobs), {BINARY_HEADER: str(len(header))}


def infer(client, body: bytes | dict, headers: dict | None = None, path: str = INFER) -> dict:
    """POST to infer; the answer must be a 200 that follows the protocol's schema."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    with client.post(path, data=data, headers=headers or {}) as response:
        assert response.status_code == 200, response.get_data(as_text=True)
        return v2_protocol.infer_answer(response.headers, response.get_data())


def outputs(answer: dict) -> dict[str, list]:
    return {output["name"]: output["data"] for output in answer["outputs"]}


def native(client, birds: list[dict], name: str = CLASSIFIER) -> dict[str, list]:
    """The native route's answer for the same birds, in the V2 outputs' layout."""
    with client.post(f"/v1/models/{name}/predict", json={"records": birds}) as response:
        assert response.status_code == 200
        predictions = response.get_json()["predictions"]
    answer = {"predict": [p["prediction"] for p in predictions]}
    if "probabilities" in predictions[0]:
        answer["predict_proba"] = [x for p in predictions for x in p["probabilities"].values()]
    return answer


# --- no Content-Type: JSON, as V2 servers read it ----------------------------------------


def test_a_body_without_content_type_is_read_as_json(client):
    answer = infer(client, json_request(BIRDS))  # no headers at all, as tritonclient sends
    assert outputs(answer) == native(client, BIRDS)


def test_a_declared_non_json_type_is_still_a_415(client):
    data = json.dumps(json_request(BIRDS)).encode()
    with client.post(INFER, data=data, headers={"Content-Type": "text/plain"}) as response:
        assert response.status_code == 415
        assert "application/json" in v2_protocol.check_error(response.get_json())


# --- binary tensor data: inputs ------------------------------------------------------------


def test_binary_inputs_give_the_json_answer(client):
    body, headers = binary_request(BIRDS)
    assert outputs(infer(client, body, headers)) == outputs(infer(client, json_request(BIRDS)))


def test_binary_inputs_may_be_sent_as_octet_stream(client):
    body, headers = binary_request(BIRDS)
    headers["Content-Type"] = "application/octet-stream"
    assert outputs(infer(client, body, headers)) == native(client, BIRDS)


def test_json_and_binary_inputs_mix_in_one_request(client):
    body = json_request(BIRDS)
    mass = np.array(columns(BIRDS)["body_mass_g"], dtype="<f8").tobytes()
    body["inputs"][-1] = {
        "name": "body_mass_g", "datatype": "FP64", "shape": [len(BIRDS)],
        "parameters": {"binary_data_size": len(mass)},
    }  # fmt: skip
    header = json.dumps(body).encode()
    answer = infer(client, header + mass, {BINARY_HEADER: str(len(header))})
    assert outputs(answer) == native(client, BIRDS)


def test_nan_in_binary_floats_is_a_missing_value_like_null_in_json(client):
    birds = [*BIRDS, {**RECORD, "bill_depth_mm": None, "body_mass_g": None}]
    body, headers = binary_request(birds)
    assert outputs(infer(client, body, headers)) == native(client, birds)


def test_fp32_data_are_used_at_fp32_precision_json_or_binary(client):
    """FP32 loses digits (45.1 becomes 45.099998...): the model sees the FP32 value."""
    rounded = [
        {k: float(np.float32(v)) if k not in CATEGORIES else v for k, v in bird.items()}
        for bird in BIRDS
    ]
    as_json = json_request(BIRDS)
    for tensor in as_json["inputs"]:
        if tensor["datatype"] == "FP64":
            tensor["datatype"] = "FP32"
    body, headers = binary_request(BIRDS, number_type="<f4")
    expected = native(client, rounded)
    assert outputs(infer(client, as_json)) == expected
    assert outputs(infer(client, body, headers)) == expected


def test_integer_datatypes_within_range_are_accepted(client):
    body = json_request(BIRDS)
    body["inputs"][-1] = json_tensor("body_mass_g", [3750, 4000, 5000], "INT16")
    birds = [{**b, "body_mass_g": m} for b, m in zip(BIRDS, [3750, 4000, 5000], strict=True)]
    assert outputs(infer(client, body)) == native(client, birds)


def test_rows_may_come_as_rows_of_one_value(client):
    body = json_request(BIRDS)
    for tensor in body["inputs"]:
        tensor["shape"] = [len(BIRDS), 1]
        tensor["data"] = [[value] for value in tensor["data"]]
    assert outputs(infer(client, body)) == native(client, BIRDS)


# --- binary tensor data: outputs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "binary_outputs"),
    [
        ({}, set()),
        ({"parameters": {"binary_data_output": True}}, {"predict", "predict_proba"}),
        ({"parameters": {"binary_data_output": False}}, set()),
        (
            {"outputs": [{"name": "predict_proba", "parameters": {"binary_data": True}},
                         {"name": "predict"}]},
            {"predict_proba"},
        ),
        (
            {"parameters": {"binary_data_output": True},
             "outputs": [{"name": "predict", "parameters": {"binary_data": False}},
                         {"name": "predict_proba"}]},
            {"predict_proba"},
        ),
    ],
    ids=["json", "all-binary", "all-json", "one-binary", "one-overridden"],
)  # fmt: skip
def test_outputs_come_back_binary_when_asked(client, extra, binary_outputs):
    body = json.dumps(json_request(BIRDS, id="out-1", **extra)).encode()
    with client.post(INFER, data=body) as response:
        assert response.status_code == 200
        content, headers = response.get_data(), response.headers
    answer = v2_protocol.infer_answer(headers, content)  # binary parts decoded into data
    assert answer["id"] == "out-1"
    header = json.loads(content[: int(headers[BINARY_HEADER])]) if binary_outputs else answer
    sent_binary = {
        o["name"] for o in header["outputs"] if "binary_data_size" in o.get("parameters", {})
    }
    assert sent_binary == binary_outputs
    assert (BINARY_HEADER in headers) == bool(binary_outputs)
    assert headers["Content-Type"].startswith(
        "application/octet-stream" if binary_outputs else "application/json"
    )
    expected = native(client, BIRDS)
    assert outputs(answer) == {name: expected[name] for name in outputs(answer)}
    requested = [o["name"] for o in extra.get("outputs", [])] or ["predict", "predict_proba"]
    assert [o["name"] for o in answer["outputs"]] == requested


def test_a_regressor_answers_binary_fp64(client):
    birds = [{"species": "Gentoo", **{k: v for k, v in b.items() if k != "body_mass_g"}}
             for b in BIRDS]  # fmt: skip
    body = json_request(birds, parameters={"binary_data_output": True})
    answer = infer(client, body, path=f"/v2/models/{REGRESSOR}/infer")
    assert outputs(answer) == native(client, birds, REGRESSOR)
    (output,) = answer["outputs"]
    assert output["datatype"] == "FP64" and output["parameters"]["binary_data_size"] == 8 * 3


# --- metadata and the OpenAPI document ------------------------------------------------------


@pytest.mark.parametrize("path", ["/v2", "/v2/"])  # the specification writes both
def test_server_metadata_announces_the_binary_extension(client, path):
    with client.get(path) as response:
        assert response.status_code == 200
        body = response.get_json()
    v2_protocol.validate("metadata_server_response", body)
    assert "binary_tensor_data" in body["extensions"]


@pytest.mark.parametrize("path", [f"/v2/models/{CLASSIFIER}", f"/v2/models/{REGRESSOR}",
                                  f"/v2/models/{CLASSIFIER}/versions/1"])  # fmt: skip
def test_model_metadata_follows_the_protocol(client, path):
    with client.get(path) as response:
        assert response.status_code == 200
        v2_protocol.validate("metadata_model_response", response.get_json())


def test_metadata_errors_follow_the_protocol(client):
    for path in ("/v2/models/no-such-model", f"/v2/models/{CLASSIFIER}/versions/7"):
        with client.get(path) as response:
            assert response.status_code == 404
            assert "no" in v2_protocol.check_error(response.get_json(), "model_metadata")


def test_the_schema_check_catches_our_own_error_shape():
    """The validation is not vacuous: the API's richer shape breaks the protocol's."""
    ours = {"error": {"status": 404, "code": "model_not_found", "message": "no model"}}
    with pytest.raises(Exception, match="is not of type 'string'"):
        v2_protocol.check_error(ours)


def test_openapi_documents_the_v2_error_shape_and_binary_data(client):
    document = client.get("/openapi.json").get_json()
    v2_error = document["components"]["schemas"]["V2ErrorAnswer"]
    assert v2_error["properties"]["error"] == {"type": "string"}
    for path, item in document["paths"].items():
        for operation in item.values():
            for status, response in operation["responses"].items():
                ref = response["content"]["application/json"]["schema"].get("$ref")
                if int(status) >= 400 and ref and status != "503":  # 503: the probe's answer
                    expected = "V2ErrorAnswer" if path.startswith("/v2") else "ErrorAnswer"
                    assert ref == f"#/components/schemas/{expected}", (path, status)
    for path in (INFER, f"/v2/models/{CLASSIFIER}/versions/{{version}}/infer"):
        operation = document["paths"][path]["post"]
        assert BINARY_HEADER in [p["name"] for p in operation["parameters"]]
        assert "application/octet-stream" in operation["responses"]["200"]["content"]


# --- the tensor codec on its own: datatypes no model input takes ---------------------------


def input_tensor(fields: dict) -> InputTensor:
    """An input named ``x``, checked against the protocol's contract as a request's are."""
    return InputTensor.model_validate({"name": "x", **fields})


@pytest.mark.parametrize(
    ("tensor", "chunk", "message"),
    [
        ({"datatype": "BOOL", "shape": [2], "data": [True, 1]}, None,
         "element 1 must be true or false"),
        ({"datatype": "BOOL", "shape": [2]}, b"\x01\x02", "must be the byte 0 or 1"),
        ({"datatype": "BF16", "shape": [1], "data": [1.0]}, None, "unknown datatype"),
        ({"datatype": "FP64", "shape": [1] * 9, "data": [1.0]}, None, "at most 8"),
        ({"datatype": "FP64", "shape": [-1], "data": []}, None, "whole numbers"),
        ({"datatype": "UINT16", "shape": [1], "data": [65536]}, None, "between 0 and 65535"),
        ({"datatype": "INT8", "shape": [2]}, b"\x01", "2 INT8 elements take 2 bytes"),
    ],
    ids=["bool-json", "bool-binary", "bf16", "too-many-dimensions", "negative-size",
         "uint16-range", "int8-binary-size"],
)  # fmt: skip
def test_the_codec_refuses_data_that_disagree_with_their_datatype(tensor, chunk, message):
    view = None if chunk is None else memoryview(chunk)
    with pytest.raises(ApiError, match=message) as refused:
        decode(input_tensor(tensor), view)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("tensor", "chunk", "values"),
    [
        ({"datatype": "BOOL", "shape": [2], "data": [True, False]}, None, [True, False]),
        ({"datatype": "BOOL", "shape": [3]}, b"\x01\x00\x01", [True, False, True]),
        ({"datatype": "UINT8", "shape": [2]}, b"\x00\xff", [0, 255]),
        ({"datatype": "INT16", "shape": [2]}, struct.pack("<2h", -300, 300), [-300, 300]),
        ({"datatype": "FP16", "shape": [1], "data": [0.1]}, None, [float(np.float16(0.1))]),
        ({"datatype": "BYTES", "shape": [2]}, bytes_elements(["Dream", ""]), ["Dream", ""]),
        ({"datatype": "BYTES", "shape": [2, 1], "data": [["a"], [None]]}, None, ["a", None]),
    ],
    ids=["bool-json", "bool-binary", "uint8", "int16", "fp16", "bytes", "nested-with-null"],
)  # fmt: skip
def test_the_codec_decodes_every_datatype(tensor, chunk, values):
    view = None if chunk is None else memoryview(chunk)
    assert decode(input_tensor(tensor), view)[1] == values


def test_deeply_nested_data_cannot_exhaust_the_stack():
    data: list = [4000.0]
    for _ in range(5000):  # far deeper than Python's recursion limit
        data = [data]
    tensor = input_tensor({"datatype": "FP64", "shape": [1], "data": data})
    assert decode(tensor, None) == ([1], [4000.0])


# --- tritonclient, the protocol's reference client, against the real server -----------------

COLUMNS = {
    CLASSIFIER: ["island", "sex", "bill_length_mm", "bill_depth_mm", "flipper_length_mm",
                 "body_mass_g"],
    REGRESSOR: ["species", "island", "sex", "bill_length_mm", "bill_depth_mm",
                "flipper_length_mm"],
}  # fmt: skip
MODES = {  # (inputs as binary, outputs as binary)
    "json": (False, False),
    "binary-inputs": (True, False),
    "binary-outputs": (False, True),
    "binary": (True, True),
}


@pytest.fixture(scope="module")
def triton(api_url):
    """tritonclient's HTTP client on the session's gunicorn server."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(api_url.removeprefix("http://"))
    yield client
    client.close()


@pytest.fixture(scope="module")
def sample(penguins):
    """About 40 complete birds: every eighth (tritonclient cannot send missing values)."""
    frame = penguins[penguins.index % 8 == 0].dropna()
    assert len(frame) >= 35
    return frame


@pytest.fixture(scope="module")
def gaps(sample):
    """The same birds with numbers missing here and there (all such columns may be missing).

    tritonclient cannot send a missing category (it writes None as the text "None"),
    nor a missing number as JSON (NaN is not JSON); binary floats carry it as NaN.
    """
    frame = sample.copy()
    for step, column in enumerate(["bill_depth_mm", "flipper_length_mm", "body_mass_g"], 3):
        frame.loc[frame.index[::step], column] = np.nan
    return frame


def triton_inputs(frame, name: str, binary: bool, number_type=np.float64) -> list:
    import tritonclient.http as httpclient

    inputs = []
    for column in COLUMNS[name]:
        if column in CATEGORIES:
            values, datatype = frame[column].to_numpy(dtype=object), "BYTES"
        else:
            values = frame[column].to_numpy(dtype=number_type)
            datatype = {np.float64: "FP64", np.float32: "FP32"}[number_type]
        tensor = httpclient.InferInput(column, [len(frame)], datatype)
        inputs.append(tensor.set_data_from_numpy(values, binary_data=binary))
    return inputs


def triton_answer(result, name: str) -> dict[str, list]:
    """The outputs, and the answer checked against the protocol's schema (data restored)."""
    answer = result.get_response()
    found = {}
    for output in answer["outputs"]:
        array = result.as_numpy(output["name"])
        values = [v.decode() if isinstance(v, bytes) else v for v in array.ravel().tolist()]
        output.setdefault("data", values)
        found[output["name"]] = values
    v2_protocol.validate("inference_response", answer)
    assert answer["model_name"] == name
    return found


def native_answer(api_url: str, name: str, records: list[dict]) -> dict[str, list]:
    import requests

    response = requests.post(
        f"{api_url}/v1/models/{name}/predict", json={"records": records}, timeout=30
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    answer = {"predict": [p["prediction"] for p in predictions]}
    if "probabilities" in predictions[0]:
        answer["predict_proba"] = [x for p in predictions for x in p["probabilities"].values()]
    return answer


def records_of(frame, name: str) -> list[dict]:
    subset = frame[COLUMNS[name]].astype(object)
    return subset.where(subset.notna(), None).to_dict("records")


def assert_same(v2: dict[str, list], native: dict[str, list]) -> None:
    """Labels identical, numbers within 1e-6."""
    assert list(v2) == list(native)
    for name, values in native.items():
        if isinstance(values[0], str):
            assert v2[name] == values
        else:
            assert len(v2[name]) == len(values)
            assert all(
                math.isclose(a, b, abs_tol=1e-6) for a, b in zip(v2[name], values, strict=True)
            )


@pytest.mark.slow
def test_tritonclient_health_and_metadata(triton):
    assert triton.is_server_live() and triton.is_server_ready()
    server = triton.get_server_metadata()
    v2_protocol.validate("metadata_server_response", server)
    assert "binary_tensor_data" in server["extensions"]
    for name, columns_ in COLUMNS.items():
        assert triton.is_model_ready(name) and triton.is_model_ready(name, "1")
        metadata = triton.get_model_metadata(name)
        v2_protocol.validate("metadata_model_response", metadata)
        assert [tensor["name"] for tensor in metadata["inputs"]] == columns_
        assert metadata == triton.get_model_metadata(name, "1")


@pytest.mark.slow
@pytest.mark.parametrize("name", [CLASSIFIER, REGRESSOR])
@pytest.mark.parametrize("mode", list(MODES))
def test_tritonclient_gets_the_native_answer(triton, api_url, sample, name, mode):
    import tritonclient.http as httpclient

    binary_inputs, binary_outputs = MODES[mode]
    complete = sample
    outputs = [o["name"] for o in triton.get_model_metadata(name)["outputs"]]
    requested = [httpclient.InferRequestedOutput(o, binary_data=binary_outputs) for o in outputs]
    result = triton.infer(
        name, triton_inputs(complete, name, binary_inputs), outputs=requested, request_id=mode
    )
    assert result.get_response()["id"] == mode
    sent_binary = [
        o["name"]
        for o in result.get_response()["outputs"]
        if "binary_data_size" in o.get("parameters", {})
    ]
    assert sent_binary == (outputs if binary_outputs else [])
    assert_same(
        triton_answer(result, name), native_answer(api_url, name, records_of(complete, name))
    )


@pytest.mark.slow
def test_tritonclient_default_outputs_are_binary(triton, api_url, sample):
    """Named outputs or not: with none named, tritonclient asks for every output in binary."""
    complete = sample
    result = triton.infer(CLASSIFIER, triton_inputs(complete, CLASSIFIER, binary=True),
                          model_version="1")  # fmt: skip
    answer = result.get_response()
    assert all("binary_data_size" in o["parameters"] for o in answer["outputs"])
    expected = native_answer(api_url, CLASSIFIER, records_of(complete, CLASSIFIER))
    assert_same(triton_answer(result, CLASSIFIER), expected)


@pytest.mark.slow
@pytest.mark.parametrize("name", [CLASSIFIER, REGRESSOR])
def test_tritonclient_sends_missing_numbers_as_nan_in_binary(triton, api_url, gaps, name):
    assert gaps[COLUMNS[name]].isna().any(axis=1).sum() >= 10
    result = triton.infer(name, triton_inputs(gaps, name, binary=True))
    assert_same(triton_answer(result, name), native_answer(api_url, name, records_of(gaps, name)))


@pytest.mark.slow
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_fp32_matches_the_native_route_on_fp32_values(triton, api_url, sample, binary):
    complete = sample
    inputs = triton_inputs(complete, CLASSIFIER, binary, number_type=np.float32)
    rounded = complete.copy()
    numbers = [c for c in COLUMNS[CLASSIFIER] if c not in CATEGORIES]
    rounded[numbers] = rounded[numbers].astype(np.float32).astype(np.float64)
    expected = native_answer(api_url, CLASSIFIER, records_of(rounded, CLASSIFIER))
    assert_same(triton_answer(triton.infer(CLASSIFIER, inputs), CLASSIFIER), expected)


@pytest.mark.slow
def test_tritonclient_shows_the_servers_message(triton, sample):
    """V2 clients read ``error`` as the message: a string, never an object."""
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException) as unknown_model:
        triton.get_model_metadata("no-such-model")
    assert unknown_model.value.status() == "404"
    assert unknown_model.value.message().startswith("no model named 'no-such-model'")
    inputs = triton_inputs(sample, CLASSIFIER, binary=True)
    inputs[0] = triton_inputs(sample, REGRESSOR, binary=True)[0]  # "species"
    with pytest.raises(InferenceServerException) as unknown_input:
        triton.infer(CLASSIFIER, inputs)
    assert unknown_input.value.status() == "400"
    assert unknown_input.value.message().startswith("unknown input 'species'")
    assert "[400] unknown input" in str(unknown_input.value)
