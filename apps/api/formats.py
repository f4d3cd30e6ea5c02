"""The three request formats the API speaks, each turned into plain records.

* native: ``{"records": [{...}, ...]}`` or ``{"record": {...}}``;
* the Open Inference Protocol (V2) of KServe, Triton and MLServer: one named input per
  column, as MLServer's pandas codec sends a DataFrame;
* MLflow's scoring format: ``dataframe_split``, ``dataframe_records``, ``instances``,
  ``inputs``, or CSV.

Each parser checks only the *shape* of its format and reports shape mistakes as 400s;
the values are left to the model's schema, so that they are judged by the same rules
whatever the format.
"""

import json
import math
from collections.abc import Mapping

import numpy as np
from flask import request

from apps.api import jsonio
from apps.api.bodies import json_bytes
from apps.api.errors import ApiError, shorten, too_many_records
from apps.registry import InputSchema, LoadedModel

V2_NUMERIC_TYPES = {
    "FP16",
    "FP32",
    "FP64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
}


SHOWN_NAMES = 10
"""How many unknown names an error message quotes: the client sent them, it has the rest."""


def bad_request(message: str) -> ApiError:
    """A 400 for a body whose structure is wrong (the values are the schema's job)."""
    return ApiError(400, "bad_request", message)


def _object(body: object, what: str) -> Mapping:
    if not isinstance(body, Mapping):
        raise bad_request(f"the request body must be a JSON object ({what})")
    return body


def _no_extra_keys(body: Mapping, allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        shown = [shorten(key) for key in extra[:SHOWN_NAMES]]
        more = f" and {len(extra) - SHOWN_NAMES} more" if len(extra) > SHOWN_NAMES else ""
        raise bad_request(f"unknown top-level keys {shown}{more}; allowed: {sorted(allowed)}")


def json_body() -> object:
    """The request's JSON body, with a 415 or a 400 that says exactly what is wrong."""
    if not request.is_json:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send Content-Type: application/json, not {request.mimetype or 'nothing'!r}",
        )
    try:
        return jsonio.loads(json_bytes())
    except json.JSONDecodeError as error:
        raise ApiError(
            400,
            "invalid_json",
            f"the body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})",
        ) from None


# --- native -------------------------------------------------------------------------


def native_records(body: object) -> list:
    """``{"records": [...]}`` for many records or ``{"record": {...}}`` for one."""
    body = _object(body, 'with "records" (a list) or "record" (an object)')
    _no_extra_keys(body, {"records", "record"})
    if ("records" in body) == ("record" in body):
        raise bad_request('send exactly one of "records" (a list) or "record" (an object)')
    if "record" in body:
        return [body["record"]]
    if not isinstance(body["records"], list):
        raise bad_request('"records" must be a JSON array of objects')
    return body["records"]


# --- Open Inference Protocol (V2) ----------------------------------------------------


def v2_input_metadata(schema: InputSchema) -> list[dict]:
    """The model's inputs as V2 tensors: one per column, shape [-1], BYTES or FP64."""
    return [
        {"name": c.name, "datatype": "BYTES" if c.type == "category" else "FP64", "shape": [-1]}
        for c in schema.columns
    ]


def v2_output_metadata(model: LoadedModel) -> list[dict]:
    """``predict`` (and ``predict_proba`` for classifiers), named as MLServer's sklearn runtime."""
    classification = model.manifest.task == "classification"
    outputs = [
        {"name": "predict", "datatype": "BYTES" if classification else "FP64", "shape": [-1]}
    ]
    if classification:
        outputs.append(
            {
                "name": "predict_proba",
                "datatype": "FP64",
                "shape": [-1, len(model.manifest.classes)],
            }
        )
    return outputs


def _flatten(data: object, name: str) -> list:
    if not isinstance(data, list):
        raise bad_request(f"input '{name}': data must be a JSON array")
    if data and all(isinstance(item, list) for item in data):  # [[v], [v], ...]
        if any(len(item) != 1 for item in data):
            raise bad_request(f"input '{name}': each row must hold exactly one value")
        return [item[0] for item in data]
    return data


def v2_records(body: object, schema: InputSchema) -> tuple[list[dict], list[str] | None]:
    """Turn a V2 inference request into records, and the names of the outputs asked for."""
    body = _object(body, 'an inference request with "inputs"')
    _no_extra_keys(body, {"id", "parameters", "inputs", "outputs"})
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad_request('"inputs" must be a non-empty JSON array of tensors')
    columns: dict[str, list] = {}
    for tensor in inputs:
        tensor = _object(tensor, "each input tensor")
        name = tensor.get("name")
        if not isinstance(name, str):
            raise bad_request("each input needs a string 'name'")
        if name not in schema.by_name:
            raise bad_request(f"unknown input '{name}'; the model takes {schema.names}")
        if name in columns:
            raise bad_request(f"input '{name}' is given twice")
        expected = "BYTES" if schema.by_name[name].type == "category" else "numeric"
        datatype = tensor.get("datatype")
        if (datatype == "BYTES") != (expected == "BYTES") or (
            expected == "numeric" and datatype not in V2_NUMERIC_TYPES
        ):
            raise bad_request(f"input '{name}' must have a {expected} datatype, not {datatype!r}")
        values = _flatten(tensor.get("data"), name)
        shape = tensor.get("shape")
        if (
            not isinstance(shape, list)
            or not shape
            or shape[0] != len(values)
            or any(not isinstance(s, int) or isinstance(s, bool) for s in shape)
            or math.prod(shape) != len(values)
        ):
            raise bad_request(
                f"input '{name}': shape {shape} does not match its {len(values)} values"
            )
        columns[name] = values
    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1:
        raise bad_request(f"all inputs must have the same number of rows, got {sorted(lengths)}")
    (rows,) = lengths
    records = [{name: values[i] for name, values in columns.items()} for i in range(rows)]
    return records, _requested_outputs(body.get("outputs"))


def _requested_outputs(outputs: object) -> list[str] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(
        isinstance(o, Mapping) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise bad_request('"outputs" must be a JSON array of objects with a "name"')
    return [o["name"] for o in outputs]


def v2_outputs(
    model: LoadedModel,
    outputs: np.ndarray,
    probabilities: np.ndarray | None,
    wanted: list[str] | None,
) -> list[dict]:
    """The response tensors, flattened row-major as the protocol requires."""
    available = {
        "predict": {
            "name": "predict",
            "shape": [len(outputs)],
            "datatype": "BYTES" if probabilities is not None else "FP64",
            "data": outputs.tolist(),
        },
    }
    if probabilities is not None:
        available["predict_proba"] = {
            "name": "predict_proba",
            "shape": list(probabilities.shape),
            "datatype": "FP64",
            "data": probabilities.ravel().tolist(),
        }
    wanted = wanted or list(available)
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise bad_request(f"unknown outputs {unknown}; the model has {list(available)}")
    return [available[name] for name in wanted]


# --- MLflow scoring format -------------------------------------------------------------

MLFLOW_KEYS = {"dataframe_split", "dataframe_records", "instances", "inputs"}


def mlflow_json_records(body: object, max_records: int) -> list:
    """Records from one of MLflow's four JSON layouts (``params`` is accepted and ignored).

    Column lists are checked against ``max_records`` before records are built from them.
    """
    body = _object(body, f"with one of {sorted(MLFLOW_KEYS)}")
    _no_extra_keys(body, MLFLOW_KEYS | {"params"})
    keys = MLFLOW_KEYS & set(body)
    if len(keys) != 1:
        raise bad_request(f"send exactly one of {sorted(MLFLOW_KEYS)}")
    (key,) = keys
    payload = body[key]
    if key == "dataframe_split":
        payload = _object(payload, "dataframe_split with 'columns' and 'data'")
        _no_extra_keys(payload, {"columns", "data", "index"})
        columns, data = payload.get("columns"), payload.get("data")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise bad_request("dataframe_split.columns must be a list of column names")
        _no_duplicates(columns, "dataframe_split.columns")
        if not isinstance(data, list) or not all(
            isinstance(row, list) and len(row) == len(columns) for row in data
        ):
            raise bad_request("dataframe_split.data must be a list of rows, one value per column")
        return [dict(zip(columns, row, strict=True)) for row in data]
    if key == "dataframe_records":
        if not isinstance(payload, list):
            raise bad_request("dataframe_records must be a list of objects")
        return payload
    # instances / inputs: a list of records, or one object of equally long column lists
    if isinstance(payload, list):
        return payload
    if isinstance(payload, Mapping) and all(isinstance(v, list) for v in payload.values()):
        lengths = {len(v) for v in payload.values()}
        if len(lengths) != 1:
            raise bad_request(f"{key}: all columns must have the same length")
        (rows,) = lengths
        if rows > max_records:
            raise too_many_records(str(rows), max_records)
        return [{name: values[i] for name, values in payload.items()} for i in range(rows)]
    raise bad_request(f"{key} must be a list of records or an object of column lists")


def _no_duplicates(names: list[str], where: str) -> None:
    """Refuse a column named twice: building records would keep only its last value."""
    seen = set()
    for name in names:
        if name in seen:
            raise bad_request(f"{where} names the column '{shorten(name)}' twice")
        seen.add(name)
