"""Cutting an input into chunks of a fixed number of rows, reading it only once.

A chunk is the unit of everything that follows: it is read, checked, scored and
committed as a whole, and it is what a Dask worker receives. Chunk ``k`` of an input
always holds the same rows (``chunk_rows`` lines of a CSV file, blank and broken lines
included, or ``chunk_rows`` rows of a Parquet file), so a rerun after a crash, or a run
on a cluster, cuts exactly the same chunks and writes exactly the same files.
"""

import gzip
from collections.abc import Iterator
from dataclasses import dataclass

from apps.batch.inputs import Source

BLOCK = 1 << 20
"""Bytes read at a time from a CSV file."""


@dataclass(frozen=True)
class Chunk:
    """Rows ``first_row ...`` of input number ``source``; ``done`` is for progress.

    For a CSV file, ``payload`` is the chunk's lines as bytes (without the header) and
    ``first_row`` the line number of the first one (the header is line 1); for Parquet,
    an Arrow table and the number of its first row (the first row of the file is 1).
    ``done`` is how far into the input's stored bytes the chunk ends (for gzip, about:
    as far as the decompressor has read).
    """

    source: int
    index: int
    first_row: int
    payload: object
    done: int


def chunks(source: Source, number: int, chunk_rows: int, columns: list[str]) -> Iterator[Chunk]:
    """The chunks of one input, in order; ``columns`` are those a Parquet chunk needs."""
    if source.format == "parquet":
        yield from _parquet_chunks(source, number, chunk_rows, columns)
        return
    compressed = source.format == "csv.gz"
    with source.open_raw() as raw, gzip.open(raw) if compressed else raw as file:
        position = len(file.readline())  # the header, already read by inputs.inspect
        line = 2
        for index, payload in enumerate(_line_blocks(file, chunk_rows)):
            position += len(payload)
            yield Chunk(number, index, line, payload, raw.tell() if compressed else position)
            line += chunk_rows


def _parquet_chunks(source, number: int, chunk_rows: int, columns: list[str]) -> Iterator[Chunk]:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    where = io.BytesIO(source.data) if source.data is not None else source.path
    # pre_buffer=False: with it, Arrow keeps a little of every row group read, and memory
    # grows with the file (0.5 MiB per 50,000 rows here), which is what chunks must avoid.
    file = pq.ParquetFile(where, pre_buffer=False)
    rows = file.metadata.num_rows
    first = 1
    batches = file.iter_batches(batch_size=chunk_rows, columns=columns)
    for index, batch in enumerate(batches):
        done = source.size * (first - 1 + batch.num_rows) // rows
        yield Chunk(number, index, first, pa.Table.from_batches([batch]), done)
        first += batch.num_rows


def _line_blocks(file, lines_per_chunk: int) -> Iterator[bytes]:
    """The file's remaining bytes, ``lines_per_chunk`` lines at a time (the last may be short).

    Newlines are counted with ``bytes.count``, which runs in C at gigabytes per second;
    only the block holding a chunk's last line is searched for its exact position.
    """
    parts: list[bytes] = []
    needed = lines_per_chunk
    while block := file.read(BLOCK):
        start = 0
        while True:
            end, needed = _after_newlines(block, start, needed)
            if end is None:
                parts.append(block[start:])
                break
            parts.append(block[start:end])
            yield b"".join(parts)
            parts, needed, start = [], lines_per_chunk, end
    if any(parts):
        yield b"".join(parts)  # the last lines, or a last line without a final newline


def _after_newlines(block: bytes, start: int, count: int) -> tuple[int | None, int]:
    """Where the ``count``-th newline after ``start`` ends, or None and how many are left.

    Looks 64 KiB at a time: a small chunk costs a small search, a large one a few counts.
    """
    window = 1 << 16
    position = start
    while position < len(block):
        stop = min(position + window, len(block))
        found = block.count(b"\n", position, stop)
        if found >= count:
            for _ in range(count):
                position = block.index(b"\n", position, stop) + 1
            return position, 0
        count -= found
        position = stop
    return None, count
