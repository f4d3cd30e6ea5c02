"""The prediction log: every answer the API gives, written to the database off the request path.

A request must never wait for the database, nor fail because of it. So a request only
appends its predictions to an in-memory queue (a few microseconds), and a background
thread writes whatever has queued up in batches: one transaction for hundreds of rows
costs little more than one for a single row. The queue is bounded: when the database
cannot keep up, new rows are dropped and counted rather than piling up until the worker
runs out of memory. On a graceful stop, :meth:`PredictionLog.close` writes what is left.
"""

import atexit
import collections
import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import SQLAlchemyError

from apps.monitoring.db import create_tables, feedback, now, predictions, reports, runs
from apps.registry import Prediction

log = logging.getLogger(__name__)
_START_LOCK = threading.Lock()


@dataclass(frozen=True)
class ModelRef:
    """Which model answered: name, version, manifest digest and backend."""

    name: str
    version: int
    manifest_sha256: str
    backend: str


class Served:
    """One request's predictions, as the request hands them over: nothing is copied."""

    __slots__ = ("at", "columns", "latency_ms", "model", "prediction", "request_id", "rows")

    def __init__(
        self,
        model: ModelRef,
        request_id: str,
        columns: dict[str, np.ndarray],
        prediction: Prediction,
        latency_ms: float | None,
        at: float | datetime | None = None,
        rows: list[int] | None = None,
    ):
        self.model, self.request_id, self.columns = model, request_id, columns
        self.prediction, self.latency_ms = prediction, latency_ms
        self.at = time.time() if at is None else at  # a float is cheaper than a datetime
        self.rows = rows  # the rows' indices; None means 0, 1, 2, ...

    @property
    def size(self) -> int:
        return len(self.prediction.outputs)


def _plain(values: np.ndarray) -> list:
    """A column as JSON-ready values: NaN becomes None."""
    if values.dtype.kind == "f":
        return [None if v != v else v for v in values.tolist()]  # v != v: NaN
    return values.tolist()


def database_rows(served: Served, source: str = "api") -> list[dict]:
    """The rows of the ``predictions`` table for one request (or a batch sample)."""
    model, prediction = served.model, served.prediction
    at = served.at
    logged_at = at if isinstance(at, datetime) else datetime.fromtimestamp(at, UTC)
    columns = {name: _plain(values) for name, values in served.columns.items()}
    outputs = prediction.outputs.tolist()
    probabilities = None if prediction.probabilities is None else prediction.probabilities.tolist()
    indices = served.rows if served.rows is not None else range(len(outputs))
    rows = []
    for i, index in enumerate(indices):
        classifier = probabilities is not None
        rows.append(
            {
                "request_id": served.request_id,
                "row_index": int(index),
                "logged_at": logged_at,
                "model": model.name,
                "version": model.version,
                "manifest_sha256": model.manifest_sha256,
                "backend": model.backend,
                "source": source,
                "inputs": {name: values[i] for name, values in columns.items()},
                "label": str(outputs[i]) if classifier else None,
                "value": None if classifier else float(outputs[i]),
                "probabilities": dict(zip(prediction.classes, probabilities[i], strict=True))
                if probabilities is not None
                else None,
                "latency_ms": served.latency_ms,
            }
        )
    return rows


class Counters:
    """What the log reports: rows written and rows dropped (and why). Override to export."""

    def written(self, rows: int) -> None:
        """``rows`` rows reached the database."""

    def dropped(self, rows: int, reason: str) -> None:
        """``rows`` rows were lost: ``queue_full``, ``write_error`` or ``closed``."""


class PredictionLog:
    """A bounded queue of served predictions and the thread that writes them in batches.

    ``max_rows`` bounds the queue; ``batch_rows`` wakes the writer early when that many
    rows wait; otherwise it writes every ``flush_seconds``. Rows older than
    ``retention_days`` are deleted (None keeps everything). Each process (each gunicorn
    worker) gets its own queue and writer, started on its first prediction: threads do
    not survive the fork that creates a worker.
    """

    def __init__(
        self,
        engine: Engine,
        max_rows: int = 100_000,
        batch_rows: int = 500,
        flush_seconds: float = 0.5,
        retention_days: float | None = 30,
        counters: Counters | None = None,
    ):
        self.engine, self.max_rows, self.batch_rows = engine, max_rows, batch_rows
        self.flush_seconds, self.retention_days = flush_seconds, retention_days
        self.counters = counters or Counters()
        self.written = self.dropped = 0  # this process's totals
        self._pid: int | None = None  # the process whose writer runs; None: not started
        self._parent = os.getpid()  # the process that made the engine
        self._closed = False

    def _start(self) -> None:
        """A fresh queue and writer for this process (after a fork, the parent's are gone)."""
        if self._parent != os.getpid():  # a forked worker: forget the parent's connections
            self.engine.dispose(close=False)  # (closing them would close the parent's too)
        self._items: collections.deque = collections.deque()
        self._lock, self._wake = threading.Lock(), threading.Event()
        self._queued, self._stopping, self.written, self.dropped = 0, False, 0, 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        self._pid = os.getpid()
        atexit.register(self.close)  # a process that ends normally flushes too

    def record(self, served: Served) -> bool:
        """Queue one request's predictions; never blocks. False if they were dropped."""
        if self._pid != os.getpid():
            with _START_LOCK:
                if self._pid != os.getpid():
                    self._start()
        size = served.size
        with self._lock:
            accepted = not self._closed and self._queued + size <= self.max_rows
            if accepted:
                self._queued += size
        if not accepted:
            self._drop(size, "closed" if self._closed else "queue_full")
            return False
        self._items.append(served)
        if self._queued >= self.batch_rows:
            self._wake.set()
        return True

    def _drop(self, rows: int, reason: str) -> None:
        with self._lock:
            self.dropped += rows
        self.counters.dropped(rows, reason)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (True), or ``timeout`` passed."""
        if self._pid != os.getpid():
            return True  # nothing was queued in this process
        marker = threading.Event()
        self._items.append(marker)
        self._wake.set()
        return marker.wait(timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Write what is queued, then stop the writer: call it before the process ends."""
        if self._pid != os.getpid() or self._closed:
            return True
        with self._lock:
            self._closed = True  # from now on, record() drops and counts
        done = self.flush(timeout)
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=1.0)
        return done

    def _run(self) -> None:
        """The writer: wake up, write everything queued, prune old rows now and then."""
        next_prune = 0.0
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self._drain()
            if self._stopping and not self._items:
                return
            if self.retention_days and time.monotonic() >= next_prune:
                self.prune()
                next_prune = time.monotonic() + 3600

    def _drain(self) -> None:
        rows: list[dict] = []
        while self._items:
            item = self._items.popleft()
            if isinstance(item, threading.Event):  # a flush marker: all before it goes now
                self._write(rows)
                rows = []
                item.set()
                continue
            with self._lock:
                self._queued -= item.size
            try:
                rows += database_rows(item)
            except Exception:  # a bug here must not kill the writer
                log.exception("a prediction could not be turned into rows")
                self._drop(item.size, "write_error")
            if len(rows) >= self.batch_rows:
                self._write(rows)
                rows = []
        self._write(rows)

    def _write(self, rows: list[dict], attempts: int = 3) -> None:
        """Insert rows in one transaction; retry a failure twice, then drop and count them."""
        if not rows:
            return
        for attempt in range(attempts):
            try:
                with self.engine.begin() as connection:
                    connection.execute(insert(predictions), rows)
            except SQLAlchemyError as error:
                log.warning("prediction log: write failed (attempt %d): %s", attempt + 1, error)
                if attempt + 1 < attempts and not self._stopping:
                    time.sleep(0.5 * 2**attempt)
                with contextlib.suppress(SQLAlchemyError):  # a database that started late
                    create_tables(self.engine)
                continue
            with self._lock:
                self.written += len(rows)
            self.counters.written(len(rows))
            return
        self._drop(len(rows), "write_error")

    def prune(self, days: float | None = None) -> int:
        """Delete what is older than the retention period; the number of predictions deleted."""
        days = days or self.retention_days
        if not days:
            return 0
        cutoff = datetime.fromtimestamp(now().timestamp() - days * 86400, UTC)
        try:
            with self.engine.begin() as connection:
                deleted = connection.execute(
                    delete(predictions).where(predictions.c.logged_at < cutoff)
                ).rowcount
                connection.execute(delete(feedback).where(feedback.c.received_at < cutoff))
                connection.execute(delete(runs).where(runs.c.started_at < cutoff))
                connection.execute(delete(reports).where(reports.c.created_at < cutoff))
        except SQLAlchemyError as error:
            log.warning("prediction log: pruning failed: %s", error)
            return 0
        return deleted


def model_ref(registry, name: str, version: int, backend: str) -> ModelRef:
    """A model version's identity in the log, with the sha256 of its manifest file."""
    from apps.registry.manifest import MANIFEST_FILE, sha256_bytes

    manifest = registry.resolve(name, version) / MANIFEST_FILE
    return ModelRef(name, int(version), sha256_bytes(manifest.read_bytes()), backend)
