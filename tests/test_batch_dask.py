"""The batch job on Dask: the same files as the local engine, even when a worker is killed.

A real cluster: ``dask scheduler`` and two ``dask worker`` processes started here, on
127.0.0.1, or the job's own ``LocalCluster``. Dask may run a task again when its worker
dies; the output must still hold every row exactly once.
"""

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import psutil
import pytest

from apps.batch.chunks import chunks
from apps.batch.job import Settings, prepare
from apps.batch.scoring import models_loaded
from apps.config import REPO_ROOT

from .batch_helpers import MODEL, command, data_digests, penguin_rows, score, scored, write_csv
from .test_batch import assert_exactly_once, chunk_lines, mixed_file

DASK = [sys.executable, "-m", "dask"]


@contextlib.contextmanager
def dask_cluster(folder, workers: int = 2):
    """A scheduler and ``workers`` single-threaded workers (each under its nanny)."""
    scheduler_file = folder / "scheduler.json"
    processes = [
        subprocess.Popen(
            [
                *DASK,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--dashboard-address",
                "127.0.0.1:0",
                "--scheduler-file",
                scheduler_file,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    try:
        for _ in range(300):
            if scheduler_file.exists() and scheduler_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        for _ in range(workers):
            processes.append(
                subprocess.Popen(
                    [
                        *DASK,
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                        "--death-timeout",
                        "60",
                    ],
                    cwd=REPO_ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        from dask.distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
            yield address, client, processes[1:]
    finally:
        for process in reversed(processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def worker_process(nanny: subprocess.Popen) -> psutil.Process:
    """The worker that a ``dask worker`` nanny spawned (not multiprocessing's helpers)."""
    for _ in range(100):
        for child in psutil.Process(nanny.pid).children(recursive=True):
            line = " ".join(child.cmdline())
            if "spawn_main" in line and "resource_tracker" not in line:
                return child
        time.sleep(0.1)
    raise AssertionError("the nanny has no worker process")


def test_a_task_carries_names_and_paths_never_a_model(tmp_path):
    """What the client sends with each chunk: the job (a few hundred bytes) and the rows."""
    source = write_csv(tmp_path / "birds.csv", penguin_rows(50))
    job, _, _ = prepare(Settings([str(source)], MODEL, str(tmp_path / "out")))
    chunk = next(chunks(job.sources[0], 0, 10, []))
    task = pickle.dumps((job, chunk))
    assert len(pickle.dumps(job)) < 2_000
    assert len(task) < len(chunk.payload) + 2_000
    assert b"LoadedModel" not in task and b"onnxruntime" not in task


@pytest.mark.slow
def test_a_local_cluster_writes_the_same_files_as_the_local_engine(tmp_path):
    source = mixed_file(tmp_path / "birds.csv", rows=5_000)
    common = ["--model", MODEL, "--keep", "id", "--chunk-rows", 700]
    local = score(source, "--output", tmp_path / "local", *common)
    assert local.returncode == 0, local.stderr
    dask = score(
        source,
        "--output",
        tmp_path / "dask",
        *common,
        "--engine",
        "dask",
        "--workers",
        2,
        "--dashboard",
        "127.0.0.1:0",
    )
    assert dask.returncode == 0, dask.stderr
    assert "Dask dashboard: http://127.0.0.1:" in dask.stderr
    assert data_digests(tmp_path / "dask") == data_digests(tmp_path / "local")
    record = json.loads((tmp_path / "dask" / "run.json").read_text())
    assert record["engine"].startswith("Dask, a LocalCluster of 2 worker processes")


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="SIGKILL and process groups are POSIX")
def test_a_killed_worker_leaves_every_row_exactly_once(tmp_path):
    source = mixed_file(tmp_path / "birds.csv", rows=60_000)
    common = ["--model", MODEL, "--keep", "id", "--chunk-rows", 500]
    reference = tmp_path / "local"
    assert score(source, "--output", reference, *common).returncode == 0
    output = tmp_path / "dask"
    with dask_cluster(tmp_path) as (address, client, workers):
        job = subprocess.Popen(
            command(
                source, "--output", output, *common, "--engine", "dask", "--scheduler", address
            ),
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while chunk_lines(output / "_ledger.jsonl") < 10 and job.poll() is None:
            time.sleep(0.005)
        victim = worker_process(workers[0])
        victim.send_signal(signal.SIGKILL)  # mid-run: tasks are in flight on it
        assert not (output / "run.json").exists(), "the job ended before the kill"
        _, stderr = job.communicate(timeout=600)
        assert job.returncode == 0, stderr
        loads = client.run(models_loaded)
    assert_exactly_once(output, reference)
    assert len(scored(output)) == len(scored(reference))
    assert set(loads.values()) <= {0, 1} and 1 in loads.values()  # once per worker process
    assert not victim.is_running()
