"""Request ids, structured JSON logs and Prometheus metrics for every request.

One ``after_request`` hook does all three, so no route can forget them. Logs carry
the request id, route, status and duration, never the request's data.
"""

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"}
)
"""HTTP's methods. Any other name a client invents is counted as ``other``: every label
value is a new time series, and clients must not be able to create them without end."""

REQUESTS = Counter("api_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "api_request_duration_seconds",
    "Time to answer a request",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PREDICTIONS = Counter("api_predictions_total", "Predictions made", ["model", "version", "class"])

access_log = logging.getLogger("apps.api.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: easy to search, and safe to ship to a log store."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_json_logging(level: str = "INFO") -> None:
    """Send every log record to stderr as JSON (replacing earlier handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def metrics_response() -> Response:
    """The Prometheus exposition; with several gunicorn workers, summed across them."""
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import CollectorRegistry, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)


def init_observability(app: Flask) -> None:
    """Install the request-id, logging and metrics hooks on the app."""

    @app.before_request
    def start_request() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SAFE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def finish_request(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule else "unmatched"
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        method = request.method if request.method in KNOWN_METHODS else "other"
        REQUESTS.labels(method, route, str(response.status_code)).inc()
        LATENCY.labels(route).observe(elapsed)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "request",
                extra={
                    "fields": {
                        "request_id": g.get("request_id"),
                        "method": method,
                        "route": route,
                        "status": response.status_code,
                        "duration_ms": round(elapsed * 1000, 3),
                        "key": g.get("api_key_name"),  # which key: rotation watches it
                    }
                },
            )
        return response
