"""Integration tests run against the real servers started by `python3 scripts/services.py start`.

Connection settings come from SLUICEWAY_PG_* / SLUICEWAY_MYSQL_* (`services.py env` prints
them) and default to that script's servers. A server that does not answer fails the tests
that need it: a skipped integration test would pass CI without testing anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .dbs import Db, mysql, pg

HERE = Path(__file__).resolve().parent
START_HINT = "start the local servers with `python3 scripts/services.py start`"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items: mark only those under this directory.
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


def _checked(db: Db) -> Db:
    """`db` if it accepts a login; otherwise the test fails (never skips) with a hint."""
    import psycopg
    import pymysql

    problem: Exception | None = None
    try:
        db.query("SELECT 1")
    except (psycopg.Error, pymysql.MySQLError) as exc:
        problem = exc
    if problem is not None:  # failed outside the except block: no chained traceback noise
        pytest.fail(
            f"{db.engine} at {db.host}:{db.port} (database {db.database}, user {db.user}) "
            f"is not accepting connections: {problem}\n{START_HINT}",
            pytrace=False,
        )
    return db


@pytest.fixture(scope="session")
def pg_conn_info() -> Db:
    """The test PostgreSQL."""
    return _checked(pg())


@pytest.fixture(scope="session")
def mysql_conn_info() -> Db:
    """The test MySQL-protocol server (MariaDB)."""
    return _checked(mysql())
