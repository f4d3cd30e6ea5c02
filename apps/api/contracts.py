"""Every request body the API accepts, declared once with pydantic.

Each model below is both the check of a body's *shape* (a mistake is a 400 that names
the field) and its description in the OpenAPI document, which is derived from these
classes, so the two cannot drift apart. The *values* of the records are left to the
model's input schema (a 422, the same in every format): here a record is ``Record``,
whose JSON Schema the document fills in from each model's manifest.

``strict`` means no silent conversions: ``"3"`` is not a shape, ``1`` is not ``true``.
``extra="forbid"`` means a misspelt key is refused, never ignored.
"""

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

RECORD_PLACEHOLDER = {"x-record": "one record of the model"}
"""Stands for a record's schema; the document puts each model's own record there."""
Record = Annotated[Any, WithJsonSchema(RECORD_PLACEHOLDER)]
"""One record for the model: an object of its columns, judged by its input schema."""


class Body(BaseModel):
    """A JSON object with exactly the keys declared, each of exactly its declared type."""

    model_config = ConfigDict(extra="forbid", strict=True)


def absent(**field: Any) -> Any:
    """A key a body may leave out, but never send as ``null``: its type stays non-null.

    Python still sees ``None`` when the key is absent (read ``model_fields_set`` to tell);
    the ``Any`` lets the annotation keep saying what a client may send.
    """
    return Field(default=None, **field)


def exactly_one(body: BaseModel, keys: tuple[str, ...]) -> None:
    """Refuse a body that sets none, or more than one, of ``keys``."""
    given = [key for key in keys if key in body.model_fields_set]
    if len(given) != 1:
        raise PydanticCustomError(
            "exactly_one", "send exactly one of {keys}", {"keys": ", ".join(keys)}
        )


def one_of(*keys: str) -> Callable[[dict], None]:
    """The JSON Schema twin of :func:`exactly_one`: one variant of the object per key.

    Each variant requires its key and allows the others that are not in ``keys`` (such
    as MLflow's ``params``): the precise "exactly one of", which Swagger UI also uses to
    write its example request.
    """

    def rewrite(schema: dict) -> None:
        properties = schema.pop("properties")
        shared = {key: value for key, value in properties.items() if key not in keys}
        schema.pop("type", None)
        schema.pop("additionalProperties", None)
        schema["oneOf"] = [
            {
                "type": "object",
                "required": [key],
                "properties": {key: properties[key], **shared},
                "additionalProperties": False,
            }
            for key in keys
        ]

    return rewrite


# --- the native format ------------------------------------------------------------------


class PredictRequest(Body):
    """``{"records": [...]}`` for many records, or ``{"record": {...}}`` for one."""

    model_config = ConfigDict(json_schema_extra=one_of("records", "record"))

    records: list[Record] = absent(min_length=1, description="Many records, in one batch.")
    record: Record = absent(description="One record.")

    @model_validator(mode="after")
    def _exactly_one(self) -> "PredictRequest":
        exactly_one(self, ("records", "record"))
        return self

    def as_records(self) -> list:
        """The records to validate, one or many."""
        return self.records if "records" in self.model_fields_set else [self.record]


# --- the Open Inference Protocol (V2) ----------------------------------------------------


class Parameters(BaseModel):
    """A V2 ``parameters`` object: any keys, the protocol says; those we read are typed."""

    model_config = ConfigDict(extra="allow", strict=True)


class InputParameters(Parameters):
    binary_data_size: int = absent(
        ge=0, description="Binary tensor data: this input's bytes after the JSON."
    )


class InputTensor(Body):
    """One input: a model column, named after it, its values flat in row-major order."""

    name: str
    shape: list[int]
    datatype: str
    parameters: InputParameters = Field(default_factory=InputParameters)
    data: list[Any] = absent(description="Absent when sent as binary data.")


class OutputParameters(Parameters):
    binary_data: bool = absent(description="Answer this output as binary data.")


class RequestedOutput(Body):
    name: str
    parameters: OutputParameters = Field(default_factory=OutputParameters)


class RequestParameters(Parameters):
    binary_data_output: bool = absent(
        description="Answer every output as binary data unless it says otherwise."
    )


class InferRequest(Body):
    """An inference request of the Open Inference Protocol."""

    id: str = absent(description="Echoed in the answer.")
    parameters: RequestParameters = Field(default_factory=RequestParameters)
    inputs: list[InputTensor] = Field(min_length=1)
    outputs: list[RequestedOutput] = absent(description="Default: all outputs.")


# --- MLflow's scoring format --------------------------------------------------------------


def _records_or_columns(value: object) -> object:
    """A list of records, or an object of equally long column lists."""
    if isinstance(value, list | dict) and not value:
        raise PydanticCustomError("too_short", "must not be empty")
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and all(isinstance(column, list) for column in value.values()):
        lengths = {len(column) for column in value.values()}
        if len(lengths) > 1:
            raise PydanticCustomError("ragged", "all columns must have the same length")
        if lengths == {0}:
            raise PydanticCustomError("too_short", "must not be empty")
        return value
    raise PydanticCustomError(
        "records_or_columns", "must be a list of records or an object of column lists"
    )


RecordsOrColumns = Annotated[
    Any,
    AfterValidator(_records_or_columns),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "array", "minItems": 1, "items": RECORD_PLACEHOLDER},
                {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": {"type": "array", "minItems": 1},
                },
            ]
        }
    ),
]
"""MLflow's ``instances`` and ``inputs``: records, or the same given column by column."""
MLFLOW_LAYOUTS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class DataframeSplit(Body):
    """pandas' ``split`` orientation: the column names, then the rows of values."""

    columns: list[str]
    data: list[list[Any]] = Field(min_length=1)
    index: list[Any] = absent(description="Ignored.")


class MlflowRequest(Body):
    """One of MLflow's four JSON layouts, as ``mlflow models serve`` accepts them."""

    model_config = ConfigDict(json_schema_extra=one_of(*MLFLOW_LAYOUTS))

    dataframe_split: DataframeSplit = absent()
    dataframe_records: list[Record] = absent(min_length=1)
    instances: RecordsOrColumns = absent()
    inputs: RecordsOrColumns = absent()
    params: dict[str, Any] = absent(description="Accepted and ignored.")

    @model_validator(mode="after")
    def _exactly_one(self) -> "MlflowRequest":
        exactly_one(self, MLFLOW_LAYOUTS)
        return self

    def layout(self) -> str:
        """The name of the layout this body uses."""
        return next(key for key in MLFLOW_LAYOUTS if key in self.model_fields_set)
