"""The driver of a batch job: everything is checked before anything is written.

Order matters. The model and every input are checked first (a problem there writes
nothing); then the output folder is opened, or reopened if the same job began it;
then the chunks that the ledger does not list yet are scored, a few at a time, on the
chosen engine; last, the rejects are merged and the run record is written.
"""

import datetime
import time
from dataclasses import dataclass
from pathlib import Path

from apps.batch.chunks import chunks
from apps.batch.engines import DaskEngine, LocalEngine, run_chunks
from apps.batch.inputs import open_inputs
from apps.batch.output import SCORED, Output
from apps.batch.progress import Progress, peak_memory_mib
from apps.batch.scoring import Job, model_for
from apps.config import models_dir
from apps.registry import InputSchema, ModelRegistry
from apps.registry.manifest import MANIFEST_FILE, sha256_bytes


@dataclass
class Settings:
    """A job as the command line describes it (see ``python -m apps.batch score --help``)."""

    inputs: list[str]
    model: str
    output: str
    version: int | None = None
    backend: str = "onnx"
    chunk_rows: int = 50_000
    format: str = "parquet"
    keep: tuple[str, ...] = ()
    engine: str = "local"
    threads: int | None = None
    scheduler: str | None = None
    workers: int = 2
    dashboard: str = "127.0.0.1:8787"
    models: str | None = None
    max_reject_fraction: float | None = None


def prepare(settings: Settings) -> tuple[Job, InputSchema, dict]:
    """Check the model and the inputs; the job, its schema and its output's identity."""
    registry = ModelRegistry(settings.models or models_dir())
    folder = registry.resolve(settings.model, settings.version)
    manifest = registry.verify(settings.model, folder.name)  # hashes: a bad model fails now
    schema = InputSchema.from_manifest(manifest)
    sources = open_inputs(settings.inputs, schema, list(settings.keep))
    job = Job(
        models=str(registry.root.resolve()),
        model=manifest.name,
        version=manifest.version,
        backend=settings.backend,
        manifest_sha256=sha256_bytes((folder / MANIFEST_FILE).read_bytes()),
        sources=tuple(sources),
        output=str(Path(settings.output).resolve()),  # workers may start elsewhere
        format=settings.format,
        keep=tuple(settings.keep),
    )
    identity = {
        "inputs": [
            {"path": s.label, "format": s.format, "bytes": s.size, "sha256": s.sha256()}
            for s in sources
        ],
        "model": {
            "name": job.model,
            "version": job.version,
            "manifest_sha256": job.manifest_sha256,
        },
        "backend": job.backend,
        "chunk_rows": settings.chunk_rows,
        "format": job.format,
        "keep": list(job.keep),
    }
    return job, schema, identity


def run(settings: Settings, stream=None, announce=print) -> dict:
    """Run (or resume, or recognise as done) a job; returns its run record."""
    job, schema, identity = prepare(settings)
    if settings.engine == "local":
        model_for(job)  # loaded and checked before the output folder is touched
    output = Output.open(settings.output, identity)
    if output.finished:
        announce(f"{settings.output} is complete already: nothing to do.")
        record = output.run_record()  # judged again: --max-reject-fraction may be new
        return record | _verdict(record["rows"], settings.max_reject_fraction)
    engine = (
        LocalEngine(settings.threads)
        if settings.engine == "local"
        else DaskEngine(settings.scheduler, settings.workers, settings.dashboard)
    )
    started = _now()
    with engine:
        clock = time.monotonic()  # from here: a cluster's start-up is not the job's speed
        if isinstance(engine, DaskEngine):
            announce(f"Dask dashboard: {engine.dashboard}")
        if output.done:
            announce(f"resuming: {len(output.done)} chunks were committed by an earlier run")
        output.begin_attempt(started)
        before = sum(entry["rows"] for entry in output.done.values())
        progress = Progress(sum(source.size for source in job.sources), stream)
        spans: dict[tuple[int, int], int] = {}
        todo = _pending(job, schema, settings.chunk_rows, output, progress, spans)
        try:
            for chunk, entry in run_chunks(engine.executor, job, todo, engine.in_flight):
                output.record(entry)
                progress.advance(spans.pop((chunk.source, chunk.index)), entry["rows"])
        finally:
            progress.close()
        workers = engine.worker_peak_memory().values()
        memory = {"client": peak_memory_mib(), "workers": max(workers, default=None)}
    seconds = time.monotonic() - clock
    record = _run_record(settings, identity, output, engine.description, started)
    done_now = record["rows"]["read"] - before
    record["this_attempt"] = {
        "seconds": round(seconds, 3),
        "rows": done_now,
        "rows_per_second": round(done_now / max(seconds, 1e-9)),
        "peak_memory_mib": {name: round(mib, 1) for name, mib in memory.items() if mib},
    }
    output.finish(record)
    return record


def _run_record(settings: Settings, identity: dict, output: Output, engine: str, started: str):
    """What ``run.json`` says: the identity, the counts, the verdict and the times."""
    entries = output.done.values()
    rows = {key: sum(e[key] for e in entries) for key in ("rows", "scored", "rejected", "problems")}
    rows["read"] = rows.pop("rows")
    return (
        identity
        | _verdict(rows, settings.max_reject_fraction)
        | {
            "rows": rows,
            "scored_files": sum(name.startswith(SCORED) for e in entries for name in e["files"]),
            "engine": engine,
            "attempts": output.attempts,
            "started": output.first_started or started,
            "finished": _now(),
        }
    )


def _verdict(rows: dict, limit: float | None) -> dict:
    """Complete, or too many rejects for ``--max-reject-fraction`` (exit code 3)."""
    too_many = limit is not None and rows["rejected"] > limit * rows["read"]
    return {"status": "too many rejects" if too_many else "complete", "max_reject_fraction": limit}


def _pending(job: Job, schema, chunk_rows: int, output: Output, progress: Progress, spans: dict):
    """The chunks still to score, read lazily; those already committed are only counted."""
    for number, source in enumerate(job.sources):
        wanted = [n for n in source.columns if n in job.keep or n in schema.by_name]
        previous = 0
        for chunk in chunks(source, number, chunk_rows, wanted):
            span, previous = chunk.done - previous, chunk.done
            if (number, chunk.index) in output.done:
                progress.skip(span)
                continue
            spans[number, chunk.index] = span
            yield chunk


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
