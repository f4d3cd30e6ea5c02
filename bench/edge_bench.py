"""The model at the edge, measured: the page in Chromium, and the lean predictor's footprint.

Run by hand from the repository root, after ``python3 course.py setup`` (see
bench/README.md)::

    .venv/bin/python bench/edge_bench.py [--calls 500] [--skip-venvs]

Browser rows: the API (gunicorn, ONNX backend) serves ``/edge/``; headless Chromium opens
it in a fresh profile (cold cache), then again in the same profile (warm cache: each
file is revalidated, a 304). The profile is on disk, as a real browser's is: Chromium's
in-memory cache (Playwright's default) does not keep a 14 MB file. The page's own
Performance timeline gives the bytes it downloaded and the moment every model was
verified and ready (its ``models-ready`` mark, counted from navigation start); the first
prediction is that moment plus the first call of the model. Latency per prediction is
the mean over ``--calls`` calls of the page's model (Chromium's clock is coarse, so no
single call is timed), against the median round trip of ``requests`` to the API on
127.0.0.1 (keep-alive), for one record and for the 344 penguins.

Device rows: two fresh virtual environments, one from ``requirements-serve-onnx.txt``
(the lean image: ONNX Runtime and NumPy) and one from ``requirements-serve.txt`` (adds
scikit-learn, SciPy, pandas), each measured for its size on disk, the memory of one
process that loads both models and predicts, and the API in it (gunicorn, 2 workers):
time to ready and memory (PSS, so pages shared after the fork count once).
"""

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from apps import data  # noqa: E402
from apps.client.records import frame_to_records  # noqa: E402
from apps.processes import free_port, running  # noqa: E402
from bench.servers import running_api  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]
COLUMNS = ["island", "sex", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
RECORD = frame_to_records(data.load_data()[COLUMNS].dropna().head(1))[0]
"""One complete penguin, the first of the data set."""

TIME_CALLS = """async ({records, calls}) => {
  const app = await import('./app.js');
  await app.predictRecords(records);  // warm-up
  const start = performance.now();
  for (let i = 0; i < calls; i++) await app.predictRecords(records);
  return (performance.now() - start) / calls;
}"""

PREDICTOR = """
import json, sys, time
started = time.perf_counter()
import psutil
from apps.registry import ModelRegistry
registry = ModelRegistry()
record = {**json.loads(sys.argv[1]), "species": "Gentoo"}
for name in registry.names():
    model = registry.load(name, backend=sys.argv[2])
    model.predict_records([{k: v for k, v in record.items() if k in model.schema.by_name}])
heavy = [m for m in ("sklearn", "scipy", "pandas") if m in sys.modules]
print(json.dumps({"rss": psutil.Process().memory_info().rss, "heavy": heavy,
                  "seconds": time.perf_counter() - started}))
"""


def page_figures(browser_context, url: str) -> dict:
    """Open the page once in this profile: bytes downloaded, time to ready and to an answer."""
    from playwright.sync_api import expect

    page = browser_context.new_page()
    page.goto(url)
    expect(page.locator("#model")).to_be_enabled(timeout=60_000)
    page.select_option("#model", "species-classifier v1")
    ready_ms = page.evaluate("performance.getEntriesByName('models-ready')[0].startTime")
    first_call_ms = page.evaluate(
        """async (record) => {
          const app = await import('./app.js');
          const start = performance.now();
          await app.predictRecords([record]);
          return performance.now() - start;
        }""",
        RECORD,
    )
    entries = (
        "performance.getEntriesByType('resource')"
        ".concat(performance.getEntriesByType('navigation'))"
    )
    return {
        "files": page.evaluate("async () => (await import('./app.js')).downloads()"),
        "transferred": page.evaluate(f"{entries}.reduce((sum, e) => sum + e.transferSize, 0)"),
        "ready_ms": ready_ms,
        "first_answer_ms": ready_ms + first_call_ms,
        "page": page,
    }


def browser_rows(calls: int) -> list[tuple[str, str]]:
    from playwright.sync_api import sync_playwright

    penguins = data.load_data()
    everyone = frame_to_records(penguins[COLUMNS])
    rows = []
    profile = tempfile.mkdtemp(prefix="edge-bench-profile-")  # a disk cache, as browsers have
    with (
        running_api({"API_BACKEND": "onnx", "LOG_LEVEL": "WARNING"}) as api,
        sync_playwright() as pw,
    ):
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        cold = page_figures(context, f"{api}/edge/")
        warm = page_figures(context, f"{api}/edge/")
        by_kind = {"runtime (ort/)": 0, "models": 0, "page": 0}
        for file in cold["files"]:
            kind = (
                "runtime (ort/)"
                if "/ort/" in file["path"]
                else ("models" if "/models" in file["path"] else "page")
            )
            by_kind[kind] += file["bytes"]
        total = sum(by_kind.values())
        rows += [("download, first visit", f"{total / 1e6:.2f} MB")]
        rows += [(f"  of which {k}", f"{v / 1e3:,.1f} kB") for k, v in by_kind.items()]
        rows += [("download, return visit (304s)", f"{warm['transferred'] / 1e3:.1f} kB")]
        rows += [
            ("ready (models verified), cold cache", f"{cold['ready_ms']:.0f} ms"),
            ("first prediction, cold cache", f"{cold['first_answer_ms']:.0f} ms"),
            ("first prediction, warm cache", f"{warm['first_answer_ms']:.0f} ms"),
        ]
        page = warm["page"]
        page.select_option("#model", "species-classifier v1")
        one_ms = page.evaluate(TIME_CALLS, {"records": [RECORD], "calls": calls})
        all_ms = page.evaluate(TIME_CALLS, {"records": everyone, "calls": max(calls // 10, 5)})
        session = requests.Session()
        url = f"{api}/v1/models/species-classifier/predict"

        def round_trip(body: dict, n: int) -> float:
            times = []
            for _ in range(n):
                start = time.perf_counter()
                session.post(url, json=body, timeout=10).raise_for_status()
                times.append(time.perf_counter() - start)
            return statistics.median(times) * 1000

        rows += [
            ("1 record: in the browser", f"{one_ms:.3f} ms"),
            (
                "1 record: API round trip (127.0.0.1)",
                f"{round_trip({'record': RECORD}, calls):.3f} ms",
            ),
            ("344 records: in the browser", f"{all_ms:.2f} ms"),
            (
                "344 records: API round trip",
                f"{round_trip({'records': everyone}, max(calls // 10, 5)):.2f} ms",
            ),
        ]
        context.close()
    shutil.rmtree(profile, ignore_errors=True)
    return rows


def make_venv(folder: Path, requirements: str) -> tuple[Path, float]:
    """A fresh virtual environment with exactly the pinned packages of ``requirements``,
    and their size on disk in MB (no pip in it, as in the images; psutil comes after)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps"]
    for extra in (["-r", REPO_ROOT / requirements], ["psutil"]):
        installed = subprocess.run([*pip, *extra], capture_output=True, text=True, check=False)
        if installed.returncode:
            raise RuntimeError(f"pip failed for {requirements}:\n{installed.stderr}")
        if extra[0] == "-r":
            size = folder_mb(next(folder.glob("lib/python*/site-packages")))
    return python, size


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


@contextlib.contextmanager
def api_in(python: Path, backend: str) -> Iterator[tuple[str, float, int]]:
    """The API on the given interpreter; yields its URL, seconds to ready, its process id."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "API_BACKEND": backend,
        "API_WORKERS": "2",
        "API_EDGE_PAGE": "off",
        "LOG_LEVEL": "WARNING",
    }
    started = time.perf_counter()
    url = f"http://127.0.0.1:{port}"
    command = [str(python), "-m", "apps.api", "--port", str(port)]
    with running(command, f"{url}/health/ready", env, startup_seconds=120) as process:
        yield url, time.perf_counter() - started, process.pid


def tree_pss_mb(pid: int) -> float:
    """Proportional set size of a process and its children (Linux): shared pages split."""
    parent = psutil.Process(pid)
    return sum(p.memory_full_info().pss for p in [parent, *parent.children(recursive=True)]) / 1e6


def device_rows() -> list[tuple[str, str]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        for label, requirements, backend in [
            ("lean (ONNX Runtime + NumPy)", "requirements-serve-onnx.txt", "onnx"),
            ("full (+ scikit-learn, SciPy, pandas)", "requirements-serve.txt", "sklearn"),
        ]:
            venv = Path(tmp) / backend
            python, size_mb = make_venv(venv, requirements)
            predictor = subprocess.run(
                [python, "-c", PREDICTOR, json.dumps(RECORD), backend],
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                capture_output=True,
                text=True,
                check=True,
            )
            figures = json.loads(predictor.stdout)
            with api_in(python, backend) as (url, ready_s, pid):
                for _ in range(50):
                    requests.post(
                        f"{url}/v1/models/species-classifier/predict",
                        json={"record": RECORD},
                        timeout=5,
                    ).raise_for_status()
                pss = tree_pss_mb(pid)
            rows += [
                (f"{label}: installed packages", f"{size_mb:.0f} MB"),
                (f"{label}: one predictor process (RSS)", f"{figures['rss'] / 1e6:.0f} MB"),
                (f"{label}: heavy modules imported", ", ".join(figures["heavy"]) or "none"),
                (f"{label}: API start to ready", f"{ready_s:.1f} s"),
                (f"{label}: API, 2 workers (PSS)", f"{pss:.0f} MB"),
            ]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--skip-venvs", action="store_true", help="browser rows only")
    args = parser.parse_args()
    rows = browser_rows(args.calls)
    if not args.skip_venvs and shutil.which("python3"):
        rows += device_rows()
    print(f"\n{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n")
    print("| measure | value |\n|---|---:|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
