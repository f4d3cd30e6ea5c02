"""MLflow's scoring protocol at ``POST /invocations``, for the default model.

An MLflow model server serves one model; so does this route. MLflow users can point
their clients here without rewriting them.
"""

from flask import Blueprint, current_app, jsonify, request

from apps.api.answers import MlflowAnswer
from apps.api.bodies import csv_records
from apps.api.contracts import MlflowRequest
from apps.api.errors import ApiError
from apps.api.formats import json_body, mlflow_json_records
from apps.api.openapi import PREDICT_ERRORS, documented
from apps.api.service import model_service


def blueprint() -> Blueprint:
    """``/invocations``: JSON (four layouts) or CSV in, ``{"predictions": [...]}`` out."""
    bp = Blueprint("mlflow", __name__)

    @bp.post("/invocations")
    @documented(
        "MLflow scoring protocol, for the default model",
        ("mlflow",),
        body=MlflowRequest,
        body_media=("application/json", "text/csv"),
        answer=MlflowAnswer,
        errors=PREDICT_ERRORS,
        default_model=True,
    )
    def invocations():
        """Score records for the default model, the way ``mlflow models serve`` does."""
        service = model_service()
        model = service.get(current_app.config["DEFAULT_MODEL"])
        if request.mimetype == "application/json":
            records = mlflow_json_records(json_body(), service.max_records)
        elif request.mimetype == "text/csv":
            records = csv_records(model.schema, service.max_records)
        else:
            raise ApiError(
                415, "unsupported_media_type", "send Content-Type application/json or text/csv"
            )
        prediction = service.predict(model, records)
        answer: MlflowAnswer = {"predictions": prediction.outputs.tolist()}
        return jsonify(answer)

    return bp
