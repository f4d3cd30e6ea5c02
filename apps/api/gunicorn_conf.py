"""gunicorn settings: ``gunicorn -c python:apps.api.gunicorn_conf apps.api.wsgi:app``.

Workers and threads come from the environment so that one image fits any machine.
``preload_app`` loads and verifies the models once, in the master, before forking:
a broken model stops the server at start, and workers share the loaded memory.
"""

import os
import tempfile

bind = os.environ.get("API_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("API_WORKERS", "2"))
threads = int(os.environ.get("API_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
preload_app = True
timeout = int(os.environ.get("API_TIMEOUT", "30"))
graceful_timeout = 10
keepalive = 5
max_requests = int(os.environ.get("API_MAX_REQUESTS", "0"))  # >0 recycles workers
max_requests_jitter = max_requests // 10
accesslog = None  # the app logs every request itself, as JSON with the request id
errorlog = "-"

# Prometheus counts live in each worker; in multiprocess mode they are summed at
# /metrics. The folder must exist, and be set, before prometheus_client is imported.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="api-metrics-"))


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the summed metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
