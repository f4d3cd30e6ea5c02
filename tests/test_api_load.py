"""A bounded load test on loopback: no failed request, and no memory leak in the workers.

A dedicated gunicorn server (2 workers, ``LOG_LEVEL=WARNING``) gets a warm-up of
2,000 requests, then 20,000 more from 8 client threads, each thread with its own
``requests.Session`` (keep-alive). The mix is what a real client sends: mostly single
records, a quarter batches of 50 records, to both models' native ``predict``, plus a
few Open Inference Protocol ``infer`` and MLflow ``/invocations`` calls (JSON and CSV).

The run happens once, in a module fixture; the tests then judge it: every request
answered 200 with the right number of predictions, no worker replaced, and the
workers' memory flat. Requests per second are printed, for information only: speed
depends on the machine and is not asserted.
"""

import io
import itertools
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import jsonschema
import pytest
import requests

from . import v2_protocol
from .conftest import as_records
from .servers import running_api

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

BUDGET_SECONDS = 240  # the whole run, server start included; past it the run stops and fails
WARM_UP_REQUESTS = 2_000
MEASURED_REQUESTS = 20_000
SAMPLE_EVERY = 2_000  # requests between two memory samples: 10 samples after the warm-up
THREADS = 8
BATCH = 50
REQUEST_TIMEOUT = 30

MAX_GROWTH_MIB = 10  # per worker, from the post-warm-up sample to the last one
TREND_SAMPLES = 5  # the last samples that must not rise at every step ...
TREND_MIN_RISE_MIB = 2  # ... by this much in all
MIB = 1024 * 1024

MARKER = "PENGUINS_LOAD_TEST_RUN"
"""An environment variable set only for our server, to find its processes without guessing."""

MODELS = ("species-classifier", "body-mass-regressor")


@dataclass(frozen=True)
class Job:
    """One request to send and the number of predictions its answer must hold."""

    kind: str
    path: str
    body: bytes
    content_type: str
    expected: int


@dataclass
class Run:
    """What the load run saw."""

    sent: int = 0
    elapsed: float = 0.0
    failures: list[str] = field(default_factory=list)
    failures_by_kind: dict[str, int] = field(default_factory=dict)
    count_by_kind: dict[str, int] = field(default_factory=dict)
    over_budget: str | None = None
    samples: list[tuple[int, dict[int, int]]] = field(default_factory=list)  # (sent, pid: rss)
    memory_unavailable: str | None = None
    worker_pids: list[set[int]] = field(default_factory=list)

    def record(self, kind: str, problem: str | None) -> None:
        """Count one request and, if it failed, why (the first 20 reasons are kept)."""
        self.sent += 1
        self.count_by_kind[kind] = self.count_by_kind.get(kind, 0) + 1
        if problem:
            self.failures_by_kind[kind] = self.failures_by_kind.get(kind, 0) + 1
            if len(self.failures) < 20:
                self.failures.append(problem)


def build_jobs(penguins, columns: dict[str, list[str]]) -> list[Job]:
    """A fixed, repeating mix of requests, built once so that the client spends little time."""
    jobs = []
    records = {name: as_records(penguins, cols) for name, cols in columns.items()}
    for name in MODELS:
        rows = records[name]
        for row in rows:
            body = json.dumps({"record": row}).encode()
            jobs.append(Job(f"single {name}", f"/v1/models/{name}/predict", body, "json", 1))
        for start in range(0, len(rows) - BATCH + 1, BATCH // 2):
            chunk = rows[start : start + BATCH]
            body = json.dumps({"records": chunk}).encode()
            jobs.append(Job(f"batch {name}", f"/v1/models/{name}/predict", body, "json", BATCH))
        # V2 tensors are typed (BYTES or FP64): complete rows only, one tensor per column
        chunk = [r for r in rows if None not in r.values()][:BATCH]
        tensors = [
            {
                "name": col,
                "shape": [BATCH],
                "datatype": "BYTES" if isinstance(chunk[0][col], str) else "FP64",
                "data": [r[col] for r in chunk],
            }
            for col in columns[name]
        ]
        jobs.append(
            Job(
                f"v2 {name}",
                f"/v2/models/{name}/infer",
                json.dumps({"inputs": tensors}).encode(),
                "json",
                BATCH,
            )
        )
    default = records["species-classifier"][BATCH : 2 * BATCH]
    cols = columns["species-classifier"]
    split = {"dataframe_split": {"columns": cols, "data": [[r[c] for c in cols] for r in default]}}
    jobs.append(Job("mlflow json", "/invocations", json.dumps(split).encode(), "json", BATCH))
    csv_text = io.StringIO()
    csv_text.write(",".join(cols) + "\n")
    for r in default:
        csv_text.write(",".join("" if r[c] is None else str(r[c]) for c in cols) + "\n")
    jobs.append(Job("mlflow csv", "/invocations", csv_text.getvalue().encode(), "csv", BATCH))
    return jobs


def schedule(jobs: list[Job]):
    """Request i of the run: 1 in 25 is V2 or MLflow, 1 in 4 a batch, the rest single records."""
    by_kind: dict[str, list[Job]] = {}
    for job in jobs:
        by_kind.setdefault(job.kind.split()[0], []).append(job)
    single, batch = itertools.cycle(by_kind["single"]), itertools.cycle(by_kind["batch"])
    other = itertools.cycle(by_kind["v2"] + by_kind["mlflow"])
    for i in itertools.count():
        if i % 25 == 12:
            yield next(other)
        elif i % 4 == 0:
            yield next(batch)
        else:
            yield next(single)


def check_answer(job: Job, response: requests.Response) -> str | None:
    """None if the answer is right, else what is wrong with it."""
    if response.status_code != 200:
        return f"{job.kind}: HTTP {response.status_code}: {response.text[:200]}"
    body = response.json()
    if job.path.endswith("/infer"):
        try:
            v2_protocol.validate("inference_response", body)
        except jsonschema.ValidationError as error:
            return f"{job.kind}: not the protocol's inference_response: {error.message}"
        count = body["outputs"][0]["shape"][0]
    else:
        count = len(body["predictions"])
    if count != job.expected:
        return f"{job.kind}: {count} predictions for {job.expected} records"
    return None


class ServerProcesses:
    """The gunicorn master and workers of our server, found by the marker in their environment."""

    def __init__(self, token: str):
        self.token, self.master = token, None
        try:
            import psutil
        except ImportError:
            self.unavailable = "psutil is not installed: memory is not measured"
            return
        self.psutil, self.unavailable = psutil, None
        try:
            for child in psutil.Process().children():
                if child.environ().get(MARKER) == token:
                    self.master = child
        except (psutil.AccessDenied, psutil.NoSuchProcess, NotImplementedError) as error:
            self.unavailable = f"cannot read the server's processes here ({error!r})"
            return
        if self.master is None:
            self.unavailable = "the server process was not found"

    def rss_by_worker(self) -> dict[int, int]:
        """Resident memory of each worker process, in bytes (VmRSS on Linux)."""
        return {w.pid: w.memory_info().rss for w in self.master.children()}


def run_load(base_url: str, jobs: list[Job], processes: ServerProcesses, deadline: float) -> Run:
    run = Run()
    local = threading.local()
    lock = threading.Lock()
    plan = schedule(jobs)
    headers = {"json": {"Content-Type": "application/json"}, "csv": {"Content-Type": "text/csv"}}

    def send(job: Job) -> None:
        if time.monotonic() > deadline:
            return  # out of time: the run stops; the caller reports it
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        try:
            response = session.post(
                base_url + job.path,
                data=job.body,
                headers=headers[job.content_type],
                timeout=REQUEST_TIMEOUT,
            )
            problem = check_answer(job, response)
        except (requests.RequestException, ValueError, KeyError, IndexError) as error:
            problem = f"{job.kind}: {type(error).__name__}: {error}"
        with lock:
            run.record(job.kind, problem)

    def sample(sent: int) -> None:
        if processes.unavailable is None:
            rss = processes.rss_by_worker()
            run.samples.append((sent, rss))
            run.worker_pids.append(set(rss))

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(send, itertools.islice(plan, WARM_UP_REQUESTS)))
        warm_sent = run.sent
        sample(0)
        started = time.monotonic()
        for _ in range(MEASURED_REQUESTS // SAMPLE_EVERY):
            if time.monotonic() > deadline:
                break
            list(pool.map(send, itertools.islice(plan, SAMPLE_EVERY)))
            sample(run.sent - warm_sent)
        run.elapsed = time.monotonic() - started
    measured = run.sent - warm_sent
    if measured < MEASURED_REQUESTS or time.monotonic() > deadline:
        run.over_budget = (
            f"the load test ran out of its {BUDGET_SECONDS} s budget after {measured} of "
            f"{MEASURED_REQUESTS} measured requests"
        )
    run.sent = measured
    return run


@pytest.fixture(scope="module")
def load_run(penguins, tmp_path_factory) -> Run:
    """Start a dedicated server, run the load once, and return what was seen."""
    deadline = time.monotonic() + BUDGET_SECONDS
    token = uuid.uuid4().hex
    env = {
        "API_BACKEND": "onnx",
        "API_WORKERS": "2",
        "API_MAX_REQUESTS": "0",  # no recycling: a fresh worker would hide a leak
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("metrics")),
        MARKER: token,
    }
    with running_api(env) as base_url:
        columns = {}
        for name in MODELS:
            meta = requests.get(f"{base_url}/v1/models/{name}", timeout=REQUEST_TIMEOUT).json()
            columns[name] = [c["name"] for c in meta["input_schema"]["columns"]]
        jobs = build_jobs(penguins, columns)
        processes = ServerProcesses(token)
        run = run_load(base_url, jobs, processes, deadline)
        run.memory_unavailable = processes.unavailable
    rate = run.sent / run.elapsed if run.elapsed else 0.0
    print(f"\nload: {run.sent} requests in {run.elapsed:.1f} s, {rate:.0f} requests/s")
    print("load: requests by kind:", dict(sorted(run.count_by_kind.items())))
    for sent, rss in run.samples:
        print(
            f"load: after {sent:>6} requests, worker RSS MiB:",
            {pid: round(value / MIB, 1) for pid, value in sorted(rss.items())},
        )
    return run


def test_every_request_succeeds_with_the_right_number_of_predictions(load_run: Run) -> None:
    assert load_run.over_budget is None, load_run.over_budget
    assert load_run.sent >= MEASURED_REQUESTS
    assert not load_run.failures_by_kind, (
        f"failed requests by kind: {load_run.failures_by_kind}; first ones:\n"
        + "\n".join(load_run.failures)
    )
    for kind in ("single", "batch", "v2", "mlflow"):
        assert any(k.startswith(kind) for k in load_run.count_by_kind), f"no {kind} request sent"


def test_the_workers_memory_stays_flat(load_run: Run) -> None:
    """No worker grows by more than 10 MiB after the warm-up, nor rises at every sample.

    RSS is noisy: the allocator keeps freed memory, and batches of different sizes move
    its high-water mark, so a single sample proves little. The warm-up of 2,000
    requests, with the same mix as the run, lets every worker reach that plateau first.
    Two rules then separate a plateau from a leak:

    * the total growth from the post-warm-up sample to the last one stays under
      10 MiB per worker: a leak of ~1 KiB per request (10,000 requests per worker)
      fails it;
    * the last five samples (8,000 requests) do not rise at every step by 2 MiB or
      more in all: a plateau wobbles, a leak climbs steadily, even a slow one of a
      few hundred bytes per request (2 MiB over 4,000 requests per worker: about
      500 bytes each) that stays under the first limit.

    The same workers must answer from start to end: a worker that crashed and was
    replaced by gunicorn would also reset its memory and hide a leak.
    """
    if load_run.memory_unavailable:
        pytest.skip(load_run.memory_unavailable)
    if os.name == "nt":
        pytest.skip("no gunicorn workers on Windows: waitress serves from one process")
    samples = load_run.samples
    assert len(samples) >= TREND_SAMPLES, f"only {len(samples)} memory samples"
    first_pids = load_run.worker_pids[0]
    assert len(first_pids) == 2, f"expected 2 gunicorn workers, found {sorted(first_pids)}"
    assert all(pids == first_pids for pids in load_run.worker_pids), (
        f"workers were replaced during the run: {load_run.worker_pids}"
    )
    problems = []
    for pid in sorted(first_pids):
        series = [rss[pid] for _, rss in samples]
        growth = series[-1] - series[0]
        if growth > MAX_GROWTH_MIB * MIB:
            problems.append(f"worker {pid} grew by {growth / MIB:.1f} MiB")
        tail = series[-TREND_SAMPLES:]
        rises = [b - a for a, b in itertools.pairwise(tail)]
        if all(r > 0 for r in rises) and sum(rises) >= TREND_MIN_RISE_MIB * MIB:
            problems.append(
                f"worker {pid} rose at each of its last {len(rises)} samples, "
                f"by {sum(rises) / MIB:.1f} MiB in all"
            )
    mib = {pid: [round(rss[pid] / MIB, 1) for _, rss in samples] for pid in sorted(first_pids)}
    assert not problems, "; ".join(problems) + f"\nRSS samples (MiB): {mib}"
