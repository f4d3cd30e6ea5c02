"""What logging every prediction costs: one-record ONNX requests, log on and log off.

Run by hand from the repository root (needs wrk, see bench/README.md)::

    .venv/bin/python bench/monitoring_bench.py [--duration 20] [--rounds 5] [--quick]

Two identical servers (``bench/constant_app.py`` under gunicorn with the API's settings,
ONNX backend) run side by side: one with the prediction log on (SQLite, the default
database, in a scratch folder), one with ``PREDICTION_LOG=off``. wrk sends the same
one-record request to each, in interleaved slices, so that a change in the machine's load
hits both; the ratio of their rates is the log's overhead (the goal: at least 0.8x).
After the run, the rows in the log are counted against the requests served.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.api_bench import (  # noqa: E402
    HOST,
    MODEL,
    PREDICT_PATH,
    Scenario,
    check_response,
    penguin_records,
    run_wrk,
    scenario_table,
    server,
)

GOAL = 0.8


def log_server(logging_on: bool, args, workdir: Path, database: Path):
    """The bench app under gunicorn, ONNX backend, with the prediction log on or off."""
    name = "on" if logging_on else "off"
    env = {
        **os.environ,
        "API_BACKEND": "onnx",
        "API_WORKERS": str(args.workers),
        "LOG_LEVEL": args.log_level,
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix=f"metrics-{name}-", dir=workdir),
        "PREDICTION_LOG": "on" if logging_on else "off",
        "MONITORING_DB_URL": str(database),
        "API_BIND": f"{HOST}:{{port}}",
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "python:apps.api.gunicorn_conf"]
    return server(
        [*command, "bench.constant_app:app"], env, "/health/ready", workdir / f"{name}.log"
    )


def count_rows(database: Path) -> int:
    from sqlalchemy import func, select

    from apps.monitoring import db

    engine = db.connect(database)
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(db.predictions)).scalar()
    engine.dispose()
    return rows


def served_and_dropped(base: str) -> tuple[int, int]:
    """Predictions answered 200, and rows the log dropped, from the server's /metrics."""
    import requests

    served = dropped = 0
    for line in requests.get(f"{base}/metrics", timeout=10).text.splitlines():
        value = line.rsplit(" ", 1)[-1]
        if line.startswith("api_requests_total{") and 'status="200"' in line and "predict" in line:
            served += int(float(value))
        elif line.startswith("prediction_log_dropped_total{"):
            dropped += int(float(value))
    return served, dropped


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20, help="seconds per row (20)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved slices per row (5)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per row (2)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (8)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2)")
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the servers (INFO)")
    parser.add_argument("--quick", action="store_true", help="4 s per row in 2 slices")
    parser.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rounds, args.warmup = 4, 2, 1
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian/Ubuntu: apt-get install wrk)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="monitoring-bench-"))
    from apps.registry import ModelRegistry

    names = ModelRegistry().load(MODEL, backend="onnx").schema.names
    body = workdir / "native_1.json"
    body.write_text(json.dumps({"records": penguin_records(names, 1)}))
    database = workdir / "monitoring.db"
    scenarios = {
        "off": Scenario("off", "ONNX, 1 record, prediction log off", 1),
        "on": Scenario("on", "ONNX, 1 record, prediction log on (SQLite)", 1),
    }
    with (
        log_server(False, args, workdir, database) as (off, _),
        log_server(True, args, workdir, database) as (on, _),
    ):
        bases = {"off": off, "on": on}
        for base in bases.values():
            check_response(base + PREDICT_PATH, body.read_bytes(), 1, "predict")
            run_wrk(base + PREDICT_PATH, body, args.warmup, args, workdir)
        slice_seconds = max(1.0, args.duration / args.rounds)
        for round_number in range(1, args.rounds + 1):
            # Alternate which goes first, so that neither side always follows the other.
            for key in ("off", "on") if round_number % 2 else ("on", "off"):
                measurement = run_wrk(bases[key] + PREDICT_PATH, body, slice_seconds, args, workdir)
                scenarios[key].runs.append(measurement)
                print(
                    f"round {round_number}, log {key}: {measurement.rps:,.0f}/s",
                    file=sys.stderr,
                )
        served, dropped = served_and_dropped(on)
    rows = count_rows(database)
    ratios = [
        a.rps / b.rps for a, b in zip(scenarios["on"].runs, scenarios["off"].runs, strict=True)
    ]
    ratio = statistics.median(ratios)
    print(scenario_table(list(scenarios.values()), args.rounds))
    print()
    verdict = "pass" if ratio >= GOAL else "FAIL"
    print("| target | ratio | goal | result |\n|---|---:|---:|---|")
    print(f"| log on vs log off, 1 record | {ratio:.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) "
          f"| ≥ {GOAL:g}x | {verdict} |")  # fmt: skip
    print(f"\npredictions served with the log on: {served:,}; dropped by the log: {dropped:,}; "
          f"rows in the log after the graceful stop: {rows:,}")  # fmt: skip
    if args.json:
        data = {k: [vars(r) for r in s.runs] for k, s in scenarios.items()}
        args.json.write_text(json.dumps({"runs": data, "rows": rows}, indent=2))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
