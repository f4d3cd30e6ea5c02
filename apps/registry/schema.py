"""Input validation from the manifest: one set of rules for every entry point.

The API, the UI and the batch job all pass their records through :class:`InputSchema`,
so a value is accepted or refused for the same reason everywhere. It needs only the
standard library and NumPy, so a lean ONNX-only server can use it too.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from apps.registry.errors import ValidationError

MISSING = object()
"""Stands for a field left out of a record (as opposed to one sent as null)."""
_NUMBER_TYPES = {int, float, type(None)}
SMALL_BATCH = 16
"""Below this many records, each value is checked directly (see :meth:`Column.suspects`)."""


@dataclass(frozen=True)
class Column:
    """One input column as the manifest describes it."""

    name: str
    type: str
    nullable: bool
    categories: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    @classmethod
    def from_dict(cls, entry: Mapping) -> "Column":
        """Build a column from its manifest entry."""
        return cls(
            name=entry["name"],
            type=entry["type"],
            nullable=bool(entry.get("nullable", False)),
            categories=tuple(entry.get("categories", ())),
            minimum=entry.get("minimum"),
            maximum=entry.get("maximum"),
        )

    def problem(self, value: object) -> str | None:
        """Return why ``value`` is not acceptable for this column, or None if it is.

        This is the one definition of a valid value; :meth:`suspects` only speeds it up.
        """
        if value is MISSING:
            return None if self.nullable else "is required"
        if value is None:
            return None if self.nullable else "is required and may not be null"
        if self.type == "category":
            if not isinstance(value, str):
                return f"must be a string, one of {list(self.categories)}"
            if value not in self.categories:
                return f"unknown category; allowed values are {list(self.categories)}"
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an integer too large for a float
            finite = False
        if not finite:
            return "must be a finite number (not NaN or infinity)"
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum:g}"
        return None

    def suspects(self, values: list) -> Iterable[int]:
        """Indices of the values that may be invalid: a fast, vectorized first pass.

        It may flag good values (:meth:`problem` has the last word on each) but never
        misses a bad one, so a large batch of good records is checked at NumPy speed.
        A small batch skips it: for a few values, NumPy's set-up costs more than it saves.
        """
        if len(values) < SMALL_BATCH:
            return range(len(values))
        if self.type == "category":
            allowed = set(self.categories) | ({None, MISSING} if self.nullable else set())
            try:
                unexpected = set(values) - allowed
            except TypeError:  # unhashable values (lists, objects): look at each
                return range(len(values))
            return [i for i, v in enumerate(values) if v in unexpected] if unexpected else ()
        if not set(map(type, values)) <= _NUMBER_TYPES:
            return range(len(values))
        try:
            numbers = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        except OverflowError:
            return range(len(values))
        low = -np.inf if self.minimum is None else self.minimum
        high = np.inf if self.maximum is None else self.maximum
        with np.errstate(invalid="ignore"):
            good = np.isfinite(numbers) & (numbers >= low) & (numbers <= high)
        return np.flatnonzero(~good).tolist()


class InputSchema:
    """The columns a model expects, with the rules that decide what is a valid record."""

    def __init__(self, columns: Iterable[Column]):
        self.columns = tuple(columns)
        self.by_name = {column.name: column for column in self.columns}

    @classmethod
    def from_dicts(cls, entries: Iterable[Mapping]) -> "InputSchema":
        """Build the schema from column entries in the manifest's JSON form."""
        return cls(Column.from_dict(entry) for entry in entries)

    @classmethod
    def from_manifest(cls, manifest) -> "InputSchema":
        """Build the schema from a :class:`~apps.registry.manifest.Manifest`."""
        return cls.from_dicts(manifest.input_columns)

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def record_problems(self, record: object) -> list[dict]:
        """List every problem of one record as ``{"field", "message"}`` dicts."""
        _, problems = self.partition([record])
        return [{"field": p["field"], "message": p["message"]} for p in problems]

    def partition(self, records: Iterable[object]) -> tuple[list[int], list[dict]]:
        """Split records into the indices of valid ones and the problems of the others.

        This is what a batch job needs: bad rows are reported, good rows go on. A field
        that may be null may also be left out; any other field must be there. Unknown
        fields are refused rather than ignored: a typo such as ``bill_lenght_mm`` would
        otherwise silently become a missing value. Problems come row by row, unknown
        fields first, then the columns in schema order.
        """
        records = list(records)
        found: dict[int, list[dict]] = {}
        objects = []
        for index, record in enumerate(records):
            if not isinstance(record, Mapping):
                found[index] = [{"field": None, "message": "each record must be a JSON object"}]
                continue
            objects.append(index)
            if not self.by_name.keys() >= record.keys():
                found[index] = [
                    {"field": str(key), "message": "unknown field"}
                    for key in record
                    if key not in self.by_name
                ]
        for column in self.columns:
            values = [records[i].get(column.name, MISSING) for i in objects]
            for position in column.suspects(values):
                message = column.problem(values[position])
                if message:
                    row = objects[position]
                    found.setdefault(row, []).append({"field": column.name, "message": message})
        problems = [{"row": row, **problem} for row in sorted(found) for problem in found[row]]
        valid = [index for index in range(len(records)) if index not in found]
        return valid, problems

    def validate(self, records: list[object]) -> dict[str, np.ndarray]:
        """Check every record and return the columns, or raise :class:`ValidationError`.

        This is what a request needs: all or nothing, with every problem listed.
        """
        if not records:
            raise ValidationError([{"row": None, "field": None, "message": "no records given"}])
        _, problems = self.partition(records)
        if problems:
            raise ValidationError(problems)
        return self.to_columns(records)

    def to_columns(self, records: list[Mapping]) -> dict[str, np.ndarray]:
        """Turn valid records into one NumPy array per column, the models' input.

        Numbers become float64 with NaN for missing values; categories become object
        arrays with None for missing values. Both backends accept exactly this.
        """
        columns = {}
        for column in self.columns:
            values = [record.get(column.name) for record in records]
            if column.type == "number":
                columns[column.name] = np.array(
                    [np.nan if v is None else v for v in values], dtype=np.float64
                )
            else:
                columns[column.name] = np.array(values, dtype=object)
        return columns

    def to_dict(self) -> dict:
        """A JSON Schema for one record, for documentation and API clients."""
        properties = {}
        for column in self.columns:
            if column.type == "category":
                prop = {"type": "string", "enum": list(column.categories)}
            else:
                prop = {"type": "number", "minimum": column.minimum, "maximum": column.maximum}
            if column.nullable:
                prop = {"anyOf": [prop, {"type": "null"}]}
            properties[column.name] = prop
        return {
            "type": "object",
            "properties": properties,
            "required": [c.name for c in self.columns if not c.nullable],
            "additionalProperties": False,
        }
