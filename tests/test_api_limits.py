"""Size limits hold whatever way a body arrives, and cost the server no memory to enforce.

A body sent without ``Content-Length`` (``Transfer-Encoding: chunked``) one byte over
its limit gets a 413, never an answer for the rows that fitted. A hostile body (millions
of tiny CSV rows, millions of empty JSON objects) is refused before it becomes Python
objects: the worker's memory barely moves. The real servers are driven by real clients
(``requests`` with a generator body, curl); the rules themselves are checked through
the test client first, where they are quick to pin down.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests

from apps.api.app import create_app
from apps.api.bodies import json_value_bound, json_value_limit

from .conftest import RECORD
from .servers import running_api

NATIVE = "/v1/models/species-classifier/predict"
V2 = "/v2/models/species-classifier/infer"
MLFLOW = "/invocations"
JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}
CHUNKED_ENVIRON = {"wsgi.input_terminated": True}
"""What gunicorn and waitress tell the app for a chunked body: the server ends the stream,
no Content-Length says where. The test client sends the body the same way with it."""
MIB = 1024 * 1024
CATEGORIES = {"island", "sex"}


def make_client(**settings):
    return create_app({"API_KEYS": (), "RATE_LIMIT": None, **settings}).test_client()


def padded_json(size: int) -> bytes:
    """A valid one-record request of exactly ``size`` bytes (spaces at the end)."""
    body = json.dumps({"record": RECORD}).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


def padded_csv(size: int) -> bytes:
    """A valid one-row CSV of exactly ``size`` bytes (a longer last number)."""
    header = ",".join(RECORD)
    row = ",".join(str(v) for v in RECORD.values())
    body = f"{header}\n{row}".encode()
    assert len(body) <= size
    return body + b"0" * (size - len(body) - 1) + b"\n"


def error_fields(answer: dict) -> dict:
    """The error's ``code`` and ``message``, in our shape or the Open Inference Protocol's."""
    if isinstance(answer["error"], str):
        return {"code": answer["code"], "message": answer["error"]}
    return answer["error"]


def error_of(response) -> dict:
    assert response.content_type == "application/json"
    return error_fields(response.get_json())


# --- the rules, through the test client ------------------------------------------------


@pytest.mark.parametrize(
    ("path", "make_body", "headers", "setting"),
    [
        (NATIVE, padded_json, JSON, "MAX_CONTENT_LENGTH"),
        (MLFLOW, padded_csv, CSV, "MAX_CSV_BYTES"),
    ],
    ids=["json", "csv"],
)
def test_a_chunked_body_one_byte_over_its_limit_gets_413(path, make_body, headers, setting):
    client = make_client(**{setting: 500})
    chunked = {"headers": {**headers, "Transfer-Encoding": "chunked"}}

    def send(body: bytes):
        return client.post(path, data=body, environ_overrides=CHUNKED_ENVIRON, **chunked)

    with send(make_body(500)) as response:
        assert response.status_code == 200, response.get_data(as_text=True)
    for size in (501, 502, 5000):
        with send(make_body(size)) as response:
            assert response.status_code == 413, (size, response.get_data(as_text=True))
            error = error_of(response)
            assert error["code"] == "request_entity_too_large"
            assert "limit of 500 bytes" in error["message"]


def test_a_csv_body_has_its_own_byte_limit():
    client = make_client(MAX_CONTENT_LENGTH=10_000, MAX_CSV_BYTES=500)
    with client.post(MLFLOW, data=padded_csv(501), headers=CSV) as response:
        assert response.status_code == 413
        assert "limit of 500 bytes" in error_of(response)["message"]
    with client.post(NATIVE, data=padded_json(5000), headers=JSON) as response:
        assert response.status_code == 200


def test_csv_reading_stops_one_row_past_the_record_limit():
    """The rows after the limit are never read: here they could not even be parsed.

    The tail is an unterminated quoted field, which Python's csv module reports as an
    error only when it reaches the end of the text: a reader that went on would answer
    400, one that stops at row 6 of a 5-record limit answers 413.
    """
    client = make_client(MAX_RECORDS=5)
    rows = ["island", *["Dream"] * 6, '"never closed' + " x" * 1000]
    with client.post(MLFLOW, data="\n".join(rows).encode(), headers=CSV) as response:
        assert response.status_code == 413, response.get_data(as_text=True)
        error = error_of(response)
        assert error["code"] == "too_many_records"
        assert error["message"] == "more than 5 records sent; at most 5 per request"
    with client.post(MLFLOW, data="\n".join(rows[:6]).encode(), headers=CSV) as response:
        assert response.status_code == 200
        assert len(response.get_json()["predictions"]) == 5


def values_in(document: object) -> int:
    """The number of values in parsed JSON: the root, each element and each member."""
    if isinstance(document, list):
        return 1 + sum(values_in(item) for item in document)
    if isinstance(document, dict):
        return 1 + sum(values_in(item) for item in document.values())
    return 1


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "[]",
        "{}",
        '{"a": [1, 2, {"b": []}], "c": {"d": null}}',
        '[[[], []], [{}, {"x": "y,z[{"}]]',
        json.dumps({"records": [RECORD] * 3}),
    ],
)
def test_the_value_bound_is_never_below_the_real_count(text):
    assert json_value_bound(text.encode()) >= values_in(json.loads(text))


def v2_body(records: list[dict], nested: bool) -> dict:
    """An Open Inference Protocol request, each value in its own list if ``nested``."""
    inputs = []
    for name in RECORD:
        data = [r[name] for r in records]
        inputs.append(
            {
                "name": name,
                "datatype": "BYTES" if name in CATEGORIES else "FP64",
                "shape": [len(data), 1] if nested else [len(data)],
                "data": [[v] for v in data] if nested else data,
            }
        )
    return {"id": "largest", "parameters": {}, "inputs": inputs}


def largest_bodies(records: list[dict]) -> dict[str, tuple[str, dict]]:
    """The same records in the most verbose form of every JSON layout."""
    columns = list(RECORD)
    return {
        "native": (NATIVE, {"records": records}),
        "v2": (V2, v2_body(records, nested=False)),
        "v2-nested": (V2, v2_body(records, nested=True)),
        "dataframe_split": (
            MLFLOW,
            {
                "dataframe_split": {
                    "columns": columns,
                    "data": [[r[c] for c in columns] for r in records],
                    "index": list(range(len(records))),
                },
                "params": {},
            },
        ),
        "dataframe_records": (MLFLOW, {"dataframe_records": records}),
        "inputs-columns": (MLFLOW, {"inputs": {c: [r[c] for r in records] for c in columns}}),
    }


def test_the_largest_valid_request_of_every_layout_passes_the_value_limit():
    client = make_client(MAX_RECORDS=40)
    for layout, (path, body) in largest_bodies([RECORD] * 40).items():
        with client.post(path, json=body) as response:
            assert response.status_code == 200, (layout, response.get_data(as_text=True))
        over = largest_bodies([RECORD] * 41)[layout]
        with client.post(over[0], json=over[1]) as response:
            assert response.status_code == 413, layout
            assert error_of(response)["code"] == "too_many_records", layout


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (NATIVE, b'{"records": [' + b"{}," * 100_000 + b"{}]}"),
        (NATIVE, b'{"records": [' + b"[]," * 100_000 + b"[]]}"),
        (
            V2,
            b'{"inputs": [{"name": "island", "datatype": "BYTES", "shape": [1], "data": ['
            + b"0," * 100_000
            + b"0]}]}",
        ),
        (MLFLOW, b'{"inputs": {"island": [' + b"0," * 100_000 + b"0]}}"),
    ],
    ids=["empty-objects", "empty-lists", "v2-column", "mlflow-column"],
)
def test_json_with_more_values_than_any_request_needs_is_refused_unparsed(path, body):
    client = make_client(MAX_RECORDS=100)
    assert json_value_bound(body) > json_value_limit(100, len(RECORD))
    with client.post(path, data=body, headers=JSON) as response:
        assert response.status_code == 413
        error = error_of(response)
        assert error["code"] == "too_many_values"
        assert "at most 100 records" in error["message"]


# --- real servers, real clients ---------------------------------------------------------

CSV_ROW = "Torgersen,male,39." + "1" * 880 + ",18.7,181,3750\n"
"""A valid row of about 900 bytes (a long decimal): 9,500 of them make 8.6 MB."""
BIG_CSV = (",".join(RECORD) + "\n" + CSV_ROW * 9_500).encode()
BIG_LIMITS = {"API_MAX_CSV_BYTES": str(8 * MIB), "API_MAX_RECORDS": "20000"}


SERVERS = [
    pytest.param(
        "gunicorn", marks=pytest.mark.skipif(os.name == "nt", reason="no gunicorn on Windows")
    ),
    "waitress",
]


def in_chunks(data: bytes, size: int = 64 * 1024):
    """A generator body: ``requests`` sends it with ``Transfer-Encoding: chunked``."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def curl_chunked(url: str, body: bytes, content_type: str, tmp_path) -> tuple[int, dict]:
    """POST a file with curl as a chunked upload; the status and the JSON answer."""
    path = tmp_path / "body"
    path.write_bytes(body)
    done = subprocess.run(
        [
            "curl",
            "-s",
            "-w",
            "\n%{http_code}",
            "-H",
            "Transfer-Encoding: chunked",
            "-H",
            f"Content-Type: {content_type}",
            "--data-binary",
            f"@{path}",
            url,
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    text, _, status = done.stdout.decode().rpartition("\n")
    return int(status), json.loads(text)


@pytest.mark.slow
@pytest.mark.parametrize("server", SERVERS)
def test_a_chunked_upload_over_the_limit_gets_413_not_fewer_answers(server, tmp_path):
    """The reported case: 9,500 rows in 8.7 MB, chunked, once got 9,178 answers and a 200."""
    assert len(BIG_CSV) > 8 * MIB
    with running_api({"API_BACKEND": "onnx", **BIG_LIMITS}, server=server) as url:
        with requests.post(
            url + MLFLOW, data=in_chunks(BIG_CSV), headers=CSV, timeout=120
        ) as response:
            assert response.status_code == 413, response.text[:300]
            error = response.json()["error"]
            assert error["code"] == "request_entity_too_large"
            assert f"limit of {8 * MIB} bytes" in error["message"]
        if shutil.which("curl"):
            status, answer = curl_chunked(url + MLFLOW, BIG_CSV, "text/csv", tmp_path)
            assert status == 413, answer
            assert f"limit of {8 * MIB} bytes" in answer["error"]["message"]
        # the same rows within the limit: one answer per row
        fitting = BIG_CSV[: BIG_CSV.index(b"\n", 7 * MIB) + 1]
        with requests.post(url + MLFLOW, data=in_chunks(fitting), headers=CSV, timeout=120) as r:
            assert r.status_code == 200, r.text[:300]
            assert len(r.json()["predictions"]) == fitting.count(b"\n") - 1


@pytest.mark.slow
@pytest.mark.parametrize("server", SERVERS)
def test_a_chunked_json_body_is_cut_at_no_byte(server, tmp_path):
    """At the limit exactly: 200; one byte more: 413, with requests and with curl."""
    limit = 4096
    with running_api(
        {"API_BACKEND": "onnx", "API_MAX_BODY_BYTES": str(limit)}, server=server
    ) as url:
        for size, expected in ((limit, 200), (limit + 1, 413), (3 * limit, 413)):
            body = padded_json(size)
            with requests.post(
                url + NATIVE, data=in_chunks(body, 1000), headers=JSON, timeout=30
            ) as r:
                assert r.status_code == expected, (size, r.text[:300])
            if shutil.which("curl"):
                status, answer = curl_chunked(url + NATIVE, body, "application/json", tmp_path)
                assert status == expected, (size, answer)


# --- hostile bodies cost no memory ------------------------------------------------------

MARKER = "PENGUINS_LIMITS_TEST_RUN"
"""An environment variable set only for our server, to find its processes without guessing."""
MAX_GROWTH = 50 * MIB
TINY_ROWS = b"island\n" + b"A\n" * 4_190_000
"""The reported case: 8 MB of CSV in 4.19 million rows, which once took a worker from
59 MB to 919 MB before the row limit refused it."""


def binary_v2_column(rows: int) -> tuple[bytes, dict]:
    """One FP64 input of ``rows`` values in the binary tensor extension: 8 bytes a row."""
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "bill_length_mm",
                    "datatype": "FP64",
                    "shape": [rows],
                    "parameters": {"binary_data_size": 8 * rows},
                }
            ]
        }
    ).encode()
    headers = {"Inference-Header-Content-Length": str(len(header))}
    return header + b"\0" * (8 * rows), headers


HOSTILE = {
    "csv-tiny-rows": (MLFLOW, TINY_ROWS, CSV),
    "json-empty-objects": (NATIVE, b'{"records": [' + b"{}," * 2_700_000 + b"{}]}", JSON),
    "json-mlflow-column": (MLFLOW, b'{"inputs": {"island": [' + b"0," * 4_000_000 + b"0]}}", JSON),
    "json-v2-column": (
        V2,
        b'{"inputs": [{"name": "island", "datatype": "BYTES", "shape": [4000001], "data": ['
        + b"0," * 4_000_000
        + b"0]}]}",
        JSON,
    ),
    "binary-v2-column": (V2, *binary_v2_column(1_000_000)),
}


class Workers:
    """The server's worker processes, and the most memory each has held so far."""

    def __init__(self, token: str):
        master = next(p for p in psutil.Process().children() if p.environ().get(MARKER) == token)
        self.processes = master.children()
        assert self.processes, "no gunicorn worker found"
        self.peak = {p.pid: p.memory_info().rss for p in self.processes}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            for process in self.processes:
                rss = process.memory_info().rss
                self.peak[process.pid] = max(self.peak[process.pid], rss)

    def high_water(self) -> dict[int, int]:
        """The highest RSS of each worker since it started (Linux's VmHWM), else sampled."""
        marks = {}
        for process in self.processes:
            try:
                with open(f"/proc/{process.pid}/status", encoding="ascii") as status:
                    line = next(s for s in status if s.startswith("VmHWM:"))
                marks[process.pid] = int(line.split()[1]) * 1024
            except OSError:
                marks[process.pid] = self.peak[process.pid]
        return marks

    def __enter__(self):
        self.before = self.high_water()
        self._sampler.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._sampler.join()
        after = self.high_water()
        self.growth = {
            pid: max(after[pid], self.peak[pid]) - self.before[pid] for pid in self.before
        }


def send(url: str, path: str, body: bytes, headers: dict, chunked: bool) -> requests.Response:
    data = in_chunks(body) if chunked else body
    return requests.post(url + path, data=data, headers=headers, timeout=120)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="measures workers' VmHWM")
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_body_is_refused_before_it_takes_memory(kind, chunked):
    """413 naming the limit, and the worker's peak memory grows by less than 50 MB."""
    path, body, headers = HOSTILE[kind]
    token = uuid.uuid4().hex
    env = {"API_BACKEND": "onnx", "API_WORKERS": "1", MARKER: token}
    with running_api(env) as url:
        with requests.get(url + "/health/ready", timeout=10) as warm:  # load what a request loads
            assert warm.status_code == 200
        send(url, NATIVE, json.dumps({"record": RECORD}).encode(), JSON, chunked).close()
        with Workers(token) as workers:
            started = time.perf_counter()
            with send(url, path, body, headers, chunked) as response:
                refused_in = time.perf_counter() - started
                status, answer = response.status_code, response.json()
    print(
        f"\n{kind} ({'chunked' if chunked else 'content-length'}): {status} in "
        f"{refused_in * 1000:.0f} ms, worker peak RSS +"
        f"{max(workers.growth.values()) / MIB:.1f} MiB: {error_fields(answer)['message']}"
    )
    assert status == 413, answer
    error = error_fields(answer)
    assert error["code"] in {"request_entity_too_large", "too_many_records", "too_many_values"}
    assert any(limit in error["message"] for limit in ("limit of", "at most"))
    assert all(growth < MAX_GROWTH for growth in workers.growth.values()), workers.growth


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="measures workers' VmHWM")
def test_eight_hostile_bodies_at_once_take_no_memory():
    """Eight at once once took two workers to 3.4 GB; now each grows by under 50 MB."""
    token = uuid.uuid4().hex
    env = {"API_BACKEND": "onnx", "API_WORKERS": "2", MARKER: token}
    jobs = [("csv-tiny-rows", chunked) for chunked in (False, True) * 4]
    with running_api(env) as url, Workers(token) as workers, ThreadPoolExecutor(8) as pool:

        def one(job):
            path, body, headers = HOSTILE[job[0]]
            with send(url, path, body, headers, job[1]) as response:
                return response.status_code

        statuses = list(pool.map(one, jobs))
    assert statuses == [413] * len(jobs)
    assert all(growth < MAX_GROWTH for growth in workers.growth.values()), workers.growth
