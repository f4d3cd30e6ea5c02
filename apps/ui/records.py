"""Between the UI and the models: CSV files to records, and answers back to tables.

Plain functions of plain data, with no Streamlit in them, so that a notebook or a test
can call them directly. The columns they work from are the manifest's input schema
(the ``input_schema.columns`` of a model's metadata), never a hard-coded list.
"""

import csv
import io
from dataclasses import dataclass, field
from typing import cast

import pandas as pd

from apps.registry import InputSchema
from apps.registry.tabular import typed_record


@dataclass
class CsvFile:
    """An uploaded CSV file, read the way the API reads a CSV body.

    ``rows`` keep every cell as the text it was in the file, so the results file gives
    back exactly what came in; ``records`` hold the model's columns parsed for
    prediction. ``lines[i]`` is the line of the file that holds row ``i`` (the header
    is line 1), so a problem can be found in any editor or spreadsheet.
    """

    header: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


class CsvError(ValueError):
    """The file as a whole cannot be read (not text, no header, broken quoting)."""


def read_csv(data: bytes, columns: list[dict]) -> CsvFile:
    """Parse a CSV file for a model whose input schema has these ``columns``.

    Each row is typed by the registry's CSV reader, the API's too: an empty cell is a
    missing value; in number columns a cell is parsed as a float where it can be, and
    is otherwise left as text so that the schema names the problem. Unlike the API,
    columns the model does not use are not an error: they are kept for the results
    but not sent. A model column absent from the file is missing in every row.
    """
    try:
        text = data.decode("utf-8-sig")  # -sig: the byte-order mark Excel writes
    except UnicodeDecodeError:
        raise CsvError("the file is not UTF-8 text; save it as 'CSV UTF-8'") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in reader.fieldnames or []]
    except csv.Error as error:
        raise CsvError(f"the file is not valid CSV: {error}") from None
    if not any(header):
        raise CsvError("the file is empty; it needs a header row with the column names")
    reader.fieldnames = header
    schema = InputSchema.from_dicts(columns)
    file = CsvFile(
        header=header,
        extra=[name for name in header if name and name not in schema.by_name],
        missing=[name for name in schema.names if name not in header],
    )
    used = [name for name in header if name in schema.by_name]
    try:
        for row in reader:
            cells: dict[str | None, object] = {name: row[name] for name in used}
            if None in row:  # more cells than the header has names: the schema flags them
                cells[None] = row.pop(None)
            file.rows.append({name: (cell or "") for name, cell in row.items()})
            file.records.append(typed_record(cells, schema))
            file.lines.append(reader.line_num)  # where the row ends; blank lines count
    except csv.Error as error:
        raise CsvError(f"line {reader.line_num} is not valid CSV: {error}") from None
    return file


def check(file: CsvFile, columns: list[dict]) -> tuple[list[int], list[dict]]:
    """The indices of the rows to score, and every problem of the others.

    The schema judges each record on its own (:meth:`InputSchema.partition`), so one
    bad row never stops the good ones. Each problem names the row by its line in the
    file, the field, and the reason.
    """
    valid, problems = InputSchema.from_dicts(columns).partition(file.records)
    return valid, [
        {"row": file.lines[p["row"]], "field": p["field"] or "", "message": p["message"]}
        for p in problems
    ]


def results_table(
    file: CsvFile,
    valid: list[int],
    predictions: list[dict],
    problems: list[dict],
    target: str,
) -> pd.DataFrame:
    """Every row of the file, in order, with its prediction or the reason it has none.

    The file's own cells come back unchanged, then ``predicted_<target>``, one
    ``probability_<class>`` column per class for a classifier, and ``problems``.
    """
    table = pd.DataFrame(file.rows, columns=file.header, dtype=object)
    answers = dict(zip(valid, predictions, strict=True))
    predicted = [answers[i]["prediction"] if i in answers else None for i in range(len(table))]
    table[f"predicted_{target}"] = pd.Series(predicted, dtype=object)
    classes = next((list(a["probabilities"]) for a in predictions if "probabilities" in a), [])
    for name in classes:
        table[f"probability_{name}"] = [
            round(answers[i]["probabilities"][name], 4) if i in answers else None
            for i in range(len(table))
        ]
    by_line: dict[int, list[str]] = {}
    for problem in problems:
        where = f"{problem['field']}: " if problem["field"] else ""
        by_line.setdefault(problem["row"], []).append(where + problem["message"])
    table["problems"] = ["; ".join(by_line.get(line, [])) for line in file.lines]
    return table


def to_csv_bytes(table: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV with ``\\n`` line ends, the same on every OS."""
    return table.to_csv(index=False, lineterminator="\n").encode("utf-8")


def explain(
    record: dict, columns: list[dict], data: pd.DataFrame, group: str | None = None
) -> pd.DataFrame:
    """Where each input sits among the penguins in ``data``, as short sentences.

    Numbers get their percentile (the share of measured penguins with a smaller value);
    categories the share of penguins with that value. ``group`` (e.g. the predicted
    species) adds the same comparison within that group, which shows at a glance
    whether the input looks like a typical member of the class the model chose.
    """
    members = None
    if group is not None and "species" in data and group in set(data["species"]):
        members = data[data["species"] == group]
    rows = []
    for column in columns:
        name, value = column["name"], record.get(column["name"])
        if name not in data:
            continue
        row = {"input": name, "value": describe_value(value, column)}
        row["among all penguins"] = compare(value, column, data[name])
        if members is not None:
            row[f"among {group} penguins"] = compare(value, column, members[name])
        rows.append(row)
    return pd.DataFrame(rows)


def describe_value(value: object, column: dict) -> str:
    """A value with its unit, or ``unknown``."""
    if value is None:
        return "unknown"
    if column["type"] == "number":
        return f"{value:g} {column.get('unit') or ''}".strip()
    return str(value)


def compare(value: object, column: dict, values: pd.Series) -> str:
    """One sentence placing ``value`` among ``values`` (missing values left out)."""
    known = values.dropna()
    if value is None:
        if column["type"] == "number" and len(known):
            typical = describe_value(float(known.median()), column)
            return f"the model uses a typical value instead (median {typical})"
        return "the model does without it"
    if not len(known):
        return "no penguins to compare with"
    if column["type"] == "number":
        below = percentile(cast(float, value), known)  # a number, in a number column
        typical = describe_value(float(known.median()), column)
        return f"larger than {below:.0f}% of {len(known)} penguins (median {typical})"
    share = float((known == value).mean() * 100)
    return f"shared by {share:.0f}% of {len(known)} penguins"


def percentile(value: float, values: pd.Series) -> float:
    """The share of ``values`` (missing ones left out) smaller than ``value``, in %."""
    known = values.dropna()
    return float((known < value).mean() * 100) if len(known) else float("nan")
