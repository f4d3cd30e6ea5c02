"""Every answer the API gives, declared once as a typed dictionary.

The routes build plain dicts (nothing is converted on the way out, so answers cost no
time), a type checker holds them to these shapes, and the OpenAPI document describes
each answer from here (:mod:`apps.api.openapi`). The requests are in
:mod:`apps.api.contracts`.
"""

from typing import Any, Literal, NotRequired

# pydantic reads typed dicts from typing_extensions on Python 3.11 (typing's lack a detail)
from typing_extensions import TypedDict


class ErrorDetail(TypedDict):
    status: int
    code: str
    message: str
    request_id: str | None
    details: NotRequired[list[dict[str, Any]]]


class ErrorAnswer(TypedDict):
    """Every error of our own routes."""

    error: ErrorDetail


class V2ErrorAnswer(TypedDict):
    """Every error of the V2 routes: the protocol's ``{"error": "<message>"}``, and ours."""

    error: str
    code: str
    request_id: str | None
    details: NotRequired[list[dict[str, Any]]]


class Liveness(TypedDict):
    status: Literal["alive"]


class Readiness(TypedDict):
    status: Literal["ready", "not ready"]
    models: dict[str, int | None]
    problems: NotRequired[list[str]]
    refused: NotRequired[dict[str, str]]
    unloaded: NotRequired[list[str]]


class ModelSummary(TypedDict):
    name: str
    task: str
    latest: int
    production: int
    versions: list[int]
    backend: str


class ModelList(TypedDict):
    models: list[ModelSummary]


class ModelMetadata(TypedDict):
    """What :meth:`apps.registry.LoadedModel.describe` says of a model."""

    name: str
    version: int
    versions: list[int]
    task: str
    description: str
    backend: str
    created_at: str
    input_schema: dict[str, Any]
    outputs: dict[str, Any]
    metrics: dict[str, Any]
    training_data: dict[str, Any]
    lineage: NotRequired[dict[str, Any]]
    gate: NotRequired[dict[str, Any]]


class OnePrediction(TypedDict):
    prediction: Any  # a class label, or a value: each model's document says which
    probabilities: NotRequired[dict[str, float]]


class PredictAnswer(TypedDict):
    model: str
    version: int
    backend: str
    request_id: str
    predictions: list[OnePrediction]


class MlflowAnswer(TypedDict):
    predictions: list[Any]


class V2Live(TypedDict):
    live: bool


class V2Ready(TypedDict):
    ready: bool


class V2ModelReady(TypedDict):
    name: str
    ready: bool


class V2ServerMetadata(TypedDict):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(TypedDict):
    name: str
    datatype: str
    shape: list[int]


class V2ModelMetadata(TypedDict):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class OutputTensor(TypedDict):
    name: str
    shape: list[int]
    datatype: str
    data: NotRequired[list[Any]]
    parameters: NotRequired[dict[str, Any]]


class InferAnswer(TypedDict):
    model_name: str
    model_version: str
    id: NotRequired[str]
    outputs: list[OutputTensor]
