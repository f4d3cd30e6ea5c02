"""A real PostgreSQL server for the tests, from the machine's own PostgreSQL binaries.

The prediction log must work the same on SQLite and PostgreSQL, so the tests that use a
database run on both. This starts a throwaway server (``initdb`` + ``pg_ctl``) in a
temporary folder, on a free port of 127.0.0.1, and removes it afterwards. ``initdb``
refuses to run as root, so as root the server runs as the ``postgres`` user (Debian's
``postgresql`` package creates it; ``.ci/run`` installs the package). Where no server
can run (Windows, no binaries), the PostgreSQL variants are skipped, with the reason.
"""

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from .servers import free_port


def postgres_binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: Debian's, else whichever is on the PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def why_not_postgres() -> str | None:
    """Why a server cannot run here, or None if it can."""
    if os.name == "nt":
        return "the PostgreSQL tests start a server with POSIX tools; not on Windows"
    if postgres_binaries() is None:
        return "no PostgreSQL binaries: install Debian's postgresql package (.ci/run does)"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root, and runuser is missing to run PostgreSQL as postgres"
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no postgres user to run the server as"
    return None


def _run(command: list[str], as_postgres: bool) -> None:
    if as_postgres:
        command = ["runuser", "-u", "postgres", "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{result.stdout}\n{result.stderr}")


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Start a server; yield the SQLAlchemy URL of its ``postgres`` database; stop it."""
    binaries = postgres_binaries()
    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="penguins-postgres-"))  # /tmp: reachable by postgres
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if as_root:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        _run([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
              "-E", "UTF8", "--no-sync"], as_root)  # fmt: skip
        _run([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"),
              "-o", options, "-w", "start"], as_root)  # fmt: skip
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            _run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], as_root)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server, dropped afterwards: tests do not share rows."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
