"""Throughput and latency of the prediction API under load, with wrk, on 127.0.0.1.

Run by hand from the repository root (it installs nothing; see bench/README.md)::

    .venv/bin/python bench/api_bench.py [--duration 10] [--connections 8] [--quick]

Every API row is served by the same gunicorn configuration (``apps/api/gunicorn_conf.py``,
``API_WORKERS`` sync workers) running ``bench/constant_app.py``: the real app from
``create_app()`` plus a constant-answer route, so the framework's own ceiling and the
model routes are measured on identical servers. One server runs the ONNX backend,
one the scikit-learn backend. An ``mlflow models serve`` of the same scikit-learn
pipeline, from a separate virtual environment (``--mlflow-python``), is measured for
comparison. In-process prediction of the same 1,000 records, in this process, gives the
ceiling for large requests.

The script prints two Markdown tables: every scenario (requests/s, rows/s, p50 and
p99 latency), then the target ratios with pass or fail. All ratios come from one run,
measured side by side, because the absolute numbers on a shared machine drift.
"""

import argparse
import contextlib
import datetime
import json
import os
import pickle
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from apps import data  # noqa: E402
from apps.processes import (  # noqa: E402
    ServerExited,
    free_port,
    spawn,
    stop_all,
    wait_until_answers,
)
from apps.registry import ModelRegistry  # noqa: E402
from apps.registry.backends import SKOPS_TRUSTED_TYPES  # noqa: E402

HOST = "127.0.0.1"  # the only address this script ever sends traffic to
MODEL = "species-classifier"
PREDICT_PATH = f"/v1/models/{MODEL}/predict"
BIG = 1000  # records in a large request
DEFAULT_MLFLOW_PYTHON = "/tmp/mlflow-bench/bin/python"  # noqa: S108 (bench/README.md makes it)

# wrk runs this Lua: a fixed POST body, and at the end one JSON line with the numbers.
# Latencies from wrk are in microseconds.
WRK_SCRIPT = """
wrk.method = "{method}"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("{body_path}", "rb"))
wrk.body = f:read("*a")
f:close()

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {{"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, '
    .. '"p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d, "connect_errors": %d, '
    .. '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d}}\\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


# --- results -------------------------------------------------------------------------


@dataclass
class Measurement:
    """One scenario measured once: requests (or calls) per second and latency in ms."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0


@dataclass
class Scenario:
    """A row of the table; ``runs`` holds one measurement per round."""

    key: str
    label: str
    records: int
    runs: list[Measurement] = field(default_factory=list)
    skipped: str | None = None

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs)


# --- request bodies ------------------------------------------------------------------


def penguin_records(names: list[str], count: int, seed: int = 0) -> list[dict]:
    """``count`` penguins (drawn with replacement), as a client sends them: None for missing."""
    frame = data.load_data()[names].astype(object)
    frame = frame.where(frame.notna(), None)
    if count == 1:
        return frame.iloc[[0]].to_dict("records")  # a complete record
    rows = np.random.default_rng(seed).integers(0, len(frame), size=count)
    return frame.iloc[rows].to_dict("records")


# --- servers -------------------------------------------------------------------------


@contextlib.contextmanager
def server(
    command: list[str], env: dict, health_path: str, log: Path, startup: float = 120
) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start a server in its own process group on a free port; yield its base URL."""
    port = free_port()
    env = {name: value.replace("{port}", str(port)) for name, value in env.items()}
    command = [part.replace("{port}", str(port)) for part in command]
    process = spawn(command, env, log)
    base = f"http://{HOST}:{port}"
    try:
        try:
            wait_until_answers(base + health_path, process, startup)
        except (ServerExited, TimeoutError) as error:
            raise RuntimeError(f"{error}:\n{log.read_text(errors='replace')[-3000:]}") from None
        yield base, process
    finally:
        stop_all([process])


def api_server(backend: str, args, workdir: Path):
    """The API (bench/constant_app.py) under gunicorn with apps/api/gunicorn_conf.py."""
    metrics_dir = Path(tempfile.mkdtemp(prefix=f"metrics-{backend}-", dir=workdir))
    env = {
        **os.environ,
        "API_BACKEND": backend,
        "API_WORKERS": str(args.workers),
        "API_THREADS": str(args.api_threads),  # 4 (gunicorn_conf's default): gthread
        "LOG_LEVEL": args.log_level,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "MONITORING_DB_URL": str(workdir / f"monitoring-{backend}.db"),  # not var/: scratch
    }
    env["API_BIND"] = f"{HOST}:{{port}}"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:apps.api.gunicorn_conf",
        "bench.constant_app:app",
    ]
    return server(command, env, "/health/live", workdir / f"api-{backend}.log")


def save_mlflow_model(mlflow_python: str, workdir: Path) -> Path:
    """Save our scikit-learn pipeline as an MLflow model, with a signature from the data."""
    model = ModelRegistry().load(MODEL, backend="sklearn")
    pickled = workdir / "pipeline.pkl"
    pickled.write_bytes(pickle.dumps(model.backend.pipeline))
    example = workdir / "example.json"
    example.write_text(json.dumps(penguin_records(model.schema.names, 344)))
    target = workdir / "mlflow-model"
    code = f"""
import pickle, pandas as pd, mlflow.sklearn
from mlflow.models import infer_signature
pipeline = pickle.load(open({str(pickled)!r}, "rb"))
frame = pd.read_json({str(example)!r}, orient="records")
mlflow.sklearn.save_model(pipeline, {str(target)!r},
                          signature=infer_signature(frame, pipeline.predict(frame)),
                          skops_trusted_types={list(SKOPS_TRUSTED_TYPES)!r})
"""
    done = subprocess.run([mlflow_python, "-c", code], cwd=workdir, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"saving the MLflow model failed:\n{done.stderr[-3000:]}")
    return target


def mlflow_server(mlflow_python: str, model_dir: Path, args, workdir: Path):
    """``mlflow models serve`` with the local environment and the same number of workers."""
    bin_dir = str(Path(mlflow_python).parent)  # mlflow runs `uvicorn` from PATH
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    env.pop("PYTHONPATH", None)
    command = [
        mlflow_python,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        str(model_dir),
        "--host",
        HOST,
        "--port",
        "{port}",
        "-w",
        str(args.workers),
        "--env-manager",
        "local",
    ]
    if args.mlflow_no_conda:
        command.append("--no-conda")
    return server(command, env, "/ping", workdir / "mlflow.log")


# --- measuring -------------------------------------------------------------------------


def run_wrk(url: str, body_path: Path, seconds: float, args, workdir: Path) -> Measurement:
    """One wrk run: ``--threads`` threads, ``--connections`` connections, ``seconds`` long."""
    script = workdir / f"{body_path.stem}.lua"
    script.write_text(WRK_SCRIPT.format(method="POST", body_path=body_path))
    command = [
        "wrk",
        f"--threads={args.threads}",
        f"--connections={args.connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=10s",
        f"--script={script}",
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next((x for x in output.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"no result from wrk:\n{output}")
    result = json.loads(line.removeprefix("BENCH_JSON "))
    errors = sum(result[k] for k in result if k.endswith("_errors") or k == "timeouts")
    return Measurement(
        rps=result["requests"] / (result["duration_us"] / 1e6),
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        errors=errors,
    )


def time_calls(call: Callable[[], object], seconds: float) -> Measurement:
    """Call ``call`` repeatedly for about ``seconds``; calls per second and latency."""
    for _ in range(3):  # warm-up
        call()
    latencies = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    return Measurement(
        rps=len(latencies) / elapsed,
        p50_ms=float(np.percentile(latencies, 50)) * 1000,
        p99_ms=float(np.percentile(latencies, 99)) * 1000,
    )


def check_response(url: str, body: bytes, records: int, kind: str) -> None:
    """Send the body once and check the answer, so that wrk measures real predictions."""
    response = requests.post(
        url, data=body, headers={"Content-Type": "application/json"}, timeout=60
    )
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:500]}")
    answer = response.json()
    if kind == "constant":
        return
    predictions = answer.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != records:
        raise RuntimeError(f"{url}: expected {records} predictions, got {str(answer)[:300]}")


# --- the tables ------------------------------------------------------------------------


def fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def scenario_table(scenarios: list[Scenario], rounds: int) -> str:
    lines = [
        "| scenario | requests/s | rows/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in scenarios:
        if s.skipped:
            lines.append(f"| {s.label} | skipped: {s.skipped} | | | |")
            continue
        rps = s.median("rps")
        spread = ""
        if rounds > 1:
            low, high = min(r.rps for r in s.runs), max(r.rps for r in s.runs)
            spread = f" ({fmt(low)}-{fmt(high)})"
        errors = sum(r.errors for r in s.runs)
        note = f" ({errors} errors!)" if errors else ""
        lines.append(
            f"| {s.label}{note} | {fmt(rps, 1 if rps < 100 else 0)}{spread} "
            f"| {fmt(rps * s.records)} | {s.median('p50_ms'):.2f} | {s.median('p99_ms'):.2f} |"
        )
    return "\n".join(lines)


@dataclass
class Target:
    label: str
    numerator: str
    denominator: str
    goal: float
    rows: bool = False  # compare rows/s (both sides scaled by their record counts)
    primary: bool = True


TARGETS = [
    Target("ONNX 1 record vs constant route", "onnx_1", "constant_onnx", 0.5),
    Target("ONNX 1 record vs scikit-learn 1 record", "onnx_1", "sklearn_1", 10),
    Target(
        "ONNX 1,000 records vs in-process (validate + predict)",
        "onnx_1000",
        "inproc_onnx_full",
        0.5,
        rows=True,
    ),
    Target(
        "ONNX 1,000 records vs in-process (predict only)",
        "onnx_1000",
        "inproc_onnx_predict",
        0.5,
        rows=True,
        primary=False,
    ),
    Target(
        "scikit-learn 1,000 records vs in-process (validate + predict)",
        "sklearn_1000",
        "inproc_sklearn_full",
        0.5,
        rows=True,
    ),
    Target(
        "scikit-learn 1,000 records vs in-process (predict only)",
        "sklearn_1000",
        "inproc_sklearn_predict",
        0.5,
        rows=True,
        primary=False,
    ),
    Target("scikit-learn 1 record vs MLflow 1 record", "sklearn_1", "mlflow_1", 2),
    Target("scikit-learn 1,000 records vs MLflow 1,000 records", "sklearn_1000", "mlflow_1000", 2),
    Target(
        "scikit-learn /invocations 1 record vs MLflow 1 record (same body)",
        "sklearn_inv_1",
        "mlflow_1",
        2,
        primary=False,
    ),
    Target(
        "scikit-learn /invocations 1,000 records vs MLflow 1,000 records (same body)",
        "sklearn_inv_1000",
        "mlflow_1000",
        2,
        primary=False,
    ),
]


def ratio_table(scenarios: dict[str, Scenario], rounds: int) -> str:
    """Each ratio is computed per round (side by side), then the median is reported."""
    lines = [
        "| target | ratio | goal | result |",
        "|---|---:|---:|---|",
    ]
    for target in TARGETS:
        top, bottom = scenarios[target.numerator], scenarios[target.denominator]
        kind = "" if target.primary else " (shown, not the target)"
        if top.skipped or bottom.skipped or not top.runs or not bottom.runs:
            lines.append(f"| {target.label}{kind} | - | ≥ {target.goal:g}x | skipped |")
            continue
        scale = top.records / bottom.records if target.rows else 1
        ratios = [a.rps * scale / b.rps for a, b in zip(top.runs, bottom.runs, strict=False)]
        ratio = statistics.median(ratios)
        spread = f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
        verdict = "pass" if ratio >= target.goal else "FAIL"
        if not target.primary:
            verdict = verdict.lower()
        lines.append(
            f"| {target.label}{kind} | {ratio:.2f}x{spread} | ≥ {target.goal:g}x | {verdict} |"
        )
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------


def machine_summary(args, mlflow_version: str | None) -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    kind = "sync workers"
    if args.api_threads > 1:
        kind = f"gthread workers x {args.api_threads} threads"
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    return (
        f"date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; "
        f"machine: {os.cpu_count()} cores ({cpu}); Python {platform.python_version()}; "
        f"{wrk_version.split(' Copyright')[0].strip()}; "
        f"MLflow {mlflow_version or 'not used'}; load average at the end "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}\n"
        f"settings: {args.workers} gunicorn {kind} per server, LOG_LEVEL={args.log_level}; "
        f"wrk {args.threads} threads, {args.connections} connections; {args.duration:g} s per row "
        f"in {args.rounds} interleaved slice(s) of {max(1.0, args.duration / args.rounds):g} s, "
        f"after {args.warmup:g} s of warm-up; medians of the slices, (min-max) when several"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per row (10)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (8)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds per row (2)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="split each row's duration into this many slices, run round-robin (5)",
    )
    parser.add_argument("--workers", type=int, default=2, help="server workers, all servers (2)")
    parser.add_argument(
        "--api-threads",
        type=int,
        default=4,
        help="API_THREADS of our servers: 1 = sync workers; >1 = gthread workers (default 4, "
        "as apps/api/gunicorn_conf.py)",
    )
    parser.add_argument(
        "--log-level", default="INFO", help="LOG_LEVEL of our servers (INFO, production's)"
    )
    parser.add_argument("--quick", action="store_true", help="3 s rows in 1 slice, 1 s warm-up")
    parser.add_argument(
        "--mlflow-python",
        default=DEFAULT_MLFLOW_PYTHON,
        help=f"python of a venv with mlflow installed ({DEFAULT_MLFLOW_PYTHON}); "
        "MLflow rows are skipped if it is missing",
    )
    parser.add_argument(
        "--mlflow-no-conda", action="store_true", help="also pass --no-conda to mlflow"
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds = 3, 1, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed. On Debian or Ubuntu: sudo apt-get install -y wrk; "
            "on macOS: brew install wrk.",
            file=sys.stderr,
        )
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="api-bench-"))
    registry = ModelRegistry()
    names = registry.load(MODEL, backend="onnx").schema.names
    one, big = penguin_records(names, 1), penguin_records(names, BIG)
    bodies = {
        "native_1": {"records": one},
        "native_1000": {"records": big},
        "mlflow_1": {"dataframe_records": one},
        "mlflow_1000": {"dataframe_records": big},
    }
    body_paths = {}
    for name, body in bodies.items():
        body_paths[name] = workdir / f"{name}.json"
        body_paths[name].write_bytes(json.dumps(body).encode())

    # key: (label, records, server, path, body, kind)
    plan = {
        "constant_onnx": ("constant route, ONNX server", 1, "onnx", "/bench/constant", "native_1"),
        "onnx_1": ("ONNX, 1 record", 1, "onnx", PREDICT_PATH, "native_1"),
        "constant_sklearn": (
            "constant route, scikit-learn server",
            1,
            "sklearn",
            "/bench/constant",
            "native_1",
        ),
        "sklearn_1": ("scikit-learn, 1 record", 1, "sklearn", PREDICT_PATH, "native_1"),
        "onnx_1000": ("ONNX, 1,000 records", BIG, "onnx", PREDICT_PATH, "native_1000"),
        "sklearn_1000": (
            "scikit-learn, 1,000 records",
            BIG,
            "sklearn",
            PREDICT_PATH,
            "native_1000",
        ),
        "sklearn_inv_1": (
            "scikit-learn, /invocations, 1 record",
            1,
            "sklearn",
            "/invocations",
            "mlflow_1",
        ),
        "sklearn_inv_1000": (
            "scikit-learn, /invocations, 1,000 records",
            BIG,
            "sklearn",
            "/invocations",
            "mlflow_1000",
        ),
        "mlflow_1": (
            "MLflow serve, /invocations, 1 record",
            1,
            "mlflow",
            "/invocations",
            "mlflow_1",
        ),
        "mlflow_1000": (
            "MLflow serve, /invocations, 1,000 records",
            BIG,
            "mlflow",
            "/invocations",
            "mlflow_1000",
        ),
    }
    inprocess = {
        "inproc_onnx_full": ("in-process ONNX, validate + predict_proba, 1,000 records", "onnx"),
        "inproc_onnx_predict": ("in-process ONNX, predict_proba only, 1,000 records", "onnx"),
        "inproc_sklearn_full": (
            "in-process scikit-learn, validate + predict_proba, 1,000 records",
            "sklearn",
        ),
        "inproc_sklearn_predict": (
            "in-process scikit-learn, predict_proba only, 1,000 records",
            "sklearn",
        ),
    }
    scenarios = {key: Scenario(key, spec[0], spec[1]) for key, spec in plan.items()}
    scenarios.update({key: Scenario(key, spec[0], BIG) for key, spec in inprocess.items()})

    mlflow_python, mlflow_version = args.mlflow_python, None
    if not Path(mlflow_python).exists():
        reason = f"no MLflow environment at {mlflow_python} (see bench/README.md)"
        print(f"MLflow rows skipped: {reason}", file=sys.stderr)
        for key in ("mlflow_1", "mlflow_1000"):
            scenarios[key].skipped = reason
        mlflow_python = None
    else:
        mlflow_version = subprocess.run(
            [mlflow_python, "-c", "import mlflow; print(mlflow.__version__)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    models = {b: registry.load(MODEL, backend=b) for b in ("onnx", "sklearn")}
    columns = models["onnx"].schema.validate(big)
    calls = {
        "inproc_onnx_full": lambda: models["onnx"].predict_proba(
            models["onnx"].schema.validate(big)
        ),
        "inproc_onnx_predict": lambda: models["onnx"].predict_proba(columns),
        "inproc_sklearn_full": lambda: models["sklearn"].predict_proba(
            models["sklearn"].schema.validate(big)
        ),
        "inproc_sklearn_predict": lambda: models["sklearn"].predict_proba(columns),
    }

    print(f"working folder: {workdir}", file=sys.stderr)
    with contextlib.ExitStack() as stack:  # stops every server, even on error
        bases = {}
        for backend in ("onnx", "sklearn"):
            bases[backend], _ = stack.enter_context(api_server(backend, args, workdir))
            print(f"{backend} API server at {bases[backend]}", file=sys.stderr)
        if mlflow_python:
            model_dir = save_mlflow_model(mlflow_python, workdir)
            bases["mlflow"], _ = stack.enter_context(
                mlflow_server(mlflow_python, model_dir, args, workdir)
            )
            print(f"MLflow server at {bases['mlflow']}", file=sys.stderr)

        for key, (_, records, where, path, body) in plan.items():
            if not scenarios[key].skipped:
                kind = "constant" if path == "/bench/constant" else "predict"
                check_response(bases[where] + path, body_paths[body].read_bytes(), records, kind)

        # Rows run in this order, in short slices, round after round: the two sides of
        # each ratio are measured seconds apart, so drift in the machine's load hits both.
        steps = [
            "constant_onnx",
            "onnx_1",
            "sklearn_1",
            "mlflow_1",
            "sklearn_inv_1",
            "constant_sklearn",
            "inproc_onnx_full",
            "inproc_onnx_predict",
            "onnx_1000",
            "inproc_sklearn_full",
            "inproc_sklearn_predict",
            "sklearn_1000",
            "mlflow_1000",
            "sklearn_inv_1000",
        ]
        slice_seconds = max(1.0, args.duration / args.rounds)
        for round_number in range(1, args.rounds + 1):
            for key in steps:
                scenario = scenarios[key]
                if scenario.skipped:
                    continue
                if key in calls:
                    measurement = time_calls(calls[key], max(1.0, slice_seconds / 2))
                else:
                    _, _, where, path, body = plan[key]
                    url = bases[where] + path
                    if round_number == 1:
                        run_wrk(url, body_paths[body], args.warmup, args, workdir)  # warm-up
                    measurement = run_wrk(url, body_paths[body], slice_seconds, args, workdir)
                scenario.runs.append(measurement)
                print(
                    f"round {round_number}: {scenario.label}: {measurement.rps:,.1f}/s, "
                    f"p50 {measurement.p50_ms:.2f} ms, p99 {measurement.p99_ms:.2f} ms, "
                    f"{measurement.errors} errors",
                    file=sys.stderr,
                )

    order = [
        "constant_onnx",
        "constant_sklearn",
        "onnx_1",
        "sklearn_1",
        "sklearn_inv_1",
        "mlflow_1",
        "onnx_1000",
        "sklearn_1000",
        "sklearn_inv_1000",
        "mlflow_1000",
        "inproc_onnx_full",
        "inproc_onnx_predict",
        "inproc_sklearn_full",
        "inproc_sklearn_predict",
    ]
    print(machine_summary(args, mlflow_version))
    print()
    print(scenario_table([scenarios[k] for k in order], args.rounds))
    print()
    print(ratio_table(scenarios, args.rounds))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    k: {
                        "label": s.label,
                        "records": s.records,
                        "skipped": s.skipped,
                        "runs": [vars(r) for r in s.runs],
                    }
                    for k, s in scenarios.items()
                },
                indent=2,
            )
        )
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
