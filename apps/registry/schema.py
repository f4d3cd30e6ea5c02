"""Input validation from the manifest: one set of rules for every entry point.

The API, the UI and the batch job all pass their records through :class:`InputSchema`,
so a value is accepted or refused for the same reason everywhere. It needs only the
standard library and NumPy, so a lean ONNX-only server can use it too.
"""

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import NoneType
from typing import cast

import numpy as np

from apps.registry.errors import ValidationError

MISSING = object()
"""Stands for a field left out of a record (as opposed to one sent as null)."""
SMALL_BATCH = 16
"""Below this many records, each value is checked directly (see :meth:`Column.codes`)."""

OK, REQUIRED, NOT_NULL, NOT_TEXT, UNKNOWN_CATEGORY, NOT_NUMBER, NOT_FINITE, TOO_SMALL, TOO_LARGE = (
    range(9)
)
"""Why a value is refused, as a number: an index into :attr:`Column.messages`."""
ABSENT, NULL, NUMBER, TEXT, OTHER = range(5)
"""What a cell holds: left out, null, a number, a text, or anything else (a list, a bool)."""


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

    @functools.cached_property
    def messages(self) -> tuple[str | None, ...]:
        """What each refusal code says to the user, for this column (None for ``OK``)."""
        allowed = list(self.categories)
        return (
            None,
            "is required",
            "is required and may not be null",
            f"must be a string, one of {allowed}",
            f"unknown category; allowed values are {allowed}",
            "must be a number",
            "must be a finite number (not NaN or infinity)",
            None if self.minimum is None else f"must be at least {self.minimum:g}",
            None if self.maximum is None else f"must be at most {self.maximum:g}",
        )

    def problem(self, value: object) -> str | None:
        """Return why ``value`` is not acceptable for this column, or None if it is."""
        return self.messages[self.code(value)]

    def code(self, value: object) -> int:
        """Why ``value`` is refused, as a code; ``OK`` (0) when it is acceptable.

        This is the one definition of a valid value; :meth:`codes` applies the same
        rules to a whole column at once, and a test proves that the two agree.
        """
        if value is MISSING:
            return OK if self.nullable else REQUIRED
        if value is None:
            return OK if self.nullable else NOT_NULL
        if self.type == "category":
            if not isinstance(value, str):
                return NOT_TEXT
            return OK if value in self.categories else UNKNOWN_CATEGORY
        if isinstance(value, bool) or not isinstance(value, int | float):
            return NOT_NUMBER
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an integer too large for a float
            finite = False
        if not finite:
            return NOT_FINITE
        if self.minimum is not None and value < self.minimum:
            return TOO_SMALL
        if self.maximum is not None and value > self.maximum:
            return TOO_LARGE
        return OK

    def codes(self, cells: "Cells") -> np.ndarray:
        """The refusal code of every cell of a column: :meth:`code`'s rules, at NumPy speed.

        A large batch is checked a whole column at a time, with a few array operations
        instead of a Python call per value; categories are looked up once per distinct
        text. This is what makes validation cost about as much as the model itself.
        """
        kinds = cells.kinds
        codes = np.zeros(len(kinds), dtype=np.uint8)
        if not self.nullable:
            codes[kinds == ABSENT] = REQUIRED
            codes[kinds == NULL] = NOT_NULL
        number = kinds == NUMBER
        if self.type == "category":
            known = np.array([text in self.categories for text in cells.texts] + [True])
            text_ids = np.where(kinds == TEXT, cells.text_ids, len(cells.texts))
            codes[~known[text_ids]] = UNKNOWN_CATEGORY
            codes[number | (kinds == OTHER)] = NOT_TEXT
            return codes
        codes[(kinds == TEXT) | (kinds == OTHER)] = NOT_NUMBER
        finite = number & np.isfinite(cells.numbers)
        codes[number & ~finite] = NOT_FINITE
        if self.maximum is not None:
            codes[finite & (cells.numbers > self.maximum)] = TOO_LARGE
        if self.minimum is not None:  # after the maximum: the same order as in code()
            codes[finite & (cells.numbers < self.minimum)] = TOO_SMALL
        return codes


@dataclass(frozen=True)
class Cells:
    """One column of a batch as arrays: what :meth:`Column.codes` checks.

    ``kinds[i]`` says what cell ``i`` holds (``ABSENT``, ``NULL``, ``NUMBER``, ``TEXT`` or
    ``OTHER``); ``numbers[i]`` is the value of a number cell (float64, infinity for an
    integer too large for a float); ``text_ids[i]`` points a text cell at its value in
    ``texts``, the distinct texts. Readers (JSON records here, Arrow arrays in the batch
    job) only sort the cells into kinds; every decision stays with the column's rules.
    """

    kinds: np.ndarray
    numbers: np.ndarray
    text_ids: np.ndarray
    texts: Sequence[str] = ()

    @classmethod
    def from_values(cls, values: Sequence) -> "Cells":
        """Cells from Python values, such as one field of many JSON records.

        The common shapes (numbers, texts, either with nulls) are sorted with one pass
        in C each; anything else one value at a time.
        """
        types = set(map(type, values))
        try:
            if types <= {float, int, NoneType}:
                null = np.array([value is None for value in values], dtype=bool)
                numbers = np.array([math.nan if v is None else v for v in values], np.float64)
                kinds = np.where(null, NULL, NUMBER).astype(np.uint8)
                return cls(kinds, numbers, np.zeros(len(values), dtype=int))
        except OverflowError:  # an integer too large for a float
            pass
        if types <= {str, NoneType, object}:  # object: MISSING, checked below
            distinct: dict = {}
            ids = np.array([distinct.setdefault(v, len(distinct)) for v in values], dtype=int)
            if all(type(v) is not object or v is MISSING for v in distinct):
                kind_of = [
                    NULL if v is None else ABSENT if v is MISSING else TEXT for v in distinct
                ]
                kinds = np.array(kind_of, dtype=np.uint8)[ids]
                return cls(kinds, np.zeros(len(values)), ids, list(distinct))
        return cls._one_by_one(values)

    @classmethod
    def _one_by_one(cls, values: Sequence) -> "Cells":
        """Cells from values of any types, sorted one at a time."""
        kinds, numbers, text_ids = [], [], []
        texts: dict = {}
        for value in values:
            kind, number, text_id = OTHER, 0.0, 0
            if value is None:
                kind = NULL
            elif value is MISSING:
                kind = ABSENT
            elif isinstance(value, str):
                kind, text_id = TEXT, texts.setdefault(value, len(texts))
            elif isinstance(value, int | float) and not isinstance(value, bool):
                kind = NUMBER
                try:
                    number = float(value)
                except OverflowError:
                    number = math.inf
            kinds.append(kind)
            numbers.append(number)
            text_ids.append(text_id)
        return cls(
            np.array(kinds, dtype=np.uint8),
            np.array(numbers, dtype=np.float64),
            np.array(text_ids, dtype=int),
            list(texts),
        )

    def values(self, column: Column, rows: np.ndarray | None = None) -> np.ndarray:
        """The model's input for this column: float64 with NaN for missing numbers, or an
        object array of texts with None for missing categories (see :meth:`InputSchema.to_columns`).
        """
        kinds = self.kinds if rows is None else self.kinds[rows]
        if column.type == "number":
            numbers = self.numbers if rows is None else self.numbers[rows]
            return np.where(kinds == NUMBER, numbers, np.nan)
        text_ids = self.text_ids if rows is None else self.text_ids[rows]
        texts = np.array([*self.texts, None], dtype=object)
        return texts[np.where(kinds == TEXT, text_ids, len(self.texts))]


@dataclass(frozen=True)
class Problems:
    """The problems of a batch as arrays, ordered by row, then column in schema order.

    ``rows`` are positions in the batch, ``columns`` positions in the schema, ``codes``
    the refusal codes; :meth:`InputSchema.describe` turns them into field names and
    messages. Arrays, not dicts, so that a million bad rows cost array operations.
    """

    rows: np.ndarray
    columns: np.ndarray
    codes: np.ndarray

    def bad_rows(self, size: int) -> np.ndarray:
        """A mask of the rows, out of ``size``, that have at least one problem."""
        mask = np.zeros(size, dtype=bool)
        mask[self.rows] = True
        return mask


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

    def check(self, cells: Mapping[str, Cells]) -> Problems:
        """Every problem of a batch given as one :class:`Cells` per column."""
        found = [
            (position, column.codes(cells[column.name]))
            for position, column in enumerate(self.columns)
        ]
        hits = [np.flatnonzero(codes) for _, codes in found]
        columns = np.concatenate(
            [np.full(len(r), p) for r, (p, _) in zip(hits, found, strict=True)] + [np.zeros(0, int)]
        )
        codes = np.concatenate(
            [codes[r] for r, (_, codes) in zip(hits, found, strict=True)] + [np.zeros(0, np.uint8)]
        )
        rows = np.concatenate([*hits, np.zeros(0, int)])
        order = np.lexsort((columns, rows))
        return Problems(rows[order], columns[order], codes[order])

    def describe(self, problems: Problems) -> tuple[np.ndarray, np.ndarray]:
        """The field name and the message of each problem, as two object arrays."""
        names = np.array([*self.names, None], dtype=object)
        table = np.array([column.messages for column in self.columns] + [[None] * 9], dtype=object)
        return names[problems.columns], table[problems.columns, problems.codes]

    def columns_of(
        self, cells: Mapping[str, Cells], rows: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The model's input from checked cells, for the given rows (all by default)."""
        return {column.name: cells[column.name].values(column, rows) for column in self.columns}

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
        valid, problems, _ = self._partition(list(records))
        return valid, problems

    def _partition(self, records: list) -> tuple[list[int], list[dict], dict | None]:
        """:meth:`partition`, plus the cells of a large batch (None for a small one)."""
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
        cells = None
        if len(objects) < SMALL_BATCH:  # a few values: NumPy's set-up would cost more
            for index in objects:
                for column in self.columns:
                    message = column.problem(records[index].get(column.name, MISSING))
                    if message:
                        found.setdefault(index, []).append(
                            {"field": column.name, "message": message}
                        )
        else:
            cells = {
                column.name: Cells.from_values(
                    [records[i].get(column.name, MISSING) for i in objects]
                )
                for column in self.columns
            }
            checked = self.check(cells)
            fields, messages = self.describe(checked)
            for row, field, message in zip(checked.rows.tolist(), fields, messages, strict=True):
                found.setdefault(objects[row], []).append({"field": field, "message": message})
        problems = [{"row": row, **problem} for row in sorted(found) for problem in found[row]]
        valid = [index for index in range(len(records)) if index not in found]
        return valid, problems, cells

    def validate(self, records: Sequence[object]) -> dict[str, np.ndarray]:
        """Check every record and return the columns, or raise :class:`ValidationError`.

        This is what a request needs: all or nothing, with every problem listed.
        """
        if not records:
            raise ValidationError([{"row": None, "field": None, "message": "no records given"}])
        _, problems, cells = self._partition(list(records))
        if problems:
            raise ValidationError(problems)
        if cells is None:  # no problems: every record is a mapping
            return self.to_columns(cast("Sequence[Mapping]", records))
        return self.columns_of(cells)

    def to_columns(self, records: Sequence[Mapping]) -> dict[str, np.ndarray]:
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
            prop: dict[str, object]
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
