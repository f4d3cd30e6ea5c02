"""The models the API serves, loaded once, verified, and shared by every route.

Every request format (native, Open Inference Protocol, MLflow) is first turned into a
list of plain records; from there one path serves them all: schema validation, the
backend's prediction, and the counting of predictions for monitoring.
"""

import functools
import logging
from collections import Counter

import numpy as np

from apps.api.errors import ApiError
from apps.registry import (
    LoadedModel,
    ModelNotFoundError,
    ModelRegistry,
    Prediction,
    RegistryError,
)
from apps.registry.loader import parse_version

log = logging.getLogger(__name__)


def shorten(text: str, limit: int = 64) -> str:
    """A client-supplied name cut to a readable length before it goes into a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
                for version in self.registry.versions(name):
                    self.models[name, version] = self.registry.load(
                        name, version, backend=self.backend
                    )
                    self.latest[name] = version
            except RegistryError as error:
                log.error("model %s cannot be served: %s", name, error)
                self.problems.append(f"{name}: {error}")

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
            versions = sorted(v for n, v in self.models if n == name)
            raise ModelNotFoundError(
                f"model '{name}' has no version '{shorten(str(version))}'; it has {versions}"
            )
        return self.models[key]

    def predict(self, model: LoadedModel, records: list) -> Prediction:
        """Validate records against the model's schema, predict, and count the answers."""
        if not isinstance(records, list):
            raise ApiError(400, "bad_request", "records must be a JSON array of objects")
        if len(records) > self.max_records:
            raise ApiError(
                413,
                "too_many_records",
                f"{len(records)} records sent; at most {self.max_records} per request",
            )
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
