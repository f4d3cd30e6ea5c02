"""Settings of the API: defaults, overridden by environment variables, then by tests.

Every setting has a safe default, so ``create_app()`` works on a laptop with no set-up;
production changes them through the environment (twelve-factor style), never in code.
API keys in particular come only from the environment or from a secrets file.
"""

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from apps.config import models_dir
from apps.registry.backends import BACKENDS

DEFAULTS: dict[str, Any] = {
    "MODELS_DIR": None,  # None: the registry's default (models/ or $PENGUINS_MODELS_DIR)
    "MODELS": None,  # None: every model in the registry; else a list of names
    "DEFAULT_MODEL": "species-classifier",  # the model served at /invocations
    "BACKEND": "onnx",  # onnx (fast, no scikit-learn needed) or sklearn
    "API_KEYS_FILE": None,  # the key file: hashes of keys, with their scopes (apps.api.keys)
    "API_KEYS": (),  # keys in clear, scope predict: for a laptop and tests (never production)
    "API_ADMIN_KEYS": (),  # keys in clear, scope admin; no key at all: no authentication
    "MAX_RECORDS": 10_000,  # records per request
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,  # bytes per request body (JSON)
    "MAX_CSV_BYTES": 2 * 1024 * 1024,  # bytes per CSV body: CSV packs a record in fewer bytes
    "RATE_LIMIT": None,  # e.g. "100/minute" per API key (or client address); None: off
    "RATE_LIMIT_STORAGE": None,  # where the counts live; None: this process's memory
    "CORS_ORIGINS": (),  # origins allowed to call from a browser; empty: CORS off
}


def plain_keys_from(text: str) -> tuple[str, ...]:
    """Keys written in clear in a variable, comma-separated (``API_KEYS``)."""
    return tuple(k.strip() for k in text.split(",") if k.strip())


ENVIRONMENT: dict[str, tuple[str, Callable[[str], object]]] = {
    "API_MODELS_DIR": ("MODELS_DIR", str),
    "API_KEYS_FILE": ("API_KEYS_FILE", str),
    "API_KEYS": ("API_KEYS", plain_keys_from),
    "API_ADMIN_KEYS": ("API_ADMIN_KEYS", plain_keys_from),
    "API_MODELS": ("MODELS", lambda v: [n.strip() for n in v.split(",") if n.strip()]),
    "API_DEFAULT_MODEL": ("DEFAULT_MODEL", str),
    "API_BACKEND": ("BACKEND", str),
    "API_MAX_RECORDS": ("MAX_RECORDS", int),
    "API_MAX_BODY_BYTES": ("MAX_CONTENT_LENGTH", int),
    "API_MAX_CSV_BYTES": ("MAX_CSV_BYTES", int),
    "API_RATE_LIMIT": ("RATE_LIMIT", str),
    "API_RATE_LIMIT_STORAGE": ("RATE_LIMIT_STORAGE", str),
    "API_CORS_ORIGINS": ("CORS_ORIGINS", lambda v: [o.strip() for o in v.split(",") if o.strip()]),
}
"""Each variable and the setting it sets. ``API_RATE_LIMIT_STORAGE`` takes a URI:
``memory://`` (one process), ``sqlite:///path/to/file`` (the processes of one machine;
what ``python -m apps.api`` uses with gunicorn unless told otherwise) or
``redis://host:6379`` (several machines)."""


class SettingsError(ValueError):
    """A setting that the server must not start with; the message says how to fix it."""


def keys_configured(settings: dict) -> bool:
    """Whether any key is configured, so that the model routes need one."""
    return bool(settings["API_KEYS"] or settings["API_ADMIN_KEYS"] or settings["API_KEYS_FILE"])


def load_settings(overrides: dict | None = None, environ: Mapping[str, str] | None = None) -> dict:
    """Defaults, then environment variables, then ``overrides`` (what tests pass)."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    for variable, (key, parse) in ENVIRONMENT.items():
        if environ.get(variable):
            try:
                settings[key] = parse(environ[variable])
            except ValueError:
                raise SettingsError(f"{variable}={environ[variable]!r} is not valid") from None
    settings.update(overrides or {})
    settings["MODELS_DIR"] = Path(settings["MODELS_DIR"] or models_dir())
    if settings["BACKEND"] not in BACKENDS:
        raise SettingsError(
            f"API_BACKEND must be one of {sorted(BACKENDS)}, not {settings['BACKEND']!r}"
        )
    return settings
