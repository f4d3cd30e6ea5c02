"""The models the API serves, loaded once, verified, and shared by every route.

Every request format (native, Open Inference Protocol, MLflow) is first turned into a
list of plain records; from there one path serves them all: schema validation, the
backend's prediction, the counts on ``/metrics``, and the listeners (notebook 07's log).
"""

import functools
import logging
from collections import Counter

import numpy as np
from flask import current_app

from apps.api.answers import ModelSummary
from apps.api.errors import ApiError, shorten, too_many_records
from apps.registry import (
    LoadedModel,
    ModelNotFoundError,
    ModelRegistry,
    Prediction,
    RegistryError,
)
from apps.registry.loader import parse_version

log = logging.getLogger(__name__)


def model_service() -> "ModelService":
    """The app's model service: the one way routes and extensions reach the models."""
    return current_app.extensions["model_service"]


class ModelService:
    """Loads every version of the configured models at start-up, with one backend.

    Loading at start-up (before gunicorn forks its workers, with ``preload_app``) means
    a broken model shows at once, in the readiness probe, rather than on a user's
    request; and a request never pays for loading.
    """

    def __init__(
        self, registry: ModelRegistry, names: list[str] | None, backend: str, max_records: int
    ):
        self.registry, self.backend, self.max_records = registry, backend, max_records
        self.names = list(names) if names else registry.names()
        self.models: dict[tuple[str, int], LoadedModel] = {}
        self.latest: dict[str, int] = {}
        self.problems: list[str] = []
        self.predictions_counter = None  # set by observability, when metrics are on
        self.listeners: list = []  # called after each prediction: see predict()
        self._load_all()

    def _load_all(self) -> None:
        if not self.names:
            self.problems.append(f"no models found in {self.registry.root}")
        for name in self.names:
            try:
                self._load_versions(name)
            except RegistryError as error:
                log.error("model %s cannot be served: %s", name, error)
                self.problems.append(f"{name}: {error}")

    def _load_versions(self, name: str) -> None:
        """Load every version of a model; the latest must load, older ones may fail.

        The latest version is what clients get by default: if it fails, the model is
        not served at all (never silently replaced by an older one) and the server is
        not ready. An older version that fails is logged and left out, so that a new
        version trained after a failure is served (as ``python -m apps`` reports it).
        """
        versions = self.registry.versions(name)
        *older, latest = versions
        loaded = {latest: self.registry.load(name, latest, backend=self.backend)}
        for version in older:
            try:
                loaded[version] = self.registry.load(name, version, backend=self.backend)
            except RegistryError as error:
                log.warning(
                    "%s v%s is not served, having failed its checks: %s", name, version, error
                )
        self.models.update({(name, version): model for version, model in sorted(loaded.items())})
        self.latest[name] = latest

    @property
    def widest(self) -> int:
        """The most input columns of any model served: it bounds what a request can hold."""
        return max((len(m.schema.columns) for m in self.models.values()), default=1)

    @property
    def ready(self) -> bool:
        """True only when every configured model loaded and passed its checks."""
        return not self.problems and all(name in self.latest for name in self.names)

    def get(self, name: str, version: str | int | None = None) -> LoadedModel:
        """The model to use, the latest version by default; 404 for anything unknown."""
        if name not in self.latest:
            raise ModelNotFoundError(
                f"no model named '{shorten(name)}'; available: {sorted(self.latest)}"
            )
        if version is None:
            return self.models[name, self.latest[name]]
        key = (name, parse_version(version))
        if key not in self.models:
            raise ModelNotFoundError(
                f"model '{name}' has no version '{shorten(str(version))}'; "
                f"it has {self.versions(name)}"
            )
        return self.models[key]

    def versions(self, name: str) -> list[int]:
        """The versions of a model that are served, oldest first."""
        return sorted(version for served, version in self.models if served == name)

    def listing(self) -> list[ModelSummary]:
        """Every model served: its task, versions and latest version."""
        return [
            {
                "name": name,
                "task": self.get(name).manifest.task,
                "latest": self.latest[name],
                "versions": self.versions(name),
                "backend": self.backend,
            }
            for name in sorted(self.latest)
        ]

    def predict(self, model: LoadedModel, records: list) -> Prediction:
        """Validate records against the model's schema, predict, and count the answers."""
        if not isinstance(records, list):
            raise ApiError(400, "bad_request", "records must be a JSON array of objects")
        if len(records) > self.max_records:
            raise too_many_records(str(len(records)), self.max_records)
        columns = model.schema.validate(records)
        prediction = model.answer(columns)
        self._count(model, prediction.outputs, prediction.probabilities is not None)
        for listener in self.listeners:
            self._notify(listener, model, columns, prediction)
        return prediction

    @staticmethod
    def _notify(listener, model: LoadedModel, columns: dict, prediction: Prediction) -> None:
        """A hook for later lessons (the prediction log of notebook 07): each listener gets
        the model, the validated columns and the prediction, inside the request (so Flask's
        ``g`` holds the request id). A failing listener is logged; the request goes on."""
        try:
            listener(model, columns, prediction)
        except Exception:
            log.exception("a prediction listener failed")

    def _count(self, model: LoadedModel, outputs: np.ndarray, by_class: bool) -> None:
        """Add the predictions to the metrics, by model, version and class."""
        if self.predictions_counter is None:
            return
        version = str(model.version)
        if len(outputs) == 1 or not by_class:
            self._counter(model.name, version, outputs[0] if by_class else "").inc(len(outputs))
            return
        for label, count in Counter(outputs.tolist()).items():
            self._counter(model.name, version, label).inc(count)

    @functools.cache  # noqa: B019 - one service per app, alive as long as the app
    def _counter(self, name: str, version: str, label: str):
        """The labelled counter, looked up once: ``labels()`` costs more than ``inc()``."""
        return self.predictions_counter.labels(name, version, label)
