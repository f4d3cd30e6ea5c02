"""Scoring one chunk: read, check, predict, and commit its output files.

:func:`score_chunk` is the whole job for one chunk, and the only function that runs on
a worker, in a thread of this process or on a Dask cluster. It receives a :class:`Job`
(names and paths, a few hundred bytes) and a chunk, never a model: each process loads
the model once, through the registry, which checks its files' hashes first.
"""

import csv
import io
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from apps.batch.commit import write_atomically
from apps.batch.inputs import Source
from apps.batch.output import REJECT_PARTS, SCORED
from apps.batch.reading import ReadChunk, read_chunk
from apps.registry import IntegrityError, LoadedModel, ModelRegistry
from apps.registry.manifest import MANIFEST_FILE, sha256_bytes


@dataclass(frozen=True)
class Job:
    """What a worker needs to score any chunk of a job: names, paths and settings."""

    models: str  # the registry folder, as the workers see it
    model: str
    version: int
    backend: str
    manifest_sha256: str
    sources: tuple[Source, ...]
    output: str
    format: str  # "parquet" or "csv"
    keep: tuple[str, ...] = ()


_models: dict[tuple, LoadedModel] = {}
_loading = threading.Lock()


def model_for(job: Job) -> LoadedModel:
    """The job's model, loaded once per process and verified against the client's manifest.

    A worker on another machine has its own copy of the registry: the sha256 of its
    manifest must be the one the job started with, or it refuses to score.
    """
    key = (job.models, job.model, job.version, job.backend)
    with _loading:
        if key not in _models:
            registry = ModelRegistry(job.models)
            folder = registry.resolve(job.model, job.version)
            found = sha256_bytes((folder / MANIFEST_FILE).read_bytes())
            if found != job.manifest_sha256:
                raise IntegrityError(
                    f"{job.model} v{job.version} on this worker has manifest {found[:12]}..., "
                    f"the job was started with {job.manifest_sha256[:12]}...: not the same model"
                )
            _models[key] = registry.load(job.model, job.version, backend=job.backend)
        return _models[key]


def models_loaded() -> int:
    """How many models this process has loaded (the tests ask each Dask worker)."""
    return len(_models)


def score(read: ReadChunk, label: str, model: LoadedModel, keep: tuple[str, ...]):
    """The scored rows and the rejects of a chunk, as two Arrow tables.

    Scored rows carry where they came from, the ``--keep`` columns, the prediction (and
    the probability of each class, for a classifier) and the model's version; rejects
    carry where they came from, the field and the message, one row per problem.
    """
    problems = model.schema.check(read.cells)
    good = np.flatnonzero(~problems.bad_rows(len(read.rows)))
    columns = {"source_file": pa.repeat(label, len(good)), "source_row": pa.array(read.rows[good])}
    columns |= {name: read.kept[name].take(good) for name in keep}
    target = model.manifest.data["outputs"]["target"]
    columns |= prediction_columns(model, model.schema.columns_of(read.cells, good), target)
    columns["model_version"] = pa.repeat(pa.scalar(model.version, pa.int32()), len(good))
    fields, messages = model.schema.describe(problems)
    found = sorted(
        [*read.problems, *zip(read.rows[problems.rows].tolist(), fields, messages, strict=True)],
        key=lambda problem: problem[0],
    )
    rejects = pa.table(
        {
            "source_file": pa.repeat(label, len(found)),
            "source_row": pa.array([p[0] for p in found], pa.int64()),
            "field": pa.array([p[1] for p in found], pa.string()),
            "message": pa.array([p[2] for p in found], pa.string()),
        }
    )
    return pa.table(columns), rejects


PREDICT_ROWS = 10_000
"""Rows per call to the model: its working memory stays small whatever the chunk size."""


def prediction_columns(model: LoadedModel, columns: dict[str, np.ndarray], target: str) -> dict:
    """``predicted_<target>`` (and ``probability_<class>`` for a classifier), as Arrow arrays.

    The model is asked :data:`PREDICT_ROWS` rows at a time: ONNX Runtime keeps the
    largest working memory it ever needed, so slicing keeps that at the size of a slice.
    A classifier's label is its most probable class, stored as a dictionary (class
    number and names), so a million labels are integers, not Python strings.
    """
    size = len(next(iter(columns.values())))
    answers = [
        model.answer(
            {name: values[start : start + PREDICT_ROWS] for name, values in columns.items()}
        )
        for start in range(0, size, PREDICT_ROWS)
    ]
    if model.manifest.task != "classification":
        values = np.concatenate([a.outputs for a in answers]) if answers else np.zeros(0)
        return {f"predicted_{target}": pa.array(values, pa.float64())}
    classes = model.manifest.classes
    probabilities = (
        np.concatenate([a.probabilities for a in answers])
        if answers
        else np.zeros((0, len(classes)))
    )
    best = pa.array(probabilities.argmax(axis=1).astype(np.int32), pa.int32())
    result = {f"predicted_{target}": pa.DictionaryArray.from_arrays(best, pa.array(classes))}
    for number, name in enumerate(classes):
        result[f"probability_{name}"] = pa.array(probabilities[:, number])
    return result


def score_chunk(job: Job, chunk) -> dict:
    """Score one chunk and commit its files; returns the ledger entry that records them.

    The file names depend only on the chunk, and the bytes only on the chunk and the
    model: running this twice for the same chunk (a retried task) rewrites the same
    files with the same bytes, which is why the output stays exactly once.
    """
    model = model_for(job)
    source = job.sources[chunk.source]
    read = read_chunk(chunk, source.format, source.columns, model.schema, list(job.keep))
    scored, rejects = score(read, source.label, model, job.keep)
    name = f"part-{chunk.source:05d}-{chunk.index:06d}"
    files = {}
    entry: dict[str, object] = {"chunk": [chunk.source, chunk.index]}
    if scored.num_rows:
        files[f"{SCORED}/{name}.{job.format}"] = encode(scored, job.format)
    if rejects.num_rows:
        entry["rejects"] = rejects_file = f"{REJECT_PARTS}/{name}.csv"
        files[rejects_file] = encode(rejects, "csv")
    for relative, data in files.items():
        write_atomically(Path(job.output) / relative, data)
    bad_rows = len(set(rejects["source_row"].to_pylist()))
    return entry | {
        "files": {relative: len(data) for relative, data in files.items()},
        "rows": scored.num_rows + bad_rows,
        "scored": scored.num_rows,
        "rejected": bad_rows,
        "problems": rejects.num_rows,
    }


def csv_line(cells: list[str]) -> bytes:
    """One CSV line, quoted only where needed, as Python's CSV writer does."""
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(cells)
    return line.getvalue().encode()


def encode(table: pa.Table, fmt: str) -> memoryview:
    """A table as Parquet (zstd) or CSV bytes: no timestamps, so the same table, the same bytes."""
    sink = pa.BufferOutputStream()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        # Dictionaries pay off for repeated texts (not for unique numbers), byte-stream-split
        # for floats: probabilities compress better, and faster, with their bytes grouped.
        kinds = {f.name: f.type for f in table.schema}
        texts = [n for n, t in kinds.items() if pa.types.is_string(t) or pa.types.is_dictionary(t)]
        floats = [n for n, t in kinds.items() if pa.types.is_floating(t)]
        pq.write_table(
            table, sink, compression="zstd", use_dictionary=texts, use_byte_stream_split=floats
        )
    else:
        import pyarrow.csv as pacsv

        sink.write(csv_line(table.column_names))  # Arrow would quote every name
        options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
        pacsv.write_csv(table, sink, options)
    return memoryview(sink.getvalue())  # the bytes, without a copy
