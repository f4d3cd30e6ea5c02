"""gunicorn settings: ``gunicorn -c python:apps.api.gunicorn_conf apps.api.wsgi:app``.

Workers and threads come from the environment so that one image fits any machine.
``preload_app`` loads and verifies the models once, in the master, before forking:
a broken model stops the server at start, and workers share the loaded memory.
"""

import atexit
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
# A safety net: each worker is replaced by a fresh fork after about this many requests
# (0: never), so memory that a worker's allocator keeps after a large request returns
# to the system. The jitter spreads the restarts so workers never restart together.
max_requests = int(os.environ.get("API_MAX_REQUESTS", "10000"))
max_requests_jitter = max_requests // 10
accesslog = None  # the app logs every request itself, as JSON with the request id
errorlog = "-"


def _run_folder() -> str:
    """A folder for the files the workers share, removed when this process exits.

    It is made as the master reads this file, before the app loads, and removed at
    the master's exit, however it ends: a stop, a failed start, an error. Workers
    leave it alone (their pid differs).
    """
    folder = tempfile.mkdtemp(prefix="api-server-")
    master = os.getpid()

    def remove() -> None:
        if os.getpid() == master:
            shutil.rmtree(folder, ignore_errors=True)

    atexit.register(remove)
    return folder


# The files the workers share live in one run folder (API_RUN_FOLDER; a folder set by the
# caller is the caller's): Prometheus counts, which live in each worker and are summed at
# /metrics in multiprocess mode (the folder must be set before prometheus_client is
# imported); rate-limit counts, or each worker would grant a budget of its own (a SQLite
# file does that on one machine, apps/api/limiter_storage.py); the models the repository
# routes loaded (apps/api/extensions/rollout.py). A folder or a store set by the caller
# is the caller's.
if not os.environ.get("API_RUN_FOLDER"):
    os.environ["API_RUN_FOLDER"] = _run_folder()
_RUN_FOLDER = os.environ["API_RUN_FOLDER"]
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(_RUN_FOLDER, "metrics")
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
if not os.environ.get("API_RATE_LIMIT_STORAGE"):
    counts = os.path.join(_RUN_FOLDER, "rate-limits.sqlite")
    os.environ["API_RATE_LIMIT_STORAGE"] = "sqlite:///" + counts


def when_ready(server):
    """Warn, once the server listens, if it answers beyond this machine without keys."""
    from apps.api.config import keys_configured, load_settings
    from apps.api.security import warn_if_open

    hosts = [address[0] for address in server.cfg.address if isinstance(address, tuple)]
    warn_if_open(hosts, keys_configured(load_settings()))


def post_worker_init(worker):
    """Start what each worker runs beside its requests (threads do not survive a fork)."""
    from apps.api.extensions import start

    start(worker.wsgi)


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
