"""The edge page's server side: what ``/edge/`` serves, and what it never serves.

Flask's test client against the real app (``create_app``), the real registry and the
runtime that the set-up installed. The browser side is in ``test_edge_browser.py``.
"""

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest

from apps.api.app import create_app
from apps.config import REPO_ROOT
from apps.edge import runtime, site
from apps.edge.__main__ import main as edge_command
from apps.registry import IntegrityError

MODELS = REPO_ROOT / "models"
ONNX = "/edge/models/species-classifier/1/model.onnx"


@pytest.fixture(scope="module")
def installed_runtime():
    """The runtime the set-up downloaded: these tests need it, and say how to get it."""
    try:
        runtime.installed_files()
    except runtime.RuntimeMissing as error:
        pytest.fail(str(error))
    return runtime.RUNTIME_DIR


@pytest.fixture(scope="module")
def client(installed_runtime):
    return create_app().test_client()


def test_the_page_and_its_files_are_served_with_types_a_browser_accepts(client):
    expected = {
        "/edge/": "text/html; charset=utf-8",
        "/edge/app.js": "text/javascript; charset=utf-8",
        "/edge/model.js": "text/javascript; charset=utf-8",
        "/edge/style.css": "text/css; charset=utf-8",
        "/edge/ort/ort.wasm.min.mjs": "text/javascript; charset=utf-8",
        "/edge/ort/ort-wasm-simd-threaded.mjs": "text/javascript; charset=utf-8",
        "/edge/ort/ort-wasm-simd-threaded.wasm": "application/wasm",
        "/edge/ort/LICENSE.txt": "text/plain; charset=utf-8",
        "/edge/models.json": "application/json",
        ONNX: "application/octet-stream",
    }
    for url, media_type in expected.items():
        with client.get(url) as response:
            assert response.status_code == 200, url
            assert response.headers["Content-Type"] == media_type, url
            assert response.headers["Cache-Control"] == "no-cache", url
            assert response.headers["X-Content-Type-Options"] == "nosniff", url
    with client.get("/edge/") as response:
        page = response.get_data(as_text=True)
    assert "Content-Security-Policy" in page and "default-src 'self'" in page
    with client.get("/edge", headers={"Host": "evil.example"}) as response:
        assert response.status_code == 308  # so that relative URLs resolve
        assert response.headers["Location"] == "/edge/"  # a path here, never another host
    with client.get("/edge/ort/ort-wasm-simd-threaded.wasm") as response:
        wasm = response.data
    assert hashlib.sha256(wasm).hexdigest() == runtime.FILES["ort-wasm-simd-threaded.wasm"]


def test_each_model_offers_its_manifest_and_onnx_file_exactly_as_committed(client):
    index = client.get("/edge/models.json").get_json()["models"]
    assert [(m["name"], m["version"], m["task"]) for m in index] == [
        ("body-mass-regressor", 1, "regression"),
        ("species-classifier", 1, "classification"),
    ]
    for entry in index:
        folder = MODELS / entry["name"] / str(entry["version"])
        for name in ("manifest.json", "model.onnx"):
            response = client.get(f"/edge/{entry['path']}{name}")
            assert response.status_code == 200
            assert response.data == (folder / name).read_bytes()


def test_nothing_else_of_a_model_or_the_disk_can_be_reached(client):
    for url in [
        "/edge/models/species-classifier/1/model.joblib",
        "/edge/models/species-classifier/1/model.skops",
        "/edge/models/species-classifier/2/model.onnx",
        "/edge/../models/species-classifier/1/model.joblib",
        "/edge/%2e%2e/apps/config.py",
        "/edge/site.py",
        "/edge/__init__.py",
        "/edge/ort/../../course.py",
    ]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.get_json()["error"]["code"] == "not_found", url


def test_unchanged_files_are_revalidated_with_a_304(client):
    for url in [ONNX, "/edge/ort/ort-wasm-simd-threaded.wasm", "/edge/app.js"]:
        with client.get(url) as response:
            etag = response.headers["ETag"]
        with client.get(url, headers={"If-None-Match": etag}) as again:
            assert again.status_code == 304, url
            assert again.data == b""


def test_the_page_needs_no_api_key_while_the_model_routes_do(installed_runtime):
    client = create_app({"API_KEYS": ("secret-key",)}).test_client()
    assert client.get("/v1/models").status_code == 401
    with client.get("/edge/") as page:
        assert page.status_code == 200
    assert client.get(ONNX).status_code == 200  # the model itself: anyone can take it


@pytest.mark.parametrize("switch", [{"EDGE_PAGE": False}, {"EDGE_PAGE": "off"}])
def test_a_setting_switches_the_page_off(installed_runtime, switch):
    client = create_app(switch).test_client()
    assert client.get("/edge/").status_code == 404
    assert client.get(ONNX).status_code == 404
    assert client.get("/v1/models").status_code == 200


def test_the_switch_is_read_from_the_environment_and_a_wrong_value_is_refused(monkeypatch):
    monkeypatch.setenv("API_EDGE_PAGE", "off")
    assert create_app().test_client().get("/edge/").status_code == 404
    monkeypatch.setenv("API_EDGE_PAGE", "maybe")
    with pytest.raises(ValueError, match="API_EDGE_PAGE must be on or off, not 'maybe'"):
        create_app()


def test_a_missing_runtime_is_a_503_that_says_how_to_install_it(tmp_path):
    client = create_app({"EDGE_RUNTIME_DIR": tmp_path / "nowhere"}).test_client()
    response = client.get("/edge/")
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "runtime_missing"
    assert "python3 course.py setup" in error["message"]
    assert client.get("/edge/ort/ort.wasm.min.mjs").status_code == 503
    assert client.get("/edge/models.json").status_code == 200  # the models are still there
    assert client.get("/health/ready").status_code == 200  # and the API itself is fine


def test_a_model_that_fails_its_checks_is_not_offered(registry_copy, installed_runtime):
    """A changed ONNX file (the API cannot load it) and an unlisted file next to a model
    (the API loads it, but the folder fails verification) both keep a model off the page."""
    species = registry_copy.root / "species-classifier" / "1"
    (species / "model.onnx").write_bytes((species / "model.onnx").read_bytes() + b"\0")
    regressor = registry_copy.root / "body-mass-regressor" / "1"
    (regressor / "notes.txt").write_text("not in the manifest", encoding="utf-8")
    client = create_app({"MODELS_DIR": registry_copy.root}).test_client()
    assert client.get("/edge/models.json").get_json() == {"models": []}
    assert client.get(ONNX).status_code == 404
    assert client.get("/edge/models/body-mass-regressor/1/model.onnx").status_code == 404


def test_models_json_follows_the_models_the_api_serves(installed_runtime):
    client = create_app({"MODELS": ["body-mass-regressor"]}).test_client()
    names = [m["name"] for m in client.get("/edge/models.json").get_json()["models"]]
    assert names == ["body-mass-regressor"]
    assert client.get(ONNX).status_code == 404


def test_the_static_site_holds_the_same_files_and_no_pickles(registry, installed_runtime, tmp_path):
    files = site.site_files(registry, site.all_versions(registry))
    total = site.write_site(tmp_path / "site", files)
    written = sorted(
        p.relative_to(tmp_path / "site").as_posix()
        for p in (tmp_path / "site").rglob("*")
        if p.is_file()
    )
    assert written == sorted([*files, ".nojekyll"])
    assert not [name for name in written if re.search(r"\.(joblib|skops|pkl)$", name)]
    assert total == sum(p.stat().st_size for p in (tmp_path / "site").rglob("*") if p.is_file())
    index = json.loads((tmp_path / "site" / "models.json").read_text(encoding="utf-8"))
    assert len(index["models"]) == 2
    with pytest.raises(FileExistsError, match="is not empty"):
        site.write_site(tmp_path / "site", files)


def test_building_the_site_stops_at_a_tampered_model(
    registry_copy, installed_runtime, tmp_path, monkeypatch, capsys
):
    onnx = registry_copy.root / "species-classifier" / "1" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes().replace(b"Gentoo", b"Gentoz"))
    with pytest.raises(IntegrityError, match=r"model\.onnx has sha256"):
        site.site_files(registry_copy, site.all_versions(registry_copy))
    monkeypatch.setenv("PENGUINS_MODELS_DIR", str(registry_copy.root))
    assert edge_command(["site", str(tmp_path / "site")]) == 1
    assert "a model failed its checks, nothing was written" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()


def test_the_runtime_on_disk_is_checked_file_by_file(installed_runtime, tmp_path):
    copy = tmp_path / "runtime"
    shutil.copytree(installed_runtime, copy)
    assert set(runtime.installed_files(copy)) == {*runtime.FILES, runtime.LICENSE_FILE}
    with open(copy / "ort.wasm.min.mjs", "ab") as file:
        file.write(b"\n// one more line")
    with pytest.raises(
        runtime.RuntimeMissing, match=r"ort\.wasm\.min\.mjs differs from its pinned"
    ):
        runtime.installed_files(copy)
    (copy / "ort.wasm.min.mjs").unlink()
    with pytest.raises(runtime.RuntimeMissing, match=r"ort\.wasm\.min\.mjs is missing"):
        runtime.installed_files(copy)


def fake_package(tmp_path, members: dict[str, bytes]):
    """A .tgz with the given members, as npm packs a package."""
    path = tmp_path / "package.tgz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_a_download_that_is_not_the_pinned_package_is_refused_before_unpacking(tmp_path):
    package = fake_package(tmp_path, {"package/dist/ort.wasm.min.mjs": b"export {};"})
    with pytest.raises(runtime.RuntimeIntegrityError, match="is not the pinned package"):
        runtime.install(tmp_path / "vendor" / "runtime", url=package.as_uri())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["package.tgz"]


def test_only_the_listed_files_are_taken_from_the_package(tmp_path):
    wanted = {"ort.mjs": b"export const ok = true;\n", "ort.wasm": b"\0asm\1\0\0\0"}
    members = {f"package/dist/{name}": data for name, data in wanted.items()}
    members |= {
        "package/dist/../../../escaped.txt": b"outside",
        "/tmp/absolute.txt": b"outside",
        "package/dist/extra.js": b"not asked for",
    }
    package = fake_package(tmp_path, members)
    target = runtime.install(
        tmp_path / "vendor" / "runtime",
        url=package.as_uri(),
        integrity=runtime.integrity_of(package.read_bytes()),
        files={name: hashlib.sha256(data).hexdigest() for name, data in wanted.items()},
    )
    assert sorted(p.name for p in target.iterdir()) == ["LICENSE.txt", "ort.mjs", "ort.wasm"]
    assert (target / "ort.wasm").read_bytes() == wanted["ort.wasm"]
    assert "MIT License" in (target / "LICENSE.txt").read_text(encoding="utf-8")
    assert sorted(p.name for p in (tmp_path / "vendor").iterdir()) == ["runtime"]  # no staging
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_file_that_differs_from_its_own_pin_is_refused_and_nothing_is_installed(tmp_path):
    package = fake_package(tmp_path, {"package/dist/ort.mjs": b"export {};"})
    with pytest.raises(runtime.RuntimeIntegrityError, match=r"ort\.mjs in .* differs from its pin"):
        runtime.install(
            tmp_path / "vendor" / "runtime",
            url=package.as_uri(),
            integrity=runtime.integrity_of(package.read_bytes()),
            files={"ort.mjs": "0" * 64},
        )
    assert list((tmp_path / "vendor").iterdir()) == []


IMAGE_LAYOUT_PROBE = """
import sys
# This environment's editable install would find any module of apps/ in the repository;
# the image has no such thing, so it is taken away: only the copied files count.
sys.meta_path[:] = [f for f in sys.meta_path if not f.__module__.startswith("__editable__")]
import apps
from apps.api.app import create_app
assert apps.__file__.startswith(sys.argv[1]), apps.__file__
client = create_app().test_client()
print(client.get("/edge/").status_code, client.get("/health/ready").status_code)
"""


def image_copies(dockerfile: str) -> list[str]:
    """The parts of ``apps/`` that a Dockerfile copies from the build context."""
    sources = []
    for line in (REPO_ROOT / dockerfile).read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not words[1].startswith("--"):
            sources += [word for word in words[1:-1] if word.startswith("apps/")]
    return sources


def test_an_installation_without_apps_edge_serves_the_api_without_the_page(tmp_path):
    """What the API's Docker image copies (docker/api.Dockerfile): no apps/edge in it, yet
    the extension that mounts the page is there, and must not stop the API."""
    app_dir = tmp_path / "app"
    (app_dir / "apps").mkdir(parents=True)
    for source in image_copies("docker/api.Dockerfile"):
        if (REPO_ROOT / source).is_dir():
            shutil.copytree(REPO_ROOT / source, app_dir / source)
        else:
            shutil.copy(REPO_ROOT / source, app_dir / source)
    shutil.copytree(MODELS, app_dir / "models")
    environment = {**os.environ, "PYTHONPATH": str(app_dir)}  # as the image's PYTHONPATH=/app
    environment.pop("PENGUINS_MODELS_DIR", None)
    result = subprocess.run(
        [sys.executable, "-c", IMAGE_LAYOUT_PROBE, str(app_dir)],
        cwd=app_dir,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["404", "200"]
    assert "apps.edge" not in result.stderr  # no traceback, no warning
