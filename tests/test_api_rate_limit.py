"""The rate limit a user sets is the limit the whole server enforces, however many workers.

A burst well above the limit, sent by many threads over fresh connections so that every
gunicorn worker takes a share, must let through the limit's number of requests (give or
take one), counted from the real responses. Each worker counting on its own would let
through up to four times as many. The limit is per minute: the burst takes far less, so
no window can end in the middle of it.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from apps.api.limiter_storage import SQLiteStorage

from .conftest import RECORD
from .keyfiles import write_key_file
from .servers import free_port, running_api

LIMIT = 30
BURST = 4 * LIMIT
WORKERS = 4
PREDICT = "/v1/models/species-classifier/predict"

pytestmark = pytest.mark.slow


def burst(url: str, key: str) -> Counter:
    """Send BURST predictions at once, each on its own connection; count the statuses."""

    def one(_):
        with requests.post(
            url + PREDICT,
            json={"record": RECORD},
            headers={"X-API-Key": key, "Connection": "close"},
            timeout=30,
        ) as response:
            return response.status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        return Counter(pool.map(one, range(BURST)))


def served_by(metrics_dir) -> int:
    """How many gunicorn workers answered requests (each writes its own metrics file)."""
    return len(list(metrics_dir.glob("counter_*.db")))


def check_shared_limit(url: str, metrics_dir=None) -> Counter:
    statuses = burst(url, "burst-key")
    assert set(statuses) <= {200, 429}, statuses
    assert LIMIT - 1 <= statuses[200] <= LIMIT + 1, statuses
    if metrics_dir is not None:
        assert served_by(metrics_dir) >= 2, "one worker answered everything: nothing was shared"
    # another key still has its whole budget
    assert burst(url, "other-key")[200] >= LIMIT - 1
    return statuses


def limited_env(tmp_path, **extra) -> dict:
    keys = write_key_file(tmp_path / "keys", "burst-key", "other-key")
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    return {
        "API_BACKEND": "onnx",
        "API_KEYS_FILE": str(keys),
        "API_RATE_LIMIT": f"{LIMIT}/minute",
        "API_WORKERS": str(WORKERS),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        **extra,
    }


@pytest.mark.skipif(os.name == "nt", reason="gunicorn (forked workers) cannot run on Windows")
def test_four_workers_share_one_limit_by_default(tmp_path):
    env = limited_env(tmp_path)
    with running_api(env) as url:
        statuses = check_shared_limit(url, tmp_path / "metrics")
    print(f"\ndefault store, {WORKERS} workers, {LIMIT}/minute: {dict(statuses)}")


def test_waitress_enforces_the_limit_too(tmp_path):
    with running_api(limited_env(tmp_path), server="waitress") as url:
        statuses = check_shared_limit(url)
    print(f"\nwaitress, {LIMIT}/minute: {dict(statuses)}")


# --- Redis -------------------------------------------------------------------------------


@pytest.fixture
def redis_url(tmp_path):
    """A private redis-server on a free port, with nothing saved to disk."""
    server = shutil.which("redis-server")
    if server is None:
        if os.name == "nt":
            pytest.skip("redis-server does not run on Windows")
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing: .ci/run installs it (Debian: redis-server)")
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.skipif(os.name == "nt", reason="gunicorn (forked workers) cannot run on Windows")
def test_four_workers_share_one_limit_in_redis(tmp_path, redis_url):
    import redis

    env = limited_env(tmp_path, API_RATE_LIMIT_STORAGE=redis_url)
    with running_api(env) as url:
        statuses = check_shared_limit(url, tmp_path / "metrics")
    print(f"\nRedis, {WORKERS} workers, {LIMIT}/minute: {dict(statuses)}")
    counters = redis.Redis.from_url(redis_url).keys("LIMITS:*")
    assert counters, "the counts were not kept in Redis"


def test_a_store_that_does_not_answer_stops_the_server_at_start(tmp_path):
    log = tmp_path / "server.log"
    env = limited_env(tmp_path, API_RATE_LIMIT_STORAGE=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(RuntimeError, match="exited"), running_api(env, log_path=log):
        pass  # pragma: no cover - the server must not start
    text = log.read_text(errors="replace")
    assert "the rate-limit store (redis) does not answer" in text
    assert "Traceback" not in text


# --- the SQLite store on its own -----------------------------------------------------------


def test_the_sqlite_store_counts_windows(tmp_path):
    store = SQLiteStorage(f"sqlite:///{tmp_path / 'counts.sqlite'}")
    assert store.check()
    assert [store.incr("a", 60) for _ in range(3)] == [1, 2, 3]
    assert store.get("a") == 3 and store.get("b") == 0
    assert time.time() < store.get_expiry("a") <= time.time() + 60
    assert store.incr("short", 1) == 1
    time.sleep(1.1)
    assert store.get("short") == 0
    assert store.incr("short", 1) == 1  # a new window
    store.clear("a")
    assert store.get("a") == 0
    assert store.reset() >= 1


def test_four_processes_increment_one_counter(tmp_path):
    """Four processes at once, 250 increments each: the count is exactly 1,000."""
    uri = f"sqlite:///{tmp_path / 'counts.sqlite'}"
    store = SQLiteStorage(uri)
    script = (
        "import sys\n"
        "from apps.api.limiter_storage import SQLiteStorage\n"
        "store = SQLiteStorage(sys.argv[1])\n"
        "for _ in range(250):\n"
        "    store.incr('shared', 60)\n"
    )
    processes = [subprocess.Popen([sys.executable, "-c", script, uri]) for _ in range(4)]
    assert [p.wait(timeout=120) for p in processes] == [0, 0, 0, 0]
    assert store.get("shared") == 1000
