"""Paths and logging, defined once so that every app agrees on where things live."""

import logging
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout that holds ``apps/``, ``models/`` and ``notebooks/``."""

MODELS_DIR_ENV = "PENGUINS_MODELS_DIR"
"""Environment variable that points every app at another model registry folder."""


def models_dir() -> Path:
    """Return the registry folder: ``$PENGUINS_MODELS_DIR`` if set, else ``models/``.

    Read at call time, not import time, so that tests and containers can point the
    apps elsewhere without reloading modules.
    """
    return Path(os.environ.get(MODELS_DIR_ENV) or REPO_ROOT / "models")


def setup_logging(level: str | None = None) -> None:
    """Configure the root logger once, with the level from ``$LOG_LEVEL`` (default INFO)."""
    logging.basicConfig(
        level=(level or os.environ.get("LOG_LEVEL") or "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
