"""Shared fixtures: the committed registry, a disposable copy of it, and the data."""

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from apps import data
from apps.config import REPO_ROOT
from apps.registry import ModelRegistry

# Every API the tests start logs its predictions (notebook 07) to a scratch database, never
# to the learner's var/monitoring.db. Servers started by the tests inherit it.
os.environ["MONITORING_DB_URL"] = str(Path(tempfile.mkdtemp(prefix="penguins-tests-")) / "log.db")

MODEL_NAMES = ("species-classifier", "body-mass-regressor")

RECORD = {
    "island": "Biscoe",
    "sex": "male",
    "bill_length_mm": 45.0,
    "bill_depth_mm": 15.0,
    "flipper_length_mm": 220.0,
    "body_mass_g": 5000.0,
}
"""A valid record for the species classifier (a Gentoo), shared by the API tests."""


@pytest.fixture(scope="session")
def registry() -> ModelRegistry:
    """The committed models, read-only: tests must never change them."""
    return ModelRegistry(REPO_ROOT / "models")


@pytest.fixture
def registry_copy(tmp_path: Path) -> ModelRegistry:
    """A private copy of the committed models that a test may tamper with."""
    shutil.copytree(REPO_ROOT / "models", tmp_path / "models")
    return ModelRegistry(tmp_path / "models")


@pytest.fixture(scope="session")
def penguins() -> pd.DataFrame:
    """All 344 penguins, missing values included."""
    return data.load_data()


def as_records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    """Rows as JSON-like dicts, with None (not NaN) for missing values, as a client sends."""
    subset = frame[columns].astype(object)
    return subset.where(subset.notna(), None).to_dict("records")


@pytest.fixture(scope="session")
def api_url():
    """A real gunicorn server with the ONNX backend, no API key, shared by the session."""
    from .servers import running_api

    with running_api({"API_BACKEND": "onnx"}) as url:
        yield url


@pytest.fixture(scope="session")
def api_url_sklearn():
    """The same server with the scikit-learn backend, to compare the two."""
    from .servers import running_api

    with running_api({"API_BACKEND": "sklearn"}) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_server():
    """The URL of a real PostgreSQL server started for the session (see tests/databases.py)."""
    from .databases import running_postgres, why_not_postgres

    reason = why_not_postgres()
    if reason:
        pytest.skip(reason)
    with running_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty monitoring database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "monitoring.db")
        return
    from .databases import fresh_database

    with fresh_database(request.getfixturevalue("postgres_server")) as url:
        yield url
