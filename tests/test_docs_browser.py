"""The interactive API docs (``/docs``) in a real browser, as a learner opens them.

Swagger UI must render the OpenAPI 3.1 document the API serves (a version it cannot read
shows "Unable to render this definition"), list every operation, and send a real request
with "Try it out", with every file coming from the API itself: nothing may leave
127.0.0.1, so the docs work offline.
"""

from urllib.parse import urlsplit

import pytest
import requests

from .browser import WAIT_MS, chromium, sync_api
from .servers import running_api

pytestmark = pytest.mark.slow
PREDICT_PATH = "/v1/models/species-classifier/predict"


@pytest.fixture(scope="module")
def api():
    """A real gunicorn server (ONNX backend, no keys), as ``course.py start`` runs it."""
    with running_api({"API_BACKEND": "onnx"}) as url:
        yield url


@pytest.fixture
def docs_page(api):
    """``/docs`` open in headless Chromium, with every request it makes recorded."""
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(WAIT_MS)
        hosts, errors = [], []
        page.on("request", lambda request: hosts.append(urlsplit(request.url).hostname))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{api}/docs")
        yield page, hosts
        assert not errors, f"JavaScript errors: {errors}"


def test_every_operation_of_the_document_is_listed(api, docs_page):
    page, hosts = docs_page
    document = requests.get(f"{api}/openapi.json", timeout=10).json()
    operations = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    ]
    # Swagger UI lists an operation once under each of its tags.
    listings = sum(
        max(1, len(item[method].get("tags", [])))
        for item in document["paths"].values()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    )
    blocks = page.locator(".opblock")
    sync_api.expect(blocks.first).to_be_visible()
    assert page.get_by_text("Unable to render this definition").count() == 0
    sync_api.expect(blocks).to_have_count(listings)
    shown = {
        (
            block.locator(".opblock-summary-method").inner_text().strip(),
            block.locator(".opblock-summary-path").get_attribute("data-path"),
        )
        for block in blocks.all()
    }
    assert shown == set(operations)
    assert set(hosts) == {"127.0.0.1"}, f"requests left this machine: {sorted(set(hosts))}"


def test_try_it_out_on_a_predict_route_returns_200(docs_page):
    page, hosts = docs_page
    operation = page.locator(f'.opblock-post:has([data-path="{PREDICT_PATH}"])')
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    sync_api.expect(status).to_have_text("200")
    body = operation.locator(".live-responses-table .response-col_description pre").first
    sync_api.expect(body).to_contain_text('"prediction"')
    assert set(hosts) == {"127.0.0.1"}, f"requests left this machine: {sorted(set(hosts))}"
