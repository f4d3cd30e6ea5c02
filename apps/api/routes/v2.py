"""The Open Inference Protocol (V2) REST API, as KServe, Triton and MLServer speak it.

Existing V2 clients (tritonclient, MLServer's codecs, KServe's SDK) work unchanged:
each column of the model is one named input tensor, as MLServer's pandas codec sends,
as JSON or as binary tensor data. Errors on these routes take the protocol's shape,
``{"error": "<message>"}`` (see :mod:`apps.api.errors`).
"""

from flask import Blueprint, jsonify

from apps import __version__
from apps.api import answers, contracts
from apps.api.formats import read
from apps.api.openapi import PREDICT_ERRORS, documented
from apps.api.service import model_service
from apps.api.v2_inference import (
    input_metadata,
    model_outputs,
    output_choice,
    output_metadata,
    request_records,
)
from apps.api.v2_tensors import (
    BINARY_HEADER,
    EXTENSIONS,
    encode,
    read_infer_request,
    tensor_response,
)

SERVER_NAME = "penguins-deploy"


def open_blueprint() -> Blueprint:
    """Server and model health, open to probes like ``/health``."""
    bp = Blueprint("v2_health", __name__, url_prefix="/v2")

    @bp.get("/health/live")
    @documented("V2 liveness", ("v2",), answer=answers.V2Live)
    def server_live():
        """V2 server liveness."""
        return jsonify(live=True)

    @bp.get("/health/ready")
    @documented("V2 readiness", ("v2",), answer=answers.V2Ready, errors=(503,), probe=True)
    def server_ready():
        """V2 server readiness: every configured model loaded and verified."""
        ready = model_service().ready
        return jsonify(ready=ready), 200 if ready else 503

    @bp.get("/models/<name>/ready")
    @bp.get("/models/<name>/versions/<version>/ready")
    @documented("Is {name} ready", ("v2",), answer=answers.V2ModelReady, errors=(404,))
    def model_ready(name: str, version: str | None = None):
        """V2 model readiness; 404 for a model or version we do not serve."""
        model = model_service().get(name, version)
        return jsonify(name=model.name, ready=True)

    return bp


INFER_DESCRIPTION = (
    "The body is the inference request as JSON (a body without Content-Type is read as "
    "JSON too, as tritonclient sends it). With the binary tensor data extension, the JSON "
    f"is followed by the inputs' raw little-endian bytes, and the {BINARY_HEADER} header "
    "gives the JSON's length; each such input says its size in parameters.binary_data_size. "
    "Outputs asked for as binary (parameters.binary_data_output, or binary_data on an "
    f"output) come back the same way: JSON, then bytes, with the {BINARY_HEADER} header."
)
BINARY_HEADER_PARAMETER = {
    "name": BINARY_HEADER,
    "in": "header",
    "required": False,
    "description": "Binary tensor data extension: the length of the JSON that starts the body.",
    "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
}


def blueprint() -> Blueprint:
    """Server metadata, model metadata and inference."""
    bp = Blueprint("v2", __name__, url_prefix="/v2")

    @bp.get("")
    @bp.get("/")  # the specification's OpenAPI document spells it /v2/
    @documented("V2 server metadata", ("v2",), answer=answers.V2ServerMetadata)
    def server_metadata():
        """V2 server metadata, with the extensions the server supports."""
        return jsonify(name=SERVER_NAME, version=__version__, extensions=EXTENSIONS)

    @bp.get("/models/<name>")
    @bp.get("/models/<name>/versions/<version>")
    @documented("V2 metadata of {name}", ("v2",), answer=answers.V2ModelMetadata, errors=(404,))
    def model_metadata(name: str, version: str | None = None):
        """V2 model metadata: one input tensor per column, and the output tensors."""
        service = model_service()
        model = service.get(name, version)
        answer: answers.V2ModelMetadata = {
            "name": model.name,
            "versions": [str(v) for v in service.versions(name)],
            "platform": service.backend,
            "inputs": input_metadata(model.schema),
            "outputs": output_metadata(model),
        }
        return jsonify(answer)

    @bp.post("/models/<name>/infer")
    @bp.post("/models/<name>/versions/<version>/infer")
    @documented(
        "Open Inference Protocol inference with {name}",
        ("v2",),
        body=contracts.InferRequest,
        answer=answers.InferAnswer,
        errors=PREDICT_ERRORS,
        binary_answer=True,
        parameters=(BINARY_HEADER_PARAMETER,),
        description=INFER_DESCRIPTION,
    )
    def infer(name: str, version: str | None = None):
        """V2 inference: the same validation and prediction as the native route."""
        service = model_service()
        model = service.get(name, version)
        body, binary = read_infer_request()
        request = read(contracts.InferRequest, body)
        records = request_records(request, binary, model.schema, service.max_records)
        choice = output_choice(request, model)
        prediction = service.predict(model, records)
        outputs, blobs = encode(model_outputs(model, prediction, choice))
        answer: answers.InferAnswer = {
            "model_name": model.name,
            "model_version": str(model.version),
            "outputs": outputs,
        }
        if request.id is not None:
            answer["id"] = request.id
        return tensor_response(answer, blobs)

    return bp
