"""``python -m apps.monitoring``: the report renders (HTML with its plots inside, and the same
content as JSON), its exit code says whether the latest window drifted, and the profile
command keeps a reference for a version trained without one."""

import json
import re
import subprocess
import sys

import pytest

from apps.config import REPO_ROOT
from apps.monitoring import db, store

from . import monitoring_data

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("story") / "monitoring.db")
    monitoring_data.fill(url)
    return url


def cli(*args, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "apps.monitoring", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_report_renders_and_its_exit_code_says_drift(story, tmp_path):
    done = cli(
        "report",
        "--model",
        "species-classifier",
        "--db",
        story,
        "--since",
        "2026-03-02",
        "--until",
        "2026-04-13",
        "--window",
        "7d",
        "--output",
        str(tmp_path),
    )
    assert done.returncode == 1, done.stderr
    assert "drift in the latest window" in done.stdout
    content = json.loads((tmp_path / "species-classifier-report.json").read_text())
    assert [w["drift"] for w in content["windows"]] == [False] * 3 + [True] * 3
    assert "island" in content["windows"][-1]["drifted"]
    page = (tmp_path / "species-classifier-report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3  # drift, performance, distributions
    assert not re.search(r'(src|href)="(http|/)', page)  # nothing outside the file
    assert "species-classifier v1" in page and "island" in page
    saved = store.latest_report(db.connect(story), "species-classifier")
    assert saved["windows"] == content["windows"]


def test_no_drift_before_the_colony_arrives_exits_0(story, tmp_path):
    done = cli(
        "report",
        "--model",
        "species-classifier",
        "--db",
        story,
        "--since",
        "2026-03-02",
        "--until",
        "2026-03-23",
        "--output",
        str(tmp_path),
        "--no-save",
    )
    assert done.returncode == 0, done.stderr
    assert "no drift in the latest window" in done.stdout


def test_a_usage_mistake_exits_2_with_a_plain_message(tmp_path):
    done = cli("report", "--window", "a week", "--db", str(tmp_path / "m.db"))
    assert done.returncode == 2 and "is not a duration" in done.stderr
    assert "Traceback" not in done.stderr
    done = cli("report", "--model", "unicorn", "--db", str(tmp_path / "m.db"))
    assert done.returncode == 2 and "unicorn" in done.stderr and "Traceback" not in done.stderr


def test_profile_keeps_a_reference_for_an_older_version(tmp_path):
    url = str(tmp_path / "m.db")
    done = cli("profile", "--model", "body-mass-regressor", "--db", url)
    assert done.returncode == 0, done.stderr
    assert "kept in the database" in done.stdout
    engine = db.connect(url)
    with engine.connect() as connection:
        (row,) = connection.execute(db.profiles.select()).all()
    assert (row.model, row.version) == ("body-mass-regressor", 1)
    assert row.content["prediction"]["type"] == "number"
    engine.dispose()
