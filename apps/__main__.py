"""``python -m apps``: make sure the models are present and verified, and show them.

``python3 course.py start`` runs this check too (``apps.stack`` calls ``check_models``)
before starting the apps. A model that is missing is trained; a version whose files do
not match their manifest is reported. The command fails when the production version of
a model fails (its ``production`` alias, or its latest version until one is promoted),
since that is the version the apps serve: a broken set-up never goes unnoticed. Another
version that fails is reported too, and left out: after a new version is trained, an
old broken one does not block the apps.
"""

import os
import sys
from pathlib import Path

from apps import training
from apps.registry import ModelRegistry, RegistryError


def ensure_models(registry: ModelRegistry) -> None:
    """Train version 1 of any course model that the registry does not have yet."""
    for name in training.SPECS:
        if name not in registry.names():
            print(f"{name}: not in {registry.root}, training version 1 ...")
            training.train_and_register(registry, name, 1)


def describe(registry: ModelRegistry) -> tuple[list[list[str]], list[tuple[str, int]]]:
    """One row per model version (verified or not, task, formats, held-out metrics), and
    the versions that failed."""
    rows, failed = [], []
    for name in registry.names():
        for version in registry.versions(name):
            try:
                manifest = registry.verify(name, version)
                registry.load(name, version, backend="onnx")
                registry.load(name, version, backend="sklearn")
            except RegistryError as error:
                rows.append([name, str(version), "FAILED", "", "", str(error)])
                failed.append((name, version))
                continue
            scores = ", ".join(f"{k}={v:.3f}" for k, v in manifest.data["metrics"]["test"].items())
            formats = "+".join(entry["format"] for entry in manifest.artifacts.values())
            rows.append([name, str(version), "verified", manifest.task, formats, scores])
    return rows, failed


def display_path(path: Path) -> str:
    """The path relative to the working directory when it can be, as a learner would type it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # Windows: another drive
        return str(path)


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Print rows as an aligned plain-text table."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def check_models() -> bool:
    """Train any missing model, verify every version, print the table; True if the production
    version of every model passes (the apps serve those, and leave failed others out)."""
    registry = ModelRegistry()
    ensure_models(registry)
    rows, failed = describe(registry)
    print(f"Model registry: {display_path(registry.root)}\n")
    print_table(["model", "version", "status", "task", "formats", "held-out metrics"], rows)
    others = [(n, v) for n, v in failed if v != registry.production(n)]
    if others:
        listed = ", ".join(f"{name} v{version}" for name, version in others)
        print(f"\nNot served, having failed its checks: {listed}. The production versions passed.")
    return len(others) == len(failed)


def main() -> int:
    """Check the registry and print what is in it; exit 1 if any model fails its checks."""
    return 0 if check_models() else 1


if __name__ == "__main__":
    sys.exit(main())
