"""gunicorn settings: ``gunicorn -c python:apps.api.gunicorn_conf apps.api.wsgi:app``.

Workers and threads come from the environment so that one image fits any machine.
``preload_app`` loads and verifies the models once, in the master, before forking:
a broken model stops the server at start, and workers share the loaded memory.
"""

import os
import shutil
import tempfile

bind = os.environ.get("API_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("API_WORKERS", "2"))
threads = int(os.environ.get("API_THREADS", "4"))  # gthread: keep-alive connections
worker_class = "gthread" if threads > 1 else "sync"
preload_app = True
timeout = int(os.environ.get("API_TIMEOUT", "30"))
graceful_timeout = 10
keepalive = 5
# The longest request line gunicorn accepts (its maximum): a longer URL gets gunicorn's
# own 414 page before the app can answer in JSON. Put a proxy in front to do better.
limit_request_line = 8190
control_socket_disable = True  # no control socket in the user's home folder
max_requests = int(os.environ.get("API_MAX_REQUESTS", "0"))  # >0 recycles workers
max_requests_jitter = max_requests // 10
accesslog = None  # the app logs every request itself, as JSON with the request id
errorlog = "-"

# Prometheus counts live in each worker; in multiprocess mode they are summed at
# /metrics. The folder must exist, and be set, before prometheus_client is imported.
_OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="api-metrics-"))


def on_exit(server):
    """Remove the metrics folder we made (one set by the caller is the caller's)."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def worker_exit(server, worker):
    """End a worker at once, after flushing its logs, without running C++ destructors.

    ONNX Runtime, loaded in the master before the fork (``preload_app``), leaves a lock
    behind that a forked worker's exit waits on forever: gunicorn would kill it only
    after ``graceful_timeout``, making every stop take seconds. Requests are already
    finished when this hook runs.
    """
    import logging

    from apps.api.extensions import shutdown

    shutdown(worker.wsgi)  # e.g. write the prediction log's queue: os._exit skips atexit
    logging.shutdown()
    os._exit(0)


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the summed metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
