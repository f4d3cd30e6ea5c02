"""Find, verify and load models: the only path from a file on disk to a predictor.

The order of checks matters. The manifest's signature is checked against the trusted
public keys *before* any of its hashes is believed; the sha256 of a file is compared
with the manifest *before* the bytes are deserialized (unpickling runs code); the
library versions are compared before the model is used; skops files are loaded with an
explicit list of trusted types. Each refusal says what happened and how to fix it.
"""

import importlib.metadata
import json
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from apps.config import models_dir
from apps.registry.aliases import PRODUCTION, Aliases, read_aliases, write_aliases
from apps.registry.backends import BACKENDS, Backend
from apps.registry.errors import (
    IntegrityError,
    ModelNotFoundError,
    VersionMismatchError,
    VersionMismatchWarning,
)
from apps.registry.manifest import MANIFEST_FILE, Manifest, sha256_bytes
from apps.registry.prediction import Prediction
from apps.registry.profile import PROFILE_FILE
from apps.registry.publishing import locked, publish
from apps.registry.schema import InputSchema
from apps.registry.signing import SIGNATURE_FILE, Trust, sign_version

log = logging.getLogger(__name__)


def parse_version(version: object) -> int | None:
    """A version number from ``7`` or ``"7"``; None for anything else (``"²"``, ``"v7"``).

    ASCII digits only: ``str.isdigit`` also accepts digits such as ``"²"`` that
    ``int`` cannot read.
    """
    text = str(version)
    return int(text) if text.isascii() and text.isdigit() else None


PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""A model's name, or a file name in a manifest: one plain name, no separators, never ``..``."""


def check_name(name: object) -> str:
    """Return ``name`` if it can be a model's folder in the registry; refuse anything else.

    Names come from URLs and command lines: ``../elsewhere`` must never reach a path, or
    a caller could load (and unpickle) files from outside the registry.
    """
    if not isinstance(name, str) or not PLAIN_NAME.fullmatch(name):
        raise ModelNotFoundError(
            f"{str(name)[:64]!r} is not a model name: letters, digits, '.', '_' and '-' only"
        )
    return name


@dataclass
class LoadedModel:
    """A verified model ready to predict, with its manifest and input schema."""

    manifest: Manifest
    schema: InputSchema
    backend: Backend

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    def predict(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Predictions for validated columns (see :meth:`InputSchema.to_columns`)."""
        return self.backend.predict(columns)

    def predict_proba(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Class probabilities for validated columns; only classifiers have them."""
        if self.manifest.task != "classification":
            raise TypeError(f"{self.name} is a {self.manifest.task} model: it has no probabilities")
        return self.backend.predict_proba(columns)

    def predict_records(self, records: list[dict]) -> np.ndarray:
        """Validate plain dict records against the schema, then predict."""
        return self.predict(self.schema.validate(records))

    def describe(self, versions: list[int]) -> dict:
        """The model's public metadata: what it expects, what it answers, how good it is.

        One document for the API's metadata route and the UI's model page, so the two
        cannot drift apart. ``versions`` lists every version of the model on offer.
        """
        manifest = self.manifest.data
        return {
            "name": self.name,
            "version": self.version,
            "versions": versions,
            "task": manifest["task"],
            "description": manifest.get("description", ""),
            "backend": self.backend.name,
            "created_at": manifest["created_at"],
            "input_schema": {
                "columns": manifest["input_schema"]["columns"],
                "record": self.schema.to_dict(),
            },
            "outputs": manifest["outputs"],
            "metrics": manifest["metrics"],
            "training_data": manifest["training_data"],
            # a retrained version's origin and the gate it passed (notebook 08)
            **{key: manifest[key] for key in ("lineage", "gate") if key in manifest},
        }

    def warm_up(self) -> Prediction:
        """Predict once, for a valid record made up from the schema (the first category,
        the middle of each range): a version that cannot answer is found out before it
        serves anyone, and the first real request does not pay for lazy set-up."""
        record: dict[str, object] = {}
        for column in self.schema.columns:
            if column.type == "category":
                record[column.name] = column.categories[0] if column.categories else None
            elif column.minimum is not None and column.maximum is not None:
                record[column.name] = (column.minimum + column.maximum) / 2
            else:
                record[column.name] = column.maximum if column.minimum is None else column.minimum
        prediction = self.answer(self.schema.validate([record]))
        if len(prediction.outputs) != 1:
            raise IntegrityError(f"{self.name} v{self.version} gave no answer to a warm-up record")
        return prediction

    def answer(self, columns: dict[str, np.ndarray]) -> Prediction:
        """Labels and probabilities (classifiers) or values, with one call to the backend.

        A classifier's label is its most probable class, so it is derived from the
        probabilities rather than computed again by a second call.
        """
        if self.manifest.task != "classification":
            return Prediction(self.backend.predict(columns), None, [])
        probabilities = self.backend.predict_proba(columns)
        classes = self.manifest.classes
        labels = np.asarray(classes, dtype=object)[probabilities.argmax(axis=1)]
        return Prediction(labels, probabilities, classes)


class ModelRegistry:
    """The folder ``<root>/<name>/<version>/`` of models, each with its signed manifest.

    ``trust`` holds the public keys whose signatures are accepted; by default those of
    ``trusted_keys/`` (or ``$PENGUINS_TRUSTED_KEYS``), read at first use.
    """

    def __init__(self, root: Path | str | None = None, trust: Trust | None = None):
        self.root = Path(root) if root is not None else models_dir()
        self._trust = trust

    @property
    def trust(self) -> Trust:
        if self._trust is None:
            self._trust = Trust.from_environment()
        return self._trust

    def names(self) -> list[str]:
        """Names of the models that have at least one version."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self._versions(p))

    def versions(self, name: str) -> list[int]:
        """Versions of one model, oldest first."""
        versions = self._versions(self.root / check_name(name))
        if not versions:
            raise ModelNotFoundError(f"no model named '{name}'; available: {self.names()}")
        return versions

    @staticmethod
    def _versions(model_dir: Path) -> list[int]:
        if not model_dir.is_dir():
            return []
        return sorted(
            int(p.name)
            for p in model_dir.iterdir()
            if parse_version(p.name) is not None and (p / MANIFEST_FILE).is_file()
        )

    def resolve(self, name: str, version: int | str | None = None) -> Path:
        """Folder of one version; the production version when ``version`` is None."""
        versions = self.versions(name)
        if version is None:
            return self.root / name / str(self.production(name))
        if parse_version(version) in versions:
            return self.root / name / str(parse_version(version))
        raise ModelNotFoundError(f"model '{name}' has no version {version}; it has {versions}")

    def aliases(self, name: str) -> Aliases:
        """The model's aliases (``production``, ``candidate``, ...) and their history."""
        self.versions(name)  # the model must exist
        return read_aliases(self.root / name)

    def production(self, name: str) -> int:
        """The version every app uses unless told otherwise: the ``production`` alias, or
        the latest version while no version has been promoted."""
        versions = self.versions(name)
        pinned = read_aliases(self.root / name).get(PRODUCTION)
        if pinned is None:
            return versions[-1]
        if pinned not in versions:
            raise ModelNotFoundError(
                f"the production alias of '{name}' points at version {pinned}, which is not in "
                f"the registry (it has {versions}): promote one of those"
            )
        return pinned

    def set_alias(
        self, name: str, alias: str, version: int | None, action: str, reason: str = ""
    ) -> Aliases:
        """Point ``alias`` at ``version`` (None removes it), log the change, write the file.

        Only the registry writes aliases: callers decide (notebook 08's promotion rules);
        the change is written here, atomically and under a lock.
        """
        if version is not None and parse_version(version) not in self.versions(name):
            raise ModelNotFoundError(f"model '{name}' has no version {version}")
        with locked(self.root / name):
            changed = self.aliases(name).changed(alias, parse_version(version), action, reason)
            write_aliases(self.root / name, changed)
        return changed

    def add_version(
        self,
        name: str,
        files: dict[str, tuple[str, bytes]],
        facts: dict,
        version: int | None = None,
        signer=None,
    ) -> Manifest:
        """Write a new version: ``{file name: (format, bytes)}`` and the manifest's facts.

        The registry numbers it (the next version unless ``version`` is given), pins each
        file's sha256, signs the manifest with ``signer`` (an Ed25519 private key) and
        writes it all at once (see :mod:`apps.registry.publishing`).
        """
        sign = None if signer is None else (lambda folder: sign_version(folder, signer))
        return publish(self.root / check_name(name), files, facts, version, sign)

    def manifest(self, name: str, version: int | str | None = None) -> Manifest:
        """The manifest of one version, the production version by default."""
        return self._trusted_manifest(self.resolve(name, version))

    def verify(self, name: str, version: int | str | None = None) -> Manifest:
        """Check every file of a version against its manifest; raise on the first fault."""
        folder = self.resolve(name, version)
        manifest = self._trusted_manifest(folder)
        self._verified_files(folder, manifest)
        return manifest

    def reference_profile(self, name: str, version: int | str | None = None) -> dict | None:
        """The version's reference profile (what its training data looked like), verified
        like its model files; None for a version trained before profiles were saved."""
        folder = self.resolve(name, version)
        manifest = self._trusted_manifest(folder)
        if PROFILE_FILE not in manifest.artifacts:
            return None
        return json.loads(self._verified_files(folder, manifest)[PROFILE_FILE])

    def _trusted_manifest(self, folder: Path) -> Manifest:
        """A version's manifest, believed only once a trusted key's signature matches its
        exact bytes, and only in the folder it names: a signed version copied under
        another name or number is refused. The bytes checked are the bytes parsed."""
        data = (folder / MANIFEST_FILE).read_bytes()
        self.trust.check(data, folder / SIGNATURE_FILE, self._label(folder))
        manifest = Manifest(json.loads(data))
        if (manifest.name, str(manifest.version)) != (folder.parent.name, folder.name):
            raise IntegrityError(
                f"{self._label(folder)} holds the manifest of {manifest.name} "
                f"v{manifest.version}: a version moved to another folder is not trusted"
            )
        return manifest

    def _verified_files(self, folder: Path, manifest: Manifest) -> dict[str, bytes]:
        """Every file of a version folder, each checked against its pinned sha256.

        A version is trusted as a whole: a file that the manifest does not list, or any
        listed file that changed, condemns the version, even if the caller wants only
        another of its files. A changed ``model.joblib`` says someone wrote to the folder.
        """
        odd = sorted(name for name in manifest.artifacts if not PLAIN_NAME.fullmatch(name))
        if odd:
            raise IntegrityError(f"{self._label(folder)}: the manifest lists odd file names {odd}")
        listed = set(manifest.artifacts) | {MANIFEST_FILE, SIGNATURE_FILE}
        unknown = sorted(p.name for p in folder.iterdir() if p.name not in listed)
        if unknown:
            raise IntegrityError(
                f"{self._label(folder)}: files not listed in the manifest: {unknown}"
            )
        return {name: self._read_verified(folder, manifest, name) for name in manifest.artifacts}

    def _label(self, path: Path) -> str:
        """A path as ``name/version/file``: errors may reach clients, server paths may not."""
        return path.relative_to(self.root).as_posix()

    def _read_verified(self, folder: Path, manifest: Manifest, file_name: str) -> bytes:
        """Read a model file and return its bytes only if they match the pinned sha256.

        The same bytes that were hashed are the ones deserialized, so the file cannot
        change between the check and the load.
        """
        entry = manifest.artifacts[file_name]
        data = (folder / file_name).read_bytes()
        actual = sha256_bytes(data)
        if actual != entry["sha256"]:
            raise IntegrityError(
                f"{self._label(folder / file_name)} has sha256 {actual[:12]}..., but the "
                f"manifest pins {entry['sha256'][:12]}...: the file was changed or corrupted, "
                "refusing to load it. Restore it (`git checkout models/`) or train a new "
                "version (`python3 course.py train`)."
            )
        return data

    def load(
        self,
        name: str,
        version: int | str | None = None,
        *,
        backend: str = "sklearn",
        fmt: str | None = None,
        on_version_mismatch: str = "error",
    ) -> LoadedModel:
        """Verify and load one model version with the chosen backend.

        ``backend`` is ``sklearn`` (from the skops file by default, or ``fmt="joblib"``)
        or ``onnx``. ``on_version_mismatch`` is ``error`` (the default) or ``warn``.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {sorted(BACKENDS)}, not {backend!r}")
        kind = BACKENDS[backend]
        fmt = fmt or kind.default_format
        if fmt not in kind.loaders:
            raise ValueError(f"the {backend} backend loads {list(kind.loaders)}, not {fmt!r}")
        folder = self.resolve(name, version)
        manifest = self._trusted_manifest(folder)
        data = self._verified_files(folder, manifest)[manifest.artifact_for(fmt)]
        check_versions(manifest, kind.pinned_libraries, on_version_mismatch)
        loaded = kind.loaders[fmt](data)
        log.info("loaded %s v%s with the %s backend (%s)", name, manifest.version, backend, fmt)
        return LoadedModel(manifest, InputSchema.from_manifest(manifest), loaded)


def check_versions(
    manifest: Manifest, packages: tuple[str, ...], on_mismatch: str = "error"
) -> None:
    """Compare installed library versions with those the model was saved with.

    A scikit-learn model unpickled by another version may load and then predict
    wrongly, with only a warning that is easy to miss; we stop instead (or warn loudly
    when the caller asks), naming both versions and the fix.
    """
    if on_mismatch not in ("error", "warn"):
        raise ValueError(f"on_version_mismatch must be 'error' or 'warn', not {on_mismatch!r}")
    mismatches = []
    for package in packages:
        saved = manifest.environment.get(package)
        installed = importlib.metadata.version(package)
        if saved and saved != installed:
            mismatches.append(f"{package} {saved} (saved) vs {installed} (installed)")
    if not mismatches:
        return
    message = (
        f"model {manifest.name} v{manifest.version} was saved with other library versions: "
        + "; ".join(mismatches)
        + ". Reinstall the pinned versions (delete .venv, then `python3 course.py setup`), "
        "train a new version with the installed ones (`python3 course.py train`), or use "
        "the ONNX backend."
    )
    if on_mismatch == "error":
        raise VersionMismatchError(message)
    log.warning(message)
    warnings.warn(message, VersionMismatchWarning, stacklevel=3)
