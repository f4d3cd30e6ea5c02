"""Reading and writing the monitoring database: feedback, logged rows, reports, profiles.

Every function takes an engine (see :func:`apps.monitoring.db.connect`) and speaks plain
Python (lists of dicts, no pandas), so the lean API image can use it too. The same SQL
runs on SQLite and PostgreSQL; only the "insert or update" statement has a dialect form.
"""

from datetime import datetime

from sqlalchemy import Engine, and_, func, select
from sqlalchemy.dialects import postgresql, sqlite

from apps.monitoring.db import as_utc, feedback, now, predictions, profiles, reports


class UnknownPrediction(LookupError):
    """Feedback names a request (or a row of it) that the log does not hold."""


def _upsert(engine: Engine, table, row: dict, keys: list[str]):
    """``INSERT ... ON CONFLICT (keys) DO UPDATE``: the same statement in both dialects."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**row)
    updates = {name: statement.excluded[name] for name in row if name not in keys}
    return statement.on_conflict_do_update(index_elements=keys, set_=updates)


def record_feedback(
    engine: Engine,
    model: str,
    request_id: str,
    row_index: int,
    label: str | None = None,
    value: float | None = None,
    received_at: datetime | None = None,
) -> str:
    """Attach the truth to a logged prediction: ``recorded``, ``unchanged`` or ``updated``.

    Idempotent: the same feedback twice is stored once (``unchanged``); different
    feedback for the same row replaces the old one (a correction). Raises
    :class:`UnknownPrediction` when the log has no such request or row.
    """
    key = and_(predictions.c.model == model, predictions.c.request_id == request_id)
    with engine.connect() as connection:
        logged = connection.execute(
            select(predictions.c.row_index).where(key).distinct().order_by(predictions.c.row_index)
        ).scalars()
        rows = list(logged)
        if not rows:
            raise UnknownPrediction(f"no prediction of {model} with request id {request_id!r}")
        if row_index not in rows:
            shown = f"rows 0 to {rows[-1]}" if rows == list(range(len(rows))) else "other rows"
            raise UnknownPrediction(
                f"request {request_id!r} has no row {row_index} in the log (it has {shown})"
            )
        before = connection.execute(
            select(feedback.c.label, feedback.c.value).where(
                feedback.c.model == model,
                feedback.c.request_id == request_id,
                feedback.c.row_index == row_index,
            )
        ).first()
    if before is not None and (before.label, before.value) == (label, value):
        return "unchanged"
    row = {
        "model": model,
        "request_id": request_id,
        "row_index": row_index,
        "label": label,
        "value": value,
        "received_at": received_at or now(),
    }
    with engine.begin() as connection:
        connection.execute(_upsert(engine, feedback, row, ["model", "request_id", "row_index"]))
    return "recorded" if before is None else "updated"


def _joined(model: str):
    """Predictions of ``model`` with their feedback, if any (a left join)."""
    on = and_(
        feedback.c.model == predictions.c.model,
        feedback.c.request_id == predictions.c.request_id,
        feedback.c.row_index == predictions.c.row_index,
    )
    columns = [
        predictions.c.id,
        predictions.c.request_id,
        predictions.c.row_index,
        predictions.c.logged_at,
        predictions.c.version,
        predictions.c.source,
        predictions.c.inputs,
        predictions.c.label,
        predictions.c.value,
        predictions.c.latency_ms,
        feedback.c.label.label("true_label"),
        feedback.c.value.label("true_value"),
        feedback.c.received_at,
    ]
    return (
        select(*columns)
        .select_from(predictions.outerjoin(feedback, on))
        .where(predictions.c.model == model)
    )


def _as_dict(row) -> dict:
    entry = dict(row._mapping)
    entry["logged_at"] = as_utc(entry["logged_at"])
    entry["received_at"] = as_utc(entry["received_at"])
    return entry


def logged_rows(
    engine: Engine,
    model: str,
    since: datetime | None = None,
    until: datetime | None = None,
    labelled_only: bool = False,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[dict]:
    """Logged predictions of ``model`` in ``[since, until)``, with their truth where known.

    Each row: id, request_id, row_index, logged_at, version, source, inputs (the
    record), label or value (the prediction), latency_ms, true_label or true_value and
    received_at (None until feedback arrives). ``labelled_only`` keeps the rows with
    feedback: the rows a retraining can learn from.
    """
    query = _joined(model)
    if since is not None:
        query = query.where(predictions.c.logged_at >= since)
    if until is not None:
        query = query.where(predictions.c.logged_at < until)
    if labelled_only:
        query = query.where(feedback.c.received_at.is_not(None))
    order = predictions.c.id.desc() if newest_first else predictions.c.id
    query = query.order_by(order).limit(limit)
    with engine.connect() as connection:
        return [_as_dict(row) for row in connection.execute(query)]


def labelled_rows(engine: Engine, model: str, **filters) -> list[dict]:
    """The logged predictions that have feedback (see :func:`logged_rows`)."""
    return logged_rows(engine, model, labelled_only=True, **filters)


def counts(engine: Engine, model: str) -> dict:
    """How many predictions of ``model`` the log holds, how many are labelled, and when."""
    with engine.connect() as connection:
        total, first, last = connection.execute(
            select(
                func.count(), func.min(predictions.c.logged_at), func.max(predictions.c.logged_at)
            ).where(predictions.c.model == model)
        ).one()
        labelled = connection.execute(
            select(func.count()).select_from(feedback).where(feedback.c.model == model)
        ).scalar_one()
    return {
        "predictions": total,
        "labelled": labelled,
        "first": as_utc(first),
        "last": as_utc(last),
    }


def save_report(engine: Engine, model: str, content: dict, drift: bool) -> None:
    """Keep a drift report: the API's metrics and the UI show the latest one."""
    with engine.begin() as connection:
        connection.execute(
            reports.insert().values(model=model, created_at=now(), drift=drift, content=content)
        )


def latest_report(engine: Engine, model: str) -> dict | None:
    """The last report saved for ``model`` (its JSON content), or None."""
    query = (
        select(reports.c.content)
        .where(reports.c.model == model)
        .order_by(reports.c.created_at.desc(), reports.c.id.desc())
        .limit(1)
    )
    with engine.connect() as connection:
        return connection.execute(query).scalar()


def stored_profile(engine: Engine, model: str, version: int, manifest_sha256: str) -> dict | None:
    """A reference profile computed after training for this exact manifest, or None."""
    query = select(profiles.c.content).where(
        profiles.c.model == model,
        profiles.c.version == version,
        profiles.c.manifest_sha256 == manifest_sha256,
    )
    with engine.connect() as connection:
        return connection.execute(query).scalar()


def save_profile(engine: Engine, model: str, version: int, manifest_sha256: str, content: dict):
    """Keep a reference profile computed for a version trained without one."""
    row = {
        "model": model,
        "version": version,
        "manifest_sha256": manifest_sha256,
        "created_at": now(),
        "content": content,
    }
    with engine.begin() as connection:
        connection.execute(_upsert(engine, profiles, row, ["model", "version", "manifest_sha256"]))


def public_row(row: dict) -> dict:
    """A logged row as JSON: times in ISO 8601, the prediction and the truth one field each."""
    return {
        "logged_at": row["logged_at"].isoformat(),
        "request_id": row["request_id"],
        "row": row["row_index"],
        "version": row["version"],
        "source": row["source"],
        "inputs": row["inputs"],
        "prediction": row["label"] if row["label"] is not None else row["value"],
        "truth": row["true_label"] if row["true_label"] is not None else row["true_value"],
    }


def overview(engine: Engine, model: str, limit: int = 20) -> dict:
    """What the log knows about a model: the API's monitoring route and the UI show it."""
    figures = counts(engine, model)
    rows = logged_rows(engine, model, limit=limit, newest_first=True)
    return {
        "model": model,
        "predictions": figures["predictions"],
        "labelled": figures["labelled"],
        "first": figures["first"].isoformat() if figures["first"] else None,
        "last": figures["last"].isoformat() if figures["last"] else None,
        "report": latest_report(engine, model),
        "recent": [public_row(row) for row in rows],
    }
