"""Hostile bodies against the real server: how fast each is refused, and what it costs.

Run by hand (Linux: it reads each worker's peak resident memory, ``VmHWM``):

    .venv/bin/python bench/limits_bench.py              # one request at a time
    .venv/bin/python bench/limits_bench.py --at-once 8  # eight at once, as a burst would

Each body goes to a fresh gunicorn server (``python -m apps.api``, the settings of
``apps/api/gunicorn_conf.py``), once with a ``Content-Length`` and once chunked. The
table shows the status, the server's message, the time to the answer and how much the
workers' peak memory rose. bench/README.md keeps the figures from before and after the
limits were added.
"""

import argparse
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.servers import running_api  # noqa: E402

MARKER = "PENGUINS_LIMITS_BENCH"
MIB = 1024 * 1024
BODIES = {
    "CSV, 4.19 million 2-byte rows": (
        "/invocations",
        b"island\n" + b"A\n" * 4_190_000,
        "text/csv",
    ),
    "JSON, 2.7 million empty objects": (
        "/v1/models/species-classifier/predict",
        b'{"records": [' + b"{}," * 2_700_000 + b"{}]}",
        "application/json",
    ),
    "JSON, a 4-million-value MLflow column": (
        "/invocations",
        b'{"inputs": {"island": [' + b"0," * 4_000_000 + b"0]}}",
        "application/json",
    ),
}


def peak_rss(process: psutil.Process) -> int:
    """The most memory the process has held since it started (Linux's VmHWM), in bytes."""
    with open(f"/proc/{process.pid}/status", encoding="ascii") as status:
        line = next(s for s in status if s.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def chunks(data: bytes, size: int = 64 * 1024):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def measure(name: str, chunked: bool, at_once: int) -> dict:
    path, body, content_type = BODIES[name]
    token = uuid.uuid4().hex
    env = {"API_BACKEND": "onnx", "API_WORKERS": "2", MARKER: token}
    with running_api(env) as url:
        master = next(p for p in psutil.Process().children() if p.environ().get(MARKER) == token)
        workers = master.children()
        before = {w.pid: peak_rss(w) for w in workers}

        def send(_):
            data = chunks(body) if chunked else body
            with requests.post(
                url + path, data=data, headers={"Content-Type": content_type}, timeout=300
            ) as response:
                return response.status_code, response.json()["error"]["message"]

        started = time.perf_counter()
        with ThreadPoolExecutor(at_once) as pool:
            answers = list(pool.map(send, range(at_once)))
        elapsed = time.perf_counter() - started
        growth = max(peak_rss(w) - before[w.pid] for w in workers)
        baseline = max(before.values())
    return {
        "body": f"{name} ({'chunked' if chunked else 'Content-Length'}, {len(body) / MIB:.1f} MiB)",
        "status": ",".join(sorted({str(status) for status, _ in answers})),
        "seconds": elapsed,
        "baseline": baseline / MIB,
        "growth": growth / MIB,
        "message": answers[0][1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at-once", type=int, default=1, help="requests sent together")
    args = parser.parse_args()
    print("| body | status | time to answer (s) | worker peak RSS (MiB) | rise (MiB) | message |")
    print("|---|---|---|---|---|---|")
    for name in BODIES:
        for chunked in (False, True):
            row = measure(name, chunked, args.at_once)
            print(
                f"| {row['body']} | {row['status']} | {row['seconds']:.3f} | "
                f"{row['baseline']:.0f} | +{row['growth']:.1f} | {row['message']} |"
            )


if __name__ == "__main__":
    main()
