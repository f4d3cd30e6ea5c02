"""The input files: found, recognised and checked before anything is written.

A problem with a whole input (missing, unreadable, not CSV or Parquet, empty, without
a column the model needs) stops the job before it writes a byte, with a message that
names the file: fix it and run the same command again. Problems of single rows are
not found here; they go to the rejects file, and the good rows still go through.
"""

import csv
import gzip
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from apps.registry import InputSchema

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
"""What a folder given as input contributes: its files with these endings, by name."""
HEADER_LIMIT = 1 << 20
"""A CSV file's first line must end within this many bytes, or it is not a CSV file."""


class InputError(Exception):
    """One or more inputs cannot be used as a whole; ``problems`` says why, per file."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Source:
    """One input file: where it is, its format, its size and its column names.

    ``label`` is the path as the user wrote it: it goes into every output row, so it
    must not depend on the machine. ``data`` holds the file's bytes when it came from
    memory (an upload in the UI) rather than from a path.
    """

    label: str
    format: str  # "csv", "csv.gz" or "parquet"
    size: int
    columns: tuple[str, ...]
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    def open_raw(self) -> BinaryIO:
        """The file's bytes as stored (compressed, for gzip)."""
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.path is None:
            raise ValueError(f"{self.label}: a source needs a path or data")
        return open(self.path, "rb")

    def sha256(self) -> str:
        """The fingerprint of the file's bytes, recorded in run.json and the ledger."""
        digest = hashlib.sha256()
        with self.open_raw() as raw:
            while block := raw.read(1 << 20):
                digest.update(block)
        return digest.hexdigest()


def find_inputs(arguments: list[str]) -> list[tuple[str, Path]]:
    """``(label, path)`` of every input file: the files named, and each folder's files."""
    found, problems = [], []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and _is_input(p.name))
            if not files:
                problems.append(f"{argument}: the folder has no {', '.join(SUFFIXES)} files")
            found += [(f"{path.as_posix().rstrip('/')}/{p.name}", p) for p in files]
        elif path.is_file():
            found.append((path.as_posix(), path))
        else:
            problems.append(f"{argument}: no such file or folder")
    if problems:
        raise InputError(problems)
    return found


def _is_input(name: str) -> bool:
    """A data file by its name; hidden and ``_``-prefixed files are never inputs."""
    return not name.startswith((".", "_")) and name.lower().endswith(SUFFIXES)


def open_inputs(arguments: list[str], schema: InputSchema, keep: list[str]) -> list[Source]:
    """Find and check every input; one :class:`InputError` lists all the problems."""
    sources, problems = [], []
    for label, path in find_inputs(arguments):
        try:
            sources.append(inspect(label, schema, keep, path=path))
        except InputError as error:
            problems += error.problems
    if problems:
        raise InputError(problems)
    return sources


def _path_of(label: str, path: Path | None) -> Path:
    """The path of a source given by path (one given by its bytes has ``data`` instead)."""
    if path is None:
        raise ValueError(f"{label}: a source needs a path or data")
    return path


def inspect(
    label: str, schema: InputSchema, keep: list[str], *, path: Path | None = None, data=None
) -> Source:
    """Recognise one input by its first bytes and check it as a whole."""
    try:
        size = len(data) if data is not None else _path_of(label, path).stat().st_size
        with Source(label, "?", size, (), path, data).open_raw() as raw:
            start = raw.read(4)
    except OSError as error:
        raise InputError([f"{label}: cannot be read ({error.strerror})"]) from None
    if size == 0:
        raise InputError([f"{label}: the file is empty; it needs a header row or Parquet data"])
    if start == b"PAR1":
        fmt, columns = "parquet", _parquet_columns(label, path, data)
    elif start.startswith(b"\x1f\x8b"):
        fmt, columns = "csv.gz", _csv_columns(label, path, data, compressed=True)
    elif start.startswith(b"PK\x03\x04"):
        raise InputError([f"{label}: is a ZIP file (an Excel workbook?): save it as CSV"])
    else:
        fmt, columns = "csv", _csv_columns(label, path, data, compressed=False)
    needed = [c.name for c in schema.columns if not c.nullable and c.name not in columns]
    problems = []
    if needed:
        problems.append(f"{label} has no column {', '.join(needed)}, which the model needs")
    missing = [name for name in keep if name not in columns]
    if missing:
        problems.append(f"{label} has no column {', '.join(missing)} to keep (--keep)")
    if problems:
        raise InputError(problems)
    return Source(label, fmt, size, tuple(columns), path, data)


def _parquet_columns(label: str, path: Path | None, data: bytes | None) -> list[str]:
    """The column names of a Parquet file, read from its footer alone."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data) if data is not None else path)
    except (pa.ArrowException, OSError) as error:
        raise InputError([f"{label}: is not a readable Parquet file ({error})"]) from None
    if parquet.metadata.num_rows == 0:
        raise InputError([f"{label}: the file is empty (a Parquet file with no rows)"])
    return _unique(label, parquet.schema_arrow.names)


def _csv_columns(label: str, path: Path | None, data: bytes | None, compressed: bool) -> list[str]:
    """The header of a CSV file, after checking that it is text and that rows follow."""
    source = Source(label, "?", 0, (), path, data)
    try:
        with source.open_raw() as raw, gzip.open(raw) if compressed else raw as stream:
            head = stream.read(HEADER_LIMIT)
            line, newline, rest = head.partition(b"\n")
            while newline and not rest.strip(b"\r\n") and (more := stream.read(HEADER_LIMIT)):
                rest = more  # blank lines after the header: look further for a row
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise InputError([f"{label}: is not a readable gzip file ({error})"]) from None
    if not newline and len(head) == HEADER_LIMIT:
        raise InputError([f"{label}: no line break in the first MiB: not a CSV file"])
    if b"\x00" in head[:8192]:  # text files have no NUL bytes; images, archives... do
        raise InputError([f"{label}: holds binary data: it is neither CSV nor Parquet"])
    try:
        text = line.decode("utf-8-sig")  # -sig: the byte-order mark that Excel writes
    except UnicodeDecodeError:
        raise InputError([f"{label}: the header is not UTF-8 text; save it as CSV UTF-8"]) from None
    names = [name.strip() for name in next(csv.reader([text]), [])]
    if not any(names):
        raise InputError([f"{label}: the file is empty; it needs a header row with the names"])
    if not rest.strip(b"\r\n"):
        raise InputError([f"{label}: the file is empty: it has a header but no rows"])
    return _unique(label, names)


def _unique(label: str, names: list[str]) -> list[str]:
    """The column names, refused if one appears twice: which of the two would count?"""
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError([f"{label}: the column {', '.join(twice)} appears more than once"])
    return names
