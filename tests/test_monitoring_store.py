"""The prediction log and its database, on SQLite and on a real PostgreSQL server.

Every test here runs twice through the ``database_url`` fixture: once on a SQLite file,
once on a fresh database of a PostgreSQL server started for the session (skipped, with
the reason, where none can run). One schema, one code path: the same assertions hold.
"""

import json
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from apps.monitoring import db, store
from apps.monitoring.prediction_log import Counters, ModelRef, PredictionLog, Served, model_ref
from apps.monitoring.runs import BatchRun
from apps.registry import ModelRegistry

from .conftest import RECORD
from .servers import free_port

REF = ModelRef("species-classifier", 1, "0" * 64, "onnx")


@pytest.fixture
def engine(database_url):
    """An engine on the test's database, disposed of (connections closed) afterwards."""
    engine = db.connect(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def classifier():
    return ModelRegistry().load("species-classifier", backend="onnx")


def served(model, records: list[dict], request_id: str, at=None) -> Served:
    columns = model.schema.validate(records)
    return Served(REF, request_id, columns, model.answer(columns), 1.5, at)


def count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


class Tally(Counters):
    def __init__(self):
        self.counts = {"written": 0}

    def written(self, rows):
        self.counts["written"] += rows

    def dropped(self, rows, reason):
        self.counts[reason] = self.counts.get(reason, 0) + rows


def test_every_queued_prediction_is_written_with_its_fields(engine, classifier):
    tally = Tally()
    log = PredictionLog(engine, batch_rows=50, flush_seconds=60, counters=tally)
    missing_mass = {**RECORD, "body_mass_g": None, "sex": None}
    for i in range(120):
        assert log.record(served(classifier, [RECORD, missing_mass], f"req-{i}"))
    assert log.close()
    assert count(engine, db.predictions) == 240 and tally.counts == {"written": 240}
    (row,) = store.logged_rows(engine, "species-classifier", limit=1, newest_first=True)
    assert (row["request_id"], row["row_index"], row["version"]) == ("req-119", 1, 1)
    assert row["inputs"] == missing_mass and row["label"] == "Gentoo" and row["value"] is None
    assert row["logged_at"].tzinfo is not None and row["latency_ms"] == 1.5
    with engine.connect() as connection:
        stored = connection.execute(select(db.predictions.c.probabilities)).first()[0]
    assert set(stored) == {"Adelie", "Chinstrap", "Gentoo"}
    assert sum(stored.values()) == pytest.approx(1)
    assert not log.record(served(classifier, [RECORD], "late")) and tally.counts["closed"] == 1


def test_a_full_queue_drops_and_counts_instead_of_blocking(engine, classifier):
    tally = Tally()
    log = PredictionLog(engine, max_rows=100, batch_rows=10**9, flush_seconds=60, counters=tally)
    accepted = [log.record(served(classifier, [RECORD], f"r{i}")) for i in range(150)]
    assert accepted == [True] * 100 + [False] * 50
    assert log.dropped == 50 and tally.counts["queue_full"] == 50
    assert log.close()
    assert count(engine, db.predictions) == 100 == log.written


def test_a_failing_database_loses_rows_counted_never_the_request(
    database_url, classifier, tmp_path
):
    """A database that is down: every write fails, retries included, so the rows are
    counted as lost; recording them never raised nor blocked the request."""
    if database_url.startswith("postgresql"):  # a server that is not there
        down = f"postgresql+psycopg://monitoring@127.0.0.1:{free_port()}/monitoring"
    else:  # a file that cannot be made: its folder is a file
        (tmp_path / "not-a-folder").write_text("")
        down = f"sqlite:///{(tmp_path / 'not-a-folder' / 'monitoring.db').as_posix()}"
    engine = db.connect(down, create=False)
    tally = Tally()
    log = PredictionLog(engine, flush_seconds=0.05, counters=tally)
    assert log.record(served(classifier, [RECORD, RECORD], "doomed"))
    assert log.flush(timeout=30)
    assert tally.counts == {"written": 0, "write_error": 2} and log.dropped == 2
    log.close()
    engine.dispose()


def test_threads_writing_together_lose_nothing(engine, classifier):
    log = PredictionLog(engine, batch_rows=64, flush_seconds=0.01)

    def client(number: int) -> None:
        for i in range(250):
            log.record(served(classifier, [RECORD], f"t{number}-{i}"))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.close(timeout=60)
    assert count(engine, db.predictions) == 2000 and log.dropped == 0


def test_feedback_joins_its_prediction_once_and_unknown_ones_are_refused(engine, classifier):
    log = PredictionLog(engine)
    log.record(served(classifier, [RECORD, RECORD, RECORD], "batch-1"))
    log.close()
    model = "species-classifier"
    assert store.record_feedback(engine, model, "batch-1", 2, label="Gentoo") == "recorded"
    assert store.record_feedback(engine, model, "batch-1", 2, label="Gentoo") == "unchanged"
    assert count(engine, db.feedback) == 1
    assert store.record_feedback(engine, model, "batch-1", 2, label="Adelie") == "updated"
    with pytest.raises(store.UnknownPrediction, match="no prediction"):
        store.record_feedback(engine, model, "nope", 0, label="Adelie")
    with pytest.raises(store.UnknownPrediction, match="rows 0 to 2"):
        store.record_feedback(engine, model, "batch-1", 3, label="Adelie")
    with pytest.raises(store.UnknownPrediction):  # feedback is per model
        store.record_feedback(engine, "body-mass-regressor", "batch-1", 0, value=4000.0)
    (row,) = store.labelled_rows(engine, model)
    assert (row["request_id"], row["row_index"], row["true_label"]) == ("batch-1", 2, "Adelie")
    assert row["label"] == "Gentoo" and row["received_at"] is not None
    assert len(store.logged_rows(engine, model)) == 3
    figures = store.counts(engine, model)
    assert (figures["predictions"], figures["labelled"]) == (3, 1)


def test_retention_deletes_what_is_older_than_the_period(engine, classifier):
    log = PredictionLog(engine, retention_days=None)  # the writer prunes nothing by itself
    old = datetime.now(UTC) - timedelta(days=40)
    log.record(served(classifier, [RECORD], "old", at=old))
    log.record(served(classifier, [RECORD], "new"))
    log.flush()
    store.record_feedback(engine, "species-classifier", "old", 0, "Gentoo", received_at=old)
    assert log.prune(days=30) == 1
    log.close()
    assert [r["request_id"] for r in store.logged_rows(engine, "species-classifier")] == ["new"]
    assert count(engine, db.feedback) == 0


def test_a_batch_run_keeps_its_record_and_a_bounded_sample(engine, classifier):
    run = BatchRun(engine, REF, source="birds.csv", sample_size=100, seed=0)
    rows = [RECORD] * 5000
    for start in range(0, 5000, 700):
        chunk = rows[start : start + 700]
        columns = classifier.schema.validate(chunk)
        run.add(columns, classifier.answer(columns), first_row=start)
    run.fail(3)
    run_id = run.finish()
    sample = store.logged_rows(engine, "species-classifier")
    assert len(sample) == 100 and {r["source"] for r in sample} == {"batch"}
    indices = [r["row_index"] for r in sample]
    assert len(set(indices)) == 100 and all(0 <= i < 5000 for i in indices)
    assert max(indices) >= 1000  # late rows get their chance too
    with engine.connect() as connection:
        record = connection.execute(select(db.runs)).one()._mapping
    assert (record["run_id"], record["rows"], record["failed_rows"]) == (run_id, 5000, 3)
    assert record["sampled_rows"] == 100 and record["finished_at"] is not None
    assert store.record_feedback(engine, "species-classifier", run_id, indices[0], "Gentoo")


def test_reports_and_profiles_are_kept_and_read_back(engine):
    store.save_report(engine, "m", {"drift": False, "n": 1}, False)
    store.save_report(engine, "m", {"drift": True, "n": 2}, True)
    assert store.latest_report(engine, "m") == {"drift": True, "n": 2}
    assert store.latest_report(engine, "other") is None
    profile = {"format": 1, "columns": {}}
    store.save_profile(engine, "m", 1, "a" * 64, profile)
    store.save_profile(engine, "m", 1, "a" * 64, profile)  # again: replaced, not doubled
    assert store.stored_profile(engine, "m", 1, "a" * 64) == profile
    assert store.stored_profile(engine, "m", 1, "b" * 64) is None


def test_every_row_has_the_same_chance_to_be_sampled(tmp_path, classifier):
    """Reservoir sampling: over many runs of 40 rows keeping 10, each row is kept 1/4 of the
    time (a chi-square test of uniformity, with a fixed seed per run)."""
    from scipy import stats

    engine = db.connect(tmp_path / "m.db")
    kept = np.zeros(40)
    columns = classifier.schema.validate([RECORD] * 40)
    prediction = classifier.answer(columns)
    for seed in range(400):
        run = BatchRun(engine, REF, sample_size=10, seed=seed)
        for start in range(0, 40, 7):
            part = {k: v[start : start + 7] for k, v in columns.items()}
            chunk = type(prediction)(prediction.outputs[start : start + 7],
                                     prediction.probabilities[start : start + 7],
                                     prediction.classes)  # fmt: skip
            run.add(part, chunk, first_row=start)
        for row in run.sample:
            kept[row["row_index"]] += 1
    assert kept.sum() == 4000
    assert stats.chisquare(kept).pvalue > 0.001


def test_model_ref_names_the_manifest_by_its_sha256(registry):
    import hashlib

    ref = model_ref(registry, "species-classifier", 1, "onnx")
    manifest = registry.resolve("species-classifier", 1) / "manifest.json"
    assert ref.manifest_sha256 == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert json.loads(manifest.read_text())["version"] == ref.version == 1
