"""Features that later lessons add to the API: each is a module here with ``init_app(app)``.

The application factory initialises every module of this package, in name order. A
lesson that adds a feature to the API (the prediction log of notebook 07, for example)
writes a new module here instead of editing the factory, so the API built in notebook
02 keeps working unchanged, and each feature stays in the lesson that teaches it.
"""

import importlib
import logging
import os
import pkgutil
from types import ModuleType


def discover() -> list[ModuleType]:
    """Import every extension module, in name order; an import error is not hidden."""
    names = sorted(module.name for module in pkgutil.iter_modules(__path__))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


def settings(app, table: dict) -> dict:
    """An extension's settings, named in ``table`` as ``{NAME: (default, parse)}``: the
    app's config (tests set it) over the environment (parsed) over the default."""
    values = {}
    for name, (default, parse) in table.items():
        raw = os.environ.get(name)
        values[name] = app.config.get(name, parse(raw) if raw else default)
    return values


def add_hook(app, kind: str, function) -> None:
    """Ask the API to call ``function`` at one of its hook points, named by ``kind``:

    * ``"start"``: ``function()`` in each serving process, before its first request
      (start a thread: threads do not survive gunicorn's fork); gunicorn's
      ``post_worker_init`` and the waitress runner call :func:`start`;
    * ``"shutdown"``: ``function()`` before the process ends (flush a queue, say);
      gunicorn's ``worker_exit`` and the waitress runner call :func:`shutdown`;
    * ``"metrics"``: ``function()`` returns more Prometheus text for ``/metrics``.
    """
    app.extensions.setdefault("hooks", {}).setdefault(kind, []).append(function)


def hooks(app, kind: str) -> list:
    """The functions added for ``kind`` (none for an app without extensions)."""
    return getattr(app, "extensions", {}).get("hooks", {}).get(kind, [])


def start(app) -> None:
    """Run the start hooks, in the process that is about to serve requests."""
    for function in hooks(app, "start"):
        function()


def shutdown(app) -> None:
    """Run the shutdown hooks; a failing one is logged and the others still run."""
    for function in hooks(app, "shutdown"):
        try:
            function()
        except Exception:
            logging.getLogger(__name__).exception("a shutdown hook failed")
