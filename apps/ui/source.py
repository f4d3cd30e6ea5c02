"""Where the UI's models come from: the API over HTTP, or the registry in-process.

Both sources answer the same three questions with the API's JSON shapes: which models
there are, what one of them expects and how good it is, and what it predicts. The pages
only ever talk to a source, so the same UI runs against a production API or, with no
server at all, on a laptop. Every failure becomes a :class:`SourceError` with a message
a user can act on; the pages show it, never a stack trace.
"""

import os

import streamlit as st

from apps.config import models_dir
from apps.registry import ModelRegistry, RegistryError, ValidationError

API_URL_ENV = "PENGUINS_API_URL"
"""Set it to the API's base URL to use the API; leave it unset to load models locally."""

LOCAL_BACKEND = "onnx"
"""The backend of the local mode: the API's default too, so both give the same answers."""

TIMEOUT = 5.0
"""Seconds to wait for the API to connect, and again to answer: a person is waiting."""

CHUNK = 1_000
"""Records per prediction request: a large file goes as several requests, each well
under the API's limit, so no request is slow or refused for its size."""


class SourceError(Exception):
    """Why the models cannot be reached or used right now, in plain words.

    ``retry`` says whether trying again may help (the API is down, slow or busy), in
    which case the UI offers a retry button.
    """

    def __init__(self, message: str, *, retry: bool = False):
        super().__init__(message)
        self.message, self.retry = message, retry


class ApiSource:
    """Models served by the API, through :class:`apps.client.PenguinClient`."""

    kind = "api"

    def __init__(self, base_url: str, api_key: str | None = None):
        from apps.client import PenguinClient

        self.base_url = base_url.rstrip("/")
        # One quick retry, not the client's default three with back-off: a person is
        # waiting, and a clear "not answering" with a retry button beats a long spinner.
        self.client = PenguinClient(
            base_url=self.base_url, api_key=api_key, timeout=TIMEOUT, retries=1, backoff=0.2
        )

    @property
    def label(self) -> str:
        return f"the API at {self.base_url}"

    def models(self) -> list[dict]:
        return self._call(self.client.models)

    def model(self, name: str, version: int | None = None) -> dict:
        return self._call(self.client.model, name, version)

    def predict(self, name: str, records: list[dict], version: int | None = None) -> list[dict]:
        answers = []
        for start in range(0, len(records), CHUNK):
            chunk = records[start : start + CHUNK]
            answers += self._call(self.client.predict, name, chunk, version)
        return answers

    def monitoring(self, name: str) -> dict:
        """The API's ``/monitoring`` document: counts, latest drift report, recent rows."""
        return self._call(self.client.monitoring, name)

    def _call(self, method, *args):
        from apps.client import ApiUnavailable, ClientError

        try:
            return method(*args)
        except ApiUnavailable as error:
            raise SourceError(
                f"The API is not answering: {error.message}. "
                "Check that it is running (`python3 course.py start` starts it together "
                "with this UI), then retry.",
                retry=True,
            ) from None
        except ClientError as error:
            busy = error.status is not None and (error.status == 429 or error.status >= 500)
            raise SourceError(
                f"The API answered {error.status}: {error.message}", retry=busy
            ) from None


class LocalSource:
    """Models loaded from the registry folder by this process, verified as always."""

    kind = "local"

    def __init__(self, registry: ModelRegistry, backend: str = LOCAL_BACKEND):
        self.registry, self.backend = registry, backend

    @property
    def label(self) -> str:
        return f"the local registry ({self.registry.root.name}/, {self.backend} backend)"

    def models(self) -> list[dict]:
        """The same entries as the API's ``/v1/models``."""
        try:
            return [
                {
                    "name": name,
                    "task": self.registry.manifest(name).task,
                    "latest": self.registry.versions(name)[-1],
                    "production": self.registry.production(name),
                    "versions": self.registry.versions(name),
                    "backend": self.backend,
                }
                for name in self.registry.names()
            ]
        except (RegistryError, OSError, ValueError) as error:
            raise SourceError(f"The models cannot be listed: {error}") from None

    def model(self, name: str, version: int | None = None) -> dict:
        """The same document as the API's ``/v1/models/<name>``."""
        return self._load(name, version).describe(self.registry.versions(name))

    def predict(self, name: str, records: list[dict], version: int | None = None) -> list[dict]:
        """The same answers as the API's predict route, validated by the same schema."""
        loaded = self._load(name, version)
        try:
            return loaded.answer(loaded.schema.validate(records)).as_records()
        except ValidationError as error:
            raise SourceError(f"The input is not valid: {error}") from None

    def monitoring(self, name: str) -> dict:
        """The same document as the API's ``/monitoring``, read from the local database
        (``$MONITORING_DB_URL``, or ``var/monitoring.db``)."""
        from sqlalchemy.exc import SQLAlchemyError

        from apps.monitoring import db, store

        try:
            return store.overview(monitoring_engine(db.database_url()), name)
        except SQLAlchemyError as error:
            raise SourceError(f"The monitoring database cannot be read: {error}") from None

    def _load(self, name: str, version: int | None):
        try:
            chosen = self.registry.production(name) if version is None else int(version)
            return load_model(str(self.registry.root), name, chosen, self.backend)
        except RegistryError as error:
            raise SourceError(f"The model cannot be used: {error}") from None


@st.cache_resource(show_spinner="Loading and verifying the model ...")
def load_model(root: str, name: str, version: int, backend: str):
    """Verify and load one model version once per process, shared by every session.

    ``st.cache_resource`` keeps the object itself (not a copy): right for a model,
    which is read-only once loaded and expensive to load again on every rerun.
    """
    return ModelRegistry(root).load(name, version, backend=backend)


@st.cache_resource(show_spinner=False)
def monitoring_engine(url: str):
    """One database engine (a pool of connections) per URL, shared by every session."""
    from apps.monitoring.db import connect

    return connect(url)


def open_source() -> ApiSource | LocalSource:
    """The API if ``PENGUINS_API_URL`` is set, else the local registry.

    Read at every rerun, so that a test (or a learner) can switch by changing the
    environment; each configuration gets its own cached source.
    """
    url = (os.environ.get(API_URL_ENV) or "").strip()
    return _source(url, str(models_dir()))


@st.cache_resource(show_spinner=False)
def _source(api_url: str, root: str) -> ApiSource | LocalSource:
    """One source per configuration, kept across reruns (it holds the HTTP connections)."""
    if api_url:
        return ApiSource(api_url)
    return LocalSource(ModelRegistry(root))
