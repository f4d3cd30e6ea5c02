"""Settings of the API: defaults, overridden by environment variables, then by tests.

Every setting has a safe default, so ``create_app()`` works on a laptop with no set-up;
production changes them through the environment (twelve-factor style), never in code.
API keys in particular come only from the environment or from a secrets file.
"""

import os
from pathlib import Path

from apps.config import models_dir

DEFAULTS = {
    "MODELS_DIR": None,  # None: the registry's default (models/ or $PENGUINS_MODELS_DIR)
    "MODELS": None,  # None: every model in the registry; else a list of names
    "DEFAULT_MODEL": "species-classifier",  # the model served at /invocations
    "BACKEND": "onnx",  # onnx (fast, no scikit-learn needed) or sklearn
    "API_KEYS": (),  # no keys: no authentication (fine on a laptop, not in production)
    "MAX_RECORDS": 10_000,  # records per request
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,  # bytes per request body (Flask enforces it)
    "RATE_LIMIT": None,  # e.g. "100/minute" per API key (or client address); None: off
    "CORS_ORIGINS": (),  # origins allowed to call from a browser; empty: CORS off
}

ENVIRONMENT = {
    "API_MODELS_DIR": ("MODELS_DIR", str),
    "API_MODELS": ("MODELS", lambda v: [n.strip() for n in v.split(",") if n.strip()]),
    "API_DEFAULT_MODEL": ("DEFAULT_MODEL", str),
    "API_BACKEND": ("BACKEND", str),
    "API_MAX_RECORDS": ("MAX_RECORDS", int),
    "API_MAX_BODY_BYTES": ("MAX_CONTENT_LENGTH", int),
    "API_RATE_LIMIT": ("RATE_LIMIT", str),
    "API_CORS_ORIGINS": ("CORS_ORIGINS", lambda v: [o.strip() for o in v.split(",") if o.strip()]),
}


def api_keys_from(environ: dict) -> tuple[str, ...]:
    """Keys from ``API_KEYS`` (comma-separated) and ``API_KEYS_FILE`` (one per line).

    The file form suits Docker and Kubernetes secrets, which are mounted as files.
    """
    keys = [k.strip() for k in environ.get("API_KEYS", "").split(",")]
    if environ.get("API_KEYS_FILE"):
        text = Path(environ["API_KEYS_FILE"]).read_text(encoding="utf-8")
        lines = (line.strip() for line in text.splitlines())
        keys += [line for line in lines if not line.startswith("#")]
    return tuple(k for k in keys if k)


def load_settings(overrides: dict | None = None, environ: dict | None = None) -> dict:
    """Defaults, then environment variables, then ``overrides`` (what tests pass)."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    for variable, (key, parse) in ENVIRONMENT.items():
        if environ.get(variable):
            settings[key] = parse(environ[variable])
    settings["API_KEYS"] = api_keys_from(environ) or settings["API_KEYS"]
    settings.update(overrides or {})
    settings["MODELS_DIR"] = Path(settings["MODELS_DIR"] or models_dir())
    if settings["BACKEND"] not in ("onnx", "sklearn"):
        raise ValueError(f"API_BACKEND must be 'onnx' or 'sklearn', not {settings['BACKEND']!r}")
    return settings
