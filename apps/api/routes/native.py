"""The API's own routes: list models, describe one, and predict."""

from flask import Blueprint, current_app, g, jsonify

from apps.api.formats import json_body, native_records


def blueprint() -> Blueprint:
    """``/v1/models`` and below."""
    bp = Blueprint("native", __name__, url_prefix="/v1")

    def service():
        return current_app.extensions["model_service"]

    def versions_of(name: str) -> list[int]:
        return sorted(v for n, v in service().models if n == name)

    @bp.get("/models")
    def list_models():
        """Every model served, with its versions and the latest one."""
        models = []
        for name in sorted(service().latest):
            model = service().get(name)
            models.append(
                {
                    "name": name,
                    "task": model.manifest.task,
                    "latest": model.version,
                    "versions": versions_of(name),
                    "backend": service().backend,
                }
            )
        return jsonify(models=models)

    @bp.get("/models/<name>")
    @bp.get("/models/<name>/versions/<version>")
    def model_metadata(name: str, version: str | None = None):
        """Metadata of the latest version, or of the version asked for."""
        model = service().get(name, version)
        return jsonify(model.describe(versions_of(name)))

    @bp.post("/models/<name>/predict")
    @bp.post("/models/<name>/versions/<version>/predict")
    def predict(name: str, version: str | None = None):
        """Predict for one record or many; 422 names every invalid field."""
        model = service().get(name, version)
        prediction = service().predict(model, native_records(json_body()))
        return jsonify(
            model=model.name,
            version=model.version,
            backend=service().backend,
            request_id=g.request_id,
            predictions=prediction.as_records(),
        )

    return bp
