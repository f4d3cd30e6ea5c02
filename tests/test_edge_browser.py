"""The edge page in real Chromium: it predicts what the API predicts, offline, and safely.

Headless Chromium (Debian's ``chromium`` package) driven by Playwright, launched as in
``tests/browser.py``. The page comes from the real API (gunicorn), or, for the tampered
file, from a plain static web server serving the folder that ``python -m apps.edge site``
writes, as GitHub Pages would. Every request the browser makes is recorded: none may
leave 127.0.0.1.
"""

import contextlib
import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import onnxruntime
import pytest
import requests

from apps.edge import runtime, site
from apps.registry import ModelRegistry

from .browser import WAIT_MS, chromium, sync_api
from .conftest import MODEL_NAMES, RECORD, as_records
from .servers import running_api

pytestmark = pytest.mark.slow

PROBABILITY_TOLERANCE = 1e-5
GRAMS_TOLERANCE = 0.01
"""Both runtimes compute in float32; a body mass of ~4,000 g is exact to ~0.0005 g there."""


def expect(locator):
    return sync_api.expect(locator)


@pytest.fixture(scope="module", autouse=True)
def installed_runtime():
    """The runtime the set-up downloaded; without it the page cannot work at all."""
    try:
        runtime.installed_files()
    except runtime.RuntimeMissing as error:
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def context(browser):
    """A fresh browser profile; afterwards, no request may have left 127.0.0.1, and no
    script may have failed."""
    context = browser.new_context()
    requested: list[str] = []
    errors: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    context.on("weberror", lambda error: errors.append(str(error.error)))
    yield context
    context.close()
    elsewhere = [url for url in requested if urlsplit(url).hostname != "127.0.0.1"]
    assert requested and not elsewhere, f"requests that left 127.0.0.1: {elsewhere}"
    assert not errors, f"JavaScript errors: {errors}"


def open_page(context, url: str):
    """Open the page and wait until it has downloaded and verified every model."""
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    expect(page.locator("#model")).to_be_enabled()
    return page


def predict_in_page(page, label: str, records: list[dict]) -> list[dict]:
    """Choose a model in the page, then predict with the page's own loaded model."""
    page.select_option("#model", label)
    return page.evaluate(
        "async (records) => (await import('./app.js')).predictRecords(records)", records
    )


def fill_and_predict(page, record: dict) -> str:
    """Fill the form as a person would, press Predict, and return the page's answer."""
    for name, value in record.items():
        field = page.locator(f"[name={name}]")
        if field.evaluate("element => element.tagName") == "SELECT":
            field.select_option("" if value is None else value)
        else:
            field.fill("" if value is None else str(value))
    page.get_by_role("button", name="Predict").click()
    expect(page.locator("#result")).to_be_visible()
    return page.locator("#result").inner_text()


def columns_of(name: str) -> list[str]:
    return ModelRegistry().manifest(name).input_columns


def records_for(penguins, name: str) -> list[dict]:
    return as_records(penguins, [column["name"] for column in columns_of(name)])


def assert_same_predictions(ours: list[dict], theirs: list[dict]) -> None:
    assert len(ours) == len(theirs)
    for row, (mine, api) in enumerate(zip(ours, theirs, strict=True)):
        if "probabilities" in api:
            assert mine["prediction"] == api["prediction"], row
            assert mine["probabilities"].keys() == api["probabilities"].keys(), row
            for label, p in api["probabilities"].items():
                assert abs(mine["probabilities"][label] - p) <= PROBABILITY_TOLERANCE, (row, label)
        else:
            assert abs(mine["prediction"] - api["prediction"]) <= GRAMS_TOLERANCE, row


def test_the_page_predicts_what_the_api_predicts_for_every_penguin(context, api_url, penguins):
    page = open_page(context, f"{api_url}/edge/")
    expect(page.locator("#status")).to_contain_text("2 of 2 models verified and ready")
    for name in MODEL_NAMES:
        records = records_for(penguins, name)
        assert len(records) == 344
        api = requests.post(
            f"{api_url}/v1/models/{name}/predict", json={"records": records}, timeout=30
        )
        assert api.status_code == 200
        assert_same_predictions(
            predict_in_page(page, f"{name} v1", records), api.json()["predictions"]
        )


def test_the_form_shows_the_apis_answer(context, api_url, penguins):
    page = open_page(context, f"{api_url}/edge/")
    page.select_option("#model", "species-classifier v1")
    records = records_for(penguins, "species-classifier")
    chosen = [records[0], records[200], records[300], {**RECORD, "sex": None}]
    answers = requests.post(
        f"{api_url}/v1/models/species-classifier/predict", json={"records": chosen}, timeout=30
    ).json()["predictions"]
    for record, api in zip(chosen, answers, strict=True):
        shown = fill_and_predict(page, record)
        assert f"Predicted species: {api['prediction']}" in shown
        for label, p in api["probabilities"].items():
            line = next(line for line in shown.splitlines() if line.startswith(label))
            assert abs(float(line.split()[-2]) - 100 * p) <= 0.006, (label, line)

    page.select_option("#model", "body-mass-regressor v1")
    record = records_for(penguins, "body-mass-regressor")[5]
    api = requests.post(
        f"{api_url}/v1/models/body-mass-regressor/predict", json={"record": record}, timeout=30
    ).json()["predictions"][0]
    assert f"Predicted body_mass_g: {api['prediction']:.0f} g" in fill_and_predict(page, record)


def test_the_form_refuses_a_value_outside_the_manifests_range(context, api_url):
    page = open_page(context, f"{api_url}/edge/")
    page.select_option("#model", "species-classifier v1")
    page.locator("[name=bill_length_mm]").fill("700")
    page.get_by_role("button", name="Predict").click()
    assert page.locator("[name=bill_length_mm]").evaluate("input => input.validity.rangeOverflow")
    expect(page.locator("#result")).to_be_hidden()


def test_the_page_keeps_predicting_after_the_api_stops(context, penguins):
    with running_api({"API_BACKEND": "onnx"}) as url:
        page = open_page(context, f"{url}/edge/")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/health/live", timeout=2)
    registry = ModelRegistry()
    for name in MODEL_NAMES:
        record = records_for(penguins, name)[10]
        model = registry.load(name, backend="onnx")
        expected = model.answer(model.schema.validate([record]))
        page.select_option("#model", f"{name} v1")
        shown = fill_and_predict(page, record)
        value = expected.outputs[0]
        assert (value if isinstance(value, str) else f"{value:.0f} g") in shown
        assert predict_in_page(page, f"{name} v1", [record])[0]["prediction"] is not None


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file server, as GitHub Pages is one, with the site's media types."""

    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        **site.MEDIA_TYPES,
    }

    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def static_server(folder: Path) -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_tampered_model_is_refused_and_the_static_site_works(context, registry, tmp_path):
    folder = tmp_path / "site"
    site.write_site(folder, site.site_files(registry, site.all_versions(registry)))
    onnx = folder / "models" / "species-classifier" / "1" / "model.onnx"
    tampered = onnx.read_bytes().replace(b"Gentoo", b"Gentoz")
    onnx.write_bytes(tampered)
    # Still a valid model, which would run and answer "Gentoz": only the hash stops it.
    session = onnxruntime.InferenceSession(tampered, providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    pinned = registry.manifest("species-classifier").artifacts["model.onnx"]["sha256"]

    with static_server(folder) as url:
        page = open_page(context, url)
        expect(page.locator("#status")).to_contain_text("1 of 2 models verified and ready")
        page.select_option("#model", "species-classifier v1")
        expect(page.locator("#error")).to_have_text(
            f"Refused: species-classifier/1/model.onnx has sha256 "
            f"{hashlib.sha256(tampered).hexdigest()[:12]}..., but the manifest pins "
            f"{pinned[:12]}...: the file was changed or corrupted, so it is not run."
        )
        expect(page.locator("#form")).to_be_hidden()
        with pytest.raises(sync_api.Error, match="no model is ready"):
            page.evaluate("async () => (await import('./app.js')).predictRecords([{}])")

        page.select_option("#model", "body-mass-regressor v1")
        expect(page.locator("#error")).to_be_hidden()
        assert "Predicted body_mass_g:" in fill_and_predict(
            page, {"species": "Gentoo", "island": "Biscoe", "flipper_length_mm": 220}
        )
