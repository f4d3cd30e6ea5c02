"""Monitoring databases for the retraining tests: simulated weeks of one scenario, logged
through the real prediction log, with late truths and a saved drift report.

No HTTP here (the simulator's own tests send its traffic through the API): the birds of
:func:`apps.monitoring.simulator.draw_birds` are validated by the model's schema as the
API would (a refused bird gets no prediction and no truth), predicted, logged with their
simulated time, and a share of them gets its truth five days later.
"""

from datetime import timedelta

import numpy as np

from apps import data, training
from apps.monitoring import db, simulator, store
from apps.monitoring.prediction_log import PredictionLog, Served, model_ref
from apps.monitoring.report import build_report
from apps.registry import ModelRegistry

WEEKS, DRIFT_WEEK = 8, 5


def fill(url: str, registry: ModelRegistry, name: str = "species-classifier",
         scenario: str = "new-colony", per_week: int = 250, seed: int = 0,
         truth=None) -> dict:  # fmt: skip
    """Fill the database at ``url``; return the drift report saved in it.

    ``truth(bird, rng)`` may replace the true target sent back as feedback (a broken
    labelling process); by default the bird's own.
    """
    spec = training.SPECS[name]
    version = registry.production(name)
    model = registry.load(name, version, backend="onnx")
    ref = model_ref(registry, name, version, "onnx")
    engine, rng = db.connect(url), np.random.default_rng(seed)
    penguins = data.load_data().dropna(subset=[spec.target])
    log, truths = PredictionLog(engine, retention_days=None), []
    for week in range(WEEKS):
        weeks_in = week + 1 - DRIFT_WEEK if week + 1 >= DRIFT_WEEK else None
        birds = simulator.draw_birds(penguins, per_week, scenario, weeks_in, rng)
        for i, bird in enumerate(birds.to_dict("records")):
            record = {
                n: (None if v != v else v) for n, v in bird.items() if n in model.schema.names
            }
            if model.schema.record_problems(record):
                continue  # the API would answer 422: no prediction, no truth
            at = simulator.START + timedelta(weeks=week, seconds=i * 2400)
            columns = model.schema.validate([record])
            request_id = f"{name}-w{week}-{i}"
            log.record(Served(ref, request_id, columns, model.answer(columns), 2.0, at))
            if rng.random() < 0.6:
                value = truth(bird, rng) if truth else bird[spec.target]
                truths.append((request_id, value, at + timedelta(days=5)))
    log.close()
    classifier = spec.task == "classification"
    for request_id, value, at in truths:
        label, number = (value, None) if classifier else (None, float(value))
        store.record_feedback(engine, name, request_id, 0, label, number, received_at=at)
    until = simulator.START + timedelta(weeks=WEEKS)
    report = build_report(engine, registry, name, simulator.START, until, timedelta(weeks=1))
    report["created_at"] = until.isoformat()
    store.save_report(engine, name, report, report["drift"])
    engine.dispose()
    return report
