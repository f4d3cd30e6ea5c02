"""The OpenAPI document, derived from the routes and their contracts: never written by hand.

Flask knows every route (its URL map). Each view says what it is with
:func:`documented`: a summary, the contract of its body, its answer and its errors; the
schemas of those come from :mod:`apps.api.contracts`. A route whose path names a model
(``<name>``) is listed once per model served, with that model's own record schema,
classes and inputs, so a client (or a fuzzer) sees exactly what each model accepts.
The test suite fuzzes the API from this document and checks every answer against it.
"""

import copy
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from apps import __version__
from apps.api import answers, contracts
from apps.api.config import keys_configured
from apps.api.security import API_KEY_HEADER
from apps.api.v2_tensors import NUMBER_DATATYPES

STATUS_TEXT = {
    400: "Malformed request",
    401: "Missing or invalid API key",
    403: "The API key lacks the '{scope}' scope this route needs",
    404: "Unknown model or version",
    413: "Body or batch too large",
    415: "Unsupported content type",
    422: "Input does not match the model's schema",
    429: "Rate limit exceeded",
    503: "Not ready, or a service it needs is down",
}
PREDICT_ERRORS = (400, 404, 413, 415, 422)


@dataclass(frozen=True)
class Operation:
    """What the document says of one route, beside what Flask already knows of it."""

    summary: str  # "{name}" stands for the model, in routes that name one
    tags: tuple[str, ...]
    answer: Any = None  # the 200 answer: a typed dict of apps.api.contracts
    body: Any = None  # the request's contract, if it has a body
    errors: tuple[int, ...] = ()  # besides 401 and 429, which protection adds
    body_media: tuple[str, ...] = ("application/json",)
    binary_answer: bool = False  # may also answer application/octet-stream
    parameters: tuple[dict, ...] = ()  # header and query parameters
    description: str = ""
    default_model: bool = False  # the body holds records of the default model
    probe: bool = False  # a health probe: its 503 ("not ready") is its own answer


def documented(summary: str, tags: tuple[str, ...], **details: Any) -> Callable:
    """Attach an :class:`Operation` to a view; the document lists only documented views."""

    def decorate(view: Callable) -> Callable:
        view.operation = Operation(summary, tags, **details)  # type: ignore[attr-defined]
        return view

    return decorate


# --- schemas: each contract once, and each model's own variant -----------------------------

REF = "#/components/schemas/{model}"
HIDDEN = (
    "The model's own schema is shown to API key holders only: send your key with "
    "GET /openapi.json (or read GET /v1/models/{name})."
)


def ref(name: str) -> dict:
    return {"$ref": REF.format(model=name)}


def camel(name: str) -> str:
    """``species-classifier`` -> ``SpeciesClassifier``, a component name."""
    return "".join(part.capitalize() for part in re.split(r"[-_.]", name))


def point_records(node: Any, record: dict) -> Any:
    """A copy of a schema whose ``Record`` placeholders point at ``record``."""
    if isinstance(node, dict):
        if "x-record" in node:  # the placeholder, perhaps with a description beside it
            rest = {key: value for key, value in node.items() if key not in ("x-record", "title")}
            return {**rest, **record}
        return {key: point_records(value, record) for key, value in node.items()}
    if isinstance(node, list):
        return [point_records(item, record) for item in node]
    return node


class WithoutNullDefaults(GenerateJsonSchema):
    """pydantic's JSON Schema, without ``"default": null`` for optional keys.

    A key left out is simply absent; a ``null`` default would tell Swagger UI to put
    ``null`` in its example request, which the API refuses.
    """

    def field_title_should_be_set(self, schema) -> bool:
        return False  # "title": "Records" beside "records" says nothing

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        json_schema = super().default_schema(schema)
        if json_schema.get("default", ...) is None:
            del json_schema["default"]
        return json_schema


class Schemas:
    """The document's ``components.schemas``, filled as the routes ask for them."""

    def __init__(self) -> None:
        self.components: dict[str, dict] = {}

    def of(self, kind: Any, model=None) -> dict:
        """A reference to a contract's schema, or to its variant for one model if it has one."""
        generic = self._add(kind.__name__, kind, None)
        varies = kind in REFINE or json.dumps(contracts.RECORD_PLACEHOLDER) in json.dumps(
            self._raw(kind)
        )
        if model is None or not varies:
            return generic
        return self._add(camel(model.name) + kind.__name__, kind, model)

    @staticmethod
    @functools.cache
    def _raw(kind: Any) -> dict:
        """pydantic's schema of a contract, its nested definitions under ``$defs``."""
        return TypeAdapter(kind).json_schema(ref_template=REF, schema_generator=WithoutNullDefaults)

    def _add(self, name: str, kind: Any, model) -> dict:
        if name not in self.components:
            schema = copy.deepcopy(self._raw(kind))
            for definition, body in schema.pop("$defs", {}).items():
                self.components.setdefault(definition, body)
            record = ref("Record") if model is None else self.record(model)
            schema = point_records(schema, record)
            self.components[name] = REFINE.get(kind, lambda s, m: s)(schema, model)
        return ref(name)

    def record(self, model) -> dict:
        """A reference to one record of ``model``: its input schema, from the manifest."""
        name = camel(model.name) + "Record"
        self.components.setdefault(name, model.schema.to_dict())
        return ref(name)


def _predictions(schema: dict, model) -> dict:
    """A model's predictions: one of its classes with probabilities, or a number."""
    if model is None:
        return schema
    if model.manifest.task == "classification":
        classes = model.manifest.classes
        item = {
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
    else:
        item = {"type": "object", "required": ["prediction"]}
        item["properties"] = {"prediction": {"type": "number"}}
    schema["properties"]["predictions"]["items"] = item
    return schema


def _tensors(schema: dict, model) -> dict:
    """A model's V2 inputs: one tensor per column, named after it, of a fitting datatype."""
    if model is None:
        return schema
    tensors = [
        {
            "allOf": [ref("InputTensor")],
            "properties": {
                "name": {"const": column.name},
                "datatype": {"enum": ["BYTES"] if column.type == "category" else NUMBER_DATATYPES},
            },
        }
        for column in model.schema.columns
    ]
    schema["properties"]["inputs"]["items"] = {"oneOf": tensors}
    return schema


REFINE: dict[Any, Callable[[dict, Any], dict]] = {
    answers.PredictAnswer: _predictions,
    contracts.InferRequest: _tensors,
}
"""What a model adds to a contract's schema, beyond its record."""


# --- paths: every documented route, once per model where it names one ---------------------

PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
"""A Flask path parameter, ``<name>`` or ``<int:name>``: ``{name}`` in OpenAPI."""
VERSION_PARAMETER = {
    "name": "version",
    "in": "path",
    "required": True,
    "description": "A version number; the paths without it use the latest version.",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
BINARY_ANSWER = {"schema": {"type": "string", "format": "binary"}}


def build_openapi(app: Flask, reveal_models: bool = True) -> dict:
    """The whole document for ``app``; without ``reveal_models``, no model's schema."""
    service = app.extensions["model_service"]
    models = [service.get(name) for name in sorted(service.production)]
    default = app.config["DEFAULT_MODEL"]
    schemas, paths = Schemas(), dict[str, dict]()
    schemas.components["Record"] = {"type": "object", "description": HIDDEN}
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        operation = getattr(app.view_functions[rule.endpoint], "operation", None)
        path = PARAMETER.sub(r"{\1}", rule.rule)
        if operation is None or (path.endswith("/") and path[:-1] in paths):
            continue  # undocumented, or the same route spelt with a final slash
        blueprint = app.blueprints.get(rule.endpoint.rpartition(".")[0])
        protected = getattr(blueprint, "scope", None)  # set by security.protect
        if "{name}" in path:
            chosen = [(path.replace("{name}", m.name), m) for m in models]
        elif operation.default_model:
            chosen = [(path, m) for m in models if m.name == default]
        else:
            chosen = [(path, None)]
        for concrete, model in chosen:
            shown = model if reveal_models else None
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                paths.setdefault(concrete, {})[method.lower()] = describe(
                    operation, concrete, model, shown, schemas, protected, app
                )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Penguins model API",
            "version": __version__,
            "description": "Serves the course's models: native JSON, the Open Inference "
            "Protocol (V2) and MLflow's scoring format.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}
            },
        },
    }


def describe(operation: Operation, path: str, model, shown, schemas: Schemas, protected, app):
    """One operation: summary, parameters, body, and every answer it can give.

    ``model`` is the model the path names; ``shown`` is the same, or None when the
    document must not reveal models' schemas. ``protected`` is the scope a key needs
    (``predict``, ``admin``), or None for an open route.
    """
    one_version = "{version}" in path
    summary = operation.summary.format(name=model.name if model else "")
    entry: dict[str, Any] = {
        "summary": summary + (" (one version)" if one_version else ""),
        "tags": list(operation.tags),
    }
    if operation.description:
        entry["description"] = operation.description
    parameters = [VERSION_PARAMETER] if one_version else []
    if parameters or operation.parameters:
        entry["parameters"] = [*parameters, *operation.parameters]
    if operation.body is not None:
        body = schemas.of(operation.body, shown)
        content = {media: {"schema": {"type": "string"}} for media in operation.body_media}
        content["application/json"] = {"schema": body}
        entry["requestBody"] = {"required": True, "content": content}
    answer = schemas.of(operation.answer, shown)
    responses: dict[str, dict] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": answer}}}
    }
    if operation.binary_answer:
        responses["200"]["content"]["application/octet-stream"] = BINARY_ANSWER
    needs_key = protected and keys_configured(app.config)
    errors = (
        set(operation.errors)
        | ({401, 403} if needs_key else set())
        | ({429} if protected else set())
    )
    v2 = path == "/v2" or path.startswith("/v2/")
    error = schemas.of(answers.V2ErrorAnswer if v2 else answers.ErrorAnswer)
    for status in sorted(errors):
        schema = answer if status == 503 and operation.probe else error
        content = {"application/json": {"schema": schema}}
        text = STATUS_TEXT[status].format(scope=protected)
        responses[str(status)] = {"description": text, "content": content}
    entry["responses"] = responses
    if needs_key:
        entry["security"] = [{"ApiKey": []}]
    return entry
