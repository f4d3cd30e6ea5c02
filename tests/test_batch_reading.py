"""The batch job reads files as the API reads requests: the same values, the same verdicts.

The batch reader types CSV cells with Arrow and checks whole columns at once; the API
types them with :func:`apps.registry.tabular.read_csv` and checks records. Whatever the
cells, the two must find the same problems in the same rows and give the model the same
values; likewise for Parquet's typed values and the same values sent as JSON.
"""

import csv
import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.batch.chunks import chunks
from apps.batch.inputs import inspect
from apps.batch.reading import read_chunk
from apps.registry import InputSchema
from apps.registry.tabular import read_csv


@pytest.fixture(scope="module")
def schema(registry) -> InputSchema:
    return InputSchema.from_manifest(registry.manifest("species-classifier"))


CELL = st.one_of(
    st.sampled_from(["Biscoe", "Dream", "male", "female", "45.5", "17", "200", "4000", "", " "]),
    st.text(alphabet=" 0123456789.eE+-_naifINFty\t\x0b\x1c\xa0\u2003BiscoeDrmalf\",'x", max_size=8),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
)


def batch_verdicts(schema, data: bytes, fmt_label: str, chunk_rows: int):
    """Per row (0 = the first data row): its problems, and the model's input of good rows."""
    source = inspect(fmt_label, schema, [], data=data)
    wanted = [name for name in source.columns if name in schema.by_name]
    problems, inputs, first = [], {c.name: [] for c in schema.columns}, 2
    for chunk in chunks(source, 0, chunk_rows, wanted):
        read = read_chunk(chunk, source.format, source.columns, schema, [])
        assert not read.problems  # every row is well-formed here
        found = schema.check(read.cells)
        fields, messages = schema.describe(found)
        first = 2 if source.format != "parquet" else 1
        rows = (read.rows[found.rows] - first).tolist()
        problems += list(zip(rows, fields.tolist(), messages.tolist(), strict=True))
        good = np.flatnonzero(~found.bad_rows(len(read.rows)))
        for name, values in schema.columns_of(read.cells, good).items():
            inputs[name] += values.tolist()
    return problems, inputs


def api_verdicts(schema, records: list[dict]):
    valid, problems = schema.partition(records)
    columns = schema.to_columns([records[i] for i in valid]) if valid else {}
    inputs = {c.name: columns[c.name].tolist() if valid else [] for c in schema.columns}
    return [(p["row"], p["field"], p["message"]) for p in problems], inputs


def same_inputs(left: dict, right: dict) -> bool:
    """Equal model inputs, NaN equal to NaN."""
    return all(
        len(left[name]) == len(right[name])
        and all(a == b or (a != a and b != b) for a, b in zip(left[name], right[name], strict=True))
        for name in left
    )


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    columns=st.permutations(
        ["island", "sex", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    ).flatmap(lambda names: st.integers(1, 6).map(lambda k: names[:k])),
    rows=st.lists(st.lists(CELL, min_size=6, max_size=6), min_size=1, max_size=12),
    chunk_rows=st.integers(1, 5),
)
def test_csv_cells_are_read_and_judged_as_the_api_reads_and_judges_them(
    schema, columns, rows, chunk_rows
):
    if "island" not in columns:
        columns = ["island", *columns[:-1]] if len(columns) > 1 else ["island"]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(row[: len(columns)] for row in rows)
    data = text.getvalue()
    expected = api_verdicts(schema, read_csv(data, schema))
    found = batch_verdicts(schema, data.encode(), "cells.csv", chunk_rows)
    assert found[0] == expected[0]
    assert same_inputs(found[1], expected[1])


VALUES = {
    "float": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    "int": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    "text": st.one_of(st.none(), st.sampled_from(["Biscoe", "Dream", "male", "45", " male", ""])),
    "bool": st.one_of(st.none(), st.booleans()),
}
ARROW_TYPES = {"float": pa.float64(), "int": pa.int64(), "text": pa.string(), "bool": pa.bool_()}


@st.composite
def typed_tables(draw):
    names = ["island", "sex", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    size = draw(st.integers(1, 10))
    columns = {}
    for name in ["island", *draw(st.lists(st.sampled_from(names[1:]), unique=True))]:
        kind = draw(st.sampled_from(list(VALUES)))
        values = draw(st.lists(VALUES[kind], min_size=size, max_size=size))
        columns[name] = pa.array(values, ARROW_TYPES[kind])
    return pa.table(columns)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(table=typed_tables(), chunk_rows=st.integers(1, 4))
def test_parquet_values_are_judged_as_the_same_values_sent_as_json(schema, table, chunk_rows):
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    expected = api_verdicts(schema, table.to_pylist())
    found = batch_verdicts(schema, sink.getvalue().to_pybytes(), "values.parquet", chunk_rows)
    assert found[0] == expected[0]
    assert same_inputs(found[1], expected[1])
