"""The request formats the API speaks, each read against its contract into plain records.

* native: ``{"records": [{...}, ...]}`` or ``{"record": {...}}``;
* the Open Inference Protocol (V2) of KServe, Triton and MLServer, in its own modules
  (:mod:`apps.api.v2_tensors`, :mod:`apps.api.v2_inference`), which use the helpers here;
* MLflow's scoring format: ``dataframe_split``, ``dataframe_records``, ``instances``,
  ``inputs``, or CSV.

The *shape* of each body is its contract's (:mod:`apps.api.contracts`): a mistake is a
400 that names the field. The values are left to the model's schema, so that they are
judged by the same rules whatever the format.
"""

import json
from typing import TypeVar

from flask import request
from pydantic import BaseModel
from pydantic import ValidationError as ContractError

from apps.api import jsonio
from apps.api.bodies import json_bytes
from apps.api.contracts import MlflowRequest, PredictRequest
from apps.api.errors import ApiError, shorten, too_many_records

SHOWN_NAMES = 10
"""How many unknown names an error message quotes: the client sent them, it has the rest."""
Contract = TypeVar("Contract", bound=BaseModel)


def bad_request(message: str) -> ApiError:
    """A 400 for a body whose structure is wrong (the values are the schema's job)."""
    return ApiError(400, "bad_request", message)


def read(contract: type[Contract], body: object) -> Contract:
    """``body`` checked against its contract; a 400 naming the first problem if it fails."""
    try:
        return contract.model_validate(body)
    except ContractError as error:
        raise bad_request(explain(error, contract)) from None


WORDS = {
    "missing": "is required",
    "extra_forbidden": "is not a key this object takes",
    "list_type": "must be a JSON array",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "too_short": "must not be empty",
    "greater_than_equal": "must be at least {ge}",
}
"""pydantic's kinds of problem, in the words of the rest of the API."""


def explain(error: ContractError, contract: type[BaseModel]) -> str:
    """One sentence for a client: the first problem, where it is, and how many more."""
    problems = error.errors(include_url=False)
    unknown = [
        p["loc"][0] for p in problems if p["type"] == "extra_forbidden" and len(p["loc"]) == 1
    ]
    if unknown:
        shown = [shorten(str(key)) for key in unknown[:SHOWN_NAMES]]
        more = f" and {len(unknown) - SHOWN_NAMES} more" if len(unknown) > SHOWN_NAMES else ""
        return f"unknown top-level keys {shown}{more}; allowed: {sorted(contract.model_fields)}"
    first = problems[0]
    where = "".join(
        f"[{part}]" if isinstance(part, int) else f".{shorten(str(part))}" for part in first["loc"]
    ).lstrip(".")
    words = WORDS.get(first["type"], first["msg"]).format(**first.get("ctx", {}))
    if not where and first["type"] in ("model_type", "dict_type"):
        summary = (contract.__doc__ or contract.__name__).splitlines()[0]
        message = f"the request body must be a JSON object ({summary})"
    else:
        message = f"{where}: {words}" if where else words
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problems)"
    return message


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
    return read(PredictRequest, body).as_records()


# --- MLflow scoring format -------------------------------------------------------------


def mlflow_json_records(body: object, max_records: int) -> list:
    """Records from one of MLflow's four JSON layouts (``params`` is accepted and ignored).

    Column lists are checked against ``max_records`` before records are built from them.
    """
    request_ = read(MlflowRequest, body)
    layout = request_.layout()
    payload = getattr(request_, layout)
    if layout == "dataframe_split":
        columns = payload.columns
        _no_duplicates(columns, "dataframe_split.columns")
        if any(len(row) != len(columns) for row in payload.data):
            raise bad_request("dataframe_split.data must be a list of rows, one value per column")
        return [dict(zip(columns, row, strict=True)) for row in payload.data]
    if isinstance(payload, list):  # dataframe_records, or instances / inputs as records
        return payload
    rows = len(next(iter(payload.values()), []))  # instances / inputs as equal columns
    if rows > max_records:
        raise too_many_records(str(rows), max_records)
    return [{name: values[i] for name, values in payload.items()} for i in range(rows)]


def _no_duplicates(names: list[str], where: str) -> None:
    """Refuse a column named twice: building records would keep only its last value."""
    seen = set()
    for name in names:
        if name in seen:
            raise bad_request(f"{where} names the column '{shorten(name)}' twice")
        seen.add(name)
