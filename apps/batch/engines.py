"""Where chunks run: threads of this process, or the workers of a Dask cluster.

Both engines run the same :func:`~apps.batch.scoring.score_chunk` through the same
loop (:func:`run_chunks`); they differ only in the executor behind it. The loop keeps
a few chunks in flight, never the whole file: memory stays flat however large the
input. Exactly once is not the engine's job (Dask may run a task twice when a worker
dies); the commit protocol and the ledger make a second run of a chunk harmless.
"""

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from apps.batch.scoring import Job, score_chunk

if TYPE_CHECKING:  # Dask is imported when a job uses it, not with this module
    from dask.distributed import Client, LocalCluster


def run_chunks(executor: Executor, job: Job, chunks: Iterable, in_flight: int) -> Iterator:
    """``(chunk, ledger entry)`` for each chunk, in the order they finish.

    A chunk is read from the input only when a slot is free, so at most ``in_flight``
    chunks are in memory at once. If one fails, the others are cancelled and the error
    goes up: what was committed stays committed, and a rerun resumes from there.
    """
    running = {}
    try:
        for chunk in chunks:
            running[executor.submit(score_chunk, job, chunk)] = chunk
            while len(running) >= in_flight:
                yield from _finished(running)
        while running:
            yield from _finished(running)
    finally:
        for future in running:
            future.cancel()


def _finished(running: dict) -> Iterator:
    done, _ = wait(running, return_when=FIRST_COMPLETED)
    for future in done:
        yield running.pop(future), future.result()


class LocalEngine:
    """Chunks scored by threads of this process; Arrow, NumPy and ONNX Runtime release
    the GIL, so two threads keep two cores busy (reading one chunk, scoring another)."""

    name = "local"

    def __init__(self, threads: int | None = None):
        self.threads = threads or min(4, os.cpu_count() or 1)
        self.in_flight = 2 * self.threads
        self.description = f"this process, {self.threads} thread(s)"

    def __enter__(self) -> "LocalEngine":
        self.executor = ThreadPoolExecutor(self.threads, thread_name_prefix="score")
        return self

    def __exit__(self, *exc) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)

    def worker_peak_memory(self) -> dict[str, float]:
        return {}  # the threads share this process's memory


class DaskEngine:
    """Chunks scored by the workers of a Dask cluster: a new ``LocalCluster`` of
    ``workers`` processes, or the existing cluster at ``scheduler``.

    Each task carries its chunk and the small :class:`Job`; workers load the model
    themselves, once each. The output folder and the model registry must be at the
    same paths for the workers as for this process (a shared disk, on a real cluster).
    """

    name = "dask"

    def __init__(
        self, scheduler: str | None = None, workers: int = 2, dashboard: str = "127.0.0.1:8787"
    ):
        self.scheduler, self.workers, self.dashboard_address = scheduler, workers, dashboard
        self.cluster: LocalCluster | None = None
        self.client: Client  # set on entering the ``with`` block

    def __enter__(self) -> "DaskEngine":
        from dask.distributed import Client, LocalCluster

        if self.scheduler:
            self.client = Client(self.scheduler)
            where = f"the cluster at {self.scheduler}"
        else:
            self.cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=self.dashboard_address,
            )
            self.client = Client(self.cluster)
            where = f"a LocalCluster of {self.workers} worker processes"
        threads = sum(self.client.nthreads().values()) or 1
        self.in_flight = 2 * threads
        self.description = f"Dask, {where} ({threads} thread(s))"
        self.executor = self.client.get_executor()
        return self

    @property
    def dashboard(self) -> str:
        return self.client.dashboard_link

    def worker_peak_memory(self) -> dict[str, float]:
        """The peak memory of each worker process, in MiB."""
        from apps.batch.progress import peak_memory_mib

        return self.client.run(peak_memory_mib)

    def __exit__(self, *exc) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
