"""Integration tests run against the real servers started by `python3 scripts/services.py start`.

Connection settings come from SLUICEWAY_PG_* / SLUICEWAY_MYSQL_* (`services.py env` prints
them) and default to that script's servers. A server that does not answer fails the tests
that need it: a skipped integration test would pass CI without testing anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
START_HINT = "start the local servers with `python3 scripts/services.py start`"


@dataclass(frozen=True)
class ServerInfo:
    """Where a test database server is and how to log in to it."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str

    def libpq_conninfo(self, database: str | None = None) -> str:
        """A libpq/psycopg connection string (for PostgreSQL)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
            connect_timeout=5,
        )


def _server_info(prefix: str, default_port: int) -> ServerInfo:
    env = os.environ
    return ServerInfo(
        host=env.get(f"{prefix}_HOST", "127.0.0.1"),
        port=int(env.get(f"{prefix}_PORT", str(default_port))),
        user=env.get(f"{prefix}_USER", "sluiceway"),
        password=env.get(f"{prefix}_PASSWORD", "sluiceway-local"),
        database=env.get(f"{prefix}_DB", "sluiceway_test"),
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items: mark only those under this directory.
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def pg_conn_info() -> ServerInfo:
    """The test PostgreSQL; fails (never skips) the test if it does not accept a login."""
    info = _server_info("SLUICEWAY_PG", 55432)
    import psycopg

    problem: psycopg.Error | None = None
    try:
        with psycopg.connect(info.libpq_conninfo()) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        problem = exc
    if problem is not None:  # failed outside the except block: no chained traceback noise
        pytest.fail(
            f"PostgreSQL at {info.host}:{info.port} (database {info.database}, user "
            f"{info.user}) is not accepting connections: {problem}\n{START_HINT}",
            pytrace=False,
        )
    return info


@pytest.fixture(scope="session")
def mysql_conn_info() -> ServerInfo:
    """The test MySQL-protocol server (MariaDB); fails the test if it does not accept a login."""
    info = _server_info("SLUICEWAY_MYSQL", 53306)
    import pymysql

    problem: pymysql.MySQLError | None = None
    try:
        conn = pymysql.connect(
            host=info.host,
            port=info.port,
            user=info.user,
            password=info.password,
            database=info.database,
            connect_timeout=5,
        )
        with conn:
            conn.ping()
    except pymysql.MySQLError as exc:
        problem = exc
    if problem is not None:
        pytest.fail(
            f"MySQL at {info.host}:{info.port} (database {info.database}, user {info.user}) "
            f"is not accepting connections: {problem}\n{START_HINT}",
            pytrace=False,
        )
    return info
