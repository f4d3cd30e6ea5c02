"""The reference profile of a model version, wherever it is kept.

Versions trained since profiles exist carry one (``reference_profile.json``, see
:mod:`apps.registry.profile`). An older version gets one computed from its training
recipe and data, once, and kept in the monitoring database, keyed by the sha256 of the
version's manifest so that it can never be mistaken for another version's.
"""

from sqlalchemy import Engine

from apps.monitoring import store
from apps.monitoring.prediction_log import model_ref
from apps.registry import ModelRegistry


class ProfileError(RuntimeError):
    """A reference profile cannot be found or computed."""


def compute_profile(registry: ModelRegistry, name: str, version: int) -> dict:
    """Rebuild the profile training would have saved: same data, same split, same model.

    Refused when the data changed since training (its fingerprint differs from the
    manifest's), since the profile would then describe other rows than the model saw.
    """
    from apps import data, training  # heavy imports, needed only here

    manifest = registry.manifest(name, version)
    spec = training.SPECS.get(name)
    if spec is None:
        raise ProfileError(f"no training recipe for {name}: retrain it to get a profile")
    frame = data.load_data()
    if data.fingerprint(frame) != manifest.data["training_data"]["sha256"]:
        raise ProfileError(f"{name} v{version} was trained on other data than apps.data has")
    model = registry.load(name, version, backend="onnx")

    def predict(features):
        records = features.astype(object).where(features.notna(), None).to_dict("records")
        return model.answer(model.schema.validate(records)).outputs

    return training.reference_profile(spec, frame, predict, manifest.classes)


def reference_profile(registry: ModelRegistry, engine: Engine, name: str, version: int) -> dict:
    """The version's profile: from its files, else from the database, else computed now."""
    profile = registry.reference_profile(name, version)
    if profile is not None:
        return profile
    digest = model_ref(registry, name, version, "").manifest_sha256
    profile = store.stored_profile(engine, name, version, digest)
    if profile is None:
        profile = compute_profile(registry, name, version)
        store.save_profile(engine, name, version, digest, profile)
    return profile
