"""Headless Chromium for the browser tests, found and launched one way.

Debian's ``chromium`` package (found on PATH), driven by Playwright's ``executable_path``:
Playwright's own browser download does not work offline. The flags keep Chromium from
calling home (background networking, component updates, sync), which a closed network
refuses and which a test must not depend on. Importing this module skips the test
module where Chromium or Playwright is missing, and fails it under CI.
"""

import contextlib
import importlib.util
from collections.abc import Iterator

from .conftest import require_tool, skip_or_fail

if importlib.util.find_spec("playwright") is None:
    skip_or_fail("the playwright package is not installed (requirements.txt)", True)
from playwright import sync_api

CHROMIUM = require_tool("chromium", "Debian's chromium package; .ci/run installs it", True)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
WAIT_MS = 30_000
"""How long any wait may take: generous, for a busy machine."""
sync_api.expect.set_options(timeout=WAIT_MS)


@contextlib.contextmanager
def chromium() -> Iterator[sync_api.Browser]:
    """A headless Chromium for one test module, closed afterwards."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: sync_api.Browser, url: str) -> tuple[sync_api.Page, list[str]]:
    """A new page at ``url`` (1280x1000, the usual waits) and the list that collects the
    JavaScript errors it raises, for the test to assert empty at the end."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    return page, errors
