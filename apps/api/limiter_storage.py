"""Rate-limit counts in a SQLite file, shared by the server's processes on one machine.

gunicorn forks worker processes, and Flask-Limiter's default store (``memory://``)
lives in each one: with four workers a client gets four budgets, and a recycled worker
starts from zero. The limit set must be the limit enforced, so the counts must live
outside the workers. Redis does that across machines (``redis://host:6379``); on one
machine a SQLite file does it with nothing to install: every worker opens the same
file, and SQLite's locking makes each increment atomic.

Importing this module registers the ``sqlite`` scheme with the ``limits`` library, so
Flask-Limiter accepts ``RATELIMIT_STORAGE_URI = "sqlite:///path/to/counts.sqlite"``
(three slashes, then the path; four for an absolute path on Linux and macOS).
"""

import os
import sqlite3
import threading
import time

from limits.storage import Storage

SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    expires REAL NOT NULL
)
"""
INCREMENT = """
INSERT INTO counters (key, count, expires) VALUES (:key, :amount, :expires)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN expires <= :now THEN :amount ELSE count + :amount END,
    expires = CASE WHEN expires <= :now THEN :expires ELSE expires END
"""
PURGE_EVERY = 1000
"""Increments between two purges of expired counters, so the file does not grow."""


class SQLiteStorage(Storage):
    """A ``limits`` storage for the fixed-window strategy (Flask-Limiter's default).

    Each counter is a row: its count and when its window ends. One connection per
    thread and per process: a SQLite connection must not cross a ``fork`` (gunicorn
    creates the storage in its master, before forking the workers) nor be used by
    two threads at once.
    """

    STORAGE_SCHEME = ["sqlite"]  # noqa: RUF012 - the type ``limits`` declares for it

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = uri.removeprefix("sqlite:///")
        if not self.path or self.path == uri:
            raise ValueError(f"a SQLite storage URI is sqlite:///<path>, not {uri!r}")
        self._local = threading.local()
        self._increments = 0
        connection = self._connect()  # the file and its table exist before any fork
        try:
            connection.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            connection.execute(SCHEMA)
        finally:
            connection.close()

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        connection.execute("PRAGMA synchronous=OFF")  # counts need not survive a power cut
        return connection

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened again after a fork."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.connection, local.pid = self._connect(), os.getpid()
        return local.connection

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to the counter (a new window if the last one ended); its count."""
        now = time.time()
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
        try:
            values = {"key": key, "amount": amount, "expires": now + expiry, "now": now}
            connection.execute(INCREMENT, values)
            (count,) = connection.execute(
                "SELECT count FROM counters WHERE key = ?", (key,)
            ).fetchone()
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        self._increments += 1
        if self._increments % PURGE_EVERY == 0:
            connection.execute("DELETE FROM counters WHERE expires <= ?", (now,))
        return count

    def get(self, key: str) -> int:
        """The counter's value in its current window (0 once the window has ended)."""
        row = (
            self._connection()
            .execute("SELECT count FROM counters WHERE key = ? AND expires > ?", (key, time.time()))
            .fetchone()
        )
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        """When the counter's window ends (now, for a counter that does not exist)."""
        now = time.time()
        row = (
            self._connection()
            .execute("SELECT expires FROM counters WHERE key = ? AND expires > ?", (key, now))
            .fetchone()
        )
        return row[0] if row else now

    def check(self) -> bool:
        """Whether the file can be read, on a connection of its own (closed at once)."""
        try:
            connection = self._connect()
            try:
                connection.execute("SELECT COUNT(*) FROM counters").fetchone()
            finally:
                connection.close()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        """Forget every counter; the number forgotten."""
        return self._connection().execute("DELETE FROM counters").rowcount

    def clear(self, key: str) -> None:
        """Forget one counter."""
        self._connection().execute("DELETE FROM counters WHERE key = ?", (key,))
