"""Signed models: the registry believes a manifest's hashes only under a trusted signature.

The attack of notebook 01: someone who can write a model folder swaps ``model.joblib``
for a pickle that runs code, and re-pins its sha256 in ``manifest.json``. Hashes alone
let it through (the control below runs the payload); a signature does not. Also: an
unsigned version, one signed with the attacker's own key, a signature that was edited,
a signed version moved to another folder, and no trusted key at all; through the
registry, through the API's readiness on a real server, and the learner's own flow:
retrain, sign with a key made on first use, serve.
"""

import base64
import contextlib
import json
import os
import pickle
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from apps.registry import IntegrityError, ModelRegistry, SignatureError
from apps.registry.manifest import Manifest, sha256_bytes
from apps.registry.signing import (
    SIGNATURE_FILE,
    TRUSTED_KEYS_DIR,
    Trust,
    key_id,
    new_key_pair,
    read_public_key,
    sign_version,
)

from .conftest import MODEL_NAMES
from .servers import running_api
from .test_stack import course_copy, course_start, wait_until_up  # noqa: F401 - a fixture

COURSE_KEY = TRUSTED_KEYS_DIR / "course.pub"
NAME = "species-classifier"


class Payload:
    """A pickle that creates a marker file when loaded: harmless proof of code execution."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def course_trust() -> Trust:
    """Only the committed course key: what a fresh clone trusts."""
    return Trust.from_paths([COURSE_KEY])


@pytest.fixture
def attacked(tmp_path) -> ModelRegistry:
    """A copy of the committed models, trusting the course key only."""
    shutil.copytree(TRUSTED_KEYS_DIR.parent / "models", tmp_path / "models")
    return ModelRegistry(tmp_path / "models", trust=course_trust())


def repin(registry: ModelRegistry, payload: bytes) -> Path:
    """The attack: swap model.joblib and write its new sha256 into the manifest."""
    folder = registry.resolve(NAME)
    (folder / "model.joblib").write_bytes(payload)
    manifest = Manifest.read(folder)
    manifest.artifacts["model.joblib"]["sha256"] = sha256_bytes(payload)
    manifest.artifacts["model.joblib"]["bytes"] = len(payload)
    manifest.write(folder)
    return folder


def test_the_committed_models_are_signed_by_the_course_key(registry):
    trust = course_trust()
    for name in MODEL_NAMES:
        folder = registry.resolve(name)
        signer = trust.check((folder / "manifest.json").read_bytes(), folder / SIGNATURE_FILE, name)
        assert signer == key_id(read_public_key(COURSE_KEY))
        ModelRegistry(registry.root, trust=trust).verify(name)


def test_the_signature_is_plain_ed25519_that_openssl_checks(registry, tmp_path):
    """Anyone can check a signature without our code: it is Ed25519 over the file's bytes."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    folder = registry.resolve(NAME)
    signature = json.loads((folder / SIGNATURE_FILE).read_text())["signature"]
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(signature))
    command = [openssl, "pkeyutl", "-verify", "-pubin", "-inkey", str(COURSE_KEY), "-rawin"]
    command += ["-in", str(folder / "manifest.json"), "-sigfile", str(tmp_path / "sig.bin")]
    checked = subprocess.run(command, capture_output=True, text=True, check=False)
    assert checked.returncode == 0 and "Verified Successfully" in checked.stdout, checked


def test_re_pinned_hashes_are_refused_before_any_byte_is_unpickled(attacked, tmp_path):
    marker = tmp_path / "payload-ran"
    folder = repin(attacked, pickle.dumps(Payload(marker)))
    with pytest.raises(SignatureError, match="does not match the manifest"):
        attacked.load(NAME, fmt="joblib")
    with pytest.raises(SignatureError):
        attacked.verify(NAME)
    assert not marker.exists()

    # Control: with hashes only (no signature checked), the same attack runs its code.
    hashes_only = ModelRegistry(attacked.root, trust=Trust.off())
    with contextlib.suppress(Exception):  # what it returns is no model: the harm is done
        hashes_only.load(NAME, fmt="joblib")
    assert marker.exists(), "the control did not unpickle the payload"
    assert (folder / SIGNATURE_FILE).is_file()


def test_the_attackers_own_signature_is_not_trusted(attacked, tmp_path):
    folder = repin(attacked, pickle.dumps(Payload(tmp_path / "payload-ran")))
    own = new_key_pair(tmp_path / "attacker.pem", tmp_path / "attacker.pub")
    sign_version(folder, own)
    with pytest.raises(SignatureError, match=rf"signed by {key_id(own.public_key())}, a key"):
        attacked.load(NAME, fmt="joblib")
    assert not (tmp_path / "payload-ran").exists()
    # The error names the keys that are trusted, so the operator can tell them apart.
    with pytest.raises(SignatureError, match=r"trusted: course\.pub \(ed25519:"):
        attacked.verify(NAME)


def test_an_unsigned_version_is_refused(attacked):
    (attacked.resolve(NAME) / SIGNATURE_FILE).unlink()
    with pytest.raises(SignatureError, match=r"is not signed \(manifest.sig is missing\)"):
        attacked.load(NAME, backend="onnx")
    with pytest.raises(SignatureError):
        attacked.manifest(NAME)  # even its metadata is not believed


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: {**s, "signature": base64.b64encode(bytes(64)).decode()},
        lambda s: {**s, "signature": s["signature"][:-4] + "AAA="},
    ],
    ids=["zeroed", "last-bytes"],
)
def test_a_tampered_signature_is_refused(attacked, edit):
    path = attacked.resolve(NAME) / SIGNATURE_FILE
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    with pytest.raises(SignatureError, match="does not match the manifest"):
        attacked.load(NAME, backend="onnx")


@pytest.mark.parametrize(
    "content", [b"", b"not json", b'{"algorithm": "rsa", "key_id": "x", "signature": ""}']
)
def test_a_signature_file_that_is_no_signature_is_refused(attacked, content):
    (attacked.resolve(NAME) / SIGNATURE_FILE).write_bytes(content)
    with pytest.raises(SignatureError, match=r"manifest\.sig is not a signature"):
        attacked.verify(NAME)


def test_a_signed_version_moved_to_another_folder_is_refused(attacked):
    """A genuine old version, copied as the newest: the manifest names its own place."""
    folder = attacked.resolve(NAME)
    shutil.copytree(folder, folder.parent / "2")
    with pytest.raises(IntegrityError, match=r"holds the manifest of species-classifier v1"):
        attacked.load(NAME, backend="onnx")


def test_no_trusted_key_refuses_everything_and_none_checks_hashes_only(tmp_path, registry):
    (tmp_path / "empty").mkdir()
    nobody = ModelRegistry(registry.root, trust=Trust.from_paths([tmp_path / "empty"]))
    with pytest.raises(SignatureError, match="no trusted public key was found"):
        nobody.verify(NAME)
    unsigned = tmp_path / "models"
    shutil.copytree(registry.root, unsigned)
    for name in MODEL_NAMES:
        (unsigned / name / "1" / SIGNATURE_FILE).unlink()
    assert ModelRegistry(unsigned, trust=Trust.off()).verify(NAME).name == NAME


def test_trust_comes_from_the_environment(monkeypatch, tmp_path):
    new_key_pair(tmp_path / "k.pem", tmp_path / "team.pub")
    monkeypatch.setenv("PENGUINS_TRUSTED_KEYS", os.pathsep.join([str(COURSE_KEY), str(tmp_path)]))
    assert sorted(Trust.from_environment().names.values()) == ["course.pub", "team.pub"]
    monkeypatch.setenv("PENGUINS_TRUSTED_KEYS", "none")
    assert not Trust.from_environment().required
    (tmp_path / "broken.pub").write_text("not a key")
    monkeypatch.setenv("PENGUINS_TRUSTED_KEYS", str(tmp_path))
    with pytest.raises(SignatureError, match=r"cannot read the trusted key broken\.pub"):
        Trust.from_environment()


# --- the API's readiness, on a real server --------------------------------------------


def attack(kind: str, registry: ModelRegistry, tmp_path: Path) -> None:
    folder = registry.resolve(NAME)
    if kind == "re-pinned":
        repin(registry, pickle.dumps(Payload(tmp_path / "payload-ran")))
    elif kind == "unsigned":
        (folder / SIGNATURE_FILE).unlink()
    elif kind == "wrong-key":
        sign_version(folder, new_key_pair(tmp_path / "a.pem", tmp_path / "a.pub"))
    elif kind == "tampered-signature":
        signature = json.loads((folder / SIGNATURE_FILE).read_text())
        signature["signature"] = base64.b64encode(bytes(64)).decode()
        (folder / SIGNATURE_FILE).write_text(json.dumps(signature))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("good", None),
        ("re-pinned", "does not match the manifest"),
        ("unsigned", "is not signed"),
        ("wrong-key", "a key that is not trusted here"),
        ("tampered-signature", "does not match the manifest"),
    ],
)
def test_the_api_is_not_ready_with_a_version_no_trusted_key_signed(
    attacked, tmp_path, kind, problem
):
    attack(kind, attacked, tmp_path)
    env = {"API_MODELS_DIR": str(attacked.root), "PENGUINS_TRUSTED_KEYS": str(COURSE_KEY)}
    with running_api(env) as url:
        ready = requests.get(f"{url}/health/ready", timeout=10)
        predict = requests.post(
            f"{url}/v1/models/{NAME}/predict", json={"record": {"island": "Dream"}}, timeout=10
        )
    if problem is None:
        assert ready.status_code == 200, ready.text
        return
    assert ready.status_code == 503
    (reported,) = [p for p in ready.json()["problems"] if NAME in p]
    assert problem in reported and str(tmp_path) not in reported  # no server paths
    assert predict.status_code in (404, 503)
    assert not (tmp_path / "payload-ran").exists()


# --- the learner's flow, as the README tells it -----------------------------------------


def learner_run(command: str, root: Path, expect: int = 0) -> subprocess.CompletedProcess:
    """A command typed at the clone's root by a learner with no course settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PENGUINS_")}
    result = subprocess.run(  # noqa: S602 - a shell, exactly as the learner types it
        command, shell=True, cwd=root, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == expect, f"`{command}`:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_a_learner_retrains_signs_with_a_key_of_their_own_and_serves_it(course_copy):  # noqa: F811
    root = course_copy
    trained = learner_run("python3 course.py train species-classifier", root)
    assert "made a signing key for this machine: secrets/model_signing_key.pem" in trained.stdout
    assert "saved species-classifier v2" in trained.stdout and "warning" not in trained.stdout
    (local,) = (root / "trusted_keys").glob("local-*.pub")
    assert (root / "models" / NAME / "2" / SIGNATURE_FILE).is_file()
    # Git sees the new version, never the private key nor the machine's own public key.
    status = learner_run("git status --porcelain --untracked-files=all", root).stdout
    assert "models/species-classifier/2/manifest.sig" in status
    assert "secrets" not in status and "local-" not in status

    # A second training uses the same key, and says nothing about it.
    again = learner_run("python3 course.py train species-classifier", root)
    assert "made a signing key" not in again.stdout
    assert "saved species-classifier v3" in again.stdout
    assert (
        "species-classifier   3        verified"
        in learner_run(".venv/bin/python -m apps", root).stdout
    )

    # `course.py start` serves it (the stack's API reads the clone's trusted_keys/).
    clone = {"PENGUINS_TRUSTED_KEYS": str(root / "trusted_keys"), "PENGUINS_SIGNING_KEY": ""}
    with course_start(root=root, env=clone) as stack:
        wait_until_up(stack)
        ready = requests.get(f"http://127.0.0.1:{stack.api_port}/health/ready", timeout=5)
        os.kill(stack.process.pid, signal.SIGTERM)
        stack.process.wait(timeout=60)
    assert ready.json()["models"] == {"body-mass-regressor": 1, NAME: 3}

    # Another machine, which trusts the course key only, refuses the learner's versions.
    local.unlink()
    refused = learner_run(".venv/bin/python -m apps", root, expect=1).stdout
    assert "species-classifier   3        FAILED" in refused and "not trusted here" in refused
