"""Tensors of the Open Inference Protocol (V2), as JSON or as binary data.

A V2 tensor is a name, a datatype, a shape and its data, flat in row-major order. The
data travel as a JSON array or, with the protocol's *binary tensor data* extension, as
raw little-endian bytes after the JSON, whose length the ``Inference-Header-Content-Length``
header gives. Fast clients (tritonclient) use binary by default: no numbers to format
and parse, and 8 bytes for an FP64 value that takes up to 24 characters as text.

The data must agree with their datatype, as the protocol requires: an INT8 holds
integers from -128 to 127, a BOOL true or false, BYTES strings. A disagreement is a
malformed tensor, like a wrong shape: a 400 that names the input. Whether the values
suit a model (a known island, a bill length in range) is the schema's judgement, a 422,
as in every other format. This module knows no model.
"""

import math
import re
import struct
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
from flask import Response, current_app, request

from apps.api import jsonio
from apps.api.answers import OutputTensor
from apps.api.bodies import within_value_limit
from apps.api.contracts import InputTensor
from apps.api.errors import ApiError
from apps.api.formats import bad_request, json_body, parse_json

BINARY_HEADER = "Inference-Header-Content-Length"
EXTENSIONS = ["binary_tensor_data"]
"""What the server metadata announces, with the name Triton gives the extension."""

# every datatype of the protocol but BYTES and BF16, as NumPy sees it
FIXED_SIZE: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
DATATYPES = [*FIXED_SIZE, "BYTES"]
NUMBER_DATATYPES = [datatype for datatype in FIXED_SIZE if datatype != "BOOL"]
MAX_DIMENSIONS = 8
_LENGTH = re.compile(r"[0-9]{1,12}")


def read_infer_request() -> tuple[object, bytes | None]:
    """The request's JSON, and the binary data that follow it (None without the header).

    A body without Content-Type is JSON, as Triton, MLServer and KServe read it: the
    reference client, tritonclient, sends none. A declared type other than JSON (or
    octet-stream with binary data) is still a 415.
    """
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        raise ApiError(
            415, "unsupported_media_type", "compressed bodies are not supported; send it as is"
        )
    length = request.headers.get(BINARY_HEADER)
    if length is None:
        return json_body(untyped_is_json=True), None
    if request.mimetype not in ("", "application/json", "application/octet-stream"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "send binary tensor data with Content-Type application/octet-stream, or none",
        )
    if not _LENGTH.fullmatch(length.strip()):
        raise bad_request(f"the {BINARY_HEADER} header must be a number of bytes")
    body, json_bytes = request.get_data(), int(length)
    if json_bytes > len(body):
        raise bad_request(
            f"the {BINARY_HEADER} header says the JSON takes {json_bytes} bytes, "
            f"but the whole body has {len(body)}"
        )
    return parse_json(within_value_limit(body[:json_bytes])), body[json_bytes:]


def split_binary(inputs: list[InputTensor], binary: bytes | None) -> list:
    """Each input's share of the binary data, in the inputs' order (None: its data are JSON).

    The sizes the inputs declare (``parameters.binary_data_size``) must add up to exactly
    the bytes that follow the JSON (``binary``, None without the extension's header):
    anything else means the body was cut or padded.
    """
    sizes = [tensor.parameters.binary_data_size for tensor in inputs]
    declared = sum(size for size in sizes if size is not None)
    received = len(binary or b"")
    if declared != received:
        hint = f" (binary data need the {BINARY_HEADER} header)" if binary is None else ""
        raise bad_request(
            f"the inputs declare {declared} bytes of binary data, "
            f"but {received} follow the JSON{hint}"
        )
    chunks, offset, view = [], 0, memoryview(binary or b"")
    for size in sizes:
        chunks.append(None if size is None else view[offset : offset + size])
        offset += size or 0
    return chunks


def decode(tensor: InputTensor, chunk: memoryview | None) -> tuple[list[int], list]:
    """The tensor's shape and elements (flat, as Python values), checked against its datatype.

    ``chunk`` is the tensor's binary data, or None when its data are in the JSON. A
    missing value is None: ``null`` in JSON, NaN in binary floating-point data.
    """
    name, datatype, shape = tensor.name, tensor.datatype, tensor.shape
    if datatype not in DATATYPES:
        raise bad_request(f"input '{name}': unknown datatype; the protocol's are {DATATYPES}")
    if len(shape) > MAX_DIMENSIONS or any(size < 0 for size in shape):
        raise bad_request(
            f"input '{name}': shape must be a list of at most {MAX_DIMENSIONS} whole numbers"
        )
    count = math.prod(shape)
    has_data = "data" in tensor.model_fields_set
    if chunk is not None:
        if has_data:
            raise bad_request(f"input '{name}' has both 'data' and binary data")
        return shape, _from_binary(name, datatype, count, chunk)
    if not has_data:
        raise bad_request(f"input '{name}' has no data (neither 'data' nor binary_data_size)")
    values = _flatten(name, tensor.data)
    if len(values) != count:
        raise bad_request(
            f"input '{name}': its shape holds {count} elements but its data {len(values)}"
        )
    return shape, _from_json(name, datatype, values)


def _flatten(name: str, data: object) -> list:
    """Nested JSON arrays as one flat list, row-major, without recursion (depth is free)."""
    if not isinstance(data, list):
        raise bad_request(f"input '{name}': data must be a JSON array")
    if not any(isinstance(item, list) for item in data):
        return data
    flat, stack = [], [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def json_problem(datatype: str, value: object) -> str | None:
    """Why a JSON value cannot be an element of ``datatype``, or None if it can.

    This is the one definition of a valid JSON element; :func:`_from_json` only speeds
    it up for whole arrays. ``null`` (a missing value) is left to the model's schema.
    """
    if value is None:
        return None
    if datatype == "BYTES":
        return None if isinstance(value, str) else "must be a string"
    if datatype == "BOOL":
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    dtype = FIXED_SIZE[datatype]
    if dtype.kind in "iu":
        limits = np.iinfo(dtype)
        if not isinstance(value, int):
            return f"must be a whole number (written without a fraction) for {datatype}"
        if not limits.min <= value <= limits.max:
            return f"must be between {limits.min} and {limits.max} for {datatype}"
    elif abs(value) > float(np.finfo(dtype).max):
        return f"is too large for {datatype}"
    return None


def _from_json(name: str, datatype: str, values: list) -> list:
    kinds = set(map(type, values)) - {type(None)}
    numbers = [v for v in values if v is not None] if datatype in NUMBER_DATATYPES else []
    kind = FIXED_SIZE[datatype].kind if datatype in FIXED_SIZE else "S"
    by_kind: dict[str, set[type]] = {
        "S": {str},
        "b": {bool},
        "i": {int},
        "u": {int},
        "f": {int, float},
    }
    quick = by_kind[kind]
    valid = kinds <= quick and (
        not numbers or all(json_problem(datatype, v) is None for v in (min(numbers), max(numbers)))
    )
    if not valid:  # find the first culprit, to name it
        for index, value in enumerate(values):
            problem = json_problem(datatype, value)
            if problem:
                raise bad_request(f"input '{name}': element {index} {problem}")
    if datatype in ("FP16", "FP32"):  # what the model sees is the value in that precision
        floats = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        return _python(floats.astype(FIXED_SIZE[datatype]))
    return values


def _from_binary(name: str, datatype: str, count: int, chunk: memoryview) -> list:
    if datatype == "BYTES":
        return _bytes_elements(name, count, chunk)
    dtype = FIXED_SIZE[datatype]
    if len(chunk) != count * dtype.itemsize:
        raise bad_request(
            f"input '{name}': {count} {datatype} elements take {count * dtype.itemsize} "
            f"bytes, but its binary_data_size is {len(chunk)}"
        )
    if datatype == "BOOL":
        raw = np.frombuffer(chunk, dtype=np.uint8)
        if raw.size and raw.max() > 1:
            raise bad_request(f"input '{name}': a BOOL element must be the byte 0 or 1")
        return raw.astype(bool).tolist()
    return _python(np.frombuffer(chunk, dtype=dtype))


def _bytes_elements(name: str, count: int, chunk: memoryview) -> list[str]:
    """BYTES elements: each a 4-byte little-endian length, then that many UTF-8 bytes."""
    elements, offset = [], 0
    for index in range(count):
        if offset + 4 > len(chunk):
            raise bad_request(f"input '{name}': element {index} is cut before its length")
        (length,) = struct.unpack_from("<I", chunk, offset)
        offset += 4
        if offset + length > len(chunk):
            raise bad_request(
                f"input '{name}': element {index} says {length} bytes, "
                f"but only {len(chunk) - offset} remain"
            )
        try:
            elements.append(str(chunk[offset : offset + length], "utf-8"))
        except UnicodeDecodeError:
            raise bad_request(f"input '{name}': element {index} is not valid UTF-8") from None
        offset += length
    if offset != len(chunk):
        raise bad_request(
            f"input '{name}': {len(chunk) - offset} bytes are left after its {count} elements"
        )
    return elements


def _python(array: np.ndarray) -> list:
    """Python numbers for the schema, with None where a float is NaN (a missing value)."""
    values = array.tolist()
    if array.dtype.kind == "f" and np.isnan(array).any():
        values = [None if math.isnan(v) else v for v in values]
    return values


def encode(
    outputs: list[tuple[str, str, np.ndarray, bool]],
) -> tuple[list[OutputTensor], list[bytes]]:
    """Output tensors ``(name, datatype, array, binary)`` as JSON tensors and binary data.

    A binary output carries ``parameters.binary_data_size`` instead of ``data``; its
    bytes follow the JSON in the order of the outputs.
    """
    tensors, blobs = [], []
    for name, datatype, array, binary in outputs:
        tensor: OutputTensor = {"name": name, "shape": list(array.shape), "datatype": datatype}
        if binary:
            blob = _to_binary(datatype, array)
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = array.ravel().tolist()
        tensors.append(tensor)
    return tensors, blobs


def _to_binary(datatype: str, array: np.ndarray) -> bytes:
    if datatype != "BYTES":
        return np.ascontiguousarray(array, dtype=FIXED_SIZE[datatype]).tobytes()
    encoded = [str(value).encode() for value in array.ravel().tolist()]
    return b"".join(struct.pack("<I", len(element)) + element for element in encoded)


def tensor_response(answer: Mapping[str, object], blobs: list[bytes]) -> Response:
    """The answer as JSON, or as JSON then the binary data, with the header that splits them."""
    if not blobs:
        # flask types a JSON provider's answer as the sans-I/O base of its Response
        return cast(Response, current_app.json.response(answer))
    header = jsonio.dumps(answer)
    response = Response(header + b"".join(blobs), mimetype="application/octet-stream")
    response.headers[BINARY_HEADER] = str(len(header))
    return response
