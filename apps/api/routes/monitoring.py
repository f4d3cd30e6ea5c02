"""Feedback (the truth, when it arrives) and what the log knows about a model.

``POST /v1/models/<name>/feedback`` attaches the true label or value to a prediction,
named by the request id the API answered with (``X-Request-ID``) and, for a request
with several records, the row. ``GET /v1/models/<name>/monitoring`` returns the log's
counts, the latest drift report and the most recent predictions.
"""

import math
import time
from collections.abc import Mapping

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from apps.api.errors import ApiError, error_response
from apps.api.formats import json_body
from apps.api.openapi import STATUS_TEXT
from apps.monitoring import store

FEEDBACK_KEYS = {"request_id", "row", "truth"}


def _invalid(field: str, message: str) -> ApiError:
    details = [{"row": None, "field": field, "message": message}]
    return ApiError(422, "invalid_input", f"{field}: {message}", details)


def feedback_fields(body: object, model) -> tuple[str, int, str | None, float | None]:
    """Check a feedback body; the request id, the row, and the true label or value."""
    if not isinstance(body, Mapping):
        raise ApiError(400, "bad_request", 'send a JSON object with "request_id" and "truth"')
    extra = sorted(set(body) - FEEDBACK_KEYS)
    if extra:
        raise ApiError(
            400, "bad_request", f"unknown keys {extra}; allowed: {sorted(FEEDBACK_KEYS)}"
        )
    request_id, row, truth = body.get("request_id"), body.get("row", 0), body.get("truth")
    if not isinstance(request_id, str) or not 0 < len(request_id) <= 64:
        raise _invalid("request_id", "must be the request's id, a string of 1 to 64 characters")
    if isinstance(row, float) and row.is_integer():  # 2.0 is a whole number in JSON too
        row = int(row)
    if isinstance(row, bool) or not isinstance(row, int) or row < 0:
        raise _invalid("row", "must be a whole number, 0 or more (the record's position)")
    classes = model.manifest.classes
    if classes:
        if truth not in classes or not isinstance(truth, str):
            raise _invalid("truth", f"must be one of {classes}")
        return request_id, row, truth, None
    if isinstance(truth, bool) or not isinstance(truth, int | float) or not math.isfinite(truth):
        raise _invalid("truth", "must be a finite number")
    return request_id, row, None, float(truth)


def _record(log, name: str, fields: tuple) -> str:
    """Store feedback; a prediction made a moment ago may still be queued, so on a miss
    wait for this worker's queue, then for the other workers' next flush, then give up."""
    request_id, row, label, value = fields
    at = g.get("simulated_time")
    for attempt in range(3):
        try:
            return store.record_feedback(log.engine, name, request_id, row, label, value, at)
        except store.UnknownPrediction as error:
            if attempt == 0:
                log.flush(timeout=2.0)
            elif attempt == 1:
                time.sleep(log.flush_seconds + 0.25)
            else:
                raise ApiError(404, "prediction_not_found", str(error)) from None
    raise AssertionError("unreachable")


def blueprint() -> Blueprint:
    """The feedback and monitoring routes, under ``/v1/models/<name>``."""
    bp = Blueprint("monitoring", __name__, url_prefix="/v1/models/<name>")

    def service():
        return current_app.extensions["model_service"]

    @bp.errorhandler(SQLAlchemyError)
    def database_down(error: SQLAlchemyError):
        """The database is down or unreachable: say so (503), never a stack trace."""
        current_app.logger.error("monitoring database error: %s", error)
        return error_response(503, "monitoring_unavailable", "the monitoring database is not "
                              "available; retry later", headers={"Retry-After": "5"})  # fmt: skip

    @bp.post("/feedback")
    def feedback(name: str):
        """The true label (classifier) or value (regressor) of a logged prediction."""
        model = service().get(name)
        fields = feedback_fields(json_body(), model)
        status = _record(current_app.extensions["prediction_log"], model.name, fields)
        return jsonify(model=model.name, request_id=fields[0], row=fields[1], status=status)

    @bp.get("/monitoring")
    def monitoring(name: str):
        """Counts, the latest drift report and the most recent predictions of a model."""
        model = service().get(name)
        limit = request.args.get("limit", "20")
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            raise ApiError(400, "bad_request", "limit must be a whole number from 1 to 100")
        engine = current_app.extensions["prediction_log"].engine
        return jsonify(store.overview(engine, model.name, int(limit)))

    return bp


def _operation(summary: str, ok: dict, errors: tuple, secured: bool, body: dict | None = None):
    json = "application/json"
    responses = {"200": {"description": "OK", "content": {json: {"schema": ok}}}}
    for status in errors:
        if status != 401 or secured:
            error = {"$ref": "#/components/schemas/Error"}
            responses[str(status)] = {
                "description": STATUS_TEXT[status],
                "content": {json: {"schema": error}},
            }
    operation = {"summary": summary, "tags": ["monitoring"], "responses": responses}
    if secured:
        operation["security"] = [{"ApiKey": []}]
    if body:
        operation["requestBody"] = {"required": True, "content": {json: {"schema": body}}}
    return operation


def openapi_paths(document: dict, service) -> None:
    """Add the feedback and monitoring routes of every model to the OpenAPI document."""
    secured = "security" in document["paths"]["/v1/models"]["get"]
    for name in sorted(service.latest):
        classes = service.get(name).manifest.classes
        truth = {"type": "string", "enum": classes} if classes else {"type": "number"}
        body = {
            "type": "object",
            "required": ["request_id", "truth"],
            "additionalProperties": False,
            "properties": {
                "request_id": {"type": "string", "minLength": 1, "maxLength": 64},
                "row": {"type": "integer", "minimum": 0, "default": 0},
                "truth": truth,
            },
        }
        answer = {
            "type": "object",
            "required": ["model", "request_id", "row", "status"],
            "properties": {
                "model": {"type": "string"},
                "request_id": {"type": "string"},
                "row": {"type": "integer"},
                "status": {"type": "string", "enum": ["recorded", "unchanged", "updated"]},
            },
        }
        errors = (400, 401, 404, 413, 415, 422, 429, 503)
        document["paths"][f"/v1/models/{name}/feedback"] = {
            "post": _operation(
                f"The truth for a prediction of {name}", answer, errors, secured, body
            )
        }
        summary = {
            "type": "object",
            "required": ["model", "predictions", "labelled", "report", "recent"],
        }
        limit = {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": "How many recent predictions to return (1 to 100, default 20).",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
        }
        operation = _operation(
            f"What the log knows about {name}", summary, (400, 401, 404, 429, 503), secured
        )
        operation["parameters"] = [limit]
        document["paths"][f"/v1/models/{name}/monitoring"] = {"get": operation}
