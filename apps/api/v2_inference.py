"""A model as the Open Inference Protocol (V2) sees it: one input tensor per column.

MLServer's pandas codec sends a DataFrame this way, and a tritonclient user builds the
same request: each column of the model is an input named after it, of shape ``[rows]``
(or ``[rows, 1]``), BYTES for a category and a number datatype for a number. The
tensors become plain records, so the model's schema judges the values exactly as in
every other format; the predictions become the ``predict`` (and ``predict_proba``)
outputs of MLServer's scikit-learn runtime.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from apps.api.errors import shorten, too_many_records
from apps.api.formats import bad_request
from apps.api.v2_tensors import NUMBER_DATATYPES, decode, split_binary
from apps.registry import InputSchema, LoadedModel, Prediction
from apps.registry.schema import Column

REQUEST_KEYS = {"id", "parameters", "inputs", "outputs"}


def input_metadata(schema: InputSchema) -> list[dict]:
    """The model's inputs as V2 tensors: one per column, shape [-1], BYTES or FP64."""
    return [
        {"name": c.name, "datatype": "BYTES" if c.type == "category" else "FP64", "shape": [-1]}
        for c in schema.columns
    ]


def output_metadata(model: LoadedModel) -> list[dict]:
    """``predict`` (and ``predict_proba`` for classifiers), named as MLServer's sklearn runtime."""
    classification = model.manifest.task == "classification"
    outputs = [
        {"name": "predict", "datatype": "BYTES" if classification else "FP64", "shape": [-1]}
    ]
    if classification:
        classes = len(model.manifest.classes)
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, classes]})
    return outputs


def _object(value: object, what: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise bad_request(f"{what} must be a JSON object")
    return value


def _flag(parameters: Mapping, key: str, where: str) -> bool | None:
    value = parameters.get(key)
    if value is not None and not isinstance(value, bool):
        raise bad_request(f"{where}: {key} must be true or false")
    return value


def request_records(
    body: object, binary: bytes | None, schema: InputSchema, max_records: int
) -> list[dict]:
    """The request's inputs as records, one per row: the schema's input.

    ``binary`` is the binary tensor data after the JSON (None without the extension).
    More rows than ``max_records`` are refused before any record is built.
    """
    body = _object(body, 'the inference request (with "inputs")')
    extra = sorted(set(body) - REQUEST_KEYS)
    if extra:
        raise bad_request(f"unknown top-level keys {extra}; allowed: {sorted(REQUEST_KEYS)}")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad_request('"inputs" must be a non-empty JSON array of tensors')
    named: dict[str, Mapping] = {}
    for tensor in inputs:
        tensor = _object(tensor, "each input tensor")
        name = tensor.get("name")
        if not isinstance(name, str):
            raise bad_request("each input needs a string 'name'")
        if name not in schema.by_name:
            raise bad_request(f"unknown input '{shorten(name)}'; the model takes {schema.names}")
        if name in named:
            raise bad_request(f"input '{name}' is given twice")
        _check_datatype(schema.by_name[name], tensor.get("datatype"))
        shape = tensor.get("shape")
        rows = shape[0] if isinstance(shape, list) and shape else None
        if type(rows) is int and rows > max_records:  # refused before decoding any value
            raise too_many_records(str(rows), max_records)
        named[name] = tensor
    columns = {}
    chunks = split_binary(list(named.items()), binary)
    for (name, tensor), chunk in zip(named.items(), chunks, strict=True):
        shape, values = decode(name, tensor, chunk)
        if not shape or math.prod(shape[1:]) != 1:
            raise bad_request(f"input '{name}': each row must hold exactly one value")
        columns[name] = values
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


def output_choice(body: Mapping, model: LoadedModel) -> OutputChoice:
    """``outputs`` and the binary extension's parameters, checked before predicting."""
    where = "the request's parameters"
    parameters = _object(body.get("parameters", {}), where)
    choice = OutputChoice(binary_by_default=bool(_flag(parameters, "binary_data_output", where)))
    available = [output["name"] for output in output_metadata(model)]
    outputs = body.get("outputs")
    if outputs is None:
        return choice
    if not isinstance(outputs, list):
        raise bad_request('"outputs" must be a JSON array of objects with a "name"')
    choice.names = []
    for output in outputs:
        name = _object(output, "each requested output").get("name")
        if not isinstance(name, str):
            raise bad_request('"outputs" must be a JSON array of objects with a "name"')
        if name not in available:
            raise bad_request(f"unknown output '{shorten(name)}'; the model has {available}")
        if name in choice.names:
            raise bad_request(f"output '{shorten(name)}' is asked for twice")
        where = f"output '{shorten(name)}'"
        parameters = _object(output.get("parameters", {}), f"{where}: parameters")
        if "classification" in parameters:
            raise bad_request(f"{where}: the classification extension is not supported")
        binary = _flag(parameters, "binary_data", where)
        if binary is not None:
            choice.binary[name] = binary
        choice.names.append(name)
    return choice


def model_outputs(
    model: LoadedModel, prediction: Prediction, choice: OutputChoice
) -> list[tuple[str, str, np.ndarray, bool]]:
    """The outputs asked for, as ``(name, datatype, array, binary)`` for the encoder."""
    arrays = {"predict": prediction.outputs, "predict_proba": prediction.probabilities}
    datatypes = {output["name"]: output["datatype"] for output in output_metadata(model)}
    names = choice.names or list(datatypes)  # none named: all of them
    return [(name, datatypes[name], arrays[name], choice.is_binary(name)) for name in names]
