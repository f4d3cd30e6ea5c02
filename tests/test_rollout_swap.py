"""Hot swap under load, against the real gunicorn server: no request fails, ever.

Threads keep predicting (native, V2 and MLflow requests) while the ``production`` alias
moves back and forth 20 times. Every answer must be a 200 that names the version that
gave it, and every worker must switch within 2 s of each change: the workers' own switch
times are read from ``/metrics`` (``rollout_switched_at_seconds``, one value per worker
process), the change's time from the aliases file. A version that fails its checks is
never served, and a worker that gunicorn forks after a change starts on the new version.
"""

import re
import threading
import time
from dataclasses import dataclass

import pytest
import requests

from apps import training
from apps.registry import ModelRegistry
from apps.registry.aliases import ALIASES_FILE, PRODUCTION
from apps.rollout import promotion

from .conftest import RECORD
from .servers import running_api

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CLASSIFIER = "species-classifier"
CYCLES = 20
WORKERS = 3
SWITCH_LIMIT = 2.0  # seconds from a change to the last worker's switch
V2_INPUTS = [
    {"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]}
    for k, v in RECORD.items()
]
BODIES = [
    (f"/v1/models/{CLASSIFIER}/predict", {"record": RECORD}),
    (f"/v2/models/{CLASSIFIER}/infer", {"inputs": V2_INPUTS}),
    ("/invocations", {"dataframe_records": [RECORD]}),
]


@pytest.fixture
def two_versions(registry_copy: ModelRegistry) -> ModelRegistry:
    """A private registry whose classifier has versions 1 and 2, version 1 in production."""
    training.train_and_register(registry_copy, CLASSIFIER)
    registry_copy.set_alias(CLASSIFIER, PRODUCTION, 1, "pin", "the test starts on v1")
    return registry_copy


def server_env(registry: ModelRegistry, **more: str) -> dict[str, str]:
    return {"API_MODELS_DIR": str(registry.root), "API_WORKERS": str(WORKERS), **more}


@dataclass
class Answer:
    started: float
    status: int
    version: int | None  # as the answer names it (body and header must agree)


def version_named(path: str, response: requests.Response) -> int | None:
    """The version an answer names, in its body and its ``X-Model-Version`` header alike."""
    header = response.headers.get("X-Model-Version", "")
    from_header = int(header.rpartition("/")[2]) if header.startswith(CLASSIFIER + "/") else None
    if path.startswith("/v1/"):
        from_body = response.json()["version"]
    elif path.startswith("/v2/"):
        from_body = int(response.json()["model_version"])
    else:
        from_body = from_header  # MLflow's answer has only the predictions
    return from_header if from_header == from_body else None


class Load:
    """Threads that predict without pause until stopped, each over its own connection."""

    def __init__(self, url: str, threads: int = 6):
        self.url, self.answers, self._stop = url, [], threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, offset: int) -> None:
        with requests.Session() as session:
            i = offset
            while not self._stop.is_set():
                path, body = BODIES[i % len(BODIES)]
                started = time.time()
                try:
                    response = session.post(self.url + path, json=body, timeout=30)
                    answer = Answer(started, response.status_code, version_named(path, response))
                except requests.RequestException:
                    answer = Answer(started, 0, None)  # no answer at all: a failure too
                self.answers.append(answer)
                i += 1

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def since(self, moment: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.started > moment]


GAUGE = re.compile(r'^(rollout_serving_version|rollout_switched_at_seconds)\{model="'
                   + CLASSIFIER + r'",pid="(\d+)"\} (\S+)$', re.MULTILINE)  # fmt: skip


def workers(url: str) -> dict[int, tuple[int, float]]:
    """Each worker's version and the time it began serving it, from ``/metrics``."""
    found: dict[int, dict] = {}
    for name, pid, value in GAUGE.findall(requests.get(f"{url}/metrics", timeout=10).text):
        found.setdefault(int(pid), {})[name] = float(value)
    return {
        pid: (int(v["rollout_serving_version"]), v["rollout_switched_at_seconds"])
        for pid, v in found.items()
        if len(v) == 2
    }


def wait_for(url: str, version: int, count: int = WORKERS, seconds: float = 15) -> dict:
    """Poll ``/metrics`` until ``count`` workers serve ``version``; their figures."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        figures = workers(url)
        if len(figures) >= count and all(v == version for v, _ in figures.values()):
            return figures
        time.sleep(0.05)
    raise AssertionError(f"not every worker serves v{version} after {seconds} s: {workers(url)}")


def changed_at(registry: ModelRegistry) -> float:
    """When the aliases file was last replaced: its temporary file's time, just before."""
    return (registry.root / CLASSIFIER / ALIASES_FILE).stat().st_mtime


def test_twenty_promotions_and_rollbacks_under_load_fail_no_request(two_versions, tmp_path):
    env = server_env(two_versions, API_MAX_REQUESTS="0")  # the same three workers throughout
    switch_delays: list[float] = []  # every worker, every change
    phases = []  # (version, time every worker served it, time of the next change)
    with running_api(env, log_path=tmp_path / "server.log") as url, Load(url) as load:
        pids = set(wait_for(url, 1))
        time.sleep(0.5)  # steady state first
        for cycle in range(CYCLES):
            for version in (2, 1):
                if version == 2:
                    promotion.promote(two_versions, CLASSIFIER, 2, f"cycle {cycle}")
                else:
                    promotion.rollback(two_versions, CLASSIFIER, f"cycle {cycle}")
                change = changed_at(two_versions)
                if phases:
                    phases[-1][2] = change
                figures = wait_for(url, version)
                assert set(figures) == pids, (
                    "a worker was replaced: the test counts on the same ones"
                )
                switch_delays += [switched - change for _, switched in figures.values()]
                phases.append([version, max(s for _, s in figures.values()), None])
                served = len(load.since(phases[-1][1]))
                while len(load.since(phases[-1][1])) < served + 30:  # answers after the switch
                    time.sleep(0.01)
        phases[-1][2] = time.time()
        answers = list(load.answers)
        totals = requests.get(f"{url}/metrics", timeout=10).text
    failed = [a for a in answers if a.status != 200 or a.version not in (1, 2)]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed: {failed[:5]}"
    assert len(switch_delays) == 2 * CYCLES * WORKERS
    assert all(0 <= delay < SWITCH_LIMIT for delay in switch_delays), sorted(switch_delays)[-5:]
    # once every worker had switched, no answer came from the old version
    for version, all_switched, next_change in phases:
        after = [a for a in answers if all_switched < a.started < next_change]
        assert len(after) >= 30 and {a.version for a in after} == {version}
    switched = re.findall(r'rollout_switches_total\{model="species-classifier",outcome="(\w+)",'
                          r'version="(\d)"\} (\S+)', totals)  # fmt: skip
    counts = {(outcome, version): float(n) for outcome, version, n in switched}
    assert counts == {("switched", "2"): CYCLES * WORKERS, ("switched", "1"): CYCLES * WORKERS}
    print(
        f"{len(answers)} answers, 0 failed; switch delays: median "
        f"{sorted(switch_delays)[len(switch_delays) // 2]:.3f} s, max {max(switch_delays):.3f} s"
    )


def test_a_broken_version_is_never_served(two_versions, tmp_path):
    """The alias names a version whose file changed after it was checked: every worker
    refuses it, says so, and goes on with the old one; once the file is restored and the
    version promoted again, every worker switches."""
    path = two_versions.resolve(CLASSIFIER, 2) / "model.onnx"
    good = path.read_bytes()
    with running_api(server_env(two_versions), log_path=tmp_path / "server.log") as url:
        with Load(url, threads=3) as load:
            wait_for(url, 1)
            path.write_bytes(good + b"\0")  # after any check a promotion could make
            two_versions.set_alias(CLASSIFIER, PRODUCTION, 2, "promote", "broken")
            refused = (
                'rollout_switches_total{model="species-classifier",outcome="refused",version="2"}'
            )
            deadline = time.monotonic() + 15
            while (
                f"{refused} {float(WORKERS)}" not in requests.get(f"{url}/metrics", timeout=10).text
            ):
                assert time.monotonic() < deadline, "not every worker refused the broken version"
                time.sleep(0.05)
            ready = requests.get(f"{url}/health/ready", timeout=10)
            time.sleep(0.5)  # the watchers look again, and again refuse nothing new
            path.write_bytes(good)
            two_versions.set_alias(CLASSIFIER, PRODUCTION, 2, "promote", "restored")
            wait_for(url, 2)
        answers = list(load.answers)
    assert ready.status_code == 200  # the old version answers: the server is ready
    assert ready.json()["models"][CLASSIFIER] == 1
    assert "version 2 was not served" in ready.json()["refused"][CLASSIFIER]
    assert "sha256" in ready.json()["refused"][CLASSIFIER]
    assert all(a.status == 200 for a in answers) and len(answers) > 50
    broken_until = changed_at(two_versions)  # the restoring promotion
    assert {a.version for a in answers if a.started < broken_until} == {1}
    log = (tmp_path / "server.log").read_text()
    assert log.count("species-classifier v2 is not served, the current version goes on") == WORKERS


def test_a_worker_forked_after_a_change_starts_on_the_new_version(two_versions, tmp_path):
    """gunicorn replaces a worker after API_MAX_REQUESTS requests, forking the master, which
    loaded the models at start (v1). The new worker must not answer with v1 even once."""
    env = server_env(two_versions, API_WORKERS="2", API_MAX_REQUESTS="40")
    with running_api(env, log_path=tmp_path / "server.log") as url:
        wait_for(url, 1, count=2)
        promotion.promote(two_versions, CLASSIFIER, 2)
        wait_for(url, 2, count=2)
        after = time.time()
        with Load(url, threads=4) as load:
            while len(load.answers) < 600:
                time.sleep(0.05)
    log = (tmp_path / "server.log").read_text()
    assert log.count("Booting worker with pid") >= 2 + 10  # workers were replaced, often
    answers = [a for a in load.answers if a.started > after]
    assert answers and all(a.status == 200 and a.version == 2 for a in answers)


def test_waitress_swaps_too(two_versions):
    """One process, many threads: the same watcher, started before the server."""
    with running_api(server_env(two_versions), server="waitress") as url:
        session = requests.Session()
        for version in (2, 1, 2):
            if version == 2:
                promotion.promote(two_versions, CLASSIFIER, 2)
            else:
                promotion.rollback(two_versions, CLASSIFIER)
            versions = []
            while version not in versions[-1:]:
                assert len(versions) < 200, f"waitress still serves the old version: {versions}"
                answer = session.post(url + BODIES[0][0], json=BODIES[0][1], timeout=10)
                assert answer.status_code == 200
                versions.append(version_named(BODIES[0][0], answer))
                time.sleep(0.05)
            assert set(versions) <= {1, 2}
