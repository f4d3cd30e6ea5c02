"""The cloud recipes of notebook 10: their files checked offline, and a Space for the UI.

Nothing here talks to a cloud: deploying needs an account and is done by hand, following
the notebook. What can be checked without an account is checked here (and by
``tests/test_cloud_configs.py``): the files parse, the keys the platforms require are
there, the image is the one we build, and ports, health routes, concurrency and memory
agree with the API, its Dockerfile and its measured needs. Each check returns a list of
problems, empty when all is well.
"""

import re
from pathlib import Path

from apps.config import REPO_ROOT

DOCKER_DIR = REPO_ROOT / "docker"
CLOUD_RUN_FILE = DOCKER_DIR / "cloudrun.yaml"
SPACE_CARD = DOCKER_DIR / "hf-space-README.md"
API_DOCKERFILE = DOCKER_DIR / "api.Dockerfile"
UI_DOCKERFILE = DOCKER_DIR / "ui.Dockerfile"
LEAN_IMAGE = "penguins-api:onnx"
"""The lean API image, as ``docker/compose.yaml`` tags it (``penguins-api:${API_VARIANT}``)."""
MIN_MEMORY_MIB = 256
"""Memory an instance needs at least: notebook 10 measured the lean API (two workers)."""
SPACE_COLORS = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


def dockerfile_settings(path: Path) -> tuple[set[int], dict[str, str], list[str]]:
    """What a Dockerfile EXPOSEs, the variables its ENV lines set, and its COPY sources.

    Only what the checks need, from our own Dockerfiles: ``KEY=value`` ENV pairs, and
    COPY sources from the build context (not those ``--from`` another stage).
    """
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    ports: set[int] = set()
    env: dict[str, str] = {}
    copies: list[str] = []
    for words in map(str.split, text.splitlines()):
        instruction = words[0].upper() if words else ""
        if instruction == "EXPOSE":
            ports.update(int(word.split("/")[0]) for word in words[1:])
        elif instruction == "ENV":
            pairs = (word.partition("=") for word in words[1:] if "=" in word)
            env.update((key, value) for key, _, value in pairs)
        elif instruction == "COPY" and not any(w.startswith("--from") for w in words):
            copies += [word for word in words[1:-1] if not word.startswith("--")]
    return ports, env, copies


def _get(mapping: object, *keys: str) -> object:
    """``mapping[k1][k2]...``, or None where a key is missing or a level is no mapping."""
    for key in keys:
        mapping = mapping.get(key) if isinstance(mapping, dict) else None
    return mapping


def _mapping(value: object) -> dict:
    """``value`` if it is a mapping, else an empty one: a malformed file is reported, not fatal."""
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    """``value`` if it is a list, else an empty one: a malformed file is reported, not fatal."""
    return value if isinstance(value, list) else []


def mebibytes(quantity: object) -> float | None:
    """A Kubernetes memory quantity (``512Mi``, ``1Gi``, ``600M``) in MiB; None if invalid."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)", str(quantity))
    if not match:
        return None
    factor = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 1e3, "M": 1e6, "G": 1e9}
    return float(match[1]) * factor[match[2]] / 2**20


def open_routes(paths: list[str]) -> set[str]:
    """Which of ``paths`` the real API answers with 200 while it requires API keys.

    A platform's health probe carries no key: a probe on a protected route, or on a
    route that does not exist, would fail and the instance would never get traffic.
    """
    from apps.api.app import create_app

    client = create_app({"API_KEYS": ("a-key-no-probe-has",)}).test_client()
    return {path for path in paths if client.get(path).status_code == 200}


def check_cloud_run(path: Path = CLOUD_RUN_FILE) -> list[str]:
    """Problems of the Cloud Run service file (Knative Serving v1 YAML), if any."""
    import yaml

    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    notes = _mapping(_get(doc, "spec", "template", "metadata", "annotations"))
    scale = "autoscaling.knative.dev/"
    checks = [
        (
            _get(doc, "apiVersion") == "serving.knative.dev/v1",
            "apiVersion must be serving.knative.dev/v1",
        ),
        (_get(doc, "kind") == "Service", "kind must be Service"),
        (
            DNS_LABEL.fullmatch(str(_get(doc, "metadata", "name"))),
            "metadata.name must be a DNS label",
        ),
        (notes.get(scale + "minScale") == "0", 'minScale must be "0", to scale to zero'),
        (str(notes.get(scale + "maxScale")).isdigit(), "maxScale must cap the instances"),
    ]
    checks += [
        (isinstance(v, str), f"annotation {k} must be a string: quote it") for k, v in notes.items()
    ]
    spec = _mapping(_get(doc, "spec", "template", "spec"))
    containers = _list(spec.get("containers"))
    checks.append((len(containers) == 1, "spec.template.spec must have exactly one container"))
    problems = [problem for ok, problem in checks if not ok]
    if len(containers) != 1:
        return problems
    return problems + _check_api_container(_mapping(containers[0]), spec)


def _check_api_container(container: dict, spec: dict) -> list[str]:
    """The container of the Cloud Run service against the lean image and the real API."""
    ports, image_env, _ = dockerfile_settings(API_DOCKERFILE)
    port = int(image_env["API_PORT"])
    env = {entry.get("name"): entry for entry in map(_mapping, _list(container.get("env")))}
    value = {name: str(entry.get("value", "")) for name, entry in env.items()}
    slots = int(value.get("API_WORKERS") or 2) * int(value.get("API_THREADS") or 4)
    memory = mebibytes(_get(container, "resources", "limits", "memory")) or 0
    probes = {
        kind: _mapping(_get(container, kind, "httpGet"))
        for kind in ("startupProbe", "livenessProbe")
    }
    answering = open_routes([probe.get("path", "") for probe in probes.values()])
    checks = [
        (str(container.get("image")).endswith(f"/{LEAN_IMAGE}"), f"image must be .../{LEAN_IMAGE}"),
        (
            [_get(p, "containerPort") for p in _list(container.get("ports"))] == [port]
            and port in ports,
            f"containerPort must be {port}, the image's API_PORT",
        ),
        ("PORT" not in env, "env must not set PORT: Cloud Run sets it"),
        (
            value.get("API_BACKEND") == "onnx",
            "API_BACKEND must be onnx: the lean image has no sklearn",
        ),
        (
            _get(env, "API_KEYS", "valueFrom", "secretKeyRef"),
            "API_KEYS must come from a secretKeyRef",
        ),
        ("value" not in env.get("API_KEYS", {}), "API_KEYS must never be written in this file"),
        (
            spec.get("containerConcurrency") == slots,
            f"containerConcurrency must be {slots}, API_WORKERS x API_THREADS",
        ),
        (memory >= MIN_MEMORY_MIB, f"the memory limit must be at least {MIN_MEMORY_MIB}Mi"),
        (
            probes["startupProbe"].get("path") == "/health/ready",
            "startupProbe must GET /health/ready: traffic once the models are verified",
        ),
    ]
    for kind, probe in probes.items():
        checks.append((probe.get("path") in answering, f"{kind} must GET an open route of the API"))
        checks.append((probe.get("port", port) == port, f"{kind} must use port {port}"))
    return [problem for ok, problem in checks if not ok]


def check_space_card(path: Path = SPACE_CARD) -> list[str]:
    """Problems of the Space's ``README.md``, whose YAML header configures the Space."""
    import yaml

    header = re.match(r"---\n(.*?)\n---\n", path.read_text(encoding="utf-8"), re.DOTALL)
    if not header:
        return ["the card must start with its settings in YAML, between two --- lines"]
    card = yaml.safe_load(header[1]) or {}
    ports, image_env, _ = dockerfile_settings(UI_DOCKERFILE)
    port = int(image_env["STREAMLIT_SERVER_PORT"])
    checks = [
        (card.get("sdk") == "docker", "sdk must be docker: the Space builds our Dockerfile"),
        (card.get("app_port") == port and port in ports, f"app_port must be {port}, the UI's port"),
        (isinstance(card.get("title"), str) and card["title"], "title is required"),
        (isinstance(card.get("emoji"), str), "emoji is required"),
        (card.get("colorFrom") in SPACE_COLORS, f"colorFrom must be one of {SPACE_COLORS}"),
        (card.get("colorTo") in SPACE_COLORS, f"colorTo must be one of {SPACE_COLORS}"),
    ]
    return [problem for ok, problem in checks if not ok]


def space_files() -> dict[str, Path]:
    """The Space's repository: the card, the UI's Dockerfile, and what the Dockerfile copies.

    The Dockerfile is used as it is, at the root of the Space (where Spaces look for it),
    so the files it copies keep their paths in the repository, which it builds from.
    """
    files = {"README.md": SPACE_CARD, "Dockerfile": UI_DOCKERFILE}
    for source in dockerfile_settings(UI_DOCKERFILE)[2]:
        path = REPO_ROOT / source
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in found:
            if "__pycache__" not in file.parts:
                files[file.relative_to(REPO_ROOT).as_posix()] = file
    return files


def check_space_folder(folder: Path) -> list[str]:
    """Problems of an assembled Space: every file the Dockerfile copies must be in it."""
    sources = dockerfile_settings(folder / "Dockerfile")[2]
    missing = [source for source in sources if not (folder / source).exists()]
    return [f"the Dockerfile copies {source}, which the Space lacks" for source in missing]


def write_space(folder: Path) -> list[str]:
    """Write the Space into ``folder`` (new or empty); return its files' paths."""
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty: choose a new or empty folder")
    files = space_files()
    for name, source in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(source.read_bytes())
    return sorted(files)
