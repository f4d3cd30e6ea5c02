"""Records from CSV text: one reader for the API, the UI and the batch job.

CSV has no types, so each cell is read as the model's schema says: empty means
missing, a number column's cell becomes a number where it can. A cell that is not a
number is kept as text, so that the schema reports it like any other wrong value.
"""

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence

from apps.registry.schema import InputSchema

EXTRA_CELLS = "(extra cells)"
"""The field under which a row's cells beyond the header are kept, so the schema flags them."""


class CsvError(ValueError):
    """The text cannot be read as CSV with a header row."""


def read_csv(text: str, schema: InputSchema) -> list[dict]:
    """Every row of a CSV text (with a header row) as a record typed for ``schema``."""
    return list(iter_csv(io.StringIO(text, newline=""), schema))


def iter_csv(lines: Iterable[str], schema: InputSchema) -> Iterator[dict]:
    """The rows of CSV ``lines`` (e.g. a file opened with ``newline=""``), one at a time.

    A caller that stops early (at a row limit, say) never reads the rest: a huge file
    costs no more memory than the rows taken from it.
    """
    reader = csv.DictReader(lines)
    try:
        if not reader.fieldnames:
            raise CsvError("the CSV text needs a header row with the column names")
        check_header(reader.fieldnames)
        for row in reader:
            yield typed_record(row, schema)
    except csv.Error as error:
        raise CsvError(f"the CSV text cannot be read (line {reader.line_num}): {error}") from None


def check_header(names: Sequence[str]) -> None:
    """Refuse a header that names a column twice: each row would keep only the last cell."""
    seen = set()
    for name in names:
        if name in seen and name.strip():
            shown = name if len(name) <= 64 else name[:61] + "..."
            raise CsvError(f"the CSV header names the column {shown!r} twice")
        seen.add(name)


def typed_record(row: Mapping[str | None, object], schema: InputSchema) -> dict:
    """One CSV row as a record: missing for empty cells, numbers for number columns."""
    record = {}
    for name, cell in row.items():
        if name is None:  # csv.DictReader keeps extra cells under the key None
            record[EXTRA_CELLS] = cell
            continue
        text = "" if cell is None else str(cell).strip()
        column = schema.by_name.get(name)
        if text == "":
            record[name] = None
        elif column is not None and column.type == "number":
            record[name] = _number_or_text(text)
        else:
            record[name] = text
    return record


def _number_or_text(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text
