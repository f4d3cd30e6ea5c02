"""The cloud recipes' configuration files, checked offline (no account, no network).

The committed files must pass :mod:`apps.edge.cloud`'s checks, and each check must catch
the mistake it is there for: a broken copy of a file has to be reported, or the check
proves nothing.
"""

import re

import pytest
import yaml

from apps.config import REPO_ROOT
from apps.edge import cloud


def test_the_committed_cloud_files_pass_their_checks():
    assert cloud.check_cloud_run() == []
    assert cloud.check_space_card() == []


def test_the_image_cloud_run_runs_is_the_lean_image_we_build():
    compose = yaml.safe_load((REPO_ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8"))
    template = compose["services"]["api"]["image"]  # penguins-api:${API_VARIANT:-full}
    built = re.sub(r"\$\{API_VARIANT(:-\w+)?\}", "onnx", template)
    assert built == cloud.LEAN_IMAGE
    service = yaml.safe_load(cloud.CLOUD_RUN_FILE.read_text(encoding="utf-8"))
    image = service["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"REGION-docker.pkg.dev/PROJECT_ID/penguins/{cloud.LEAN_IMAGE}"


def mutate_service(tmp_path, change) -> list[str]:
    """Check a copy of the Cloud Run file after ``change(document)`` edits it."""
    document = yaml.safe_load(cloud.CLOUD_RUN_FILE.read_text(encoding="utf-8"))
    change(document)
    path = tmp_path / "cloudrun.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return cloud.check_cloud_run(path)


def container(document) -> dict:
    return document["spec"]["template"]["spec"]["containers"][0]


def env(document) -> dict:
    return {entry["name"]: entry for entry in container(document)["env"]}


def annotations(document) -> dict:
    return document["spec"]["template"]["metadata"]["annotations"]


MISTAKES = {
    "a port the API does not listen on": (
        lambda d: container(d)["ports"][0].update(containerPort=8080),
        "containerPort must be 8000",
    ),
    "the full image": (
        lambda d: container(d).update(image="europe-docker.pkg.dev/p/r/penguins-api:full"),
        "image must be .../penguins-api:onnx",
    ),
    "scikit-learn on the lean image": (
        lambda d: env(d)["API_BACKEND"].update(value="sklearn"),
        "API_BACKEND must be onnx",
    ),
    "a key written in the file": (
        lambda d: env(d)["API_KEYS"].update(value="s3cret"),
        "API_KEYS must never be written in this file",
    ),
    "a PORT variable": (
        lambda d: container(d)["env"].append({"name": "PORT", "value": "8000"}),
        "env must not set PORT",
    ),
    "no scale to zero": (
        lambda d: annotations(d).update({"autoscaling.knative.dev/minScale": "1"}),
        'minScale must be "0"',
    ),
    "an unquoted annotation": (
        lambda d: annotations(d).update({"autoscaling.knative.dev/maxScale": 3}),
        "annotation autoscaling.knative.dev/maxScale must be a string",
    ),
    "too little memory": (
        lambda d: container(d)["resources"]["limits"].update(memory="128Mi"),
        "the memory limit must be at least 256Mi",
    ),
    "more concurrency than gunicorn has threads": (
        lambda d: d["spec"]["template"]["spec"].update(containerConcurrency=80),
        "containerConcurrency must be 8",
    ),
    "a liveness probe on a route that does not exist": (
        lambda d: container(d)["livenessProbe"]["httpGet"].update(path="/healthz"),
        "livenessProbe must GET an open route of the API",
    ),
    "a startup probe on a route that needs a key": (
        lambda d: container(d)["startupProbe"]["httpGet"].update(path="/v1/models"),
        "startupProbe must GET an open route of the API",
    ),
    "a startup probe that does not wait for the models": (
        lambda d: container(d)["startupProbe"]["httpGet"].update(path="/health/live"),
        "startupProbe must GET /health/ready",
    ),
    "two containers": (
        lambda d: d["spec"]["template"]["spec"]["containers"].append({"image": "x"}),
        "exactly one container",
    ),
    "another kind of object": (lambda d: d.update(kind="Deployment"), "kind must be Service"),
    # Malformed files are reported, not a crash of the checker (AttributeError before).
    "annotations written as a list": (
        lambda d: d["spec"]["template"]["metadata"].update(annotations=["minScale=0"]),
        'minScale must be "0"',
    ),
    "env written as a mapping of names to values": (
        lambda d: container(d).update(env={"API_BACKEND": "onnx"}),
        "API_BACKEND must be onnx",
    ),
    "a container written as a name": (
        lambda d: d["spec"]["template"]["spec"].update(containers=["penguins-api"]),
        "image must be",
    ),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_in_the_cloud_run_file_is_caught(tmp_path, mistake):
    change, expected = MISTAKES[mistake]
    problems = mutate_service(tmp_path, change)
    assert any(expected in problem for problem in problems), problems


def mutate_card(tmp_path, old: str, new: str) -> list[str]:
    text = cloud.SPACE_CARD.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "README.md"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return cloud.check_space_card(path)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("sdk: docker", "sdk: streamlit", "sdk must be docker"),
        ("app_port: 8501", "app_port: 7860", "app_port must be 8501"),
        ("colorFrom: blue", "colorFrom: orange", "colorFrom must be one of"),
        ("title: Penguins UI\n", "", "title is required"),
        ("---\ntitle", "title", "must start with its settings in YAML"),
    ],
)
def test_each_mistake_in_the_space_card_is_caught(tmp_path, old, new, expected):
    problems = mutate_card(tmp_path, old, new)
    assert any(expected in problem for problem in problems), problems


def test_the_assembled_space_holds_everything_its_dockerfile_copies(tmp_path):
    names = cloud.write_space(tmp_path / "space")
    assert {"README.md", "Dockerfile", "hashes/requirements-ui.txt", "apps/ui/app.py"} <= set(names)
    assert not [name for name in names if "__pycache__" in name or name.startswith("models/")]
    assert (tmp_path / "space" / "Dockerfile").read_bytes() == cloud.UI_DOCKERFILE.read_bytes()
    assert cloud.check_space_folder(tmp_path / "space") == []
    (tmp_path / "space" / "hashes" / "requirements-ui.txt").unlink()
    assert cloud.check_space_folder(tmp_path / "space") == [
        "the Dockerfile copies hashes/requirements-ui.txt, which the Space lacks"
    ]
    with pytest.raises(FileExistsError, match="is not empty"):
        cloud.write_space(tmp_path / "space")
