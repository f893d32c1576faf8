"""Integration tests run against the real servers started by `python3 scripts/services.py start`.

Connection settings come from SLUICEWAY_PG_* / SLUICEWAY_MYSQL_* (`services.py env` prints
them) and default to that script's servers. A server that does not answer fails the tests
that need it: a skipped integration test would pass CI without testing anything.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from ..browser import Browser, chromium_path
from .dbs import Db, mysql, pg
from .tpch import ROOT, SCALE

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


@pytest.fixture(scope="session")
def s3_client():
    """boto3 S3 against the local endpoint (AWS_ENDPOINT_URL, moto from services.py)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        pytest.fail(f"AWS_ENDPOINT_URL is not set; {START_HINT} and source .run/services.env")
    client = boto3.client("s3")
    problem: Exception | None = None
    try:
        client.list_buckets()
    except (BotoCoreError, ClientError) as exc:
        problem = exc
    if problem is not None:
        pytest.fail(f"the S3 endpoint {endpoint} does not answer: {problem}\n{START_HINT}")
    return client


@pytest.fixture
def s3_bucket(s3_client) -> str:
    """A fresh, empty bucket on the local S3 endpoint."""
    name = f"sluiceway-it-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def tpch_schema(pg_conn_info):
    """The demo's TPC-H tables (scale 0.01) in a schema of their own: (conninfo, schema)."""
    import psycopg
    from psycopg import sql

    from sluiceway.demo.tpch_db import load

    schema = f"tpch_{uuid.uuid4().hex[:8]}"
    conninfo = pg_conn_info.libpq_conninfo("tpch")
    load(conninfo, SCALE, ROOT / ".cache" / "tpch", schema=schema)
    yield conninfo, schema
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium to open pages in (Debian's package; scripts/setup.sh installs it)."""
    path = chromium_path()
    if path is None:
        pytest.fail(
            "chromium is not installed: run scripts/setup.sh as root (it installs Debian's "
            "chromium package), or `apt-get install -y chromium`",
            pytrace=False,
        )
    browser = Browser.start(path)
    yield browser
    browser.close()
