"""The three request formats the API speaks, each turned into plain records.

* native: ``{"records": [{...}, ...]}`` or ``{"record": {...}}``;
* the Open Inference Protocol (V2) of KServe, Triton and MLServer, in its own modules
  (:mod:`apps.api.v2_tensors`, :mod:`apps.api.v2_inference`), which use the helpers here;
* MLflow's scoring format: ``dataframe_split``, ``dataframe_records``, ``instances``,
  ``inputs``, or CSV.

Each parser checks only the *shape* of its format and reports shape mistakes as 400s;
the values are left to the model's schema, so that they are judged by the same rules
whatever the format.
"""

import json
from collections.abc import Mapping

from flask import request

from apps.api import jsonio
from apps.api.bodies import json_bytes
from apps.api.errors import ApiError, shorten, too_many_records

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


def parse_json(data: bytes) -> object:
    """Parse JSON bytes, or raise a 400 that says where they stop being JSON."""
    try:
        return jsonio.loads(data)
    except json.JSONDecodeError as error:
        raise ApiError(
            400,
            "invalid_json",
            f"the body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})",
        ) from None


def json_body(untyped_is_json: bool = False) -> object:
    """The request's JSON body, with a 415 or a 400 that says exactly what is wrong.

    ``untyped_is_json`` reads a body sent without any Content-Type as JSON, as the Open
    Inference Protocol's servers do (its reference client sends none).
    """
    if not (request.is_json or (untyped_is_json and not request.mimetype)):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send Content-Type: application/json, not {request.mimetype or 'nothing'!r}",
        )
    return parse_json(json_bytes())


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
