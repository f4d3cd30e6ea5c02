"""The model registry: one way to find, verify and load a model, for every app.

``models/<name>/<version>/`` holds the model files and a ``manifest.json`` that
describes them. The API, the UI and the batch job all load models through
:class:`ModelRegistry`, so the safety checks live in one place.
"""

from apps.registry.errors import (
    IntegrityError,
    ModelNotFoundError,
    RegistryError,
    SignatureError,
    UntrustedTypesError,
    ValidationError,
    VersionMismatchError,
    VersionMismatchWarning,
)
from apps.registry.loader import LoadedModel, ModelRegistry
from apps.registry.manifest import Manifest
from apps.registry.prediction import Prediction
from apps.registry.schema import InputSchema

__all__ = [
    "InputSchema",
    "IntegrityError",
    "LoadedModel",
    "Manifest",
    "ModelNotFoundError",
    "ModelRegistry",
    "Prediction",
    "RegistryError",
    "SignatureError",
    "UntrustedTypesError",
    "ValidationError",
    "VersionMismatchError",
    "VersionMismatchWarning",
]
