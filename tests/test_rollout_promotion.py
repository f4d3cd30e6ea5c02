"""Versions and aliases written by the registry, promotion, rollback and their history.

Registries are private copies of the committed models; a second (and third) version of
the classifier is trained into them where a test needs one.
"""

import json
import os
import subprocess
import sys
import threading

import pytest

from apps import training
from apps.config import MODELS_DIR_ENV, REPO_ROOT
from apps.registry import IntegrityError, ModelNotFoundError, ModelRegistry, RegistryError
from apps.registry.aliases import ALIASES_FILE, CANDIDATE, PRODUCTION
from apps.rollout import promotion

CLASSIFIER = "species-classifier"


@pytest.fixture
def three_versions(registry_copy: ModelRegistry) -> ModelRegistry:
    """The copy with versions 2 and 3 of the classifier (the same recipe, new numbers)."""
    for _ in range(2):
        training.train_and_register(registry_copy, CLASSIFIER)
    return registry_copy


def cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "apps.rollout", *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def tamper(registry: ModelRegistry, version: int) -> None:
    path = registry.resolve(CLASSIFIER, version) / "model.onnx"
    path.write_bytes(path.read_bytes() + b"\0")


# --- versions: written by the registry, all or nothing ---------------------------------------


def test_a_new_version_appears_whole_or_not_at_all(registry_copy):
    files = {"model.onnx": ("onnx", b"abc")}
    with pytest.raises(RegistryError, match="cannot write"):
        registry_copy.add_version(CLASSIFIER, {**files, "sub/file": ("onnx", b"x")}, {})
    assert registry_copy.versions(CLASSIFIER) == [1]
    assert [p.name for p in (registry_copy.root / CLASSIFIER).iterdir()] == ["1"]  # no leftovers
    manifest = registry_copy.add_version(CLASSIFIER, files, {"task": "classification"})
    assert manifest.version == 2 and manifest.artifacts["model.onnx"]["bytes"] == 3
    assert manifest.artifacts["model.onnx"]["sha256"].startswith("ba7816bf")  # sha256("abc")
    with pytest.raises(RegistryError, match="exists already"):
        registry_copy.add_version(CLASSIFIER, files, {}, version=2)


def test_two_writers_get_two_versions(registry_copy):
    files = {"model.onnx": ("onnx", b"abc")}
    numbers = []

    def add() -> None:
        numbers.append(registry_copy.add_version(CLASSIFIER, files, {}).version)

    threads = [threading.Thread(target=add) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == [2, 3, 4, 5, 6, 7]
    assert registry_copy.versions(CLASSIFIER) == [1, 2, 3, 4, 5, 6, 7]


def test_training_writes_through_the_registry(registry_copy):
    manifest = training.train_and_register(registry_copy, CLASSIFIER)
    assert manifest.version == 2
    assert registry_copy.verify(CLASSIFIER, 2) == manifest
    assert sorted(p.name for p in (registry_copy.root / CLASSIFIER).iterdir()) == ["1", "2"]


# --- aliases -----------------------------------------------------------------------------------


def test_production_is_the_latest_version_until_one_is_promoted(three_versions):
    assert three_versions.production(CLASSIFIER) == 3
    assert three_versions.manifest(CLASSIFIER).version == 3
    three_versions.set_alias(CLASSIFIER, PRODUCTION, 2, "promote", "test")
    assert three_versions.production(CLASSIFIER) == 2
    assert three_versions.manifest(CLASSIFIER).version == 2  # every app's default follows
    assert three_versions.load(CLASSIFIER, backend="onnx").version == 2


def test_aliases_are_written_atomically_and_one_writer_at_a_time(three_versions):
    threads = [
        threading.Thread(
            target=three_versions.set_alias,
            args=(CLASSIFIER, CANDIDATE, 1 + i % 3, "set", f"writer {i}"),
        )
        for i in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = three_versions.aliases(CLASSIFIER).history
    assert sorted(entry["reason"] for entry in history) == sorted(f"writer {i}" for i in range(12))
    folder = three_versions.root / CLASSIFIER
    assert sorted(p.name for p in folder.iterdir()) == ["1", "2", "3", ALIASES_FILE]


def test_an_alias_points_only_at_a_version_that_exists(three_versions):
    with pytest.raises(ModelNotFoundError, match="no version 9"):
        three_versions.set_alias(CLASSIFIER, PRODUCTION, 9, "promote")
    (three_versions.root / CLASSIFIER / ALIASES_FILE).write_text(
        json.dumps({"aliases": {PRODUCTION: 7}, "history": []})
    )
    with pytest.raises(ModelNotFoundError, match="points at version 7"):
        three_versions.production(CLASSIFIER)


def test_a_broken_aliases_file_is_a_plain_error(three_versions):
    (three_versions.root / CLASSIFIER / ALIASES_FILE).write_text("{not json")
    with pytest.raises(RegistryError, match="not a valid aliases file"):
        three_versions.production(CLASSIFIER)
    done = cli("status", "--model", CLASSIFIER, "--models-dir", str(three_versions.root))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: species-classifier/aliases.json is not a valid")


# --- promotion and rollback ---------------------------------------------------------------------


def test_promote_then_roll_back_with_history(three_versions):
    three_versions.set_alias(CLASSIFIER, PRODUCTION, 1, "pin", "start")
    three_versions.set_alias(CLASSIFIER, CANDIDATE, 2, "register", "retrained")
    aliases = promotion.promote(three_versions, CLASSIFIER, reason="better")
    assert (aliases.get(PRODUCTION), aliases.get(CANDIDATE)) == (2, None)
    promotion.promote(three_versions, CLASSIFIER, 3, "better still")
    assert promotion.rollback(three_versions, CLASSIFIER, "v3 misbehaves").get(PRODUCTION) == 2
    assert promotion.rollback(three_versions, CLASSIFIER).get(PRODUCTION) == 1
    with pytest.raises(promotion.PromotionError, match="no earlier production version"):
        promotion.rollback(three_versions, CLASSIFIER)
    steps = [(e["action"], e["alias"], e["previous"], e["version"])
             for e in three_versions.aliases(CLASSIFIER).history]  # fmt: skip
    assert steps == [
        ("pin", PRODUCTION, None, 1),
        ("register", CANDIDATE, None, 2),
        ("promote", PRODUCTION, 1, 2),
        ("promote", CANDIDATE, 2, None),
        ("promote", PRODUCTION, 2, 3),
        ("rollback", PRODUCTION, 3, 2),
        ("rollback", PRODUCTION, 2, 1),
    ]
    assert all(
        entry["at"].endswith("+00:00") for entry in three_versions.aliases(CLASSIFIER).history
    )


def test_the_first_promotion_remembers_what_was_served(three_versions):
    """With no alias, the latest version (3) is served: promoting 2 must let a rollback
    return to 3, not to nothing."""
    promotion.promote(three_versions, CLASSIFIER, 2)
    assert promotion.rollback(three_versions, CLASSIFIER).get(PRODUCTION) == 3


def test_a_broken_version_is_never_promoted(three_versions):
    three_versions.set_alias(CLASSIFIER, PRODUCTION, 1, "pin")
    tamper(three_versions, 2)
    with pytest.raises(IntegrityError, match="sha256"):
        promotion.promote(three_versions, CLASSIFIER, 2)
    assert three_versions.production(CLASSIFIER) == 1
    promotion.promote(three_versions, CLASSIFIER, 3)
    tamper(three_versions, 1)
    with pytest.raises(IntegrityError):  # nor returned to by a rollback
        promotion.rollback(three_versions, CLASSIFIER)
    assert three_versions.production(CLASSIFIER) == 3


def test_the_command_line(three_versions):
    where = ("--model", CLASSIFIER, "--models-dir", str(three_versions.root))
    done = cli("promote", *where, "--version", "2", "--reason", "by hand")
    assert (done.returncode, done.stdout) == (0, "species-classifier: production is v2\n")
    done = cli("promote", *where, "--version", "2")
    assert done.returncode == 2 and "in production already" in done.stderr
    assert cli("rollback", *where).stdout == "species-classifier: production is back to v3\n"
    done = cli("promote", *where)
    assert done.returncode == 2 and "has no candidate" in done.stderr
    status = cli("status", *where).stdout.splitlines()
    assert status[:3] == ["v1", "v2", "v3  production"]
    assert "promote  production   v3 -> v2    by hand" in status[4]


def test_the_main_job_judges_the_production_version(three_versions):
    """``python -m apps`` fails when the version the apps serve fails, whichever it is."""
    env = {**os.environ, MODELS_DIR_ENV: str(three_versions.root)}

    def main_job() -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "apps"]
        return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip

    three_versions.set_alias(CLASSIFIER, PRODUCTION, 1, "promote")
    tamper(three_versions, 3)  # the latest, not in production
    done = main_job()
    assert done.returncode == 0, done.stdout
    assert "Not served, having failed its checks: species-classifier v3" in done.stdout
    tamper(three_versions, 1)  # the production version
    assert main_job().returncode == 1
