"""The gate: a candidate replaces the champion only if it is not worse, on the same rows.

Champion (the version in production) and candidate are scored on one held-out set that
neither learnt from: the held-out rows of the original split, which the champion never
saw in training, plus the held-out share of the labelled production rows, which no
version ever trains on (see :mod:`apps.rollout.fresh_data`). Same rows, same metric,
same code, and both through ONNX, the format the API serves by default: the only thing
left to differ is the model. The candidate passes when

* its **primary metric** (accuracy for a classifier, mean absolute error for a
  regressor) is worse than the champion's by at most ``MARGIN`` (relative): retraining
  on fresh data may cost a little on the old world, never much;
* its **ONNX export** gives the predictions of its scikit-learn pipeline;
* its **input schema** accepts every record the champion accepts, and it answers with
  the same classes: clients of the champion keep working.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from apps import training
from apps.registry import InputSchema, LoadedModel, Manifest
from apps.registry.backends import OnnxBackend

PRIMARY = {"classification": ("accuracy", "higher"), "regression": ("mae", "lower")}
"""The metric that decides, per task, and which way is better."""
MARGIN = 0.01
"""How much worse than the champion the candidate may be, relative (1%)."""
ONNX_TOLERANCE = {"classification": 1e-4, "regression": 1e-2}
"""Largest difference allowed between ONNX and scikit-learn: probabilities, or grams."""


class Scorer:
    """A loaded model that predicts from a DataFrame, as ``training.evaluate`` expects.

    Rows go through the model's input schema first, exactly as the API's requests do.
    """

    def __init__(self, model: LoadedModel):
        self.model = model

    def _columns(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        return self.model.schema.validate(records)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict(self._columns(frame))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """ONNX computes in float32, whose rows sum to 1 only within 1e-7: made exact here."""
        probabilities = self.model.predict_proba(self._columns(frame))
        return probabilities / probabilities.sum(axis=1, keepdims=True)


def candidate_model(pipeline, spec) -> LoadedModel:
    """The candidate as the API would load it: its ONNX export, with its own schema."""
    manifest = Manifest(
        {**training.model_facts(pipeline, spec, {}), "name": spec.name, "version": 0}
    )
    onnx = OnnxBackend(training.to_onnx_bytes(pipeline, spec))
    return LoadedModel(manifest, InputSchema.from_manifest(manifest), onnx)


def schema_problems(champion: Manifest, candidate: Manifest) -> list[str]:
    """Why a client of the champion could fail with the candidate (empty: it cannot)."""
    problems = []
    if champion.task != candidate.task or set(champion.classes) != set(candidate.classes):
        problems.append(f"it answers {candidate.classes or candidate.task}, not {champion.classes}")
    new = {column["name"]: column for column in candidate.input_columns}
    for old in champion.input_columns:
        name, column = old["name"], new.pop(old["name"], None)
        if column is None or column["type"] != old["type"]:
            problems.append(f"{name}: not taken as a {old['type']} any more")
        elif old.get("nullable") and not column.get("nullable"):
            problems.append(f"{name}: may no longer be missing")
        elif set(old.get("categories", ())) - set(column.get("categories", ())):
            problems.append(f"{name}: refuses categories the champion accepts")
        elif old["type"] == "number" and (
            column["minimum"] > old["minimum"] or column["maximum"] < old["maximum"]
        ):
            problems.append(f"{name}: a narrower range than the champion's")
    problems += [f"{name}: a new column that records must have" for name, column in new.items()
                 if not column.get("nullable")]  # fmt: skip
    return problems


def onnx_parity(pipeline, candidate: LoadedModel, task: str, frame: pd.DataFrame) -> dict:
    """How far the ONNX export's answers are from the pipeline's, on the held-out rows."""
    columns = Scorer(candidate)._columns(frame)
    labels_equal = True
    if task == "classification":
        expected, got = pipeline.predict_proba(frame), candidate.predict_proba(columns)
        labels_equal = bool((pipeline.predict(frame) == candidate.predict(columns)).all())
    else:
        expected, got = pipeline.predict(frame), candidate.predict(columns)
    difference = float(np.abs(np.asarray(expected, float) - got).max()) if len(frame) else 0.0
    tolerance = ONNX_TOLERANCE[task]
    return {
        "rows": len(frame),
        "labels_equal": labels_equal,
        "max_difference": float(f"{difference:.2g}"),
        "tolerance": tolerance,
        "equal": labels_equal and difference <= tolerance,
    }


@dataclass
class Verdict:
    """The gate's decision, its reasons, and the figures written into the manifest."""

    passed: bool
    reasons: list[str]
    figures: dict


def scores(spec, model: LoadedModel, parts: dict[str, tuple]) -> dict[str, dict]:
    """``training.evaluate`` on each part of the held-out rows (an empty part is skipped).

    A small part may lack a class (every truth one species): its balanced accuracy then
    averages over the classes it has, as it should, and scikit-learn's warning about
    predicted classes "not in y_true" says nothing more.
    """
    scorer = Scorer(model)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true", UserWarning)
        return {part: training.evaluate(scorer, spec, x, y) for part, (x, y) in parts.items()
                if len(x)}  # fmt: skip


def judge(spec, champion: LoadedModel, pipeline, parts: dict[str, tuple], margin=MARGIN):
    """Score champion and candidate on the same ``parts`` (``{"all": (x, y), ...}``),
    then check the primary metric on ``all``, the ONNX export and the schema."""
    candidate = candidate_model(pipeline, spec)
    metric, better = PRIMARY[spec.task]
    champion_scores = scores(spec, champion, parts)
    candidate_scores = scores(spec, candidate, parts)
    old, new = champion_scores["all"][metric], candidate_scores["all"][metric]
    limit = old * (1 - margin) if better == "higher" else old * (1 + margin)
    reasons = []
    if (new < limit) if better == "higher" else (new > limit):
        reasons.append(f"{metric} {new:.4g} is worse than the champion's {old:.4g} by more "
                       f"than {margin:.0%} (the limit is {limit:.4g})")  # fmt: skip
    parity = onnx_parity(pipeline, candidate, spec.task, parts["all"][0])
    if not parity["equal"]:
        reasons.append(f"its ONNX export differs from it by {parity['max_difference']:g}")
    problems = schema_problems(champion.manifest, candidate.manifest)
    reasons += [f"schema: {problem}" for problem in problems]
    figures = {
        "passed": not reasons,
        "reasons": reasons,
        "primary_metric": metric,
        "better": better,
        "margin": margin,
        "limit": round(limit, 6),
        "held_out_rows": {part: len(x) for part, (x, _) in parts.items()},
        "champion": {"version": champion.version, "scores": champion_scores},
        "candidate": {"scores": candidate_scores},
        "onnx_parity": parity,
        "schema": problems or "compatible",
    }
    return Verdict(not reasons, reasons, figures)


def gate_table(figures: dict) -> str:
    """The gate's figures as lines: the primary metric of both models on each part."""
    metric = figures["primary_metric"]
    champion, candidate = figures["champion"]["scores"], figures["candidate"]["scores"]
    lines = [f"{'held-out rows':<15}{'rows':>6}  champion v{figures['champion']['version']}"
             f"  candidate   ({metric}, {figures['better']} is better)"]  # fmt: skip
    for part, rows in figures["held_out_rows"].items():
        if part in champion:
            lines.append(f"{part:<15}{rows:>6}  {champion[part][metric]:>11.4f}"
                         f"  {candidate[part][metric]:>9.4f}")  # fmt: skip
    parity = figures["onnx_parity"]
    same = "the same" if parity["equal"] else f"different ({parity['max_difference']:g})"
    lines.append(f"ONNX and scikit-learn: {same} within {parity['tolerance']:g}; "
                 f"schema: {figures['schema']}")  # fmt: skip
    return "\n".join(lines)
