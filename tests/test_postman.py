"""The Postman collection passes every one of its tests against a real server, via newman.

The collection is what learners import into Postman; if a route or an answer changes,
its tests must say so here rather than in a learner's Postman window. newman is
Postman's command-line runner (a Node.js program), pinned like every other tool: a local
``newman`` is used if it is that version (``npm install -g newman@6.2.2``, as ``.ci/run``
does), else ``npx`` fetches exactly that version once. Without either the test skips, or
fails under CI.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import skip_or_fail
from .servers import running_api

ROOT = Path(__file__).resolve().parent.parent
COLLECTION = ROOT / "postman" / "penguins-api.postman_collection.json"
ENVIRONMENT = ROOT / "postman" / "local.postman_environment.json"
SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
API_KEY = "postman-test-key"
NEWMAN_VERSION = "6.2.2"


def requests_in(items: list[dict]) -> list[dict]:
    """Every request of a collection, folders flattened."""
    found = []
    for item in items:
        found += requests_in(item["item"]) if "item" in item else [item]
    return found


def newman_command() -> list[str] | None:
    """``newman`` if it is the pinned version, or ``npx`` running that version, or None."""
    newman = shutil.which("newman")
    if newman and installed_version(newman) == NEWMAN_VERSION:
        return [newman]
    if npx := shutil.which("npx"):
        return [npx, "--yes", f"newman@{NEWMAN_VERSION}"]
    return None


def installed_version(newman: str) -> str:
    result = subprocess.run([newman, "--version"], capture_output=True, text=True, timeout=60)
    return result.stdout.strip()


def test_ci_installs_the_pinned_newman():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.findall(r"NEWMAN_VERSION=([\d.]+)", ci) == [NEWMAN_VERSION]


def test_collection_and_environment_files():
    collection = json.loads(COLLECTION.read_text(encoding="utf-8"))
    assert collection["info"]["schema"] == SCHEMA
    environment = json.loads(ENVIRONMENT.read_text(encoding="utf-8"))
    assert {v["key"] for v in environment["values"]} == {"baseUrl", "apiKey"}
    assert next(v for v in environment["values"] if v["key"] == "apiKey")["value"] == "", (
        "never commit a real key"
    )
    items = requests_in(collection["item"])
    for item in items:
        tests = "\n".join(
            line
            for event in item.get("event", [])
            if event["listen"] == "test"
            for line in event["script"]["exec"]
        )
        assert "pm.response.to.have.status(" in tests, f"{item['name']}: check the status"
        assert "pm.expect(" in tests, f"{item['name']}: check the body"
        assert item["request"]["url"]["raw"].startswith("{{baseUrl}}/"), item["name"]
    statuses = {
        int(line.split("to.have.status(")[1].split(")")[0])
        for item in items
        for event in item["event"]
        for line in event["script"]["exec"]
        if "to.have.status(" in line
    }
    assert {200, 400, 401, 403, 404, 405, 415, 422} <= statuses


@pytest.mark.slow
def test_newman_runs_the_collection_without_failures(tmp_path):
    command = newman_command()
    if command is None:
        install = f"npm install -g newman@{NEWMAN_VERSION}"
        skip_or_fail(f"neither newman nor npx is installed ({install})")
    report = tmp_path / "newman.json"
    with running_api({"API_KEYS": API_KEY}) as url:
        result = subprocess.run(
            [
                *command,
                "run",
                str(COLLECTION),
                "--environment",
                str(ENVIRONMENT),
                "--env-var",
                f"baseUrl={url}",
                "--env-var",
                f"apiKey={API_KEY}",
                "--reporters",
                "cli,json",
                "--reporter-json-export",
                str(report),
                "--color",
                "off",
                "--disable-unicode",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert report.exists(), f"newman wrote no report:\n{result.stdout}\n{result.stderr}"
    run = json.loads(report.read_text(encoding="utf-8"))["run"]
    failures = [f"{f['source']['name']}: {f['error']['message']}" for f in run.get("failures", [])]
    assert not failures, "\n".join(failures) + "\n\n" + result.stdout[-3000:]
    stats = run["stats"]
    expected = len(requests_in(json.loads(COLLECTION.read_text(encoding="utf-8"))["item"]))
    assert stats["requests"] == {"total": expected, "pending": 0, "failed": 0}
    assert stats["assertions"]["failed"] == 0
    assert stats["assertions"]["total"] >= 3 * expected
    assert result.returncode == 0, result.stdout[-3000:]
