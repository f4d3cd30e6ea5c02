"""The monitoring database: one schema and one code path for SQLite and PostgreSQL.

SQLAlchemy Core describes the tables once and writes the SQL for either database, so
the course runs on a laptop with a SQLite file (nothing to install) and moves to a
shared PostgreSQL server by changing one URL, with the same code.
"""

import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
)
from sqlalchemy.exc import DatabaseError

from apps.config import REPO_ROOT

URL_ENV = "MONITORING_DB_URL"
"""A SQLAlchemy URL (``postgresql+psycopg://user@host/db``) or a SQLite file's path."""
DEFAULT_PATH = REPO_ROOT / "var" / "monitoring.db"

metadata = MetaData()
Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite auto-numbers INTEGER keys only
Time = DateTime(timezone=True)

predictions = Table(
    "predictions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),  # or a batch run's id
    Column("row_index", Integer, nullable=False),  # the row within the request or file
    Column("logged_at", Time, nullable=False),
    Column("model", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("backend", String(16), nullable=False),
    Column("source", String(16), nullable=False),  # "api" or "batch"
    Column("inputs", JSON, nullable=False),  # the validated record
    Column("label", String(100)),  # a classifier's answer ...
    Column("value", Float),  # ... or a regressor's
    Column("probabilities", JSON),
    Column("latency_ms", Float),
    Index("ix_predictions_model_time", "model", "logged_at"),
    Index("ix_predictions_request", "model", "request_id", "row_index"),
)
feedback = Table(
    "feedback",
    metadata,
    Column("model", String(100), primary_key=True),
    Column("request_id", String(64), primary_key=True),
    Column("row_index", Integer, primary_key=True),
    Column("label", String(100)),  # the true class ...
    Column("value", Float),  # ... or the true value
    Column("received_at", Time, nullable=False),
)
runs = Table(
    "runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("model", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("backend", String(16), nullable=False),
    Column("started_at", Time, nullable=False),
    Column("finished_at", Time),
    Column("rows", BigInteger, nullable=False, default=0),
    Column("failed_rows", BigInteger, nullable=False, default=0),
    Column("sampled_rows", Integer, nullable=False, default=0),
    Column("source", String(500)),  # the input's name
)
reports = Table(
    "drift_reports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model", String(100), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("drift", Boolean, nullable=False),
    Column("content", JSON, nullable=False),  # the report's JSON, as written to disk
    Index("ix_drift_reports_model_time", "model", "created_at"),
)
profiles = Table(
    "reference_profiles",  # profiles computed later, for versions trained without one
    metadata,
    Column("model", String(100), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("manifest_sha256", String(64), primary_key=True),
    Column("created_at", Time, nullable=False),
    Column("content", JSON, nullable=False),
)


def database_url(value: str | os.PathLike | None = None) -> str:
    """A SQLAlchemy URL from ``value``, else ``$MONITORING_DB_URL``, else the default file.

    A plain path means a SQLite file; its folder is created.
    """
    value = str(value or os.environ.get(URL_ENV) or DEFAULT_PATH)
    if "://" in value:
        return value
    path = Path(value).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path.as_posix()}"


def _sqlite_settings(connection, _record) -> None:
    """WAL lets readers work while one writer writes; the others wait their turn.

    ``busy_timeout`` makes a writer wait (up to 30 s) for the lock instead of failing at
    once, which is what several gunicorn workers writing to one file need.
    """
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; far fewer fsyncs
    cursor.close()


def connect(url: str | os.PathLike | None = None, create: bool = True) -> Engine:
    """An engine for ``url`` (see :func:`database_url`), with the tables created.

    ``create=False`` only prepares the engine: nothing connects yet, so a process can
    start while its database is still starting (the prediction log creates the tables
    on its first write).
    """
    engine = create_engine(database_url(url), pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_settings)
    if create:
        create_tables(engine)
    return engine


def create_tables(engine: Engine) -> None:
    """Create the missing tables; processes starting together may race, so retry."""
    for attempt in range(3):
        try:
            metadata.create_all(engine)
            return
        except DatabaseError:
            if attempt == 2:
                raise


def now() -> datetime:
    """The current time, in UTC: every time in the database is UTC."""
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """A time read back from the database, in UTC (SQLite returns it without a zone)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
