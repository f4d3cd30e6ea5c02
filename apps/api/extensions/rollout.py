"""Hot swap: every worker follows the ``production`` alias, and no request fails.

gunicorn runs several worker processes, each with its own copy of the models. A signal
reaches one process only, and ``HUP`` does not reload an app loaded before the fork
(``preload_app``, benoitc/gunicorn#2449). So every process watches for itself: a thread,
started in each one before its first request, reads each model's ``aliases.json`` a few
times a second. When ``production`` points at another version, the thread has the
model service load it, verify it and warm it up, and only then switch
(:meth:`ModelService.switch`); the old version answers meanwhile. A version that fails
is logged, counted on ``/metrics``, shown on ``/health/ready``, and not tried again
until the alias changes. The model repository routes (``load``, ``unload``) reach every
worker the same way, through a small file of the server's that every thread reads.

Settings (app config, else environment): ``ROLLOUT_WATCH`` (on), ``ROLLOUT_POLL_SECONDS``
(0.2), ``ROLLOUT_STATE_DIR`` (a folder shared by the server's processes; by default a
temporary one, made before the fork).
"""

import atexit
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask, Response, g, has_request_context
from prometheus_client import Counter, Gauge

from apps.api.extensions import add_hook, settings
from apps.registry import RegistryError
from apps.registry.publishing import locked, replace_file

log = logging.getLogger(__name__)

SETTINGS: dict[str, tuple[object, Callable[[str], object]]] = {  # name: (default, parse)
    "ROLLOUT_WATCH": (True, lambda v: v.strip().lower() not in ("0", "off", "false", "no")),
    "ROLLOUT_POLL_SECONDS": (0.2, float),
    "ROLLOUT_STATE_DIR": (None, str),
}
VERSION_HEADER = "X-Model-Version"
"""Every prediction says which version answered: ``<model>/<version>``."""

SERVING = Gauge("rollout_serving_version", "The version each worker serves by default",
                ["model"], multiprocess_mode="liveall")  # fmt: skip
SWITCHED_AT = Gauge("rollout_switched_at_seconds", "When each worker began serving it (Unix "
                    "time)", ["model"], multiprocess_mode="liveall")  # fmt: skip
SWITCHES = Counter("rollout_switches_total", "Switches to a new production version, by outcome",
                   ["model", "version", "outcome"])  # fmt: skip


class ServerState:
    """What administrators asked of this server, for every one of its processes to apply:
    ``{model: {"loaded": bool, "generation": n}}`` in ``repository.json``."""

    def __init__(self, folder: Path):
        self.folder, self.path = folder, folder / "repository.json"

    def read(self) -> dict[str, dict]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def change(self, name: str, loaded: bool) -> None:
        """Record "load" or "unload" for a model, with a new generation number."""
        with locked(self.folder):
            wanted = self.read()
            generation = wanted.get(name, {}).get("generation", 0) + 1
            wanted[name] = {"loaded": loaded, "generation": generation}
            replace_file(self.path, json.dumps(wanted, sort_keys=True))


def state_folder(configured: str | None) -> Path:
    """The configured folder; under gunicorn, a folder in the server's run folder (which
    every worker shares and the master removes); else a temporary one removed when this
    process exits (the app is loaded before any fork, so that every worker shares it)."""
    run_folder = os.environ.get("API_RUN_FOLDER")
    chosen = configured or (os.path.join(run_folder, "repository") if run_folder else None)
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return Path(chosen)
    folder, creator = tempfile.mkdtemp(prefix="api-repository-"), os.getpid()

    def remove() -> None:
        if os.getpid() == creator:
            shutil.rmtree(folder, ignore_errors=True)

    atexit.register(remove)
    return Path(folder)


class Watcher:
    """Keeps one process's model service in step with the aliases and the server's state."""

    def __init__(self, service, state: ServerState, poll_seconds: float):
        self.service, self.state, self.poll_seconds = service, state, poll_seconds
        self._lock = threading.Lock()  # one check at a time: the thread's, or a route's
        self._pid: int | None = None
        self._stop = threading.Event()
        self._applied: dict[str, int] = {}  # the state's generation applied here, per model
        self._refused: dict[str, tuple] = {}  # model -> (version, alias changes) that failed

    def start(self) -> None:
        """Bring this process up to date now, then watch in a thread: a worker forked after
        a change (gunicorn replaces workers) serves the new version from its first request."""
        if self._pid == os.getpid():
            return
        self._pid, self._stop = os.getpid(), threading.Event()
        self.check()
        for name, version in self.service.production.items():
            SERVING.labels(name).set(version)
            SWITCHED_AT.labels(name).set(time.time())
        thread = threading.Thread(target=self._run, args=(self._stop,), daemon=True)
        thread.name = "model-watcher"
        thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.poll_seconds):
            try:
                self.check()
            except Exception:  # the watcher must outlive any surprise; the old model serves
                log.exception("the model watcher failed; it goes on")

    def check(self) -> None:
        """Apply the administrators' requests, then follow every model's production alias."""
        with self._lock:
            wanted = self.state.read()
            for name in self.service.names:
                entry = wanted.get(name)
                if entry and entry["generation"] > self._applied.get(name, 0):
                    self._applied[name] = entry["generation"]
                    try:
                        self._apply(name, entry["loaded"])
                    except Exception as error:  # the process that took the request said so
                        log.error("model %s could not be reloaded: %s", name, error)
                if name in self.service.production:
                    self._follow(name)

    def _apply(self, name: str, loaded: bool) -> None:
        """Load (every version, as at start-up) or unload a model in this process."""
        if loaded:
            self.service.reload(name)
        else:
            self.service.unload(name)

    def apply_now(self, name: str) -> None:
        """Apply the latest request for ``name`` in this process at once (the process that
        took the request), raising if it fails; the others follow within a poll."""
        with self._lock:
            entry = self.state.read()[name]
            self._applied[name] = entry["generation"]
            self._apply(name, entry["loaded"])

    def _follow(self, name: str) -> None:
        """Switch to the version the ``production`` alias names, unless it failed before."""
        registry = self.service.registry
        try:
            changes, wanted = len(registry.aliases(name).history), registry.production(name)
        except RegistryError as error:  # a broken aliases file: keep serving what we serve
            if self._refused.get(name) != ("aliases", str(error)):
                self._refused[name] = ("aliases", str(error))
                log.error("the aliases of %s cannot be read: %s", name, error)
            return
        if wanted == self.service.production[name] or self._refused.get(name) == (wanted, changes):
            return
        started = time.perf_counter()
        try:
            self.service.switch(name, wanted)
        except Exception as error:
            self._refused[name] = (wanted, changes)
            SWITCHES.labels(name, str(wanted), "refused").inc()
            log.error("%s v%s is not served, the current version goes on: %s", name, wanted, error)
            return
        self._refused.pop(name, None)
        SERVING.labels(name).set(wanted)
        SWITCHED_AT.labels(name).set(time.time())
        SWITCHES.labels(name, str(wanted), "switched").inc()
        took = (time.perf_counter() - started) * 1000
        log.info("worker %s serves %s v%s (loaded, verified and warmed up in %.0f ms)",
                 os.getpid(), name, wanted, took)  # fmt: skip


def init_app(app: Flask) -> None:
    """Watch the aliases in every serving process, name the version in every prediction's
    answer, and add the model repository routes."""
    config = settings(app, SETTINGS)
    app.config.update(config)
    service = app.extensions["model_service"]
    state = ServerState(state_folder(config["ROLLOUT_STATE_DIR"]))
    watcher = app.extensions["rollout"] = Watcher(service, state, config["ROLLOUT_POLL_SECONDS"])
    if config["ROLLOUT_WATCH"]:
        add_hook(app, "start", watcher.start)
        add_hook(app, "shutdown", watcher.stop)

    def remember(model, columns, prediction) -> None:
        if has_request_context():
            g.model_version = f"{model.name}/{model.version}"

    service.listeners.append(remember)

    @app.after_request
    def name_the_version(response: Response) -> Response:
        if "model_version" in g:
            response.headers[VERSION_HEADER] = g.model_version
        return response

    from apps.api.routes.repository import blueprint
    from apps.api.security import protect

    app.register_blueprint(protect(blueprint(), app.extensions["api_limiter"], scope="admin"))
