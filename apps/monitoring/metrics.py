"""The latest drift report of each model as Prometheus gauges, for ``/metrics``.

Reports are computed by ``python -m apps.monitoring report`` (on a schedule) and kept in
the database; the API reads the latest one at each scrape, so an alert rule in
Prometheus can fire on drift without the API running any statistics itself.
"""

import logging
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError

from apps.monitoring import store

log = logging.getLogger(__name__)


class ReportCollector:
    """A Prometheus collector that turns the latest reports into gauges."""

    def __init__(self, reports: dict[str, dict]):
        self.reports = reports

    def collect(self):
        detected = GaugeMetricFamily(
            "monitoring_drift_detected",
            "1 if the latest report found drift in its latest tested window",
            labels=["model", "version"],
        )
        p_value = GaugeMetricFamily(
            "monitoring_drift_p_value",
            "Holm-adjusted p-value of each drift test, latest tested window",
            labels=["model", "column", "test"],
        )
        effect = GaugeMetricFamily(
            "monitoring_drift_effect",
            "PSI of a distribution test, or the change in the share of missing values",
            labels=["model", "column", "test"],
        )
        performance = GaugeMetricFamily(
            "monitoring_live_performance",
            "Accuracy (classifiers) or MAE (regressors) of the latest window with feedback",
            labels=["model", "metric"],
        )
        labelled = GaugeMetricFamily(
            "monitoring_live_labelled_rows",
            "Labelled rows behind monitoring_live_performance",
            labels=["model"],
        )
        created = GaugeMetricFamily(
            "monitoring_report_timestamp_seconds",
            "When the latest report was made",
            labels=["model"],
        )
        for model, report in self.reports.items():
            detected.add_metric([model, str(report["version"])], float(report["drift"]))
            if report.get("created_at"):
                moment = datetime.fromisoformat(report["created_at"])
                created.add_metric([model], moment.timestamp())
            if report["latest_window"] is not None:
                for test in report["windows"][report["latest_window"]]["tests"]:
                    labels = [model, test["column"], test["test"]]
                    p_value.add_metric(labels, test["adjusted_p"])
                    effect.add_metric(labels, test["effect"])
            key = "accuracy" if report["task"] == "classification" else "mae"
            with_labels = [w for w in report["windows"] if w["performance"]["labelled"]]
            if with_labels:
                figures = with_labels[-1]["performance"]
                performance.add_metric([model, key], figures[key])
                labelled.add_metric([model], figures["labelled"])
        yield from (detected, p_value, effect, performance, labelled, created)


def drift_metrics(engine, models: list[str]) -> str:
    """The gauges as Prometheus text; empty (and a warning logged) if the database fails."""
    try:
        reports = {m: r for m in models if (r := store.latest_report(engine, m)) is not None}
    except SQLAlchemyError as error:
        log.warning("drift metrics unavailable: %s", error)
        return ""
    registry = CollectorRegistry()
    registry.register(ReportCollector(reports))
    return generate_latest(registry).decode()
