"""Batch runs in the log: one record per run, and a bounded random sample of its rows.

A batch job may score millions of rows; logging each would bury the database for little
gain, since a few thousand rows describe a distribution as well as millions. So a run
keeps a *reservoir sample* (Vitter's algorithm R): every row has the same chance of
being kept, whatever the run's size, and memory stays bounded. The sampled rows go to
the ``predictions`` table like the API's, so drift reports cover batch traffic too.
"""

import uuid

import numpy as np
from sqlalchemy import Engine, insert, update

from apps.monitoring.db import now, predictions, runs
from apps.monitoring.prediction_log import ModelRef, Served, database_rows
from apps.registry import Prediction


class BatchRun:
    """Record one batch run: ``add`` each chunk of predictions, then ``finish``."""

    def __init__(
        self,
        engine: Engine,
        model: ModelRef,
        source: str = "",
        sample_size: int = 1_000,
        seed: int | None = None,
    ):
        self.engine, self.model, self.sample_size = engine, model, sample_size
        self.run_id = uuid.uuid4().hex
        self.rows = self.failed_rows = 0
        self.sample: list[dict] = []  # database rows of the kept predictions
        self._rng = np.random.default_rng(seed)
        with engine.begin() as connection:
            connection.execute(
                insert(runs).values(
                    run_id=self.run_id,
                    model=model.name,
                    version=model.version,
                    manifest_sha256=model.manifest_sha256,
                    backend=model.backend,
                    started_at=now(),
                    source=source[:500],
                )
            )

    def add(self, columns: dict[str, np.ndarray], prediction: Prediction, first_row: int) -> None:
        """One chunk's predictions; ``first_row`` is the file row of its first record."""
        count = len(prediction.outputs)
        seen = self.rows + np.arange(count)  # how many rows came before each one
        slots = np.where(seen < self.sample_size, seen, self._rng.integers(0, seen + 1, size=count))
        kept = np.flatnonzero(slots < self.sample_size)
        self.rows += count
        if not len(kept):
            return
        chosen = {name: values[kept] for name, values in columns.items()}
        part = Prediction(
            prediction.outputs[kept],
            None if prediction.probabilities is None else prediction.probabilities[kept],
            prediction.classes,
        )
        rows = (first_row + kept).tolist()
        served = Served(self.model, self.run_id, chosen, part, None, rows=rows)
        for slot, row in zip(slots[kept].tolist(), database_rows(served, "batch"), strict=True):
            if slot < len(self.sample):
                self.sample[slot] = row  # replaces a row kept earlier
            else:
                self.sample.append(row)

    def fail(self, rows: int) -> None:
        """Count rows that could not be scored (invalid input)."""
        self.failed_rows += rows

    def finish(self) -> str:
        """Write the sample and close the run record; returns the run id."""
        with self.engine.begin() as connection:
            if self.sample:
                connection.execute(insert(predictions), self.sample)
            connection.execute(
                update(runs)
                .where(runs.c.run_id == self.run_id)
                .values(
                    finished_at=now(),
                    rows=self.rows,
                    failed_rows=self.failed_rows,
                    sampled_rows=len(self.sample),
                )
            )
        return self.run_id
