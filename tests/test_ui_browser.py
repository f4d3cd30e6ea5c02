"""The UI in a real browser: the API and ``streamlit run`` as a learner starts them.

Headless Chromium (Debian's ``chromium`` package), driven by Playwright, fills the form,
gets a prediction, uploads a CSV file and downloads the results, and saves a screenshot
of every page to ``artifacts/screenshots/<page>.png`` for a person to look at.

Every request the browser makes is recorded: all must go to 127.0.0.1, since the course
runs offline once installed (a page icon from a font CDN once broke that).

Needs Chromium (Debian's ``chromium`` package, found on PATH) and the ``playwright``
package; ``.ci/run`` installs the first, ``requirements.txt`` the second. Playwright's
own browser download is not used. Without them the tests skip, or fail under CI.
"""

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from apps.config import REPO_ROOT

from .browser import WAIT_MS, chromium, sync_api
from .servers import running_api, running_ui

SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"

pytestmark = pytest.mark.slow

BATCH_CSV = b"""island,sex,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,tag
Torgersen,male,39.1,18.7,181,3750,A-1
Atlantis,female,46.5,17.9,192,3500,X-1
Biscoe,,47.5,15,217,5200,G-1
Dream,female,49.0,18.5,195,3700,C-1
Dream,female,abc,17.9,192,3500,X-2
"""


@pytest.fixture(scope="module")
def ui_url(tmp_path_factory) -> Iterator[str]:
    """The API (gunicorn, ONNX) and ``streamlit run`` on free ports, as ``apps.stack`` runs them."""
    log = tmp_path_factory.mktemp("ui") / "streamlit.log"
    with running_api({"API_BACKEND": "onnx"}) as api_url, running_ui(api_url, log) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


NETWORK_SCHEMES = ("http", "https", "ws", "wss")
"""Requests that leave the browser (``data:`` and ``blob:`` URLs stay inside it)."""


@pytest.fixture
def page(browser, ui_url):
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    page.on("websocket", lambda socket: requested.append(socket.url))
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(ui_url)
    yield page
    assert page.get_by_test_id("stException").count() == 0, "the app showed a traceback"
    assert not errors, f"JavaScript errors: {errors}"
    context.close()
    network = [url for url in requested if urlsplit(url).scheme in NETWORK_SCHEMES]
    assert network, "no request was recorded: the recorder is broken"
    elsewhere = sorted({url for url in network if urlsplit(url).hostname != "127.0.0.1"})
    assert not elsewhere, f"the UI needs the internet for: {elsewhere}"


def expect(locator):
    """Playwright's ``expect``, with the same generous timeout as every other wait."""
    return sync_api.expect(locator)


def settle(page) -> None:
    """Wait until Streamlit has finished running the script (its status widget is gone)."""
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=WAIT_MS)


def choose(page, label: str, option: str) -> None:
    """Pick an option in a Streamlit select box."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def type_number(page, label: str, value: float) -> None:
    box = page.get_by_role("spinbutton", name=label, exact=True)
    box.fill(str(value))
    box.press("Tab")


def go_to(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
    settle(page)


def screenshot(page, name: str) -> None:
    """Save the whole page: Streamlit scrolls inside its main area, not the document, so
    the window is made as tall as that area for the picture, then put back."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.get_by_test_id("stMain").evaluate("main => main.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    page.wait_for_timeout(500)  # charts redraw at the new size
    settle(page)
    page.screenshot(path=SCREENSHOTS / f"{name}.png")
    page.set_viewport_size(size)


def test_predict_batch_model_and_explore_in_a_browser(page):
    # Predict opens on the classifier (its caption promises "how sure it is").
    expect(page.get_by_role("heading", name="Predict", exact=True)).to_be_visible()
    settle(page)
    expect(page.get_by_role("combobox", name="Model", exact=True)).to_have_value(
        "species-classifier"
    )
    # Fill in the form for a Gentoo and get the model's answer.
    choose(page, "Model", "species-classifier")
    choose(page, "Island in the Palmer Archipelago where the bird was seen", "Biscoe")
    choose(page, "Sex of the bird", "female")
    type_number(page, "Bill (culmen) length (mm)", 46.5)
    type_number(page, "Bill (culmen) depth (mm)", 14.5)
    type_number(page, "Flipper length (mm)", 215)
    type_number(page, "Body mass (g)", 5000)
    page.get_by_role("button", name="Predict").click()
    metric = page.get_by_test_id("stMetric")
    expect(metric).to_contain_text("Predicted species")
    expect(metric).to_contain_text("Gentoo")
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(1)
    expect(page.get_by_text("Where this penguin sits in the data")).to_be_visible()
    settle(page)
    screenshot(page, "predict")

    # Batch: upload a file with good and bad rows, download the results.
    go_to(page, "Batch")
    expect(page.get_by_role("combobox", name="Model", exact=True)).to_have_value(
        "species-classifier"
    )
    page.locator("input[type=file]").set_input_files(
        files=[{"name": "birds.csv", "mimeType": "text/csv", "buffer": BATCH_CSV}]
    )
    expect(page.get_by_role("heading", name="Rows not scored")).to_be_visible()
    settle(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the results (CSV)").click()
    assert download.value.suggested_filename == "birds-species-classifier-v1.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
    assert [row["tag"] for row in rows] == ["A-1", "X-1", "G-1", "C-1", "X-2"]
    assert [row["predicted_species"] for row in rows] == ["Adelie", "", "Gentoo", "Chinstrap", ""]
    assert rows[1]["problems"].startswith("island: unknown category")
    assert rows[4]["problems"] == "bill_length_mm: must be a number"
    assert 0.5 < float(rows[2]["probability_Gentoo"]) <= 1
    screenshot(page, "batch")

    # Model: the manifest's facts.
    go_to(page, "Model")
    expect(page.get_by_text("Held-out metrics")).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Backend")).to_contain_text("onnx")
    screenshot(page, "model")

    # Explore: the training data's charts.
    go_to(page, "Explore")
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(3)
    screenshot(page, "explore")
