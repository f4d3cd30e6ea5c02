"""``python -m apps``: make sure the models are present and verified, and show them.

This is the course's main job in its first form; it is what ``python course.py start``
runs. A model that is missing is trained; a model whose files do not match their
manifest is reported and the command fails, so a broken set-up never goes unnoticed.
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


def describe(registry: ModelRegistry) -> tuple[list[list[str]], bool]:
    """One row per model version: verified or not, task, formats and held-out metrics."""
    rows, all_ok = [], True
    for name in registry.names():
        for version in registry.versions(name):
            try:
                manifest = registry.verify(name, version)
                registry.load(name, version, backend="onnx")
                registry.load(name, version, backend="sklearn")
            except RegistryError as error:
                rows.append([name, str(version), "FAILED", "", "", str(error)])
                all_ok = False
                continue
            scores = ", ".join(f"{k}={v:.3f}" for k, v in manifest.data["metrics"]["test"].items())
            formats = "+".join(entry["format"] for entry in manifest.artifacts.values())
            rows.append([name, str(version), "verified", manifest.task, formats, scores])
    return rows, all_ok


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
    """Train any missing model, verify every version, print the table; True if all pass."""
    registry = ModelRegistry()
    ensure_models(registry)
    rows, all_ok = describe(registry)
    print(f"Model registry: {display_path(registry.root)}\n")
    print_table(["model", "version", "status", "task", "formats", "held-out metrics"], rows)
    return all_ok


def main() -> int:
    """Check the registry and print what is in it; exit 1 if any model fails its checks."""
    return 0 if check_models() else 1


if __name__ == "__main__":
    sys.exit(main())
