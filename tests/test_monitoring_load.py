"""No prediction is lost: 20,000 requests to three gunicorn workers, then a graceful stop.

The log writes in batches of 5,000 rows and otherwise waits (an hour): so when the
server is stopped, thousands of rows still sit in the workers' queues, and only the
shutdown hook (gunicorn's ``worker_exit``) can save them. The rows in the database are
counted before and after the stop, on SQLite and on PostgreSQL. A graceful waitress
stop (SIGTERM) flushes too.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from apps.monitoring import db

from .conftest import RECORD
from .servers import running_api

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REQUESTS = 20_000
THREADS = 8
CLASSIFIER = "species-classifier"


def bodies():
    """The mix: single records, batches of three, V2 and MLflow requests; rows per request."""
    v2 = {
        "inputs": [
            {"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64",
             "data": [v]}
            for k, v in RECORD.items()
        ]
    }  # fmt: skip
    return [
        (f"/v1/models/{CLASSIFIER}/predict", {"record": RECORD}, 1),
        (f"/v1/models/{CLASSIFIER}/predict", {"records": [RECORD] * 3}, 3),
        (f"/v2/models/{CLASSIFIER}/infer", v2, 1),
        ("/invocations", {"dataframe_records": [RECORD]}, 1),
    ]


def rows_in(url: str) -> int:
    engine = db.connect(url)
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(db.predictions)).scalar()
    finally:
        engine.dispose()


def send(base: str, count: int) -> int:
    """Send ``count`` requests from ``THREADS`` threads; the rows they asked predictions for."""
    mix, local = bodies(), threading.local()

    def one(i: int) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        path, body, rows = mix[i % len(mix)]
        with local.session.post(base + path, json=body, timeout=30) as response:
            assert response.status_code == 200, response.text[:300]
        return rows

    with ThreadPoolExecutor(THREADS) as pool:
        return sum(pool.map(one, range(count), chunksize=50))


def test_no_prediction_is_lost_under_load_and_a_graceful_stop(database_url):
    env = {
        "API_WORKERS": "3",
        "MONITORING_DB_URL": database_url,
        "PREDICTION_LOG_BATCH_ROWS": "5000",
        "PREDICTION_LOG_FLUSH_SECONDS": "3600",
    }
    with running_api(env) as base:
        expected = send(base, REQUESTS)
        metrics = requests.get(f"{base}/metrics", timeout=10).text
        before = rows_in(database_url)
    after = rows_in(database_url)
    print(f"\n{REQUESTS} requests, {expected} rows: {before} written during the run, "
          f"{after} after the graceful stop")  # fmt: skip
    assert "prediction_log_dropped_total{" not in metrics  # nothing dropped
    assert before < expected, "the stop had nothing left to flush: the test proves nothing"
    assert after == expected


@pytest.mark.skipif(os.name == "nt", reason="Windows has no SIGTERM to stop waitress gently")
def test_waitress_flushes_the_log_when_stopped(tmp_path):
    url = str(tmp_path / "log.db")
    env = {"MONITORING_DB_URL": url, "PREDICTION_LOG_FLUSH_SECONDS": "3600"}
    with running_api(env, server="waitress") as base:
        expected = send(base, 200)
        before = rows_in(url)
    assert before == 0 and rows_in(url) == expected
