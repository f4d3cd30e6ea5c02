"""The models the API serves, loaded once, verified, and shared by every route.

Every request format (native, Open Inference Protocol, MLflow) is first turned into a
list of plain records; from there one path serves them all: schema validation, the
backend's prediction, the counts on ``/metrics``, and the listeners (notebook 07's log).
"""

import functools
import logging
from collections import Counter
from typing import TYPE_CHECKING, cast

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

if TYPE_CHECKING:
    import prometheus_client

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
        self.production: dict[str, int] = {}  # the version that answers when none is named
        self.problems: list[str] = []
        self.refused: dict[str, str] = {}  # a version that failed to replace production, and why
        self.unloaded: frozenset[str] = frozenset()  # unloaded by an administrator (notebook 08)
        # set by observability, when metrics are on
        self.predictions_counter: prometheus_client.Counter | None = None
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
        """Load every version of a model; the production version must load, others may fail.

        The production version (the registry's ``production`` alias, or the latest
        version until one is promoted) is what clients get by default: if it fails, the
        model is not served at all (never silently replaced by another one) and the
        server is not ready. Another version that fails is logged and left out.
        """
        chosen = self.registry.production(name)
        loaded = {chosen: self.registry.load(name, chosen, backend=self.backend)}
        loaded[chosen].warm_up()
        for version in self.registry.versions(name):
            if version == chosen:
                continue
            try:
                loaded[version] = self.registry.load(name, version, backend=self.backend)
            except RegistryError as error:
                log.warning(
                    "%s v%s is not served, having failed its checks: %s", name, version, error
                )
        others = {key: model for key, model in self.models.items() if key[0] != name}
        self.models = others | {(name, version): loaded[version] for version in sorted(loaded)}
        self.production = {**self.production, name: chosen}

    @property
    def widest(self) -> int:
        """The most input columns of any model served: it bounds what a request can hold."""
        return max((len(m.schema.columns) for m in self.models.values()), default=1)

    @property
    def ready(self) -> bool:
        """True only when every configured model loaded and passed its checks (a model
        that an administrator unloaded on purpose does not count against it)."""
        return not self.problems and all(
            name in self.production or name in self.unloaded for name in self.names
        )

    def get(self, name: str, version: str | int | None = None) -> LoadedModel:
        """The model to use, the production version by default; 404 for anything unknown."""
        if name not in self.production:
            if name in self.unloaded:
                raise ModelNotFoundError(f"model '{name}' is unloaded: load it to serve it again")
            raise ModelNotFoundError(
                f"no model named '{shorten(name)}'; available: {sorted(self.production)}"
            )
        if version is None:
            return self.models[name, self.production[name]]
        key = (name, parse_version(version))
        if key not in self.models:
            raise ModelNotFoundError(
                f"model '{name}' has no version '{shorten(str(version))}'; "
                f"it has {self.versions(name)}"
            )
        return self.models[key]

    def switch(self, name: str, version: int) -> LoadedModel:
        """Make ``version`` the one that answers by default, once it has proved itself.

        It is loaded from the registry (which verifies its hashes and library versions)
        and must answer a warm-up prediction; until then, and for good if any of that
        fails, the current version goes on answering, and the failure is kept in
        ``refused`` (readiness shows it). The switch itself is a single assignment: a
        request gets the old version or the new one, never a mix. The tables are
        replaced, never changed in place, so a request reading them while another thread
        switches never sees one change size under it. Notebook 08 calls this in every
        worker when the ``production`` alias changes.
        """
        try:
            model = self.registry.load(name, version, backend=self.backend)
            model.warm_up()
        except Exception as error:
            self.refused = {**self.refused, name: f"version {version} was not served: {error}"}
            raise
        self.models = {**self.models, (name, model.version): model}
        self.production = {**self.production, name: model.version}
        self.refused = {other: why for other, why in self.refused.items() if other != name}
        return model

    def unload(self, name: str) -> None:
        """Stop serving a model, every version of it, until :meth:`reload`."""
        if name not in self.names:
            raise ModelNotFoundError(f"no model named '{shorten(name)}' is configured")
        self.unloaded = self.unloaded | {name}
        self.production = {other: v for other, v in self.production.items() if other != name}
        self.models = {key: model for key, model in self.models.items() if key[0] != name}

    def reload(self, name: str) -> None:
        """Load a model again from the registry, every version, as at start-up."""
        if name not in self.names:
            raise ModelNotFoundError(f"no model named '{shorten(name)}' is configured")
        self._load_versions(name)
        self.unloaded = self.unloaded - {name}
        self.refused = {other: why for other, why in self.refused.items() if other != name}
        self.problems = [problem for problem in self.problems if not problem.startswith(name + ":")]

    def versions(self, name: str) -> list[int]:
        """The versions of a model that are served, oldest first."""
        return sorted(version for served, version in self.models if served == name)

    def listing(self) -> list[ModelSummary]:
        """Every model served: its task, versions, latest and production versions."""
        return [
            {
                "name": name,
                "task": self.get(name).manifest.task,
                "latest": self.versions(name)[-1],
                "production": self.production[name],
                "versions": self.versions(name),
                "backend": self.backend,
            }
            for name in sorted(self.production)
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
        counter = cast("prometheus_client.Counter", self.predictions_counter)  # set: see above
        return counter.labels(name, version, label)
