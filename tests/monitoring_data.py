"""A monitoring database with a story in it, for the UI tests: six weeks of traffic to the
species classifier, a new colony from the fourth week, late truths, and a saved report.

The rows go through the real prediction log and feedback code (no HTTP: the simulator's
own tests cover that path), with simulated times.
"""

from datetime import timedelta

import numpy as np

from apps import data
from apps.monitoring import db, simulator, store
from apps.monitoring.prediction_log import PredictionLog, Served, model_ref
from apps.monitoring.report import build_report
from apps.registry import ModelRegistry

MODEL = "species-classifier"
WEEKS, DRIFT_WEEK = 6, 4


def fill(url: str, per_week: int = 150, seed: int = 0) -> dict:
    """Fill the database at ``url``; return the report saved in it."""
    registry = ModelRegistry()
    model = registry.load(MODEL, backend="onnx")
    ref = model_ref(registry, MODEL, 1, "onnx")
    engine = db.connect(url)
    rng = np.random.default_rng(seed)
    penguins = data.load_data()
    log, truths = PredictionLog(engine, retention_days=None), []
    for week in range(WEEKS):
        weeks_in = week + 1 - DRIFT_WEEK if week + 1 >= DRIFT_WEEK else None
        birds = simulator.draw_birds(penguins, per_week, "new-colony", weeks_in, rng)
        for i, bird in enumerate(birds.to_dict("records")):
            record = {name: (None if v != v else v) for name, v in bird.items()
                      if name in model.schema.names}  # fmt: skip
            at = simulator.START + timedelta(weeks=week, seconds=i * 3600)
            columns = model.schema.validate([record])
            request_id = f"w{week}-{i}"
            log.record(Served(ref, request_id, columns, model.answer(columns), 2.0, at))
            if rng.random() < 0.6:
                truths.append((request_id, bird["species"], at + timedelta(days=5)))
    log.close()
    for request_id, species, at in truths:
        store.record_feedback(engine, MODEL, request_id, 0, species, received_at=at)
    until = simulator.START + timedelta(weeks=WEEKS)
    report = build_report(engine, registry, MODEL, simulator.START, until, timedelta(weeks=1))
    report["created_at"] = until.isoformat()
    store.save_report(engine, MODEL, report, report["drift"])
    engine.dispose()
    return report
