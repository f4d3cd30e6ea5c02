"""The nightly schedules in ``deploy/`` run the batch job as written (paths aside).

The cron line and the systemd unit name a checkout in /opt and data in /srv; here they
point at this checkout and a temporary folder, and their commands run as they are.
"""

import datetime
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from apps.config import REPO_ROOT

from .batch_helpers import penguin_rows, write_csv

DEPLOY = REPO_ROOT / "deploy"
pytestmark = pytest.mark.skipif(os.name == "nt", reason="cron and systemd are for Linux")


def cron_line() -> tuple[list[str], str]:
    """The schedule's five fields and its command, from the crontab file."""
    lines = (DEPLOY / "cron" / "penguins-batch").read_text().splitlines()
    (entry,) = [line for line in lines if line.strip() and not line.startswith("#")]
    fields = entry.split(maxsplit=5)
    return fields[:5], fields[5]


def unit(name: str) -> dict[str, str]:
    """``key: value`` of a systemd unit file (sections merged, comments dropped)."""
    entries = {}
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            entries[key.strip()] = value.strip()
    return entries


def run_here(command: str, data) -> subprocess.CompletedProcess:
    """A schedule's command, with this checkout and ``data`` in place of /opt and /srv."""
    python = REPO_ROOT / ".venv" / "bin" / "python"
    command = command.replace("/opt/penguins-deploy-course", str(REPO_ROOT))
    command = command.replace("/srv/penguins", str(data))
    if not python.exists():  # another environment (conda): its interpreter
        command = command.replace(".venv/bin/python", sys.executable)
    return subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def data(tmp_path):
    (tmp_path / "incoming").mkdir()
    rows = penguin_rows(20)
    rows[3][1] = "Atlantis"
    write_csv(tmp_path / "incoming" / "birds.csv", rows)
    return tmp_path


def today_run(data) -> dict:
    folder = data / "scored" / datetime.date.today().isoformat()
    return json.loads((folder / "run.json").read_text())


@pytest.mark.slow
def test_the_cron_line_runs_nightly_and_scores_into_a_folder_per_day(data):
    fields, command = cron_line()
    assert fields == ["30", "2", "*", "*", "*"]
    assert "$(date +\\%F)" in command  # cron would cut the line at a bare %
    result = run_here(command.replace("\\%", "%"), data)
    assert result.returncode == 0, result.stderr
    assert today_run(data)["rows"] == {"read": 20, "scored": 19, "rejected": 1, "problems": 1}
    assert "rejected" in (data / "batch.log").read_text()


@pytest.mark.slow
def test_the_systemd_timer_starts_a_service_that_scores_into_a_folder_per_day(data):
    timer, service = unit("penguins-batch.timer"), unit("penguins-batch.service")
    assert timer["OnCalendar"] == "*-*-* 02:30:00" and timer["Persistent"] == "true"
    assert service["Type"] == "oneshot"
    command = service["ExecStart"].replace("%%", "%")  # systemd's escape for a literal %
    assert service["WorkingDirectory"] == "/opt/penguins-deploy-course"  # run_here's cwd
    for _ in range(2):  # the second run, the same day, finds the job complete
        result = run_here(command, data)
        assert result.returncode == 0, result.stderr
    assert "complete already" in result.stderr
    assert today_run(data)["attempts"] == 1
    if shutil.which("systemd-analyze"):
        check = subprocess.run(
            ["systemd-analyze", "verify", *(DEPLOY / "systemd").glob("*")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stderr
        assert not re.search(r"(?i)unknown|invalid|failed", check.stderr), check.stderr
