"""Validation from the manifest: every kind of bad record is refused, with a reason."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.registry import InputSchema, ValidationError
from apps.registry.schema import MISSING, SMALL_BATCH

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
