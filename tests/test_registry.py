"""The loader's safety checks: hashes before bytes, versions before use, explicit trust."""

import json
import pickle
import warnings
from pathlib import Path

import pytest
import skops.io
from sklearn.preprocessing import FunctionTransformer

from apps.registry import (
    IntegrityError,
    ModelNotFoundError,
    ModelRegistry,
    UntrustedTypesError,
    VersionMismatchError,
    VersionMismatchWarning,
)
from apps.registry.backends import SKOPS_TRUSTED_TYPES
from apps.registry.manifest import Manifest, sha256_bytes

from .conftest import MODEL_NAMES, sign_as_trusted


class _Payload:
    """A pickle that creates a marker file when loaded: harmless proof of code execution."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _replace_and_rehash(registry: ModelRegistry, name: str, file_name: str, content: bytes):
    """Swap a model file *and* update its pinned hash, as a legitimate retraining would."""
    folder = registry.resolve(name)
    (folder / file_name).write_bytes(content)
    manifest = Manifest.read(folder)
    manifest.artifacts[file_name]["sha256"] = sha256_bytes(content)
    manifest.write(folder)
    sign_as_trusted(folder)


def _set_saved_version(registry: ModelRegistry, name: str, package: str, version: str) -> None:
    folder = registry.resolve(name)
    manifest = Manifest.read(folder)
    manifest.environment[package] = version
    manifest.write(folder)
    sign_as_trusted(folder)


def test_both_models_are_committed_and_verify(registry):
    assert set(MODEL_NAMES) <= set(registry.names())
    for name in MODEL_NAMES:
        assert registry.versions(name)[0] == 1
        manifest = registry.verify(name)
        assert {e["format"] for e in manifest.artifacts.values()} == {"joblib", "skops", "onnx"}


@pytest.mark.parametrize("fmt", ["joblib", "skops"])
def test_tampered_file_is_refused_before_it_is_deserialized(registry_copy, tmp_path, fmt):
    marker = tmp_path / "payload-ran"
    folder = registry_copy.resolve("species-classifier")
    (folder / f"model.{fmt}").write_bytes(pickle.dumps(_Payload(marker)))

    with pytest.raises(IntegrityError, match=r"sha256 .* manifest pins"):
        registry_copy.load("species-classifier", fmt=fmt)
    assert not marker.exists(), "the tampered file was deserialized before the hash check"

    # Control: the same bytes really do run code when unpickled without the check.
    pickle.loads((folder / f"model.{fmt}").read_bytes())  # noqa: S301 - the attack, on purpose
    assert marker.exists()


def test_a_single_flipped_byte_is_refused(registry_copy):
    path = registry_copy.resolve("body-mass-regressor") / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        registry_copy.load("body-mass-regressor", backend="onnx")
    with pytest.raises(IntegrityError):
        registry_copy.verify("body-mass-regressor")


def test_unknown_files_are_refused(registry_copy):
    folder = registry_copy.resolve("species-classifier")
    (folder / "extra.pkl").write_bytes(b"anything")
    with pytest.raises(IntegrityError, match=r"not listed in the manifest: \['extra.pkl'\]"):
        registry_copy.verify("species-classifier")

    (folder / "extra.pkl").unlink()
    manifest = Manifest.read(folder)
    del manifest.artifacts["model.joblib"]
    manifest.write(folder)
    sign_as_trusted(folder)
    # model.joblib is now a file the manifest does not list: no backend loads the version.
    for backend in ("onnx", "sklearn"):
        with pytest.raises(IntegrityError, match=r"not listed in the manifest: \['model.joblib'\]"):
            registry_copy.load("species-classifier", backend=backend)
    (folder / "model.joblib").unlink()
    with pytest.raises(KeyError, match="no joblib file"):
        registry_copy.load("species-classifier", fmt="joblib")


@pytest.mark.parametrize(
    ("tampered", "backend"), [("model.joblib", "onnx"), ("model.onnx", "sklearn")]
)
def test_a_tampered_file_condemns_the_whole_version(registry_copy, tampered, backend):
    """The API serving ONNX must not stay ready when someone swapped the joblib file."""
    path = registry_copy.resolve("species-classifier") / tampered
    path.write_bytes(path.read_bytes() + b"!")
    with pytest.raises(IntegrityError, match=rf"{tampered} has sha256"):
        registry_copy.load("species-classifier", backend=backend)


@pytest.mark.parametrize(
    "name", ["../evil", "..", ".", "evil/..", "/tmp/evil", "a\\b", "", "x" * 101]
)
def test_a_model_name_must_be_a_plain_registry_entry(registry_copy, tmp_path, name):
    """``load("../evil")`` must not load a model from outside the registry's folder."""
    evil = tmp_path / "evil"
    (evil / "1").mkdir(parents=True)
    for item in registry_copy.resolve("species-classifier").iterdir():
        (evil / "1" / item.name).write_bytes(item.read_bytes())
    with pytest.raises(ModelNotFoundError, match="is not a model name"):
        registry_copy.load(name, backend="onnx")


def test_a_manifest_cannot_point_outside_its_folder(registry_copy):
    folder = registry_copy.resolve("species-classifier")
    manifest = Manifest.read(folder)
    manifest.artifacts["../../body-mass-regressor/1/model.onnx"] = manifest.artifacts.pop(
        "model.onnx"
    )
    manifest.write(folder)
    sign_as_trusted(folder)
    with pytest.raises(IntegrityError, match="odd file names"):
        registry_copy.verify("species-classifier")


def test_scikit_learn_version_mismatch_is_refused_with_a_clear_message(registry_copy):
    _set_saved_version(registry_copy, "species-classifier", "scikit-learn", "0.24.2")
    with pytest.raises(VersionMismatchError) as caught:
        registry_copy.load("species-classifier")
    message = str(caught.value)
    import sklearn

    assert "scikit-learn 0.24.2 (saved)" in message
    assert f"{sklearn.__version__} (installed)" in message
    assert "`python3 course.py setup`" in message
    assert "`python3 course.py train`" in message


def test_version_mismatch_can_be_downgraded_to_a_loud_warning(registry_copy):
    _set_saved_version(registry_copy, "species-classifier", "numpy", "1.26.4")
    with pytest.warns(VersionMismatchWarning, match="numpy 1.26.4 \\(saved\\)"):
        model = registry_copy.load("species-classifier", on_version_mismatch="warn")
    assert model.version == 1
    with pytest.raises(ValueError, match="'error' or 'warn'"):
        registry_copy.load("species-classifier", on_version_mismatch="ignore")


def test_onnx_backend_does_not_depend_on_the_scikit_learn_version(registry_copy):
    _set_saved_version(registry_copy, "species-classifier", "scikit-learn", "0.24.2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = registry_copy.load("species-classifier", backend="onnx")
    assert model.backend.name == "onnx"


def test_skops_files_load_with_the_explicit_trusted_list_only(registry):
    folder = registry.resolve("species-classifier")
    data = (folder / "model.skops").read_bytes()
    untrusted = skops.io.get_untrusted_types(data=data)
    assert untrusted, "skops should ask for at least one non-default type"
    assert set(untrusted) <= set(SKOPS_TRUSTED_TYPES)
    with pytest.raises(Exception, match="Untrusted types"):
        skops.io.loads(data)  # skops itself refuses without an explicit list
    assert registry.load("species-classifier", fmt="skops").backend.name == "sklearn"


def _not_in_the_trusted_list(x):
    return x


def test_skops_file_with_an_unexpected_type_is_refused(registry_copy):
    transformer = FunctionTransformer(_not_in_the_trusted_list)
    _replace_and_rehash(
        registry_copy, "species-classifier", "model.skops", skops.io.dumps(transformer)
    )
    with pytest.raises(UntrustedTypesError, match="_not_in_the_trusted_list"):
        registry_copy.load("species-classifier", fmt="skops")


def test_unknown_model_or_version_is_a_clear_not_found(registry):
    with pytest.raises(ModelNotFoundError, match="no model named 'nope'"):
        registry.load("nope")
    with pytest.raises(ModelNotFoundError, match="has no version 99"):
        registry.load("species-classifier", 99)
    with pytest.raises(ModelNotFoundError):
        registry.resolve("species-classifier", "../body-mass-regressor/1")


def test_latest_version_is_the_highest_number(registry_copy):
    folder = registry_copy.resolve("species-classifier")
    newer = folder.parent / "10"
    newer.mkdir()
    for item in folder.iterdir():
        (newer / item.name).write_bytes(item.read_bytes())
    manifest = json.loads((newer / "manifest.json").read_text())
    manifest["version"] = 10
    (newer / "manifest.json").write_text(json.dumps(manifest))
    sign_as_trusted(newer)
    assert registry_copy.versions("species-classifier") == [1, 10]
    assert registry_copy.load("species-classifier").version == 10


def test_manifest_records_what_a_reader_needs(registry):
    for name in MODEL_NAMES:
        data = registry.manifest(name).data
        for key in (
            "name",
            "version",
            "task",
            "created_at",
            "input_schema",
            "outputs",
            "metrics",
            "training_data",
            "environment",
            "artifacts",
        ):
            assert key in data, f"{name}: manifest lacks {key}"
        for package in ("python", "scikit-learn", "numpy", "onnx", "onnxruntime", "skops"):
            assert data["environment"][package]
        for column in data["input_schema"]["columns"]:
            assert column["type"] in ("number", "category")
            assert isinstance(column["nullable"], bool)
            if column["type"] == "number":
                assert column["minimum"] < column["maximum"]
            else:
                assert column["categories"]
        assert len(data["training_data"]["sha256"]) == 64
    classifier = registry.manifest("species-classifier")
    assert classifier.classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert classifier.data["metrics"]["test"]["accuracy"] > 0.95
    assert registry.manifest("body-mass-regressor").data["metrics"]["test"]["r2"] > 0.8
