"""When to retrain: a rule a scheduler can run, on what monitoring already knows.

Retraining is due when either of two things is true of the version in production:

1. **drift**: the latest drift report (``python -m apps.monitoring report``) is about
   this version and found drift in its latest window: the inputs or the answers no
   longer look like the training data. It needs no labels, so it speaks first;
2. **decay**: over the last ``LOOKBACK`` before that report, at least ``MIN_LABELS``
   predictions got their truth, and even the *optimistic* end of the live figure's 95%
   interval is worse than the held-out figure of the manifest by more than a margin:
   the upper bound of live accuracy below held-out accuracy minus ``ACCURACY_MARGIN``,
   or the lower bound of live MAE above held-out MAE times ``1 + MAE_MARGIN``. With too
   few labels the interval is too wide to say anything, and the rule stays quiet.

Drift alone may do no harm (a heavier season barely moves the classifier), and the gate
then refuses a candidate that is no better; but it is cheap to ask.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from apps.monitoring import db, store
from apps.monitoring.performance import classification_figures, regression_figures
from apps.registry import ModelRegistry

LOOKBACK = timedelta(days=28)
MIN_LABELS = 100
ACCURACY_MARGIN = 0.02
"""Absolute: live accuracy (its upper bound) below held-out accuracy minus 2 points."""
MAE_MARGIN = 0.10
"""Relative: live MAE (its lower bound) above held-out MAE plus 10%."""


@dataclass
class Decision:
    """Whether to retrain, why (one sentence per reason), and the figures behind it."""

    retrain: bool
    reasons: list[str]
    figures: dict

    def summary(self) -> str:
        verdict = "retrain: " + "; ".join(self.reasons) if self.retrain else "no need to retrain"
        return f"{self.figures['model']} v{self.figures['version']}: {verdict}"


def live_figures(engine: Engine, name: str, version: int, until: datetime, task: str) -> dict:
    """Live accuracy (or MAE) of ``version`` from its labelled rows in the lookback."""
    rows = store.labelled_rows(engine, name, since=until - LOOKBACK, until=until)
    unique = {(r["request_id"], r["row_index"]): r for r in rows if r["version"] == version}
    rows = list(unique.values())
    if task == "classification":
        return classification_figures([r["label"] for r in rows], [r["true_label"] for r in rows])
    return regression_figures([r["value"] for r in rows], [r["true_value"] for r in rows])


def decide(engine: Engine, registry: ModelRegistry, name: str) -> Decision:
    """Apply the rule to the production version of ``name``."""
    version = registry.production(name)
    manifest = registry.manifest(name, version)
    report = store.latest_report(engine, name)
    if report is not None and report["version"] == version:
        until = datetime.fromisoformat(report["until"])
    else:
        report, until = None, db.now()  # a report on another version says nothing of this one
    reasons = []
    if report is not None and report["drift"]:
        window = report["windows"][report["latest_window"]]
        reasons.append(f"drift in {', '.join(window['drifted'])} (report of "
                       f"{report.get('created_at', report['until'])[:10]})")  # fmt: skip
    held_out = manifest.data["metrics"]["test"]
    live = live_figures(engine, name, version, until, manifest.task)
    if live["labelled"] >= MIN_LABELS:
        if manifest.task == "classification":
            bar = held_out["accuracy"] - ACCURACY_MARGIN
            if live["accuracy_high"] < bar:
                reasons.append(f"live accuracy {live['accuracy']:.3f} (at most "
                               f"{live['accuracy_high']:.3f}) is below {bar:.3f}")  # fmt: skip
        elif live["mae_low"] is not None:
            bar = held_out["mae"] * (1 + MAE_MARGIN)
            if live["mae_low"] > bar:
                reasons.append(f"live MAE {live['mae']:.1f} (at least {live['mae_low']:.1f}) "
                               f"is above {bar:.1f}")  # fmt: skip
    figures = {"model": name, "version": version, "until": until.isoformat(), "live": live,
               "held_out": held_out, "report_drift": bool(report and report["drift"])}  # fmt: skip
    return Decision(bool(reasons), reasons, figures)
