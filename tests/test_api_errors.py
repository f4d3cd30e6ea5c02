"""A catalogue of malformed and hostile requests, and the exact error each one gets.

Every case runs twice: against the Flask test client and against the real gunicorn
server. Whatever the request, the answer is a 4xx with the API's JSON error shape
``{"error": {"status", "code", "message", "request_id", ...}}``, or on the V2 routes
the Open Inference Protocol's ``{"error": "<message>", "code", "request_id"}``,
validated against the protocol's schema: never HTML, never a traceback, never a 500,
and never the submitted values echoed back.
"""

import json
import re
import struct
from dataclasses import dataclass, field

import pytest
import requests

from apps.api.app import create_app

from . import v2_protocol
from .conftest import RECORD
from .servers import running_api

NATIVE = "/v1/models/species-classifier/predict"
REGRESSOR = "/v1/models/body-mass-regressor/predict"
V2 = "/v2/models/species-classifier/infer"
V2_REGRESSOR = "/v2/models/body-mass-regressor/infer"
MLFLOW = "/invocations"

JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}

MAX_RECORDS = 5  # the limited app and server
MAX_BODY_BYTES = 2000

SECRET = "tok-5ecret-4242"
"""A value that looks like a credential: it must never appear in an error body."""

CSV_HEADER = ",".join(RECORD)
CSV_ROW = "Biscoe,male,45.0,15.0,220.0,5000.0"
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Case:
    """One bad request and what the API must answer."""

    id: str
    method: str
    path: str
    status: int
    code: str
    message: str  # a substring of error.message that tells the client what to fix
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    limited: bool = False  # needs the app or server with small limits
    allow: tuple[str, ...] = ()  # methods the Allow header must list (405)
    bad_request_id: str | None = None  # an unsafe X-Request-ID that must be replaced


def as_json(value: object) -> bytes:
    return json.dumps(value).encode()


def record(**changes) -> bytes:
    """A native body with one record, with some fields changed (``...``: left out)."""
    body = {**RECORD, **changes}
    return as_json({"record": {k: v for k, v in body.items() if v is not ...}})


def raw_record(field_name: str, literal: str) -> bytes:
    """A native body whose number field holds a literal that ``json.dumps`` cannot write."""
    rest = as_json({k: v for k, v in RECORD.items() if k != field_name})[1:-1].decode()
    return f'{{"record": {{{rest}, "{field_name}": {literal}}}}}'.encode()


def tensor(name: str, data: list, datatype: str | None = None, shape=None) -> dict:
    numeric = name not in ("island", "sex", "species")
    return {
        "name": name,
        "datatype": datatype or ("FP64" if numeric else "BYTES"),
        "shape": shape if shape is not None else [len(data)],
        "data": data,
    }


def v2_body(rows: int = 1, **extra) -> dict:
    """A valid V2 request for ``rows`` copies of RECORD."""
    return {"inputs": [tensor(k, [v] * rows) for k, v in RECORD.items()], **extra}


def with_mass(datatype: str, value: object) -> bytes:
    """RECORD as V2 JSON, its body mass declared with another datatype."""
    inputs = [tensor(k, [v]) for k, v in RECORD.items() if k != "body_mass_g"]
    return as_json({"inputs": [*inputs, tensor("body_mass_g", [value], datatype)]})


def binary(
    inputs: list[dict], data: bytes, length: int | None = None, **headers
) -> tuple[bytes, dict]:
    """A body of the binary extension: the JSON, then ``data``; and its headers.

    ``length`` is the JSON length the header announces (the true one by default).
    """
    header = as_json({"inputs": inputs})
    length = len(header) if length is None else length
    return header + data, {"Inference-Header-Content-Length": str(length), **headers}


def binary_tensor(name: str, datatype: str, shape: list, size: int) -> dict:
    """A tensor whose data are binary: ``size`` bytes after the JSON."""
    return {"name": name, "datatype": datatype, "shape": shape,
            "parameters": {"binary_data_size": size}}  # fmt: skip


ISLAND = binary_tensor("island", "BYTES", [1], 9)
ISLAND_DATA = b"\x05\x00\x00\x00Dream"
MASS = binary_tensor("body_mass_g", "FP64", [1], 8)
MASS_DATA = struct.pack("<d", 4000.0)


CASES = [
    # --- the body is not a usable JSON document ---------------------------------------
    Case("invalid-json", "POST", NATIVE, 400, "invalid_json", "not valid JSON",
         b'{"record": {"island": "Biscoe",}', JSON),
    Case("not-utf8", "POST", NATIVE, 400, "invalid_json", "not valid UTF-8",
         b'{"record": {"island": "Bisco\xe9"}}', JSON),
    Case("empty-body", "POST", NATIVE, 400, "invalid_json", "not valid JSON", b"", JSON),
    Case("json-null", "POST", NATIVE, 400, "bad_request", "must be a JSON object", b"null", JSON),
    Case("json-number", "POST", NATIVE, 400, "bad_request", "must be a JSON object", b"42", JSON),
    Case("json-string", "POST", NATIVE, 400, "bad_request", "must be a JSON object",
         as_json(SECRET), JSON),
    Case("json-array", "POST", NATIVE, 400, "bad_request", "must be a JSON object",
         as_json([RECORD]), JSON),
    pytest.param(
        Case("deeply-nested", "POST", NATIVE, 400, "invalid_json", "JSON",
             b"[" * 100_000 + b"]" * 100_000, JSON),
        id="deeply-nested"),
    pytest.param(
        Case("integer-5000-digits", "POST", NATIVE, 400, "invalid_json", "JSON",
             raw_record("bill_length_mm", "1" * 5000), JSON),
        id="integer-5000-digits"),
    # --- the native body has the wrong shape ------------------------------------------
    Case("record-and-records", "POST", NATIVE, 400, "bad_request", "exactly one of",
         as_json({"record": RECORD, "records": [RECORD]}), JSON),
    Case("neither-record-nor-records", "POST", NATIVE, 400, "bad_request", "exactly one of",
         b"{}", JSON),
    Case("unknown-top-level-key", "POST", NATIVE, 400, "bad_request", "unknown top-level keys",
         as_json({"records": [RECORD], "data": [SECRET]}), JSON),
    Case("records-not-a-list", "POST", NATIVE, 400, "bad_request", "must be a JSON array",
         as_json({"records": RECORD}), JSON),
    Case("record-not-an-object", "POST", NATIVE, 422, "invalid_input", "must be a JSON object",
         as_json({"record": [SECRET]}), JSON),
    Case("records-item-not-an-object", "POST", NATIVE, 422, "invalid_input",
         "must be a JSON object", as_json({"records": [RECORD, SECRET]}), JSON),
    Case("empty-records", "POST", NATIVE, 400, "bad_request", "records: must not be empty",
         as_json({"records": []}), JSON),
    # --- the values break the schema ---------------------------------------------------
    Case("unknown-field", "POST", NATIVE, 422, "invalid_input", "unknown field",
         as_json({"record": {**RECORD, "bill_lenght_mm": SECRET}}), JSON),
    Case("missing-required-field", "POST", NATIVE, 422, "invalid_input", "is required",
         record(island=...), JSON),
    Case("null-in-non-nullable", "POST", NATIVE, 422, "invalid_input", "may not be null",
         record(island=None), JSON),
    Case("string-for-number", "POST", NATIVE, 422, "invalid_input", "must be a number",
         record(bill_length_mm=SECRET), JSON),
    Case("number-as-string", "POST", NATIVE, 422, "invalid_input", "must be a number",
         record(bill_length_mm="45.0"), JSON),
    Case("number-for-category", "POST", NATIVE, 422, "invalid_input", "must be a string",
         record(island=4242), JSON),
    Case("boolean-for-number", "POST", NATIVE, 422, "invalid_input", "must be a number",
         record(body_mass_g=True), JSON),
    Case("unknown-category", "POST", NATIVE, 422, "invalid_input", "unknown category",
         record(island=SECRET), JSON),
    Case("case-mismatched-category", "POST", NATIVE, 422, "invalid_input", "unknown category",
         record(island="biscoe"), JSON),
    Case("nan-literal", "POST", NATIVE, 400, "invalid_json", "not valid JSON",
         raw_record("bill_length_mm", "NaN"), JSON),
    Case("infinity-literal", "POST", NATIVE, 400, "invalid_json", "not valid JSON",
         raw_record("flipper_length_mm", "Infinity"), JSON),
    Case("minus-infinity-literal", "POST", NATIVE, 400, "invalid_json", "not valid JSON",
         raw_record("body_mass_g", "-Infinity"), JSON),
    Case("below-minimum", "POST", NATIVE, 422, "invalid_input", "must be at least 25",
         record(bill_length_mm=1.5), JSON),
    Case("above-maximum", "POST", NATIVE, 422, "invalid_input", "must be at most 70",
         record(bill_length_mm=4242.0), JSON),
    Case("float-overflow-literal", "POST", NATIVE, 400, "invalid_json", "infinity",
         raw_record("bill_length_mm", "1e400"), JSON),
    Case("integer-too-big-for-float", "POST", NATIVE, 400, "invalid_json", "infinity",
         raw_record("bill_length_mm", "1" + "0" * 400), JSON),
    Case("regressor-missing-species", "POST", REGRESSOR, 422, "invalid_input", "is required",
         as_json({"record": {"island": "Dream"}}), JSON),
    # --- limits (a second app / server with small limits) ------------------------------
    Case("too-many-records", "POST", NATIVE, 413, "too_many_records", f"at most {MAX_RECORDS}",
         as_json({"records": [{"island": "Dream"}] * (MAX_RECORDS + 1)}), JSON, limited=True),
    Case("too-many-records-v2", "POST", V2, 413, "too_many_records", f"at most {MAX_RECORDS}",
         as_json({"inputs": [tensor("island", ["Dream"] * (MAX_RECORDS + 1))]}), JSON,
         limited=True),
    Case("too-many-records-csv", "POST", MLFLOW, 413, "too_many_records",
         f"at most {MAX_RECORDS}", "\n".join(["island", *["Dream"] * 6]).encode(), CSV,
         limited=True),
    Case("body-too-large", "POST", NATIVE, 413, "request_entity_too_large", "limit",
         as_json({"records": [RECORD] * 20}), JSON, limited=True),
    # --- content types -------------------------------------------------------------------
    Case("text-plain", "POST", NATIVE, 415, "unsupported_media_type", "application/json",
         record(), {"Content-Type": "text/plain"}),
    Case("form-data", "POST", NATIVE, 415, "unsupported_media_type", "application/json",
         f"island={SECRET}".encode(), {"Content-Type": "application/x-www-form-urlencoded"}),
    Case("no-content-type", "POST", NATIVE, 415, "unsupported_media_type", "application/json",
         record()),
    # --- routes, models and versions ----------------------------------------------------
    Case("unknown-model", "POST", "/v1/models/no-such-model/predict", 404, "model_not_found",
         "no model named", record(), JSON),
    Case("unknown-version", "POST", "/v1/models/species-classifier/versions/99/predict", 404,
         "model_not_found", "has no version", record(), JSON),
    Case("non-numeric-version", "POST", "/v1/models/species-classifier/versions/latest/predict",
         404, "model_not_found", "has no version", record(), JSON),
    Case("negative-version", "GET", "/v1/models/species-classifier/versions/-1", 404,
         "model_not_found", "has no version"),
    pytest.param(
        Case("superscript-digit-version", "POST",
             "/v1/models/species-classifier/versions/%C2%B2/predict", 404, "model_not_found",
             "has no version", record(), JSON),
        id="superscript-digit-version"),
    Case("unknown-route", "GET", "/v1/nothing-here", 404, "not_found", "not found"),
    Case("wrong-method-predict", "GET", NATIVE, 405, "method_not_allowed", "not allowed",
         allow=("POST",)),
    Case("wrong-method-models", "DELETE", "/v1/models", 405, "method_not_allowed",
         "not allowed", allow=("GET",)),
    Case("wrong-method-invocations", "PUT", MLFLOW, 405, "method_not_allowed", "not allowed",
         record(), JSON, allow=("POST",)),
    Case("path-traversal", "POST", "/v1/models/..%2F..%2Fetc/predict", 404, "not_found",
         "not found", record(), JSON),
    Case("path-traversal-version", "GET", "/v1/models/species-classifier/versions/..%2F..%2F1",
         404, "not_found", "not found"),
    Case("very-long-model-name", "POST", f"/v1/models/{'n' * 2000}/predict", 404,
         "model_not_found", "no model named", record(), JSON),
    Case("markup-model-name", "GET", "/v1/models/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 404,
         "not_found", "not found"),
    # --- header injection in X-Request-ID -----------------------------------------------
    Case("request-id-encoded-crlf", "GET", "/v1/models/no-such-model", 404, "model_not_found",
         "no model named", headers={"X-Request-ID": "abc%0d%0aSet-Cookie:%20session=1"},
         bad_request_id="abc%0d%0aSet-Cookie:%20session=1"),
    Case("request-id-markup", "GET", "/v1/models/no-such-model", 404, "model_not_found",
         "no model named", headers={"X-Request-ID": "<script>alert(1)</script>"},
         bad_request_id="<script>alert(1)</script>"),
    Case("request-id-too-long", "GET", "/v1/models/no-such-model", 404, "model_not_found",
         "no model named", headers={"X-Request-ID": "r" * 65}, bad_request_id="r" * 65),
    Case("request-id-spaces-and-tab", "GET", "/v1/models/no-such-model", 404,
         "model_not_found", "no model named", headers={"X-Request-ID": "id with\tspaces"},
         bad_request_id="id with\tspaces"),
    # --- Open Inference Protocol (V2) ---------------------------------------------------
    Case("v2-missing-inputs", "POST", V2, 400, "bad_request", "inputs: is required", b"{}", JSON),
    Case("v2-empty-inputs", "POST", V2, 400, "bad_request", "inputs: must not be empty",
         as_json({"inputs": []}), JSON),
    Case("v2-input-not-an-object", "POST", V2, 400, "bad_request",
         "inputs[0]: must be a JSON object",
         as_json({"inputs": [SECRET]}), JSON),
    Case("v2-unknown-input", "POST", V2, 400, "bad_request", "unknown input",
         as_json({"inputs": [tensor("beak_colour", ["black"], "BYTES")]}), JSON),
    Case("v2-duplicate-input", "POST", V2, 400, "bad_request", "given twice",
         as_json({"inputs": [tensor("island", ["Dream"]), tensor("island", ["Biscoe"])]}), JSON),
    Case("v2-wrong-datatype", "POST", V2, 400, "bad_request", "datatype",
         as_json({"inputs": [tensor("island", [1.0], "FP64")]}), JSON),
    Case("v2-bytes-for-number", "POST", V2, 400, "bad_request", "datatype",
         as_json({"inputs": [tensor("island", ["Dream"]),
                             tensor("body_mass_g", ["4000"], "BYTES")]}), JSON),
    Case("v2-shape-mismatch", "POST", V2, 400, "bad_request", "shape",
         as_json({"inputs": [tensor("island", ["Dream"], shape=[3])]}), JSON),
    Case("v2-rows-of-different-lengths", "POST", V2, 400, "bad_request", "same number of rows",
         as_json({"inputs": [tensor("island", ["Dream", "Biscoe"]),
                             tensor("sex", ["male"])]}), JSON),
    Case("v2-row-with-two-values", "POST", V2, 400, "bad_request", "exactly one value",
         as_json({"inputs": [tensor("island", [["Dream", "Biscoe"]], shape=[1, 2])]}), JSON),
    Case("v2-data-not-an-array", "POST", V2, 400, "bad_request", "must be a JSON array",
         as_json({"inputs": [tensor("island", "Dream", shape=[1])]}), JSON),
    Case("v2-unknown-output", "POST", V2, 400, "bad_request", "unknown output",
         as_json(v2_body(outputs=[{"name": "predict_log_proba"}])), JSON),
    Case("v2-proba-of-regressor", "POST", V2_REGRESSOR, 400, "bad_request", "unknown output",
         as_json({"inputs": [tensor("species", ["Adelie"]), tensor("island", ["Dream"])],
                  "outputs": [{"name": "predict_proba"}]}), JSON),
    Case("v2-unknown-top-level-key", "POST", V2, 400, "bad_request", "unknown top-level keys",
         as_json(v2_body(instances=[RECORD])), JSON),
    Case("v2-unknown-category", "POST", V2, 422, "invalid_input", "unknown category",
         as_json({"inputs": [tensor("island", [SECRET])]}), JSON),
    Case("v2-unknown-model", "POST", "/v2/models/no-such-model/infer", 404, "model_not_found",
         "no model named", as_json(v2_body()), JSON),
    Case("v2-text-plain", "POST", V2, 415, "unsupported_media_type", "application/json",
         as_json(v2_body()), {"Content-Type": "text/plain"}),
    Case("v2-gzip", "POST", V2, 415, "unsupported_media_type", "compressed",
         as_json(v2_body()), {"Content-Encoding": "gzip"}),
    Case("v2-below-minimum", "POST", V2, 422, "invalid_input", "must be at least",
         with_mass("FP64", 1.5), JSON),
    # --- V2: each datatype's data must agree with it (400, naming the input) ------------
    Case("v2-int8-out-of-range", "POST", V2, 400, "bad_request",
         "input 'body_mass_g': element 0 must be between -128 and 127", with_mass("INT8", 4000)),
    Case("v2-int8-with-a-fraction", "POST", V2, 400, "bad_request",
         "input 'body_mass_g': element 0 must be a whole number", with_mass("INT8", 4000.5)),
    Case("v2-int16-with-a-fraction", "POST", V2, 400, "bad_request",
         "input 'body_mass_g': element 0 must be a whole number", with_mass("INT16", 4000.5)),
    Case("v2-int32-written-as-float", "POST", V2, 400, "bad_request", "must be a whole number",
         with_mass("INT32", 4000.0)),
    Case("v2-uint8-negative", "POST", V2, 400, "bad_request", "must be between 0 and 255",
         with_mass("UINT8", -1)),
    Case("v2-int64-too-large", "POST", V2, 400, "bad_request", "between",
         with_mass("INT64", 2**63)),
    Case("v2-fp16-too-large", "POST", V2, 400, "bad_request", "too large for FP16",
         with_mass("FP16", 70000.0)),
    Case("v2-fp64-string", "POST", V2, 400, "bad_request",
         "input 'body_mass_g': element 0 must be a number", with_mass("FP64", SECRET)),
    Case("v2-fp32-boolean", "POST", V2, 400, "bad_request", "must be a number",
         with_mass("FP32", True)),
    Case("v2-bool-for-a-number", "POST", V2, 400, "bad_request", "must have a number datatype",
         with_mass("BOOL", True)),
    Case("v2-bytes-not-a-string", "POST", V2, 400, "bad_request",
         "input 'island': element 1 must be a string",
         as_json({"inputs": [tensor("island", ["Dream", 4242])]})),
    # --- V2: malformed binary tensor data ------------------------------------------------
    Case("v2-binary-header-beyond-body", "POST", V2, 400, "bad_request", "the whole body has",
         *binary([ISLAND], ISLAND_DATA, length=10_000)),
    Case("v2-binary-header-not-a-number", "POST", V2, 400, "bad_request",
         "Inference-Header-Content-Length header must be a number",
         *binary([ISLAND], ISLAND_DATA, **{"Inference-Header-Content-Length": "12 bytes"})),
    Case("v2-binary-header-cuts-the-json", "POST", V2, 400, "invalid_json", "not valid JSON",
         *binary([ISLAND], ISLAND_DATA, length=20)),
    Case("v2-binary-sizes-beyond-the-data", "POST", V2, 400, "bad_request",
         "declare 17 bytes of binary data, but 9 follow", *binary([ISLAND, MASS], ISLAND_DATA)),
    Case("v2-binary-bytes-left-over", "POST", V2, 400, "bad_request",
         "declare 9 bytes of binary data, but 17 follow",
         *binary([ISLAND], ISLAND_DATA + MASS_DATA)),
    Case("v2-binary-without-the-header", "POST", V2, 400, "bad_request",
         "need the Inference-Header-Content-Length header", as_json({"inputs": [MASS]})),
    Case("v2-binary-size-against-shape", "POST", V2, 400, "bad_request",
         "2 FP64 elements take 16 bytes",
         *binary([binary_tensor("body_mass_g", "FP64", [2], 8)], MASS_DATA)),
    Case("v2-binary-bytes-element-overruns", "POST", V2, 400, "bad_request",
         "element 0 says 100 bytes, but only 5 remain",
         *binary([binary_tensor("island", "BYTES", [1], 9)], b"\x64\x00\x00\x00Dream")),
    Case("v2-binary-bytes-length-cut", "POST", V2, 400, "bad_request",
         "element 1 is cut before its length",
         *binary([binary_tensor("island", "BYTES", [2], 11)], ISLAND_DATA + b"\x05\x00")),
    Case("v2-binary-bytes-extra-element", "POST", V2, 400, "bad_request",
         "9 bytes are left after its 1 elements",
         *binary([binary_tensor("island", "BYTES", [1], 18)], ISLAND_DATA * 2)),
    Case("v2-binary-bytes-not-utf8", "POST", V2, 400, "bad_request", "not valid UTF-8",
         *binary([ISLAND], b"\x05\x00\x00\x00Dr\xe9am")),
    Case("v2-binary-and-json-data", "POST", V2, 400, "bad_request", "both 'data' and binary",
         *binary([{**MASS, "data": [4000.0]}], MASS_DATA)),
    Case("v2-binary-negative-size", "POST", V2, 400, "bad_request",
         "binary_data_size: must be at least 0",
         *binary([binary_tensor("body_mass_g", "FP64", [1], -8)], b"")),
    Case("v2-binary-as-csv", "POST", V2, 415, "unsupported_media_type", "octet-stream",
         *binary([ISLAND], ISLAND_DATA, **{"Content-Type": "text/csv"})),
    Case("v2-binary-output-not-a-flag", "POST", V2, 400, "bad_request",
         "binary_data_output: must be true or false",
         as_json(v2_body(parameters={"binary_data_output": "yes"}))),
    Case("v2-binary-data-not-a-flag", "POST", V2, 400, "bad_request",
         "binary_data: must be true or false",
         as_json(v2_body(outputs=[{"name": "predict", "parameters": {"binary_data": 1}}]))),
    Case("v2-output-asked-twice", "POST", V2, 400, "bad_request", "asked for twice",
         as_json(v2_body(outputs=[{"name": "predict"}, {"name": "predict"}]))),
    Case("v2-classification-extension", "POST", V2, 400, "bad_request", "classification",
         as_json(v2_body(outputs=[{"name": "predict", "parameters": {"classification": 2}}]))),
    # --- MLflow scoring protocol --------------------------------------------------------
    Case("mlflow-two-layouts", "POST", MLFLOW, 400, "bad_request", "exactly one of",
         as_json({"dataframe_records": [RECORD], "instances": [RECORD]}), JSON),
    Case("mlflow-unknown-key", "POST", MLFLOW, 400, "bad_request", "unknown top-level keys",
         as_json({"dataframe_records": [RECORD], "records": [RECORD]}), JSON),
    Case("mlflow-no-layout", "POST", MLFLOW, 400, "bad_request", "exactly one of",
         as_json({"params": {}}), JSON),
    Case("mlflow-ragged-dataframe-split", "POST", MLFLOW, 400, "bad_request",
         "one value per column",
         as_json({"dataframe_split": {"columns": list(RECORD), "data": [["Biscoe", "male"]]}}),
         JSON),
    Case("mlflow-dataframe-records-not-a-list", "POST", MLFLOW, 400, "bad_request",
         "dataframe_records: must be a JSON array", as_json({"dataframe_records": RECORD}), JSON),
    Case("mlflow-columns-of-different-lengths", "POST", MLFLOW, 400, "bad_request",
         "same length", as_json({"inputs": {"island": ["Dream", "Biscoe"], "sex": ["male"]}}),
         JSON),
    Case("mlflow-json-null", "POST", MLFLOW, 400, "bad_request", "must be a JSON object",
         b"null", JSON),
    Case("mlflow-csv-empty", "POST", MLFLOW, 400, "bad_request", "header row", b"", CSV),
    Case("mlflow-csv-without-header", "POST", MLFLOW, 422, "invalid_input", "unknown field",
         f"{CSV_ROW}\n{CSV_ROW}\n".encode(), CSV),
    Case("mlflow-csv-not-a-number", "POST", MLFLOW, 422, "invalid_input", "must be a number",
         f"{CSV_HEADER}\nBiscoe,male,{SECRET},15.0,220.0,5000.0\n".encode(), CSV),
    Case("mlflow-csv-infinite", "POST", MLFLOW, 422, "invalid_input", "finite number",
         f"{CSV_HEADER}\nBiscoe,male,inf,15.0,220.0,5000.0\n".encode(), CSV),
    Case("mlflow-csv-extra-cells", "POST", MLFLOW, 422, "invalid_input", "(extra cells)",
         f"{CSV_HEADER}\n{CSV_ROW},{SECRET}\n".encode(), CSV),
    Case("mlflow-wrong-content-type", "POST", MLFLOW, 415, "unsupported_media_type",
         "text/csv", f"{CSV_HEADER}\n{CSV_ROW}\n".encode(), {"Content-Type": "application/xml"}),
    Case("mlflow-no-content-type", "POST", MLFLOW, 415, "unsupported_media_type", "text/csv",
         record()),
    Case("mlflow-duplicate-column", "POST", MLFLOW, 400, "bad_request",
         "names the column 'island' twice",
         as_json({"dataframe_split": {"columns": ["island", "island", "sex"],
                                      "data": [["Biscoe", "Dream", "male"]]}}), JSON),
    Case("mlflow-csv-duplicate-column", "POST", MLFLOW, 400, "bad_request",
         "names the column 'island' twice", b"island,island,sex\nBiscoe,Dream,male\n", CSV),
    Case("too-many-records-mlflow-columns", "POST", MLFLOW, 413, "too_many_records",
         f"at most {MAX_RECORDS}", as_json({"inputs": {"island": ["Dream"] * 6}}), JSON,
         limited=True),
    Case("too-many-values", "POST", NATIVE, 413, "too_many_values",
         f"at most {MAX_RECORDS} records", b'{"records": [' + b"{}," * 200 + b"{}]}", JSON,
         limited=True),
    # --- routing never redirects (a redirect would go to the host the request names) ----
    Case("merged-slashes", "GET", "/v1//models", 404, "not_found", "not found",
         headers={"Host": "evil.example"}),
    Case("merged-slashes-predict", "POST", "/v1/models//species-classifier/predict", 404,
         "not_found", "not found", record(), {**JSON, "Host": "evil.example"}),
    Case("invented-method", "BREW", "/v1/models", 405, "method_not_allowed", "not allowed",
         allow=("GET",)),
]  # fmt: skip


def _params() -> list:
    """The cases as pytest parameters named by their ids (known bugs already are)."""
    return [pytest.param(c, id=c.id) if isinstance(c, Case) else c for c in CASES]


def test_the_catalogue_is_large_and_its_ids_unique():
    ids = [p.id for p in _params()]
    assert len(ids) >= 35
    assert len(ids) == len(set(ids))


def check_error(case: Case, status: int, content_type: str, headers, text: str) -> None:
    """The assertions every case must pass, whichever way it was sent."""
    assert status == case.status, text[:500]
    assert content_type.split(";")[0].strip() == "application/json"
    assert "<html" not in text.lower()
    assert "Location" not in headers  # never a redirect
    assert "Traceback" not in text
    assert SECRET not in text  # no submitted value echoed back
    body = json.loads(text)
    if case.path.startswith("/v2"):
        v2_protocol.check_error(body)
        assert set(body) <= {"error", "code", "request_id", "details"}
        error = {"status": case.status, **body, "message": body["error"]}
    else:
        assert list(body) == ["error"]
        error = body["error"]
    assert error["status"] == case.status
    assert error["code"] == case.code
    assert case.message in error["message"]
    assert error["request_id"]
    assert headers["X-Request-ID"] == error["request_id"]
    if case.bad_request_id is not None:
        assert GENERATED_ID.match(error["request_id"])
        assert "Set-Cookie" not in headers
    if error["code"] == "invalid_input":
        assert error["details"]
        assert all(set(d) == {"row", "field", "message"} for d in error["details"])
    if case.allow:
        allowed = {m.strip() for m in headers["Allow"].split(",")}
        assert set(case.allow) <= allowed


# --- through the Flask test client ---------------------------------------------------


@pytest.fixture(scope="module")
def client():
    app = create_app({"API_KEYS": (), "RATE_LIMIT": None})
    return app.test_client()


@pytest.fixture(scope="module")
def limited_client():
    app = create_app(
        {
            "API_KEYS": (),
            "RATE_LIMIT": None,
            "MAX_RECORDS": MAX_RECORDS,
            "MAX_CONTENT_LENGTH": MAX_BODY_BYTES,
        }
    )
    return app.test_client()


@pytest.mark.parametrize("case", _params())
def test_error_from_the_app(case: Case, client, limited_client):
    test_client = limited_client if case.limited else client
    with test_client.open(
        case.path, method=case.method, data=case.body, headers=case.headers
    ) as response:
        check_error(
            case,
            response.status_code,
            response.content_type,
            response.headers,
            response.get_data(as_text=True),
        )


# --- through the real gunicorn server ------------------------------------------------


@pytest.fixture(scope="module")
def limited_url():
    env = {
        "API_BACKEND": "onnx",
        "API_MAX_RECORDS": str(MAX_RECORDS),
        "API_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
    }
    with running_api(env) as url:
        yield url


@pytest.mark.slow
@pytest.mark.parametrize("case", _params())
def test_error_from_the_server(case: Case, request):
    base_url = request.getfixturevalue("limited_url" if case.limited else "api_url")
    with requests.request(
        case.method, base_url + case.path, data=case.body, headers=case.headers, timeout=30
    ) as response:
        check_error(
            case,
            response.status_code,
            response.headers.get("Content-Type", ""),
            response.headers,
            response.text,
        )
