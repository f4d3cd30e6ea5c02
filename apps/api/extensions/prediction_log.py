"""Monitoring in the API: log every prediction, take feedback, export drift figures.

The factory calls :func:`init_app`. It adds a listener to the model service (every
route and protocol predicts through it), the feedback and monitoring routes, their
OpenAPI paths, a shutdown hook that writes what the log still holds, and the latest
drift report's figures on ``/metrics``. ``PREDICTION_LOG=off`` leaves the API as it was.
"""

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime

from flask import Flask, g, has_request_context, request
from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError

from apps.api.errors import ApiError
from apps.api.extensions import add_hook, settings
from apps.monitoring.db import connect, create_tables
from apps.monitoring.prediction_log import Counters, PredictionLog, Served, model_ref

# name: (default, parse); each is also read from the environment
SETTINGS: dict[str, tuple[object, Callable[[str], object]]] = {
    "PREDICTION_LOG": (True, lambda v: v.strip().lower() not in ("0", "off", "false", "no")),
    "MONITORING_DB_URL": (None, str),  # None: $MONITORING_DB_URL's default, var/monitoring.db
    "PREDICTION_LOG_MAX_ROWS": (100_000, int),  # the queue's bound, per worker
    "PREDICTION_LOG_BATCH_ROWS": (500, int),
    "PREDICTION_LOG_FLUSH_SECONDS": (0.5, float),
    "PREDICTION_LOG_RETENTION_DAYS": (30.0, float),  # 0: keep everything
    "PREDICTION_LOG_SIMULATED_TIME": (False, lambda v: v.strip().lower() in ("1", "on", "true")),
}
SIMULATED_TIME_HEADER = "X-Simulated-Time"
"""Only for simulations: with ``PREDICTION_LOG_SIMULATED_TIME`` on, the log uses this time."""

WRITTEN = Counter("prediction_log_written_total", "Predictions written to the monitoring database")
DROPPED = Counter("prediction_log_dropped_total", "Predictions the log could not keep", ["reason"])


class PrometheusCounters(Counters):
    """The log's counts as Prometheus counters (summed over workers on /metrics)."""

    def written(self, rows: int) -> None:
        WRITTEN.inc(rows)

    def dropped(self, rows: int, reason: str) -> None:
        DROPPED.labels(reason).inc(rows)


def simulated_time() -> datetime | None:
    """The time a simulation says it is (``X-Simulated-Time``), checked; None if not sent."""
    text = request.headers.get(SIMULATED_TIME_HEADER)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(
            400, "bad_request", f"{SIMULATED_TIME_HEADER} must be an ISO 8601 time with a zone"
        ) from None
    if moment.tzinfo is None:
        raise ApiError(400, "bad_request", f"{SIMULATED_TIME_HEADER} needs a time zone")
    return moment


def make_listener(log: PredictionLog, service):
    """The model service's listener: hand each prediction to the log, and nothing more.

    Each version is named by the sha256 of its manifest (:func:`model_ref`), read once.
    """
    refs = {
        (name, version): model_ref(service.registry, name, version, service.backend)
        for name, version in service.models
    }

    def listener(model, columns, prediction) -> None:
        if has_request_context():
            request_id, started = g.get("request_id"), g.get("started")
            at = g.get("simulated_time")
        else:  # a prediction made outside a request (a script using the service)
            request_id, started, at = uuid.uuid4().hex, None, None
        latency = None if started is None else (time.perf_counter() - started) * 1000
        ref = refs.get((model.name, model.version))
        if ref is None:  # a version loaded since start-up (a hot swap, notebook 08)
            ref = refs[model.name, model.version] = model_ref(
                service.registry, model.name, model.version, service.backend
            )
        log.record(Served(ref, request_id or uuid.uuid4().hex, columns, prediction, latency, at))

    return listener


def init_app(app: Flask) -> None:
    """Start logging predictions, unless ``PREDICTION_LOG`` is off."""
    config = settings(app, SETTINGS)
    app.config.update(config)
    if not config["PREDICTION_LOG"]:
        return
    from apps.api.routes.monitoring import blueprint
    from apps.api.security import protect
    from apps.monitoring.metrics import drift_metrics

    service = app.extensions["model_service"]
    engine = connect(config["MONITORING_DB_URL"], create=False)
    try:
        create_tables(engine)
    except SQLAlchemyError as error:  # serve anyway: the log retries when it writes
        logging.getLogger(__name__).error("the monitoring database is not available: %s", error)
    log = PredictionLog(
        engine,
        max_rows=config["PREDICTION_LOG_MAX_ROWS"],
        batch_rows=config["PREDICTION_LOG_BATCH_ROWS"],
        flush_seconds=config["PREDICTION_LOG_FLUSH_SECONDS"],
        retention_days=config["PREDICTION_LOG_RETENTION_DAYS"] or None,
        counters=PrometheusCounters(),
    )
    app.extensions["prediction_log"] = log
    service.listeners.append(make_listener(log, service))
    if config["PREDICTION_LOG_SIMULATED_TIME"]:

        @app.before_request
        def read_simulated_time() -> None:
            g.simulated_time = simulated_time()

    app.register_blueprint(protect(blueprint(), app.extensions["api_limiter"]))
    add_hook(app, "shutdown", log.close)
    add_hook(app, "metrics", lambda: drift_metrics(engine, sorted(service.production)))
