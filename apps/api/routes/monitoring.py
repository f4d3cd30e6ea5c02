"""Feedback (the truth, when it arrives) and what the log knows about a model.

``POST /v1/models/<name>/feedback`` attaches the true label or value to a prediction,
named by the request id the API answered with (``X-Request-ID``) and, for a request
with several records, the row. ``GET /v1/models/<name>/monitoring`` returns the log's
counts, the latest drift report and the most recent predictions.

The feedback body is declared here, as a contract like the API's others (notebook 02):
its shape is checked by pydantic (a 400), the truth by the model (a 422: one of its
classes, or a finite number), and the OpenAPI document is derived from both.
"""

import math
import time
from typing import Annotated, Any, Literal

from flask import Blueprint, current_app, g, jsonify, request
from pydantic import BeforeValidator, Field
from sqlalchemy.exc import SQLAlchemyError
from typing_extensions import TypedDict

from apps.api import openapi
from apps.api.contracts import Body
from apps.api.errors import ApiError, error_response
from apps.api.formats import json_body, read
from apps.api.openapi import documented
from apps.api.service import model_service
from apps.monitoring import store


def _whole(value: object) -> object:
    """``2.0`` is a whole number in JSON, as JSON Schema says: accept it as ``2``."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class FeedbackRequest(Body):
    """The truth for one logged prediction."""

    request_id: str = Field(min_length=1, max_length=64, description="The X-Request-ID answered.")
    row: Annotated[int, BeforeValidator(_whole)] = Field(
        default=0, ge=0, description="The record's position in its request."
    )
    truth: str | float = Field(description="A class of the model, or the true value.")


class FeedbackAnswer(TypedDict):
    model: str
    request_id: str
    row: int
    status: Literal["recorded", "unchanged", "updated"]


class MonitoringOverview(TypedDict):
    model: str
    predictions: int
    labelled: int
    first: str | None
    last: str | None
    report: dict[str, Any] | None
    recent: list[dict[str, Any]]


def _truth(schema: dict, model) -> dict:
    """A model's truth: one of its classes, or a number."""
    if model is not None:
        classes = model.manifest.classes
        truth = {"type": "string", "enum": classes} if classes else {"type": "number"}
        schema["properties"]["truth"] = truth
    return schema


openapi.REFINE[FeedbackRequest] = _truth
LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "description": "How many recent predictions to return (1 to 100, default 20).",
    "schema": {"type": "integer", "minimum": 1, "maximum": 100},
}


def checked_truth(truth: str | float, model) -> tuple[str | None, float | None]:
    """The truth as ``(label, value)``, if the model can have it; else a 422."""
    classes = model.manifest.classes
    if classes and not (isinstance(truth, str) and truth in classes):
        problem = f"must be one of {classes}"
    elif not classes and not (isinstance(truth, int | float) and math.isfinite(truth)):
        problem = "must be a finite number"
    else:
        return (str(truth), None) if classes else (None, float(truth))
    details = [{"row": None, "field": "truth", "message": problem}]
    raise ApiError(422, "invalid_input", f"truth: {problem}", details)


def _record(log, name: str, feedback: FeedbackRequest, label, value) -> str:
    """Store feedback; a prediction made a moment ago may still be queued, so on a miss
    wait for this worker's queue, then for the other workers' next flush, then give up."""
    at = g.get("simulated_time")
    for attempt in range(3):
        try:
            return store.record_feedback(
                log.engine, name, feedback.request_id, feedback.row, label, value, at
            )
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

    @bp.errorhandler(SQLAlchemyError)
    def database_down(error: SQLAlchemyError):
        """The database is down or unreachable: say so (503), never a stack trace."""
        current_app.logger.error("monitoring database error: %s", error)
        return error_response(503, "monitoring_unavailable", "the monitoring database is not "
                              "available; retry later", headers={"Retry-After": "5"})  # fmt: skip

    @bp.post("/feedback")
    @documented(
        "The truth for a prediction of {name}",
        ("monitoring",),
        body=FeedbackRequest,
        answer=FeedbackAnswer,
        errors=(400, 404, 413, 415, 422, 503),
    )
    def feedback(name: str):
        """The true label (classifier) or value (regressor) of a logged prediction."""
        model = model_service().get(name)
        body = read(FeedbackRequest, json_body())
        label, value = checked_truth(body.truth, model)
        status = _record(current_app.extensions["prediction_log"], model.name, body, label, value)
        answer: FeedbackAnswer = {
            "model": model.name,
            "request_id": body.request_id,
            "row": body.row,
            "status": status,  # type: ignore[typeddict-item]
        }
        return jsonify(answer)

    @bp.get("/monitoring")
    @documented(
        "What the log knows about {name}",
        ("monitoring",),
        answer=MonitoringOverview,
        errors=(400, 404, 503),
        parameters=(LIMIT,),
    )
    def monitoring(name: str):
        """Counts, the latest drift report and the most recent predictions of a model."""
        model = model_service().get(name)
        limit = request.args.get("limit", "20")
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            raise ApiError(400, "bad_request", "limit must be a whole number from 1 to 100")
        engine = current_app.extensions["prediction_log"].engine
        return jsonify(store.overview(engine, model.name, int(limit)))

    return bp
