"""The Open Inference Protocol (V2) REST API, as KServe, Triton and MLServer speak it.

Existing V2 clients (tritonclient, MLServer's codecs, KServe's SDK) work unchanged:
each column of the model is one named input tensor, as MLServer's pandas codec sends,
as JSON or as binary tensor data. Errors on these routes take the protocol's shape,
``{"error": "<message>"}`` (see :mod:`apps.api.errors`).
"""

from flask import Blueprint, current_app, jsonify

from apps.api.v2_inference import (
    input_metadata,
    model_outputs,
    output_choice,
    output_metadata,
    request_records,
)
from apps.api.v2_tensors import EXTENSIONS, encode, read_infer_request, tensor_response

SERVER_NAME = "penguins-deploy"
SERVER_VERSION = "0.1.0"


def _service():
    return current_app.extensions["model_service"]


def open_blueprint() -> Blueprint:
    """Server and model health, open to probes like ``/health``."""
    bp = Blueprint("v2_health", __name__, url_prefix="/v2")

    @bp.get("/health/live")
    def server_live():
        """V2 server liveness."""
        return jsonify(live=True)

    @bp.get("/health/ready")
    def server_ready():
        """V2 server readiness: every configured model loaded and verified."""
        ready = _service().ready
        return jsonify(ready=ready), 200 if ready else 503

    @bp.get("/models/<name>/ready")
    @bp.get("/models/<name>/versions/<version>/ready")
    def model_ready(name: str, version: str | None = None):
        """V2 model readiness; 404 for a model or version we do not serve."""
        model = _service().get(name, version)
        return jsonify(name=model.name, ready=True)

    return bp


def blueprint() -> Blueprint:
    """Server metadata, model metadata and inference."""
    bp = Blueprint("v2", __name__, url_prefix="/v2")

    @bp.get("")
    @bp.get("/")  # the specification's OpenAPI document spells it /v2/
    def server_metadata():
        """V2 server metadata, with the extensions the server supports."""
        return jsonify(name=SERVER_NAME, version=SERVER_VERSION, extensions=EXTENSIONS)

    @bp.get("/models/<name>")
    @bp.get("/models/<name>/versions/<version>")
    def model_metadata(name: str, version: str | None = None):
        """V2 model metadata: one input tensor per column, and the output tensors."""
        model = _service().get(name, version)
        versions = sorted(str(v) for n, v in _service().models if n == name)
        return jsonify(
            name=model.name,
            versions=versions,
            platform=f"{_service().backend}",
            inputs=input_metadata(model.schema),
            outputs=output_metadata(model),
        )

    @bp.post("/models/<name>/infer")
    @bp.post("/models/<name>/versions/<version>/infer")
    def infer(name: str, version: str | None = None):
        """V2 inference: the same validation and prediction as the native route."""
        model = _service().get(name, version)
        body, binary = read_infer_request()
        records = request_records(body, binary, model.schema, _service().max_records)
        choice = output_choice(body, model)
        prediction = _service().predict(model, records)
        outputs, blobs = encode(model_outputs(model, prediction, choice))
        answer = {"model_name": model.name, "model_version": str(model.version), "outputs": outputs}
        if isinstance(body.get("id"), str):
            answer["id"] = body["id"]
        return tensor_response(answer, blobs)

    return bp
