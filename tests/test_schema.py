"""Validation from the manifest: every kind of bad record is refused, with a reason."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.registry import InputSchema, ValidationError
from apps.registry.schema import (
    ABSENT,
    MISSING,
    NOT_TEXT,
    NULL,
    NUMBER,
    OTHER,
    REQUIRED,
    SMALL_BATCH,
    TEXT,
    TOO_LARGE,
    TOO_SMALL,
    Cells,
)

GOOD = {
    "island": "Biscoe",
    "sex": "female",
    "bill_length_mm": 46.5,
    "bill_depth_mm": 14.8,
    "flipper_length_mm": 217,
    "body_mass_g": 4800,
}


@pytest.fixture(scope="module")
def schema(registry) -> InputSchema:
    return InputSchema.from_manifest(registry.manifest("species-classifier"))


def problems(schema, record):
    return [(p["field"], p["message"]) for p in schema.record_problems(record)]


def test_a_good_record_has_no_problems(schema):
    assert problems(schema, GOOD) == []


def test_nullable_fields_may_be_null_or_left_out(schema):
    assert problems(schema, {**GOOD, "sex": None}) == []
    assert problems(schema, {k: v for k, v in GOOD.items() if k != "bill_depth_mm"}) == []


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"island": None}, "island", "is required and may not be null"),
        ({"island": "Atlantis"}, "island", "unknown category"),
        ({"island": 3}, "island", "must be a string"),
        ({"sex": "FEMALE"}, "sex", "unknown category"),
        ({"bill_length_mm": "46.5"}, "bill_length_mm", "must be a number"),
        ({"bill_length_mm": True}, "bill_length_mm", "must be a number"),
        ({"bill_length_mm": math.nan}, "bill_length_mm", "finite"),
        ({"bill_length_mm": math.inf}, "bill_length_mm", "finite"),
        ({"bill_length_mm": 10**400}, "bill_length_mm", "finite"),
        ({"bill_length_mm": [46.5]}, "bill_length_mm", "must be a number"),
        ({"island": ["Biscoe"]}, "island", "must be a string"),
        ({"bill_length_mm": 5.0}, "bill_length_mm", "at least 25"),
        ({"body_mass_g": 90000}, "body_mass_g", "at most 7500"),
        ({"bill_lenght_mm": 40.0}, "bill_lenght_mm", "unknown field"),
    ],
)
def test_each_bad_value_is_named_with_its_reason(schema, change, field, message):
    found = problems(schema, {**GOOD, **change})
    assert len(found) == 1, found
    assert found[0][0] == field
    assert message in found[0][1]


def test_a_missing_required_field_is_reported(schema):
    record = {k: v for k, v in GOOD.items() if k != "island"}
    assert problems(schema, record) == [("island", "is required")]


def test_not_an_object_is_reported(schema):
    assert problems(schema, ["Biscoe", 46.5]) == [(None, "each record must be a JSON object")]


def test_validate_lists_every_problem_with_its_row(schema):
    with pytest.raises(ValidationError) as caught:
        schema.validate([GOOD, {**GOOD, "island": "Atlantis", "body_mass_g": -1}])
    assert [(p["row"], p["field"]) for p in caught.value.problems] == [
        (1, "island"),
        (1, "body_mass_g"),
    ]
    assert str(caught.value).startswith("record 1, field 'island': unknown category")
    assert "(and 1 more problems)" in str(caught.value)


def test_validate_refuses_an_empty_list(schema):
    with pytest.raises(ValidationError, match="no records given"):
        schema.validate([])


def test_partition_keeps_the_good_rows(schema):
    valid, found = schema.partition([GOOD, {**GOOD, "sex": "x"}, GOOD])
    assert valid == [0, 2]
    assert [p["row"] for p in found] == [1]


def test_to_columns_gives_typed_arrays_with_missing_values(schema):
    columns = schema.to_columns([GOOD, {**GOOD, "sex": None, "bill_depth_mm": None}])
    assert columns["bill_depth_mm"].dtype == np.float64
    assert np.isnan(columns["bill_depth_mm"][1])
    assert columns["sex"].tolist() == ["female", None]


def test_json_schema_matches_the_rules(schema):
    document = schema.to_dict()
    assert document["additionalProperties"] is False
    assert document["required"] == ["island"]
    assert document["properties"]["island"]["enum"] == ["Biscoe", "Dream", "Torgersen"]


ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**500), max_value=10**500),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=300),
    st.sampled_from(["Biscoe", "Dream", "Torgersen", "female", "male", "", "biscoe"]),
    st.lists(st.integers(), max_size=2),
)
RECORDS = st.lists(
    st.dictionaries(st.sampled_from([*GOOD, "wingspan"]), ANY_VALUE, max_size=8), max_size=12
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(records=RECORDS, repeat=st.sampled_from([1, SMALL_BATCH]))
def test_the_fast_batch_check_agrees_with_the_rule_for_each_value(schema, records, repeat):
    """``partition`` pre-filters with NumPy; it must flag exactly what ``Column.problem`` would.

    Repeating the records takes the batch past ``SMALL_BATCH``, where the NumPy path runs.
    """
    records = records * repeat
    expected = []
    for row, record in enumerate(records):
        expected += [(row, key, "unknown field") for key in record if key not in schema.by_name]
        for column in schema.columns:
            message = column.problem(record.get(column.name, MISSING))
            if message:
                expected.append((row, column.name, message))
    valid, found = schema.partition(records)
    assert [(p["row"], p["field"], p["message"]) for p in found] == expected
    assert valid == [row for row in range(len(records)) if row not in {e[0] for e in expected}]


# --- the columnar fast path ---------------------------------------------------------------

EVERY_VALUE = st.one_of(
    ANY_VALUE,
    st.just(MISSING),
    st.builds(np.float64, st.floats()),  # a float subclass: a number
    st.builds(np.int64, st.integers(-(2**63), 2**63 - 1)),  # not an int: "must be a number"
    st.builds(type("Text", (str,), {}), st.sampled_from(["Biscoe", "x"])),  # a str subclass
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(values=st.lists(EVERY_VALUE, max_size=40))
def test_the_columnar_check_agrees_with_the_rule_for_each_value(schema, values):
    """``Column.codes`` over :class:`Cells` gives exactly ``Column.code`` of every value."""
    cells = Cells.from_values(values)
    for column in schema.columns:
        assert column.codes(cells).tolist() == [column.code(value) for value in values]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    kinds=st.lists(st.sampled_from([ABSENT, NULL, NUMBER, TEXT, OTHER]), max_size=30),
    numbers=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=30, max_size=30),
    texts=st.lists(
        st.sampled_from(["Biscoe", "Dream", "male", "", "biscoe"]), min_size=1, max_size=5
    ),
    picks=st.lists(st.integers(0, 4), min_size=30, max_size=30),
)
def test_cells_from_any_reader_are_judged_as_their_values(schema, kinds, numbers, texts, picks):
    """Cells as a reader builds them (the batch job's Arrow reader) mean the values they
    stand for: each cell gets the code that its Python value gets."""
    size = len(kinds)
    ids = [pick % len(texts) for pick in picks[:size]]
    cells = Cells(
        np.array(kinds, dtype=np.uint8), np.array(numbers[:size]), np.array(ids, dtype=int), texts
    )
    stand_for = {ABSENT: lambda i: MISSING, NULL: lambda i: None, OTHER: lambda i: [1]}
    stand_for |= {NUMBER: lambda i: numbers[i], TEXT: lambda i: texts[ids[i]]}
    values = [stand_for[kind](i) for i, kind in enumerate(kinds)]
    for column in schema.columns:
        assert column.codes(cells).tolist() == [column.code(value) for value in values]


def test_every_refusal_has_its_own_message(schema):
    species = InputSchema.from_dicts(
        [{"name": "x", "type": "number", "nullable": False, "minimum": 1, "maximum": 2}]
    ).columns[0]
    assert species.messages[REQUIRED] == "is required"
    assert species.messages[TOO_SMALL] == "must be at least 1"
    assert species.messages[TOO_LARGE] == "must be at most 2"
    island = schema.by_name["island"]
    assert island.problem(3) == island.messages[NOT_TEXT]
    assert len(set(island.messages[1:7])) == 6


def test_validate_gives_the_same_columns_on_both_paths(schema):
    records = [GOOD, {**GOOD, "sex": None}, {k: v for k, v in GOOD.items() if k != "bill_depth_mm"}]
    small = schema.validate(records)
    large = schema.validate(records * SMALL_BATCH)
    for name, values in small.items():
        expected = np.concatenate([values] * SMALL_BATCH)
        if values.dtype == object:
            assert large[name].tolist() == expected.tolist()
        else:
            np.testing.assert_array_equal(large[name], expected)
