"""Throughput and latency through the TLS proxy, with 1 and with 2 API replicas (wrk).

    sudo .venv/bin/python bench/proxy_bench.py                 # starts the stack (Podman)
    .venv/bin/python bench/proxy_bench.py --url https://localhost:8443 \\
        --cacert secrets/tls/ca.pem --key "$(cat secrets/ui_api_key.txt)"   # a running stack

Without ``--url``, the script starts the compose stack itself, as the container tests do
(Podman, under ``/tmp/podman.lock``, as root: the key files are given to the containers'
user), once with ``--scale api=1`` and once with ``--scale api=2``, and loads each through
the proxy with wrk: single-record predictions over HTTPS, on 127.0.0.1 only. With
``--url``, it measures the stack you started (``docker compose up -d --scale api=N``,
then ``docker compose restart proxy``), once: run it for each N you want to compare.

wrk is a closed loop: each connection waits for its answer before sending the next
request, so when the server slows down, fewer requests are sent, and the ones that would
have queued are never measured (coordinated omission). Its percentiles are a lower bound
of what clients arriving at a fixed rate would see; see bench/README.md.

``--locust USERS`` also runs locust (Python's usual load tester) headless against each
stack, with users that each send one request a second (``constant_throughput``: an open
loop per user, which waits less when the server is slow). locust brings gevent, pytest
and more that the course's environment does not need: the script installs it into a
virtual environment of its own, in the user's cache folder, the first time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from apps.api.keys import make_key  # noqa: E402
from apps.processes import free_port  # noqa: E402
from tools.containers import BASE_IMAGE, Stack  # noqa: E402

PREDICT = "/v1/models/species-classifier/predict"
RECORD = {
    "island": "Biscoe",
    "bill_length_mm": 48.6,
    "bill_depth_mm": 16.0,
    "flipper_length_mm": 230.0,
    "body_mass_g": 5800.0,
    "sex": "male",
}
CONTAINER_USER = 10001
LOCUST_VERSION = "2.47.0"

LOCUSTFILE = """
from locust import HttpUser, constant_throughput, task


class Client(HttpUser):
    wait_time = constant_throughput(1)  # one request a second per user, however slow

    def on_start(self):
        self.client.verify = {cacert!r}

    @task
    def predict(self):
        self.client.post({path!r}, json={{"record": {record!r}}}, headers={{"X-API-Key": {key!r}}})
"""

# A fixed POST with the key, and at the end one JSON line; latencies are in microseconds.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "{key}"
wrk.body = '{body}'

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, '
    .. '"p99_us": %d, "errors": %d, "non_2xx": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def run_wrk(base: str, key: str, args, workdir: Path) -> dict:
    """One wrk run through the proxy; requests per second and percentiles in ms."""
    script = workdir / "predict.lua"
    script.write_text(WRK_SCRIPT.format(key=key, body=json.dumps({"record": RECORD})))
    command = ["wrk", f"--threads={args.threads}", f"--connections={args.connections}"]
    command += [f"--duration={args.duration}s", "--timeout=10s", f"--script={script}"]
    output = subprocess.run(
        [*command, base + PREDICT], capture_output=True, text=True, check=True
    ).stdout
    line = next((x for x in output.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"no result from wrk:\n{output}")
    result = json.loads(line.removeprefix("BENCH_JSON "))
    return {
        "rps": result["requests"] / (result["duration_us"] / 1e6),
        "p50": result["p50_us"] / 1000,
        "p90": result["p90_us"] / 1000,
        "p99": result["p99_us"] / 1000,
        "errors": result["errors"] + result["non_2xx"],
    }


def locust_python() -> Path:
    """locust's own virtual environment, made the first time (it needs the package index)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "penguins-deploy-course" / f"locust-{LOCUST_VERSION}"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing locust {LOCUST_VERSION} into {venv} (once)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", f"locust=={LOCUST_VERSION}"]
        subprocess.run(pip, check=True)
    return python


def run_locust(base: str, key: str, cacert: str, args, workdir: Path) -> dict:
    """locust, headless: ``--locust`` users for ``--duration`` seconds; its CSV totals."""
    locustfile = workdir / "locustfile.py"
    locustfile.write_text(LOCUSTFILE.format(cacert=cacert, path=PREDICT, record=RECORD, key=key))
    prefix = workdir / "locust"
    command = [str(locust_python()), "-m", "locust", "-f", str(locustfile), "--headless"]
    command += ["-u", str(args.locust), "-r", str(args.locust), "-t", f"{args.duration}s"]
    command += ["--host", base, "--csv", str(prefix), "--only-summary"]
    subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    with open(f"{prefix}_stats.csv", newline="") as table_file:
        total = next(row for row in csv.DictReader(table_file) if row["Name"] == "Aggregated")
    with open(f"{prefix}_failures.csv", newline="") as failures_file:
        for row in csv.DictReader(failures_file):  # say what failed, not only how often
            print(f"locust: {row['Occurrences']} x {row['Method']} {row['Name']}: {row['Error']}")
    return {
        "rps": float(total["Requests/s"]),
        "p50": float(total["50%"]),
        "p90": float(total["90%"]),
        "p99": float(total["99%"]),
        "errors": int(total["Failure Count"]),
    }


def check_answers(base: str, key: str, cacert: str) -> None:
    """One prediction through the proxy, verified TLS: the bench measures real answers."""
    answer = requests.post(
        base + PREDICT,
        json={"record": RECORD},
        headers={"X-API-Key": key},
        verify=cacert,
        timeout=30,
    )
    answer.raise_for_status()


def started_stack(replicas: int, workdir: Path) -> tuple[Stack, str, str, str]:
    """The compose stack with ``replicas`` API containers behind the proxy."""
    tls = workdir / "tls"
    if not tls.exists():
        subprocess.run(
            [sys.executable, "docker/make_certs.py", str(tls), "--owner", str(CONTAINER_USER)],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
        )
    keys, ui_key = workdir / "api_keys.txt", workdir / "ui_api_key.txt"
    if not keys.exists():
        key, entry = make_key("bench", ["predict"])
        keys.write_text(entry.line() + "\n")  # the API's file holds the key's hash only
        ui_key.write_text(key + "\n")
        for path in (keys, ui_key):
            path.chmod(0o600)
            os.chown(path, CONTAINER_USER, CONTAINER_USER)
    port = free_port()
    env = {
        "VERSION": "ci",
        "API_KEYS_SECRET": str(keys),
        "UI_KEY_SECRET": str(ui_key),
        "TLS_CERT_FILE": str(tls / "server.pem"),
        "TLS_KEY_FILE": str(tls / "server.key"),
        "API_RATE_LIMIT": "1000000/minute",  # the bench measures throughput, not the limit
        "HTTPS_PORT": str(port),
        "HTTP_PORT": str(free_port()),
        "UI_PORT": str(free_port()),
    }
    stack = Stack("penguins-proxy-bench", workdir, env).__enter__()
    if stack.podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        stack.__exit__(None, None, None)
        raise SystemExit(f"no {BASE_IMAGE}: run .ci/containers.sh first (it makes it)")
    stack.remove()
    stack.compose("build", "api", "proxy", "redis", timeout=1800)
    stack.compose("up", "-d", "--no-build", "--scale", f"api={replicas}", "redis", "api")
    for container in stack.containers("api"):
        stack.wait_healthy(container)
    stack.compose("up", "-d", "--no-build", "--no-deps", "proxy")
    (proxy,) = stack.containers("proxy")
    stack.wait_healthy(proxy, seconds=60)
    base = f"https://127.0.0.1:{port}"
    for _ in range(60):
        try:
            if requests.get(base + "/health/ready", verify=tls / "ca.pem", timeout=5).ok:
                break
        except requests.RequestException:
            time.sleep(1)
    return stack, base, ui_key.read_text().strip(), str(tls / "ca.pem")


def table(rows: list[tuple[str, dict]], args) -> str:
    lines = [
        f"wrk: {args.threads} threads, {args.connections} connections (closed loop); locust: "
        f"{args.locust or 0} users at 1 request/s each; {args.duration} s per row; "
        "one-record predictions over HTTPS through the proxy",
        "",
        "| replicas, load | requests/s | p50 (ms) | p90 (ms) | p99 (ms) | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, m in rows:
        lines.append(
            f"| {label} | {m['rps']:.0f} | {m['p50']:.1f} | {m['p90']:.1f} | "
            f"{m['p99']:.1f} | {m['errors']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", default="1,2", help="replica counts to compare")
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per row")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--url", help="a running stack's proxy, e.g. https://localhost:8443")
    parser.add_argument("--cacert", help="with --url: the CA that signed the proxy's cert")
    parser.add_argument("--key", help="with --url: an API key")
    parser.add_argument("--locust", type=int, metavar="USERS", help="also run locust")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is missing (Debian: apt-get install wrk; macOS: brew install wrk)")
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as scratch:
        workdir = Path(scratch)
        if args.url:
            check_answers(args.url, args.key, args.cacert)
            rows.append(("(as started), wrk", run_wrk(args.url, args.key, args, workdir)))
            if args.locust:
                found = run_locust(args.url, args.key, args.cacert, args, workdir)
                rows.append((f"(as started), locust {args.locust} users", found))
        else:
            for replicas in [int(n) for n in args.replicas.split(",")]:
                stack, base, key, cacert = started_stack(replicas, workdir)
                try:
                    check_answers(base, key, cacert)
                    run_wrk(base, key, argparse.Namespace(**{**vars(args), "duration": 3}), workdir)
                    rows.append((f"{replicas}, wrk", run_wrk(base, key, args, workdir)))
                    print(f"{replicas} replica(s), wrk: {rows[-1][1]['rps']:.0f} requests/s")
                    if args.locust:
                        found = run_locust(base, key, cacert, args, workdir)
                        rows.append((f"{replicas}, locust {args.locust} users", found))
                        print(f"{replicas} replica(s), locust: {found['rps']:.0f} requests/s")
                finally:
                    stack.__exit__(None, None, None)
    print(table(rows, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
