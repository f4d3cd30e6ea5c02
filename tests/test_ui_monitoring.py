"""The Monitoring page: with Streamlit's test runner (local database and API), and in a
real browser (headless Chromium), on a database holding six weeks of a drift story."""

import pytest
from streamlit.testing.v1 import AppTest

from apps.config import REPO_ROOT

from . import monitoring_data
from .servers import running_api, running_ui

pytestmark = pytest.mark.slow

APP = REPO_ROOT / "apps" / "ui" / "app.py"


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """The database's URL and the report saved in it."""
    url = str(tmp_path_factory.mktemp("story") / "monitoring.db")
    return url, monitoring_data.fill(url)


@pytest.fixture(scope="module")
def story_api(story):
    """The API (gunicorn) logging to, and reading from, the story's database."""
    with running_api({"MONITORING_DB_URL": story[0], "PREDICTION_LOG_RETENTION_DAYS": "0"}) as url:
        yield url


@pytest.fixture(params=["local", "api"])
def mode(request, monkeypatch, story):
    monkeypatch.setenv("MONITORING_DB_URL", story[0])
    if request.param == "api":
        monkeypatch.setenv("PENGUINS_API_URL", request.getfixturevalue("story_api"))
    else:
        monkeypatch.delenv("PENGUINS_API_URL", raising=False)
    return request.param


def test_the_page_shows_drift_performance_and_recent_rows(mode, story):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("views/monitoring.py").run()
    at.selectbox(key="model").set_value(monitoring_data.MODEL).run()
    assert not at.exception
    assert at.title[0].value == "Monitoring"
    assert story[1]["drift"]
    assert "Drift in the latest window" in at.error[0].value and "island" in at.error[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Predictions logged"] == f"{story[1]['rows']:,}"
    assert [s.value for s in at.subheader][:3] == [
        "Drift per column over time", "Live accuracy", "Recent predictions"
    ]  # fmt: skip
    recent = at.dataframe[-1].value
    assert len(recent) == 20 and {"prediction", "truth", "island"} <= set(recent.columns)


def test_the_page_says_how_to_make_the_first_report(monkeypatch, tmp_path):
    monkeypatch.setenv("MONITORING_DB_URL", str(tmp_path / "empty.db"))
    monkeypatch.delenv("PENGUINS_API_URL", raising=False)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("views/monitoring.py").run()
    assert not at.exception
    assert "python -m apps.monitoring report" in at.info[0].value
    assert any("Nothing logged yet" in caption.value for caption in at.caption)


def test_the_page_in_a_real_browser(story, story_api, tmp_path):
    browser_tests = pytest.importorskip("tests.test_ui_browser")
    from .browser import chromium, open_page

    ui = running_ui(story_api, tmp_path / "streamlit.log")
    with ui as url, chromium() as browser:
        page, errors = open_page(browser, url)
        browser_tests.settle(page)
        browser_tests.go_to(page, "Monitoring")
        browser_tests.choose(page, "Model", monitoring_data.MODEL)
        expect = browser_tests.expect
        expect(page.get_by_text("Drift in the latest window")).to_be_visible()
        expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(2)
        expect(page.get_by_role("heading", name="Recent predictions")).to_be_visible()
        expect(page.get_by_test_id("stMetric").first).to_contain_text("Predictions logged")
        browser_tests.screenshot(page, "monitoring")
        assert page.get_by_test_id("stException").count() == 0
        assert not errors, errors
