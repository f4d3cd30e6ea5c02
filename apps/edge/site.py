"""The edge page as a set of files: one layout for the API and for any static host.

The API serves these files under ``/edge/``; ``python -m apps.edge site DIR`` writes the
same files into a folder for a static host (GitHub Pages, a static Hugging Face Space,
any web server). The page finds everything by relative URL, so both work alike::

    index.html app.js model.js style.css     the page (this package's folder)
    ort/                                     onnxruntime-web (apps.edge.runtime)
    models.json                              the models the page offers
    models/<name>/<version>/manifest.json    each model's manifest,
    models/<name>/<version>/model.onnx       and its ONNX file: nothing else of it
"""

import json
import logging
from pathlib import Path

from apps.edge import runtime
from apps.registry import ModelRegistry, RegistryError
from apps.registry.manifest import MANIFEST_FILE

log = logging.getLogger(__name__)

PAGE_DIR = Path(__file__).resolve().parent
PAGE_FILES = ("index.html", "app.js", "model.js", "style.css")
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",  # lets the browser compile it while it downloads
    ".txt": "text/plain; charset=utf-8",
}
"""Media types by extension. Browsers run a module script only with a JavaScript type,
and Python's ``mimetypes`` does not know ``.mjs`` everywhere, so they are set here."""


def media_type(name: str) -> str:
    """The Content-Type of a file of the site (``application/octet-stream`` by default)."""
    return MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream")


def page_files() -> dict[str, Path]:
    """The page itself: HTML, its two JavaScript modules and its style sheet."""
    return {name: PAGE_DIR / name for name in PAGE_FILES}


def runtime_files(folder: Path = runtime.RUNTIME_DIR) -> dict[str, Path]:
    """onnxruntime-web under ``ort/``; raises ``RuntimeMissing`` if it is not installed."""
    return {f"ort/{name}": path for name, path in runtime.installed_files(folder).items()}


def all_versions(registry: ModelRegistry, names: list[str] | None = None) -> list[tuple[str, int]]:
    """Every version of the named models (all models by default), as (name, version)."""
    return [(name, v) for name in names or registry.names() for v in registry.versions(name)]


def model_files(
    registry: ModelRegistry, versions: list[tuple[str, int]], skip_faulty: bool = False
) -> dict[str, bytes]:
    """Each version's manifest and ONNX file, and ``models.json`` that lists them.

    A version is offered only if the registry verifies its whole folder first (every
    file matches the manifest, nothing unlisted lies there) and it has an ONNX file; the
    bytes are then read once. A fault raises, or with ``skip_faulty`` leaves that
    version out with a warning. The page checks the ONNX file against the manifest
    again, in the browser: the network in between could change it too. The joblib and
    skops files are never part of the site: a browser cannot use them, and a pickle
    has no business outside the server.
    """
    files, index = {}, []
    for name, version in versions:
        try:
            manifest = registry.verify(name, version)
            onnx_name = manifest.artifact_for("onnx")
        except (RegistryError, KeyError) as error:
            if not skip_faulty:
                raise
            log.warning("%s v%s is left out of the edge page: %s", name, version, error)
            continue
        folder, prefix = registry.resolve(name, version), f"models/{name}/{version}/"
        files[prefix + MANIFEST_FILE] = (folder / MANIFEST_FILE).read_bytes()
        files[prefix + onnx_name] = (folder / onnx_name).read_bytes()
        index.append({"name": name, "version": version, "task": manifest.task, "path": prefix})
    files["models.json"] = (json.dumps({"models": index}, indent=2) + "\n").encode()
    return files


def site_files(
    registry: ModelRegistry,
    versions: list[tuple[str, int]],
    runtime_dir: Path = runtime.RUNTIME_DIR,
) -> dict[str, Path | bytes]:
    """Every file of the site, by its path in the site: on disk (a Path) or in memory."""
    return {**page_files(), **runtime_files(runtime_dir), **model_files(registry, versions)}


def write_site(folder: Path, files: dict[str, Path | bytes]) -> int:
    """Write the site into ``folder`` (new or empty); return the number of bytes written.

    ``.nojekyll`` tells GitHub Pages to publish the files as they are.
    """
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty: choose a new or empty folder")
    total = 0
    for name, content in {**files, ".nojekyll": b""}.items():
        data = content.read_bytes() if isinstance(content, Path) else content
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        total += len(data)
    return total
