"""The OpenAPI 3 document, generated from the models the server really serves.

Because it is built from the manifests at start-up, the document cannot drift from
what the API accepts: each model gets its own paths with its own record schema.
The test suite fuzzes the API from this document and checks every answer against it.
"""

import copy

from apps.api.security import API_KEY_HEADER
from apps.api.v2_tensors import BINARY_HEADER, NUMBER_DATATYPES

ERROR = {"$ref": "#/components/schemas/Error"}
V2_ERROR = {"$ref": "#/components/schemas/V2Error"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: dict, *errors: int, error: dict = ERROR) -> dict:
    responses = {"200": {"description": "OK", **_json(ok)}}
    for status in errors:
        responses[str(status)] = {"description": STATUS_TEXT[status], **_json(error)}
    return responses


STATUS_TEXT = {
    400: "Malformed request",
    401: "Missing or invalid API key",
    404: "Unknown model or version",
    405: "Method not allowed",
    413: "Body or batch too large",
    415: "Unsupported content type",
    422: "Input does not match the model's schema",
    429: "Rate limit exceeded",
    503: "Not ready",
}
PREDICT_ERRORS = (400, 401, 404, 413, 415, 422, 429)


def _prediction_schema(model) -> dict:
    if model.manifest.task == "classification":
        classes = model.manifest.classes
        return {
            "type": "object",
            "required": ["prediction", "probabilities"],
            "properties": {
                "prediction": {"type": "string", "enum": classes},
                "probabilities": {
                    "type": "object",
                    "required": classes,
                    "properties": {c: {"type": "number"} for c in classes},
                    "additionalProperties": False,
                },
            },
        }
    return {
        "type": "object",
        "required": ["prediction"],
        "properties": {"prediction": {"type": "number"}},
    }


def _model_paths(model, ref: str) -> dict:
    name = model.name
    record = {"$ref": f"#/components/schemas/{ref}Record"}
    predict_body = {
        "oneOf": [
            {
                "type": "object",
                "required": ["records"],
                "additionalProperties": False,
                "properties": {"records": {"type": "array", "minItems": 1, "items": record}},
            },
            {
                "type": "object",
                "required": ["record"],
                "additionalProperties": False,
                "properties": {"record": record},
            },
        ]
    }
    predict_answer = {
        "type": "object",
        "required": ["model", "version", "backend", "request_id", "predictions"],
        "properties": {
            "model": {"type": "string", "enum": [name]},
            "version": {"type": "integer"},
            "backend": {"type": "string"},
            "request_id": {"type": "string"},
            "predictions": {"type": "array", "items": _prediction_schema(model)},
        },
    }
    secured = [{"ApiKey": []}]
    metadata = {
        "get": {
            "summary": f"Metadata of {name}",
            "tags": ["models"],
            "security": secured,
            "responses": _responses({"$ref": "#/components/schemas/ModelMetadata"}, 401, 404, 429),
        }
    }
    predict = {
        "post": {
            "summary": f"Predict with {name}",
            "tags": ["predict"],
            "security": secured,
            "requestBody": {"required": True, **_json(predict_body)},
            "responses": _responses(predict_answer, *PREDICT_ERRORS),
        }
    }
    infer_responses = _responses(
        {"$ref": "#/components/schemas/V2InferResponse"}, *PREDICT_ERRORS, error=V2_ERROR
    )
    infer_responses["200"]["content"]["application/octet-stream"] = BINARY_ANSWER
    infer = {
        "post": {
            "summary": f"Open Inference Protocol inference with {name}",
            "description": V2_INFER_DESCRIPTION,
            "tags": ["v2"],
            "security": secured,
            "parameters": [BINARY_HEADER_PARAMETER],
            "requestBody": {"required": True, **_json(_v2_request_schema(model))},
            "responses": infer_responses,
        }
    }
    paths = {
        f"/v1/models/{name}": metadata,
        f"/v1/models/{name}/predict": predict,
        f"/v2/models/{name}": {
            "get": {
                "summary": f"V2 metadata of {name}",
                "tags": ["v2"],
                "security": secured,
                "responses": _responses(
                    {"type": "object", "required": ["name", "platform", "inputs", "outputs"]},
                    *(401, 404, 429),
                    error=V2_ERROR,
                ),
            }
        },
        f"/v2/models/{name}/ready": {
            "get": {
                "summary": f"Is {name} ready",
                "tags": ["v2"],
                "responses": _responses({"type": "object"}, 404, error=V2_ERROR),
            }
        },
        f"/v2/models/{name}/infer": infer,
    }
    return paths | _versioned(paths, name)


V2_INFER_DESCRIPTION = (
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
BINARY_INPUT_PARAMETERS = {
    "type": "object",
    "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
}
BINARY_ANSWER = {"schema": {"type": "string", "format": "binary"}}

VERSION_PARAMETER = {
    "name": "version",
    "in": "path",
    "required": True,
    "description": "A version number; the paths without it use the latest version.",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}


def _versioned(paths: dict, name: str) -> dict:
    """The same operations for one explicit version: ``.../models/<name>/versions/{version}``."""
    marker = f"/models/{name}"
    return {
        path.replace(marker, f"{marker}/versions/{{version}}"): {
            method: {
                **operation,
                "summary": f"{operation['summary']} (one version)",
                "parameters": [*operation.get("parameters", []), VERSION_PARAMETER],
            }
            for method, operation in operations.items()
        }
        for path, operations in paths.items()
    }


def _v2_request_schema(model) -> dict:
    """A V2 request for this model: each input is one of its columns, with the right datatype."""
    tensors = []
    for column in model.schema.columns:
        datatype = {"const": "BYTES"} if column.type == "category" else {"enum": NUMBER_DATATYPES}
        tensors.append(
            {
                "type": "object",
                "required": ["name", "shape", "datatype"],
                "properties": {
                    "name": {"const": column.name},
                    "datatype": datatype,
                    "shape": {"type": "array", "minItems": 1, "items": {"type": "integer"}},
                    "data": {"type": "array"},
                    "parameters": BINARY_INPUT_PARAMETERS,
                },
            }
        )
    return {
        "type": "object",
        "required": ["inputs"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string"},
            "parameters": {
                "type": "object",
                "properties": {"binary_data_output": {"type": "boolean"}},
            },
            "inputs": {"type": "array", "minItems": 1, "items": {"oneOf": tensors}},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "parameters": {
                            "type": "object",
                            "properties": {"binary_data": {"type": "boolean"}},
                        },
                    },
                },
            },
        },
    }


def _ref_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


def build_openapi(service, default_model: str, auth_enabled: bool) -> dict:
    """The whole document for the models ``service`` serves."""
    schemas = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["status", "code", "message"],
                    "properties": {
                        "status": {"type": "integer"},
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "request_id": {"type": ["string", "null"]},
                        "details": {"type": "array", "items": {"type": "object"}},
                    },
                }
            },
        },
        "V2Error": {
            "type": "object",
            "description": "The Open Inference Protocol's error: the message in 'error'.",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "code": {"type": "string"},
                "request_id": {"type": ["string", "null"]},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        },
        "ModelMetadata": {
            "type": "object",
            "required": [
                "name",
                "version",
                "versions",
                "task",
                "input_schema",
                "outputs",
                "metrics",
                "backend",
            ],
        },
        "V2InferResponse": {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {
                    "type": "array",
                    "items": {"type": "object", "required": ["name", "shape", "datatype", "data"]},
                },
            },
        },
    }
    paths = {
        "/health/live": {
            "get": {
                "summary": "Liveness",
                "tags": ["health"],
                "responses": _responses({"type": "object"}),
            }
        },
        "/health/ready": {
            "get": {
                "summary": "Readiness",
                "tags": ["health"],
                "responses": {
                    **_responses({"type": "object"}),
                    "503": {"description": "Not ready", **_json({"type": "object"})},
                },
            }
        },
        "/v1/models": {
            "get": {
                "summary": "List the models",
                "tags": ["models"],
                "security": [{"ApiKey": []}],
                "responses": _responses({"type": "object", "required": ["models"]}, 401, 429),
            }
        },
        "/ping": {
            "get": {
                "summary": "Liveness, at MLflow's path",
                "tags": ["health"],
                "responses": _responses({"type": "object"}),
            }
        },
        "/v2": {
            "get": {
                "summary": "V2 server metadata",
                "tags": ["v2"],
                "security": [{"ApiKey": []}],
                "responses": _responses(
                    {"type": "object", "required": ["name", "version", "extensions"]},
                    *(401, 429),
                    error=V2_ERROR,
                ),
            }
        },
        "/v2/health/live": {
            "get": {
                "summary": "V2 liveness",
                "tags": ["v2"],
                "responses": _responses({"type": "object"}),
            }
        },
        "/v2/health/ready": {
            "get": {
                "summary": "V2 readiness",
                "tags": ["v2"],
                "responses": {
                    **_responses({"type": "object"}),
                    "503": {"description": "Not ready", **_json({"type": "object"})},
                },
            }
        },
    }
    for name in sorted(service.latest):
        model = service.get(name)
        ref = _ref_name(name)
        schemas[f"{ref}Record"] = model.schema.to_dict()
        paths.update(_model_paths(model, ref))
    if default_model in service.latest:
        ref = _ref_name(default_model)
        record = {"$ref": f"#/components/schemas/{ref}Record"}
        layouts = {
            "dataframe_records": {"type": "array", "minItems": 1, "items": record},
            "instances": {"type": "array", "minItems": 1, "items": record},
            "inputs": {"type": "array", "minItems": 1, "items": record},
            "dataframe_split": {
                "type": "object",
                "required": ["columns", "data"],
                "additionalProperties": False,
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "minItems": 1, "items": {"type": "array"}},
                    "index": {"type": "array"},
                },
            },
        }
        mlflow_body = {
            "oneOf": [
                {
                    "type": "object",
                    "required": [key],
                    "additionalProperties": False,
                    "properties": {key: layout, "params": {"type": "object"}},
                }
                for key, layout in layouts.items()
            ]
        }
        paths["/invocations"] = {
            "post": {
                "summary": f"MLflow scoring protocol, for {default_model}",
                "tags": ["mlflow"],
                "security": [{"ApiKey": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": mlflow_body},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                "responses": _responses(
                    {
                        "type": "object",
                        "required": ["predictions"],
                        "properties": {"predictions": {"type": "array"}},
                    },
                    *PREDICT_ERRORS,
                ),
            }
        }
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "Penguins model API",
            "version": "1.0.0",
            "description": "Serves the course's models: native JSON, the Open Inference "
            "Protocol (V2) and MLflow's scoring format.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}
            },
        },
    }
    if not auth_enabled:
        for operations in paths.values():
            for operation in operations.values():
                operation.pop("security", None)
                operation["responses"].pop("401", None)
    return document


HIDDEN = (
    "The model's own schema is shown to API key holders only: send your key with "
    "GET /openapi.json (or read GET /v1/models/{name})."
)
PUBLIC_RECORD = {"type": "object", "description": HIDDEN}
PUBLIC_V2_REQUEST = {
    "type": "object",
    "required": ["inputs"],
    "description": HIDDEN,
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype", "data"],
                "properties": {
                    "name": {"type": "string"},
                    "datatype": {"type": "string"},
                    "shape": {"type": "array", "items": {"type": "integer"}},
                    "data": {"type": "array"},
                },
            },
        },
        "outputs": {"type": "array", "items": {"type": "object"}},
    },
}


def public_view(document: dict) -> dict:
    """The document for readers without a key, on a server that has keys.

    What a key protects is what the models are: their input schemas and classes, as
    the metadata routes give them. The routes, the formats and the model names (which
    readiness probes report too) stay public. So the records, the Open Inference
    Protocol inputs and the predictions become plain objects here.
    """
    public = copy.deepcopy(document)
    schemas = public["components"]["schemas"]
    for name in [n for n in schemas if n.endswith("Record")]:
        schemas[name] = PUBLIC_RECORD
    for path, operations in public["paths"].items():
        for operation in operations.values():
            if path.endswith("/infer"):
                operation["requestBody"] = {"required": True, **_json(PUBLIC_V2_REQUEST)}
            if path.endswith("/predict"):
                answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
                answer["properties"]["predictions"]["items"] = {"type": "object"}
    return public
