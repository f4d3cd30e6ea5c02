"""The monitoring report: drift and live performance, window by window, as JSON.

:func:`build_report` cuts the logged predictions of one model version into time windows
and, for each window, runs every drift test against the version's reference profile and
measures accuracy (or error) on the rows whose truth has arrived. The result is plain
JSON: the command line writes it to disk, renders it as HTML (:mod:`~apps.monitoring.html`)
and keeps it in the database, where the API's metrics and the UI read it.
"""

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from apps.monitoring import drift, store
from apps.monitoring.performance import classification_figures, regression_figures
from apps.monitoring.reference import reference_profile
from apps.registry import ModelRegistry

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d`` or ``2w`` as a timedelta."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 30m, 12h, 7d or 2w")
    return timedelta(**{_UNITS[match[2]]: float(match[1])})


def parse_time(text: str, now: datetime) -> datetime:
    """An ISO date or time (UTC unless it says otherwise), or a duration before ``now``."""
    if _DURATION.match(text.strip()):
        return now - parse_duration(text)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither an ISO date/time nor a duration") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def window_bounds(since: datetime, until: datetime, window: timedelta) -> list[tuple]:
    """Consecutive windows from ``since``; the last one may be shorter."""
    bounds, start = [], since
    while start < until:
        bounds.append((start, min(start + window, until)))
        start += window
    return bounds


def _round(value):
    return round(value, 6) if isinstance(value, float) else value


def _performance(rows: list[dict], classification: bool) -> dict:
    """Accuracy or error on the labelled rows (a row logged twice counts once)."""
    labelled = {(r["request_id"], r["row_index"]): r for r in rows if r["received_at"]}
    rows = list(labelled.values())
    if classification:
        figures = classification_figures(
            [r["label"] for r in rows], [r["true_label"] for r in rows]
        )
    else:
        figures = regression_figures([r["value"] for r in rows], [r["true_value"] for r in rows])
    return {key: _round(value) for key, value in figures.items()}


def _window(profile: dict, rows: list[dict], bounds: tuple, classification: bool, alpha: float):
    """One window's drift tests and performance."""
    columns = {name: [r["inputs"].get(name) for r in rows] for name in profile["columns"]}
    predicted = [r["label"] if classification else r["value"] for r in rows]
    tested = len(rows) >= drift.MIN_ROWS
    tests = drift.compare(profile, columns, predicted, alpha) if tested else []
    return {
        "start": _iso(bounds[0]),
        "end": _iso(bounds[1]),
        "rows": len(rows),
        "tested": tested,
        "drift": any(t.drift for t in tests),
        "drifted": sorted({t.column for t in tests if t.drift}),
        "tests": [t.as_dict() for t in tests],
        "performance": _performance(rows, classification),
    }


def _shares(values: list, summary: dict, edges=None) -> list[float]:
    present = [v for v in values if v is not None and v == v]
    if summary["type"] == "category":
        counts = [sum(1 for v in present if v == c) for c in summary["counts"]]
    else:
        counts = [int(x) for x in drift.bin_shares(present, edges) * len(present)]
    return [round(c / max(len(present), 1), 6) for c in counts]


def distributions(profile: dict, rows: list[dict], classification: bool) -> dict:
    """Reference and current shares of every column (and the predictions), for the plots:
    categories as they are, numbers in 20 equal bins over both samples' range."""
    result = {}
    current = {name: [r["inputs"].get(name) for r in rows] for name in profile["columns"]}
    current["prediction"] = [r["label"] if classification else r["value"] for r in rows]
    for name, summary in {**profile["columns"], "prediction": profile["prediction"]}.items():
        entry = {"type": summary["type"]}
        if summary["type"] == "category":
            entry["categories"] = list(summary["counts"])
            total = max(sum(summary["counts"].values()), 1)
            entry["reference"] = [round(n / total, 6) for n in summary["counts"].values()]
        else:
            present = [v for v in current[name] if v is not None and v == v]
            values = summary["values"] + present
            low, high = min(values), max(values)
            edges = [round(low + (high - low) * i / 20, 6) for i in range(21)]
            entry["edges"] = edges
            entry["reference"] = _shares(summary["values"], summary, edges[1:-1])
        inner = entry.get("edges", [None, None])[1:-1]
        entry["current"] = _shares(current[name], summary, inner)
        result[name] = entry
    return result


def build_report(
    engine: Engine,
    registry: ModelRegistry,
    model: str,
    since: datetime,
    until: datetime,
    window: timedelta,
    version: int | None = None,
    alpha: float = drift.ALPHA,
) -> dict:
    """The report of ``model`` (one version: by default the latest one in the log) from
    ``since`` to ``until``, in windows of ``window``. Its ``drift`` is the verdict on the
    latest window with enough rows to test: the state of things now."""
    rows = store.logged_rows(engine, model, since, until)
    versions = sorted({r["version"] for r in rows})
    version = version or (versions[-1] if versions else registry.versions(model)[-1])
    rows = [r for r in rows if r["version"] == version]
    manifest = registry.manifest(model, version)
    profile = reference_profile(registry, engine, model, version)
    classification = manifest.task == "classification"
    windows: list[dict] = []
    latest_rows: list[dict] = []
    for bounds in window_bounds(since, until, window):
        part = [r for r in rows if bounds[0] <= r["logged_at"] < bounds[1]]
        windows.append(_window(profile, part, bounds, classification, alpha))
        latest_rows = part if windows[-1]["tested"] else latest_rows
    tested = [i for i, w in enumerate(windows) if w["tested"]]
    return {
        "model": model,
        "version": version,
        "task": manifest.task,
        "since": _iso(since),
        "until": _iso(until),
        "window_seconds": window.total_seconds(),
        "alpha": alpha,
        "psi_threshold": drift.PSI_THRESHOLD,
        "missing_change": drift.MISSING_CHANGE,
        "min_rows": drift.MIN_ROWS,
        "reference": {"source": profile["source"], "rows": profile["rows"]},
        "versions_in_log": versions,
        "rows": len(rows),
        "labelled": sum(1 for r in rows if r["received_at"]),
        "latest_window": tested[-1] if tested else None,
        "drift": bool(tested and windows[tested[-1]]["drift"]),
        "windows": windows,
        "distributions": distributions(profile, latest_rows, classification),
    }
