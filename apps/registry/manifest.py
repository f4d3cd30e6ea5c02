"""The manifest: what a model is, what it expects, and the fingerprints of its files.

A manifest is plain JSON next to the model files, readable by people and by any
language. It pins the sha256 of every file, so nothing is deserialized before its bytes
are known to be the ones that were saved.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

MANIFEST_FILE = "manifest.json"


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of some bytes: the fingerprint pinned in the manifest."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """A parsed ``manifest.json``; ``data`` keeps the full document for display."""

    data: dict

    @classmethod
    def read(cls, version_dir: Path) -> "Manifest":
        """Read the manifest in a model version folder."""
        return cls(json.loads((version_dir / MANIFEST_FILE).read_text(encoding="utf-8")))

    def write(self, version_dir: Path) -> None:
        """Write the manifest with sorted keys and a final newline, so diffs stay small."""
        text = json.dumps(self.data, indent=2, sort_keys=True) + "\n"
        (version_dir / MANIFEST_FILE).write_text(text, encoding="utf-8")

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def version(self) -> int:
        return int(self.data["version"])

    @property
    def task(self) -> str:
        """``classification`` or ``regression``."""
        return self.data["task"]

    @property
    def classes(self) -> list[str]:
        """Class labels in the order of the probability columns (empty for regression)."""
        return list(self.data["outputs"].get("classes", []))

    @property
    def input_columns(self) -> list[dict]:
        return self.data["input_schema"]["columns"]

    @property
    def artifacts(self) -> dict[str, dict]:
        """File name -> ``{"format", "sha256", "bytes"}`` for every model file."""
        return self.data["artifacts"]

    @property
    def environment(self) -> dict[str, str]:
        """Versions of Python and the libraries the model was saved with."""
        return self.data["environment"]

    def artifact_for(self, fmt: str) -> str:
        """Name of the file saved in format ``fmt`` (``joblib``, ``skops`` or ``onnx``)."""
        for file_name, entry in self.artifacts.items():
            if entry["format"] == fmt:
                return file_name
        raise KeyError(f"model {self.name} v{self.version} has no {fmt} file")
