"""The API's own routes: list models, describe one, and predict."""

from flask import Blueprint, current_app, g, jsonify

from apps.api.formats import json_body, native_records
from apps.registry import LoadedModel


def describe(model: LoadedModel, versions: list[int], backend: str) -> dict:
    """A model's public metadata: what it expects, what it answers, how good it is."""
    manifest = model.manifest.data
    return {
        "name": model.name,
        "version": model.version,
        "versions": versions,
        "task": manifest["task"],
        "description": manifest.get("description", ""),
        "backend": backend,
        "created_at": manifest["created_at"],
        "input_schema": {
            "columns": manifest["input_schema"]["columns"],
            "record": model.schema.to_dict(),
        },
        "outputs": manifest["outputs"],
        "metrics": manifest["metrics"],
        "training_data": manifest["training_data"],
    }


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
        return jsonify(describe(model, versions_of(name), service().backend))

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
