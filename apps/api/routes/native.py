"""The API's own routes: list models, describe one, and predict."""

from typing import cast

from flask import Blueprint, g, jsonify

from apps.api.answers import ModelList, ModelMetadata, OnePrediction, PredictAnswer
from apps.api.contracts import PredictRequest
from apps.api.formats import json_body, native_records
from apps.api.openapi import PREDICT_ERRORS, documented
from apps.api.service import model_service


def blueprint() -> Blueprint:
    """``/v1/models`` and below."""
    bp = Blueprint("native", __name__, url_prefix="/v1")

    @bp.get("/models")
    @documented("List the models", ("models",), answer=ModelList)
    def list_models():
        """Every model served, with its versions and the latest one."""
        answer: ModelList = {"models": model_service().listing()}
        return jsonify(answer)

    @bp.get("/models/<name>")
    @bp.get("/models/<name>/versions/<version>")
    @documented("Metadata of {name}", ("models",), answer=ModelMetadata, errors=(404,))
    def model_metadata(name: str, version: str | None = None):
        """Metadata of the latest version, or of the version asked for."""
        service = model_service()
        return jsonify(service.get(name, version).describe(service.versions(name)))

    @bp.post("/models/<name>/predict")
    @bp.post("/models/<name>/versions/<version>/predict")
    @documented(
        "Predict with {name}",
        ("predict",),
        body=PredictRequest,
        answer=PredictAnswer,
        errors=PREDICT_ERRORS,
    )
    def predict(name: str, version: str | None = None):
        """Predict for one record or many; 422 names every invalid field."""
        service = model_service()
        model = service.get(name, version)
        prediction = service.predict(model, native_records(json_body()))
        answer: PredictAnswer = {
            "model": model.name,
            "version": model.version,
            "backend": service.backend,
            "request_id": g.request_id,
            "predictions": cast("list[OnePrediction]", prediction.as_records()),
        }
        return jsonify(answer)

    return bp
