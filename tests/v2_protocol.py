"""The Open Inference Protocol's own schemas, to check every V2 answer the tests get.

``open_inference_rest.yaml`` beside this file is the specification's ``components``
section, verbatim. Answers are validated against it with ``jsonschema``; binary
answers (the binary tensor data extension) are first put back together as the JSON
they stand for, each binary output's bytes decoded into its ``data``, the way a client
reads them.
"""

import functools
import json
import re
import struct
from pathlib import Path

import jsonschema
import numpy as np
import yaml

SPEC = Path(__file__).with_name("open_inference_rest.yaml")
BINARY_HEADER = "Inference-Header-Content-Length"
NUMPY_TYPES = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
"""Written out here rather than imported, so that the tests do not trust the code under test."""

# which schema an answer must follow, by route kind: (success, error)
SCHEMAS = {
    "server_metadata": ("metadata_server_response", "metadata_server_error_response"),
    "model_metadata": ("metadata_model_response", "metadata_model_error_response"),
    "infer": ("inference_response", "inference_error_response"),
}


@functools.cache
def components() -> dict:
    return yaml.safe_load(SPEC.read_text(encoding="utf-8"))["components"]


@functools.cache
def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": components()}
    return jsonschema.Draft202012Validator(schema)


def validate(schema_name: str, body: object) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` follows the named schema."""
    validator(schema_name).validate(body)


def check_error(body: dict, kind: str = "infer") -> str:
    """A V2 error answer: the protocol's shape, the message a string; returns the message.

    The specification's error schemas list ``error`` among the properties but forget to
    make it required, so its presence is checked here as well.
    """
    validate(SCHEMAS.get(kind, SCHEMAS["infer"])[1], body)
    assert isinstance(body.get("error"), str) and body["error"], body
    return body["error"]


def decode_bytes(blob: bytes) -> list[str]:
    """BYTES elements of the binary extension: a 4-byte little-endian length, then the bytes."""
    elements, offset = [], 0
    while offset < len(blob):
        (length,) = struct.unpack_from("<I", blob, offset)
        elements.append(blob[offset + 4 : offset + 4 + length].decode())
        offset += 4 + length
    return elements


def infer_answer(headers, content: bytes) -> dict:
    """An inference answer as JSON, binary outputs decoded into ``data``; validated.

    A binary answer must announce its JSON length in ``Inference-Header-Content-Length``,
    and its binary outputs' sizes must add up to exactly the bytes after the JSON.
    """
    length = headers.get(BINARY_HEADER)
    if length is None:
        assert headers["Content-Type"].startswith("application/json")
        answer = json.loads(content)
        assert all("binary_data_size" not in o.get("parameters", {}) for o in answer["outputs"])
    else:
        answer = json.loads(content[: int(length)])
        offset = int(length)
        for output in answer["outputs"]:
            size = output.get("parameters", {}).get("binary_data_size")
            if size is None:
                continue
            assert "data" not in output, output
            blob = content[offset : offset + size]
            offset += size
            if output["datatype"] == "BYTES":
                output["data"] = decode_bytes(blob)
            else:
                output["data"] = np.frombuffer(blob, NUMPY_TYPES[output["datatype"]]).tolist()
        assert offset == len(content), "the binary outputs do not add up to the body"
    validate("inference_response", answer)
    return answer


def route_kind(path: str) -> str | None:
    """Which of the protocol's answers a V2 path gives (None: health, no body schema)."""
    if re.fullmatch(r"/v2/?", path):
        return "server_metadata"
    if re.fullmatch(r"/v2/models/[^/]+(/versions/[^/]+)?/infer", path):
        return "infer"
    if re.fullmatch(r"/v2/models/[^/]+(/versions/[^/]+)?", path):
        return "model_metadata"
    return None


def check_answer(path: str, status: int, body: object) -> None:
    """Validate a JSON answer of a V2 route: its success schema, or the error schema."""
    kind = route_kind(path)
    if kind is None and status in (200, 503):  # health: the status is the answer
        return
    if status >= 400:
        check_error(body, kind or "infer")
    elif kind:
        validate(SCHEMAS[kind][0], body)
