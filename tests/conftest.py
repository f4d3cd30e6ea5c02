"""Shared fixtures: the committed registry, a disposable copy of it, and the data.

Also what keeps the suite honest on any machine: the developer's own ``API_*`` and
``PENGUINS_*`` settings never reach a test or a server it starts, and under CI a tool
that a test needs must be there (a skip would hide that nothing was tested).
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from apps import data
from apps.client.records import frame_to_records
from apps.config import REPO_ROOT
from apps.registry import ModelRegistry
from apps.registry.signing import (
    SIGNING_KEY_ENV,
    TRUST_ENV,
    TRUSTED_KEYS_DIR,
    new_key_pair,
    read_private_key,
    sign_version,
)

from .servers import ISOLATED_PREFIXES

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

CLASSIFIER_INPUTS = [
    ("island", "category", False, ["Biscoe", "Dream", "Torgersen"]),
    ("sex", "category", True, ["female", "male"]),
    ("bill_length_mm", "number", True, (25, 70)),
    ("bill_depth_mm", "number", True, (10, 25)),
    ("flipper_length_mm", "number", True, (150, 250)),
    ("body_mass_g", "number", True, (2000, 7500)),
]
"""The species classifier's inputs, written out here rather than read from its manifest:
``(name, type, may be missing, categories or (minimum, maximum))``. A test that compares
an app's output with the manifest that produced it cannot notice the manifest is wrong."""


def in_ci() -> bool:
    """True under continuous integration (``CI`` set, to anything but false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str, allow_module_level: bool = False):
    """Skip on a developer's machine; fail under CI, where every tool must be installed."""
    if in_ci():
        pytest.fail(f"CI must run this test, but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=allow_module_level)


def require_tool(name: str, install: str, allow_module_level: bool = False) -> str:
    """The path of a program on PATH; skip (or fail under CI) with how to install it."""
    path = shutil.which(name)
    if path is None:
        skip_or_fail(f"{name} is not installed ({install})", allow_module_level)
    return path


def require_course_venv() -> None:
    """Tests that run ``course.py`` need the course's own .venv (not conda) to be current."""
    venv = REPO_ROOT / ".venv"
    if Path(sys.prefix).resolve() != venv.resolve():
        skip_or_fail(f"course.py runs with {venv}; this is {sys.prefix} (python3 course.py test)")


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory):
    """Remove the developer's ``API_*`` and ``PENGUINS_*`` variables for the whole run.

    Session-scoped and automatic, so it runs before the session's servers start, and a
    test that exports ``API_BACKEND=sklearn`` in its shell gets the same answers as CI.
    Models trained by tests are signed with a key of the run's own (never the
    developer's, never written into the checkout), trusted besides ``trusted_keys/``.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.upper().startswith(ISOLATED_PREFIXES):
                patch.delenv(name)
        keys = tmp_path_factory.mktemp("signing")
        new_key_pair(keys / "tests.pem", keys / "tests.pub")
        patch.setenv(SIGNING_KEY_ENV, str(keys / "tests.pem"))
        patch.setenv(TRUST_ENV, os.pathsep.join([str(TRUSTED_KEYS_DIR), str(keys / "tests.pub")]))
        yield


def sign_as_trusted(folder: Path) -> None:
    """Sign a version folder with the test run's key, as a trusted publisher would after
    changing its manifest: tests of the checks that come after the signature need it."""
    sign_version(folder, read_private_key(Path(os.environ[SIGNING_KEY_ENV])))


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
    return frame_to_records(frame[columns])


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
