"""The UI shows which version is in production: the version pickers of every page, and the
Rollout page (lineage, the gate's figures), from the local registry and from the API,
with Streamlit's test runner and in a real browser; a promotion shows up in both."""

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from apps.config import MODELS_DIR_ENV, REPO_ROOT
from apps.monitoring import db
from apps.registry import ModelRegistry
from apps.rollout import promotion, retrain

from . import rollout_data
from .servers import running_api, running_ui

pytestmark = pytest.mark.slow

APP = REPO_ROOT / "apps" / "ui" / "app.py"
CLASSIFIER = "species-classifier"


@pytest.fixture(scope="module")
def retrained(tmp_path_factory) -> ModelRegistry:
    """A registry whose classifier has a retrained candidate, v2, and v1 in production."""
    folder = tmp_path_factory.mktemp("rollout")
    shutil.copytree(REPO_ROOT / "models", folder / "models")
    registry = ModelRegistry(folder / "models")
    url = str(folder / "monitoring.db")
    rollout_data.fill(url, registry, scenario="new-colony")
    outcome = retrain.retrain(registry, db.connect(url), CLASSIFIER, reason="the new colony")
    assert outcome.manifest.version == 2
    return registry


@pytest.fixture
def registry(retrained, tmp_path) -> ModelRegistry:
    """A private copy, that a test may promote in."""
    shutil.copytree(retrained.root, tmp_path / "models")
    return ModelRegistry(tmp_path / "models")


def run_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    if page:
        at.switch_page(page).run()
    at.selectbox(key="model").set_value(CLASSIFIER).run()
    assert not at.exception
    return at


@pytest.mark.parametrize("mode", ["local", "api"])
def test_the_pages_show_the_production_version(registry, monkeypatch, mode):
    monkeypatch.setenv(MODELS_DIR_ENV, str(registry.root))
    monkeypatch.delenv("PENGUINS_API_URL", raising=False)
    with running_api({"API_MODELS_DIR": str(registry.root)}) as url:
        if mode == "api":
            monkeypatch.setenv("PENGUINS_API_URL", url)
        predict = run_page()
        picker = predict.selectbox(key=f"version-of-{CLASSIFIER}")
        assert picker.value == 1  # production, not the newest version (the candidate)
        assert picker.format_func(1) == "1 (production)" and picker.format_func(2) == "2"
        page = run_page("views/rollout.py")
        assert {m.label: m.value for m in page.metric} == {
            "In production": "version 1",
            "Newest version": "version 2",
        }
        table = page.dataframe[0].value
        assert list(table["version"]) == [2, 1]
        assert list(table["from"]) == ["v1", "the original data"]
        assert table["why"][0] == "the new colony"
        assert "passed no gate" in page.caption[1].value  # v1 is selected
        page.selectbox(key=f"version-of-{CLASSIFIER}").set_value(2).run()
        assert (
            "Both judged on the same" in page.caption[1].value
            and ": passed" in page.caption[1].value
        )
        promotion.promote(registry, CLASSIFIER)  # a promotion: the API follows by itself
        for _ in range(100):
            after = run_page("views/rollout.py")
            if after.metric[0].value == "version 2":
                break
        assert after.metric[0].value == "version 2"


def test_the_rollout_page_in_a_real_browser(registry, tmp_path):
    browser_tests = pytest.importorskip("tests.test_ui_browser")
    from .browser import chromium, open_page

    log = tmp_path / "streamlit.log"
    with (
        running_api({"API_MODELS_DIR": str(registry.root)}) as api,
        running_ui(api, log) as url,
        chromium() as browser,
    ):
        page, errors = open_page(browser, url)
        browser_tests.settle(page)
        browser_tests.go_to(page, "Rollout")
        browser_tests.choose(page, "Model", CLASSIFIER)
        browser_tests.choose(page, "Version", "2")
        expect = browser_tests.expect
        expect(page.get_by_test_id("stMetric").first).to_contain_text("version 1")
        expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(1)
        expect(page.get_by_text("Both judged on the same")).to_be_visible()
        browser_tests.screenshot(page, "rollout")
        assert page.get_by_test_id("stException").count() == 0
        assert not errors, errors
