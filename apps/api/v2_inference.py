"""A model as the Open Inference Protocol (V2) sees it: one input tensor per column.

MLServer's pandas codec sends a DataFrame this way, and a tritonclient user builds the
same request: each column of the model is an input named after it, of shape ``[rows]``
(or ``[rows, 1]``), BYTES for a category and a number datatype for a number. The
tensors become plain records, so the model's schema judges the values exactly as in
every other format; the predictions become the ``predict`` (and ``predict_proba``)
outputs of MLServer's scikit-learn runtime.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from apps.api.answers import TensorMetadata
from apps.api.contracts import InferRequest, InputTensor
from apps.api.errors import shorten, too_many_records
from apps.api.formats import bad_request
from apps.api.v2_tensors import NUMBER_DATATYPES, decode, split_binary
from apps.registry import InputSchema, LoadedModel, Prediction
from apps.registry.schema import Column


def input_metadata(schema: InputSchema) -> list[TensorMetadata]:
    """The model's inputs as V2 tensors: one per column, shape [-1], BYTES or FP64."""
    return [
        {"name": c.name, "datatype": "BYTES" if c.type == "category" else "FP64", "shape": [-1]}
        for c in schema.columns
    ]


def output_metadata(model: LoadedModel) -> list[TensorMetadata]:
    """``predict`` (and ``predict_proba`` for classifiers), named as MLServer's sklearn runtime."""
    classification = model.manifest.task == "classification"
    outputs: list[TensorMetadata] = [
        {"name": "predict", "datatype": "BYTES" if classification else "FP64", "shape": [-1]}
    ]
    if classification:
        classes = len(model.manifest.classes)
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, classes]})
    return outputs


def request_records(
    request: InferRequest, binary: bytes | None, schema: InputSchema, max_records: int
) -> list[dict]:
    """The request's inputs as records, one per row: the schema's input.

    ``binary`` is the binary tensor data after the JSON (None without the extension).
    More rows than ``max_records`` are refused before any value is decoded.
    """
    named: dict[str, InputTensor] = {}
    for tensor in request.inputs:
        name = tensor.name
        if name not in schema.by_name:
            raise bad_request(f"unknown input '{shorten(name)}'; the model takes {schema.names}")
        if name in named:
            raise bad_request(f"input '{name}' is given twice")
        _check_datatype(schema.by_name[name], tensor.datatype)
        if tensor.shape and tensor.shape[0] > max_records:
            raise too_many_records(str(tensor.shape[0]), max_records)
        named[name] = tensor
    columns = {}
    chunks = split_binary(list(named.values()), binary)
    for tensor, chunk in zip(named.values(), chunks, strict=True):
        shape, values = decode(tensor, chunk)
        if not shape or math.prod(shape[1:]) != 1:
            raise bad_request(f"input '{tensor.name}': each row must hold exactly one value")
        columns[tensor.name] = values
    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1:
        raise bad_request(f"all inputs must have the same number of rows, got {sorted(lengths)}")
    (rows,) = lengths
    return [{name: values[i] for name, values in columns.items()} for i in range(rows)]


def _check_datatype(column: Column, datatype: object) -> None:
    """A category travels as BYTES, a number as any number datatype (FP64 loses nothing)."""
    if column.type == "category" and datatype != "BYTES":
        expected = "the BYTES datatype"
    elif column.type != "category" and datatype not in NUMBER_DATATYPES:
        expected = f"a number datatype ({', '.join(NUMBER_DATATYPES)})"
    else:
        return
    given = repr(shorten(datatype, 16)) if isinstance(datatype, str) else "a non-string"
    raise bad_request(f"input '{column.name}' must have {expected}, not {given}")


@dataclass
class OutputChoice:
    """Which outputs the client wants, and which of them as binary data."""

    names: list[str] | None = None  # None: every output of the model
    binary: dict[str, bool] = field(default_factory=dict)  # per output, when it says
    binary_by_default: bool = False  # the request's ``binary_data_output``

    def is_binary(self, name: str) -> bool:
        return self.binary.get(name, self.binary_by_default)


def output_choice(request: InferRequest, model: LoadedModel) -> OutputChoice:
    """``outputs`` and the binary extension's parameters, checked before predicting."""
    choice = OutputChoice(binary_by_default=bool(request.parameters.binary_data_output))
    if request.outputs is None:
        return choice
    available = [output["name"] for output in output_metadata(model)]
    choice.names = []
    for output in request.outputs:
        name = output.name
        if name not in available:
            raise bad_request(f"unknown output '{shorten(name)}'; the model has {available}")
        if name in choice.names:
            raise bad_request(f"output '{shorten(name)}' is asked for twice")
        if "classification" in (output.parameters.model_extra or {}):
            raise bad_request(
                f"output '{shorten(name)}': the classification extension is not supported"
            )
        if output.parameters.binary_data is not None:
            choice.binary[name] = output.parameters.binary_data
        choice.names.append(name)
    return choice


def model_outputs(
    model: LoadedModel, prediction: Prediction, choice: OutputChoice
) -> list[tuple[str, str, np.ndarray, bool]]:
    """The outputs asked for, as ``(name, datatype, array, binary)`` for the encoder."""
    arrays = {"predict": prediction.outputs}
    if prediction.probabilities is not None:  # a classifier's: output_metadata lists it
        arrays["predict_proba"] = prediction.probabilities
    datatypes = {output["name"]: output["datatype"] for output in output_metadata(model)}
    names = choice.names or list(datatypes)  # none named: all of them
    return [(name, datatypes[name], arrays[name], choice.is_binary(name)) for name in names]
