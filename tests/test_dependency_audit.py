"""``python3 course.py audit`` fails loudly when it cannot check, and catches a known flaw.

pip-audit reports a package it could not check (no advisory service answers, as on an
offline laptop or a CI machine without the advisory APIs) and still exits 0 unless
``--strict``. The course's audit must never pass like that. Each test runs the real
command against a real advisory service: an OSV-format endpoint served on loopback from
a snapshot (``tests/osv_advisories.json``), or a port where nothing answers.
"""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from packaging.version import Version

from .servers import free_port

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = json.loads((Path(__file__).parent / "osv_advisories.json").read_text())["vulns"]

pytestmark = pytest.mark.slow


def affects(advisory: dict, name: str, version: str) -> bool:
    """Does an OSV advisory cover this PyPI package version (ECOSYSTEM ranges)?"""
    for affected in advisory["affected"]:
        if affected["package"]["name"] != name or affected["package"]["ecosystem"] != "PyPI":
            continue
        for span in affected.get("ranges", []):
            low, high = Version("0"), None
            for event in span["events"]:
                low = Version(event["introduced"]) if "introduced" in event else low
                high = Version(event["fixed"]) if "fixed" in event else high
            if low <= Version(version) and (high is None or Version(version) < high):
                return True
    return False


class OsvSnapshot(BaseHTTPRequestHandler):
    """``POST /v1/query`` as osv.dev answers it, from the snapshot; counts the queries."""

    queries: ClassVar[list] = []

    def do_POST(self):
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name, version = query["package"]["name"], query["version"]
        OsvSnapshot.queries.append(name)
        vulns = [a for a in SNAPSHOT if affects(a, name, version)]
        body = json.dumps({"vulns": vulns} if vulns else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def osv_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), OsvSnapshot)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    OsvSnapshot.queries = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    finally:
        server.shutdown()
        server.server_close()


def course_audit(tmp_path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "course.py", "audit", "--cache-dir", str(tmp_path / "cache"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_an_audit_that_could_not_check_does_not_pass(tmp_path):
    nowhere = f"http://127.0.0.1:{free_port()}/v1/query"  # nothing listens there
    result = course_audit(tmp_path, "-s", "osv", "--osv-url", nowhere, "--timeout", "5")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "audit: NOT DONE" in result.stdout


def test_every_pin_is_checked_and_none_is_listed_in_the_snapshot(tmp_path, osv_url):
    result = course_audit(tmp_path, "-s", "osv", "--osv-url", osv_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no known vulnerability" in result.stdout
    pins = (ROOT / "requirements.txt").read_text().splitlines()
    pinned = sum(1 for line in pins if "==" in line and not line.startswith("#"))
    assert len(set(OsvSnapshot.queries)) >= pinned * 0.9  # the pins were really asked about


def test_a_known_vulnerable_pin_fails_the_audit(tmp_path, osv_url):
    old = tmp_path / "requirements-old.txt"
    old.write_text("Django==3.2.0\n")
    result = course_audit(tmp_path, "-r", str(old), "-s", "osv", "--osv-url", osv_url)
    assert result.returncode == 1, result.stdout + result.stderr
    # pip-audit names an advisory by one of its ids (here the PyPI advisory's), with the fix.
    ids = ("GHSA-68w8-qjq3-2gfm", "CVE-2021-33203", "PYSEC-2021-98")
    assert "django" in result.stdout and any(i in result.stdout for i in ids), result.stdout
    assert "3.2.4" in result.stdout
    assert "audit: FAILED" in result.stdout
