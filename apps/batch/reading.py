"""One chunk of CSV or Parquet into the schema's :class:`~apps.registry.schema.Cells`.

The reader only sorts each cell into a kind (missing, a number, a text, anything else);
whether that is acceptable is the schema's decision, the same as the API's. A CSV cell
is typed exactly as the API's CSV reader types it (:func:`apps.registry.tabular.typed_record`:
stripped, empty means missing, a number where it parses as one), with Arrow doing the
common cases at C speed and the API's own function deciding every unusual text.

The reader has its own problems too, for rows it cannot read at all: a line with the
wrong number of fields, or bytes that are not UTF-8 text.
"""

import csv
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from apps.batch.cells import text_cells, typed_cells
from apps.registry import InputSchema
from apps.registry.schema import ABSENT, Cells


@dataclass
class ReadChunk:
    """The readable rows of a chunk, and the problems of the others.

    ``rows[i]`` is the line (CSV) or row (Parquet) number of readable row ``i``;
    ``cells`` holds one :class:`Cells` per schema column, ``kept`` the ``--keep`` columns
    as read; ``problems`` are ``(row, field, message)`` for the rows that could not be read.
    """

    rows: np.ndarray
    cells: dict[str, Cells]
    kept: dict[str, pa.Array]
    problems: list[tuple[int, str | None, str]] = field(default_factory=list)


def read_chunk(
    chunk, fmt: str, header: tuple[str, ...], schema: InputSchema, keep: list[str]
) -> ReadChunk:
    """Read one chunk of an input of format ``fmt`` whose columns are ``header``."""
    if fmt == "parquet":
        table, rows, problems = chunk.payload, chunk.first_row + np.arange(len(chunk.payload)), []
        typed = {
            c.name: typed_cells(table[c.name], c)
            for c in schema.columns
            if c.name in table.column_names
        }
    else:
        wanted = [n for n in header if n in schema.by_name or n in keep]
        table, rows, problems = parse_csv(chunk.payload, chunk.first_row, header, wanted)
        typed = {
            c.name: text_cells(table[c.name], c)
            for c in schema.columns
            if c.name in table.column_names
        }
    absent = Cells(
        np.full(len(rows), ABSENT, np.uint8), np.zeros(len(rows)), np.zeros(len(rows), int)
    )
    cells = {c.name: typed.get(c.name, absent) for c in schema.columns}
    kept = {name: table[name].combine_chunks() for name in keep}
    return ReadChunk(rows, cells, kept, problems)


def parse_csv(payload: bytes, first_line: int, header: tuple[str, ...], wanted: list[str]):
    """The ``wanted`` columns of CSV lines, as text, with the line number of each row.

    Lines that are not UTF-8 text are set aside first (and emptied, so that Arrow can
    parse the rest); Arrow then parses the chunk, reporting rows with the wrong number
    of fields. Blank lines are skipped, as Python's CSV reader skips them.
    """
    lines = payload.count(b"\n") + (not payload.endswith(b"\n"))
    problems: list = []
    if np.frombuffer(payload, np.uint8).max(initial=0) >= 0x80 and not _is_utf8(payload):
        problems, payload = _without_undecodable_lines(payload, first_line, header)
    filled = _filled_lines(payload, lines)  # the lines Arrow reads as rows
    wrong: list[tuple[int, str]] = []
    table = _arrow_parse(payload, header, wanted, wrong)
    numbers = [number for number, _ in wrong]
    if table is not None and None not in numbers and table.num_rows + len(wrong) == len(filled):
        skipped = np.array(numbers, dtype=int) - 1
        problems += [
            (first_line + int(filled[i]), None, message)
            for i, (_, message) in zip(skipped, wrong, strict=True)
        ]
        rows = first_line + np.delete(filled, skipped)
    else:  # a quoted value ran over a line break: read this chunk line by line
        table, rows, found = _parse_line_by_line(payload, filled, first_line, header, wanted)
        problems += found
    return table, rows, sorted(problems, key=lambda problem: problem[0])


def _arrow_parse(payload: bytes, header, wanted: list[str], wrong: list) -> pa.Table | None:
    """Arrow's CSV parser on the chunk; rows with the wrong field count go to ``wrong``."""
    import pyarrow.csv as pacsv

    def invalid_row(row) -> str:
        wrong.append(
            (row.number, f"has {row.actual_columns} fields, the header has {row.expected_columns}")
        )
        return "skip"

    try:
        return pacsv.read_csv(
            pa.py_buffer(payload),
            read_options=pacsv.ReadOptions(column_names=list(header), use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=invalid_row),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted,
                column_types=dict.fromkeys(wanted, pa.string()),
                strings_can_be_null=True,
                null_values=[""],  # not Arrow's "NA", "null"...: text, as for the API
            ),
        )
    except pa.ArrowInvalid:  # e.g. a quote left open at the end of the chunk
        return None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _line_bounds(payload: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (newline excluded) of every line; only for the rare slow paths."""
    newlines = np.flatnonzero(np.frombuffer(payload, np.uint8) == ord("\n"))
    ends = newlines if payload.endswith(b"\n") else np.append(newlines, len(payload))
    return np.concatenate([[0], newlines + 1])[: len(ends)], ends


def _filled_lines(payload: bytes, lines: int) -> np.ndarray:
    """Offsets of the lines that are not blank (a blank line holds nothing, or ``\\r``)."""
    blank_possible = (
        payload.startswith((b"\n", b"\r\n"))
        or b"\n\n" in payload
        or b"\n\r\n" in payload
        or payload.endswith(b"\n\r")
        or payload == b"\r"
    )
    if not blank_possible:
        return np.arange(lines)
    starts, ends = _line_bounds(payload)
    data = np.frombuffer(payload, np.uint8)
    length = ends - starts
    carriage = (length == 1) & (data[np.minimum(starts, len(data) - 1)] == ord("\r"))
    return np.flatnonzero((length > 0) & ~carriage)


def _without_undecodable_lines(payload: bytes, first_line: int, header) -> tuple[list, bytes]:
    """Problems for the lines that are not UTF-8, and the payload with them emptied."""
    starts, ends = _line_bounds(payload)
    high = np.flatnonzero(np.frombuffer(payload, np.uint8) >= 0x80)
    problems, pieces, position = [], [], 0
    for line in np.unique(np.searchsorted(starts, high, side="right") - 1).tolist():
        text = payload[starts[line] : ends[line]]
        if _is_utf8(text):
            continue
        problems.append((first_line + line, _field_of_bad_bytes(text, header), "is not UTF-8 text"))
        pieces.append(payload[position : starts[line]])
        position = ends[line]
    return problems, b"".join([*pieces, payload[position:]])


def _field_of_bad_bytes(line: bytes, header) -> str | None:
    """The name of the column whose cell holds the undecodable bytes, if it can be told."""
    text = line.decode("utf-8", "surrogateescape")
    try:
        cells = next(csv.reader([text]))
    except csv.Error:
        return None
    for index, cell in enumerate(cells):
        if any("\udc80" <= char <= "\udcff" for char in cell):
            return header[index] if index < len(header) else None
    return None


def _parse_line_by_line(payload: bytes, filled, first_line: int, header, wanted: list[str]):
    """The slow, exact reading of a chunk: Python's CSV reader, one line at a time."""
    texts = payload.decode("utf-8").split("\n")
    positions = [header.index(name) for name in wanted]
    values: list[list] = [[] for _ in wanted]
    rows, problems = [], []
    for offset in filled.tolist():
        line = first_line + offset
        try:
            cells = next(csv.reader([texts[offset].removesuffix("\r")], strict=True))
        except csv.Error as error:
            problems.append((line, None, f"is not valid CSV ({error})"))
            continue
        if len(cells) != len(header):
            problems.append((line, None, f"has {len(cells)} fields, the header has {len(header)}"))
            continue
        rows.append(line)
        for column, position in zip(values, positions, strict=True):
            column.append(cells[position] or None)
    table = pa.table(
        {name: pa.array(v, pa.string()) for name, v in zip(wanted, values, strict=True)}
    )
    return table, np.array(rows, dtype=int), problems
