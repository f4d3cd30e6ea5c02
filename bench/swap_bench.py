"""p99 latency while the production version changes, against the same server in steady state.

The API runs under gunicorn (``--workers`` sync workers with the API's default threads) on
a scratch copy of the registry whose classifier has two versions. wrk sends one-record
predictions without pause. Each round measures two phases of ``--seconds`` each, one after
the other, so that a change in the machine's load hits both:

* **steady**: the ``production`` alias stays where it is;
* **swaps**: the alias moves between versions 1 and 2 again and again: a change, every
  worker switched (read from ``/metrics``), a pause of ``--pause`` seconds, the next change.

In both phases a thread reads ``/metrics`` every 0.1 s, so the two phases carry the same
extra load. The alias is moved with ``registry.set_alias`` (what ``promotion.promote``
does after its checks), so that the checks' own work in this process is not counted
against the server. Every worker's switch time is its ``rollout_switched_at_seconds``
gauge minus the time the aliases file was replaced. Run by hand:

    .venv/bin/python bench/swap_bench.py                 # 3 rounds of 2 x 10 s
    .venv/bin/python bench/swap_bench.py --quick         # 1 round of 2 x 3 s
"""

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402

from apps import training  # noqa: E402
from apps.registry import ModelRegistry  # noqa: E402
from apps.registry.aliases import ALIASES_FILE, PRODUCTION  # noqa: E402
from bench.api_bench import Measurement, run_wrk  # noqa: E402
from bench.servers import running_api  # noqa: E402

MODEL = "species-classifier"
BIRD = {"island": "Torgersen", "sex": "female", "bill_length_mm": 46.5, "bill_depth_mm": 17.9,
        "flipper_length_mm": 192.0, "body_mass_g": 3500.0}  # fmt: skip
GOAL = 2.0  # p99 during swaps at most twice the steady p99
SWITCH_LIMIT = 2.0  # seconds from a change to a worker's switch
GAUGE = re.compile(r'^(rollout_serving_version|rollout_switched_at_seconds)\{model="'
                   + MODEL + r'",pid="(\d+)"\} (\S+)$', re.MULTILINE)  # fmt: skip


def workers(url: str, session: requests.Session) -> dict[int, tuple[int, float]]:
    """Each worker's version and the time it began serving it, from ``/metrics``."""
    found: dict[int, dict] = {}
    for name, pid, value in GAUGE.findall(session.get(f"{url}/metrics", timeout=10).text):
        found.setdefault(int(pid), {})[name] = float(value)
    return {
        pid: (int(v["rollout_serving_version"]), v["rollout_switched_at_seconds"])
        for pid, v in found.items()
        if len(v) == 2
    }


class Operator(threading.Thread):
    """Reads ``/metrics`` every 0.1 s; when ``swapping``, moves the alias whenever every
    worker serves the version it last named and ``pause`` seconds have passed."""

    def __init__(self, url: str, registry: ModelRegistry, worker_count: int, pause: float):
        super().__init__(daemon=True)
        self.url, self.registry, self.count, self.pause = url, registry, worker_count, pause
        self.swapping, self.stop = threading.Event(), threading.Event()
        self.lock = threading.Lock()  # a change and its bookkeeping, seen whole
        self.target, self.changed, self.settled, self.settled_at = 1, 0.0, True, 0.0
        self.delays: list[float] = []  # every worker, every change
        self.changes = 0

    def run(self) -> None:
        with requests.Session() as session:
            while not self.stop.wait(0.1):
                figures = workers(self.url, session)
                with self.lock:
                    self._step(figures)

    def _step(self, figures: dict[int, tuple[int, float]]) -> None:
        """Record a change every worker has followed; make the next one when it is time."""
        on_target = len(figures) >= self.count and all(
            version == self.target for version, _ in figures.values()
        )
        if on_target and not self.settled:
            self.delays += [at - self.changed for _, at in figures.values()]
            self.settled, self.settled_at = True, time.time()
        ready = self.settled and time.time() - self.settled_at >= self.pause
        if self.swapping.is_set() and ready:
            self.target = 2 if self.target == 1 else 1
            self.registry.set_alias(MODEL, PRODUCTION, self.target, "promote", "bench")
            path = self.registry.root / MODEL / ALIASES_FILE
            self.changed, self.settled = path.stat().st_mtime, False
            self.changes += 1

    def is_settled(self) -> bool:
        with self.lock:
            return self.settled

    def wait_settled(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not self.is_settled() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.is_settled():
            raise RuntimeError(f"the workers did not all switch to v{self.target}")


def prepared_registry(workdir: Path) -> ModelRegistry:
    """A copy of the course's registry with a second classifier version, v1 in production."""
    registry = ModelRegistry(workdir / "models")
    shutil.copytree(REPO_ROOT / "models", registry.root)
    training.train_and_register(registry, MODEL)
    registry.set_alias(MODEL, PRODUCTION, 1, "pin", "the bench starts on v1")
    return registry


def fmt_runs(runs: list[Measurement], attribute: str, digits: int) -> str:
    values = [getattr(run, attribute) for run in runs]
    return (f"{statistics.median(values):,.{digits}f} "
            f"({min(values):,.{digits}f}-{max(values):,.{digits}f})")  # fmt: skip


def tables(steady: list[Measurement], swaps: list[Measurement], operator: Operator) -> str:
    lines = ["| phase | requests/s | p50 ms | p99 ms | failed requests |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    for label, runs in (("steady", steady), ("during swaps", swaps)):
        rps, p50, p99 = (
            fmt_runs(runs, key, d) for key, d in (("rps", 0), ("p50_ms", 2), ("p99_ms", 2))
        )
        lines.append(f"| {label} | {rps} | {p50} | {p99} | {sum(r.errors for r in runs)} |")
    ratios = [b.p99_ms / a.p99_ms for a, b in zip(steady, swaps, strict=True)]
    ratio = statistics.median(ratios)
    verdict = "pass" if ratio <= GOAL else "FAIL"
    delays = sorted(operator.delays)
    within = sum(0 <= d < SWITCH_LIMIT for d in delays)
    expected = operator.changes * operator.count  # every worker, every change
    p95 = delays[min(len(delays) - 1, int(0.95 * len(delays)))]
    lines += [
        "",
        "| target | figure | goal | result |",
        "|---|---:|---:|---|",
        f"| p99 during swaps vs steady | {ratio:.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) "
        f"| <= {GOAL:g}x | {verdict} |",
        f"| failed requests | {sum(r.errors for r in steady + swaps)} | 0 | "
        f"{'pass' if not any(r.errors for r in steady + swaps) else 'FAIL'} |",
        f"| workers switched within {SWITCH_LIMIT:g} s | {within} of {expected} "
        f"({operator.changes} changes) | all | {'pass' if within == expected else 'FAIL'} |",
        "",
        f"Switch time per worker: median {statistics.median(delays):.3f} s, "
        f"p95 {p95:.3f} s, max {delays[-1]:.3f} s.",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="steady + swaps pairs")
    parser.add_argument("--seconds", type=float, default=10, help="length of each phase")
    parser.add_argument("--pause", type=float, default=0.5, help="between two changes (s)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 x 3 s")
    parser.add_argument("--json", type=Path, help="write every phase's numbers here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is needed: sudo apt-get install -y wrk (macOS: brew install wrk)")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="swap-bench-"))
    try:
        registry = prepared_registry(workdir)
        body = workdir / "one.json"
        body.write_text(json.dumps({"record": BIRD}))
        env = {"API_MODELS_DIR": str(registry.root), "API_WORKERS": str(args.workers),
               "API_MAX_REQUESTS": "0", "API_KEYS": "", "API_KEYS_FILE": "",
               "LOG_LEVEL": "WARNING", "MONITORING_DB_URL": str(workdir / "monitoring.db"),
               "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics")}  # fmt: skip
        (workdir / "metrics").mkdir()
        steady: list[Measurement] = []
        swaps: list[Measurement] = []
        with running_api(env) as url:
            operator = Operator(url, registry, args.workers, args.pause)
            operator.start()
            operator.wait_settled()
            target = f"{url}/v1/models/{MODEL}/predict"
            run_wrk(target, body, 2, args, workdir)  # warm-up, not counted
            for round_number in range(args.rounds):
                steady.append(run_wrk(target, body, args.seconds, args, workdir))
                operator.swapping.set()
                swaps.append(run_wrk(target, body, args.seconds, args, workdir))
                operator.swapping.clear()
                operator.wait_settled()
                print(f"round {round_number + 1}: p99 {steady[-1].p99_ms:.2f} ms steady, "
                      f"{swaps[-1].p99_ms:.2f} ms during swaps", file=sys.stderr)  # fmt: skip
            operator.stop.set()
            operator.join()
        print(f"{args.workers} gunicorn workers, wrk {args.threads} threads x "
              f"{args.connections} connections, {args.rounds} rounds of 2 x {args.seconds:g} s, "
              f"{args.pause:g} s between changes\n")  # fmt: skip
        print(tables(steady, swaps, operator))
        if args.json:
            raw = {"steady": [vars(m) for m in steady], "swaps": [vars(m) for m in swaps],
                   "switch_delays": operator.delays, "changes": operator.changes}  # fmt: skip
            args.json.write_text(json.dumps(raw, indent=1))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
