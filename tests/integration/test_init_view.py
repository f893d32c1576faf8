"""`sluiceway init` on a real PostgreSQL schema and a real MariaDB database, the spec it
prints run unchanged by Sluiceway (twice: full, then incremental after changes), every table
compared with the database's rows, and `sluiceway view` of those runs opened in Chromium.

The schema holds what init must get right: a composite key with a skewed, indexed date, a
key-less table (on PostgreSQL a quoted CamelCase one), a view, a foreign key, an
insert-time column that is no cursor, and on MariaDB a CamelCase table whose cursor the
database stamps (ON UPDATE CURRENT_TIMESTAMP).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from sluiceway import pipeline
from sluiceway.cli import main
from sluiceway.spec import PipelineSpec, load_spec
from sluiceway.spec_guess import snake_name

from ..browser import PAGE_FACTS
from .aws import moto_endpoint
from .dbs import Db

BASE = datetime(2024, 1, 1)
SKEWED_DAY = date(2024, 3, 1)  # 70% of the order lines ship on it


def _customers() -> list[tuple]:
    return [
        (i, f"customer {i}", BASE + timedelta(minutes=i), BASE + timedelta(hours=i))
        for i in range(1, 201)
    ]


def _order_lines() -> list[tuple]:
    return [
        (
            i // 4 + 1,
            i % 4 + 1,
            i % 200 + 1,
            SKEWED_DAY if i % 10 < 7 else date(2022, 1, 1) + timedelta(days=i * 7 % 900),
            Decimal(f"{i % 97}.{i % 100:02d}"),
            BASE + timedelta(hours=i, microseconds=i),  # hours apart: the overlap is 10 minutes
        )
        for i in range(400)
    ]


def _events() -> list[tuple]:
    return [(f"event {i}", BASE + timedelta(minutes=3 * i), i % 3) for i in range(50)]


def _create_pg(db: Db, schema: str) -> None:
    s = schema
    db.execute(
        f"CREATE SCHEMA {s}",
        f"CREATE TABLE {s}.customers (id int PRIMARY KEY, name text NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())",
        f"CREATE TABLE {s}.order_lines (order_id int NOT NULL, line_no int NOT NULL, "
        f"customer_id int REFERENCES {s}.customers (id), shipped_on date NOT NULL, "
        "amount numeric(10,2), modified timestamp(6), PRIMARY KEY (order_id, line_no))",
        f"CREATE INDEX ON {s}.order_lines (shipped_on)",
        f'CREATE TABLE {s}."EventLog" (msg text, "LoggedAt" timestamptz, level int)',  # quoted names
        f"CREATE VIEW {s}.recent_lines AS SELECT order_id, line_no, shipped_on, amount "
        f"FROM {s}.order_lines WHERE amount > 50",
    )
    aware = [(i, n, c.replace(tzinfo=UTC), u.replace(tzinfo=UTC)) for i, n, c, u in _customers()]
    db.execute(f"INSERT INTO {s}.customers VALUES (%s, %s, %s, %s)", params=aware)
    db.execute(
        f"INSERT INTO {s}.order_lines VALUES (%s, %s, %s, %s, %s, %s)", params=_order_lines()
    )
    events = [(m, at.replace(tzinfo=UTC), lv) for m, at, lv in _events()]
    db.execute(f'INSERT INTO {s}."EventLog" VALUES (%s, %s, %s)', params=events)
    db.execute(f"ANALYZE {s}.customers", f"ANALYZE {s}.order_lines", f'ANALYZE {s}."EventLog"')


def _create_mysql(db: Db) -> None:
    db.execute(
        "CREATE TABLE customers (id int AUTO_INCREMENT PRIMARY KEY, name varchar(50) NOT NULL, "
        "created_at datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), updated_at datetime(6) NULL)",
        "CREATE TABLE OrderLines (order_id int NOT NULL, line_no int NOT NULL, customer_id int, "
        "shipped_on date NOT NULL, amount decimal(10,2), LastUpdate timestamp(6) NOT NULL "
        "DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), "
        "PRIMARY KEY (order_id, line_no), KEY ix_shipped (shipped_on), "
        "CONSTRAINT fk_customer FOREIGN KEY (customer_id) REFERENCES customers (id))",
        "CREATE TABLE event_log (msg varchar(100), at datetime(6), level int)",
        "CREATE VIEW recent_lines AS SELECT order_id, line_no, shipped_on, amount "
        "FROM OrderLines WHERE amount > 50",
    )
    db.execute(
        "SET time_zone = '+00:00'",
        "INSERT INTO customers VALUES (%s, %s, %s, %s)",
        params=_customers(),
    )
    db.execute(
        "SET time_zone = '+00:00'",
        "INSERT INTO OrderLines VALUES (%s, %s, %s, %s, %s, %s)",
        params=_order_lines(),
    )
    db.execute("INSERT INTO event_log VALUES (%s, %s, %s)", params=_events())
    db.query("ANALYZE TABLE customers, OrderLines, event_log")


@pytest.fixture
def pg_shop(pg_conn_info):
    """A fresh schema in the test PostgreSQL: (db, schema)."""
    schema = f"init_{uuid.uuid4().hex[:10]}"
    _create_pg(pg_conn_info, schema)
    yield pg_conn_info, schema
    pg_conn_info.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def mysql_shop(mysql_conn_info):
    """A fresh database in the test MariaDB (a MySQL schema is a database): (db, database)."""
    name = f"sluiceway_init_{uuid.uuid4().hex[:10]}"
    mysql_conn_info.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    db = replace(mysql_conn_info, database=name)
    _create_mysql(db)
    yield db, name
    mysql_conn_info.execute(f"DROP DATABASE {name}")


# ---------------------------------------------------------------------------------------


def _init(db: Db, tmp_path: Path, capsys, *extra: str) -> tuple[Path, str]:
    """`sluiceway init` as a user runs it; the spec it prints, saved, and its summary line."""
    import os

    os.environ.setdefault(db.password_env, db.password)
    args = [
        "init",
        f"--engine={db.engine}",
        f"--host={db.host}",
        f"--port={db.port}",
        f"--database={db.database}",
        f"--user={db.user}",
        f"--password-env={db.password_env}",
        f"--output={tmp_path / 'out'}",
        "--partition-mb=0.002",  # a few KiB a partition: these tiny tables read in parallel
        "--partition-rows=350",  # order_lines (400 rows) is "large", customers (200) is not
        *extra,
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert db.password not in captured.out
    summary = captured.err.strip().splitlines()
    assert summary[-1].startswith("init: "), captured.err
    path = tmp_path / "shop.toml"
    path.write_text(captured.out, encoding="utf-8")
    return path, summary[-1]


def _db_rows(db: Db, relation: str) -> tuple[list[str], list[tuple]]:
    """Column names and every row, as text the way Spark casts values to strings (UTC)."""
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SET time_zone = '+00:00'" if db.engine == "mysql" else "SET TIME ZONE 'UTC'"
            )
            cur.execute(f"SELECT * FROM {relation}")
            names = [d[0] for d in cur.description]
            rows = [tuple(_as_text(v) for v in row) for row in cur.fetchall()]
    finally:
        conn.close()
    return names, sorted(rows, key=repr)


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        text = f"{value:%Y-%m-%d %H:%M:%S}"
        return f"{text}.{value.microsecond:06d}".rstrip("0") if value.microsecond else text
    return str(value)


def _lake_rows(spark, spec: PipelineSpec, name: str, columns: list[str]) -> list[tuple]:
    df = spark.read.parquet(spec.table(name).sink.path)
    rows = df.select([F.col(f"`{c}`").cast("string") for c in columns]).collect()
    return sorted((tuple(r) for r in rows), key=repr)


def _assert_lake_equals_database(spark, spec: PipelineSpec, db: Db, relations: dict[str, str]):
    assert set(relations) == {t.name for t in spec.tables}
    for name, relation in relations.items():
        columns, expected = _db_rows(db, relation)
        assert expected, name
        assert _lake_rows(spark, spec, name, columns) == expected, name


def _change(db: Db, schema: str) -> None:
    """An update and an insert in the keyed tables, a delete in the key-less one."""
    if db.engine == "postgresql":
        now = "(now() AT TIME ZONE 'UTC')"
        db.execute(
            f"UPDATE {schema}.order_lines SET amount = amount + 100, modified = {now} WHERE order_id = 3",
            f"INSERT INTO {schema}.order_lines VALUES (999, 1, 5, DATE '2024-03-01', 1.5, {now})",
            f"UPDATE {schema}.customers SET name = 'renamed', updated_at = now() WHERE id = 7",
            f'DELETE FROM {schema}."EventLog" WHERE level = 1',
        )
        return
    db.execute(
        "UPDATE OrderLines SET amount = amount + 100 WHERE order_id = 3",  # LastUpdate stamps itself
        "INSERT INTO OrderLines (order_id, line_no, customer_id, shipped_on, amount) "
        "VALUES (999, 1, 5, '2024-03-01', 1.5)",
        "UPDATE customers SET name = 'renamed', updated_at = UTC_TIMESTAMP(6) WHERE id = 7",
        "DELETE FROM event_log WHERE level = 1",
    )


def _assert_view_page(browser, spec: PipelineSpec, page: Path, shot: Path) -> None:
    browser.open(page.as_uri())
    facts = browser.evaluate(PAGE_FACTS)
    assert sorted(facts["nodes"]["table"]) == sorted(t.name for t in spec.tables)
    assert facts["nodes"].get("output", []) == []  # init writes no outputs
    assert facts["nodes"]["connection"] == list(spec.connections)
    assert facts["cards"] == [f"card-{t.name}" for t in spec.tables]
    assert len(facts["charts"]) == 2 * len(spec.tables)  # rows and seconds, each ran twice
    assert all(w > 100 and h > 50 for w, h in facts["charts"]), facts["charts"]
    assert sum(1 for _, h in facts["bars"] if h > 0) >= len(spec.tables) * 4
    assert browser.problems() == []
    assert browser.requested_urls() == [page.as_uri()]  # nothing fetched
    browser.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


# ---------------------------------------------------------------------------------------


def test_init_on_postgresql_writes_a_spec_that_runs_and_copies_every_table(
    spark, tmp_path, capsys, pg_shop, chromium
):
    db, schema = pg_shop
    path, summary = _init(db, tmp_path, capsys, f"--schema={schema}")
    text = path.read_text()
    spec = load_spec(path)

    assert summary.startswith(
        f"init: postgresql {db.host}:{db.port}/{db.database} schema {schema}: "
    )
    assert "3 tables, 1 view (2 merge, 2 overwrite), 2 incremental, 1 quantile splits" in summary
    lines = spec.table("order_lines")
    assert lines.table == f"{schema}.order_lines"
    assert lines.primary_key == ("order_id", "line_no")
    assert (lines.split_column, lines.split_strategy) == ("shipped_on", "quantiles")
    assert lines.incremental_column == "modified"
    assert lines.partition_by == ("shipped_on_year", "shipped_on_month")
    assert lines.sink.mode == "merge"
    assert f"# foreign key (customer_id) -> {schema}.customers (id)" in text
    customers = spec.table("customers")
    assert (customers.split_column, customers.split_strategy) == ("id", "range")
    assert (customers.incremental_column, customers.sink.mode) == ("updated_at", "merge")
    assert "created_at defaults to now() but looks like an insert time" in text
    assert spec.table("event_log").sink.mode == "overwrite"
    assert spec.table("event_log").primary_key == ()
    recent = spec.table("recent_lines")
    assert (recent.sink.mode, recent.split_column) == ("overwrite", None)

    relations = {t.name: ".".join(f'"{p}"' for p in t.table.split(".")) for t in spec.tables}
    first = pipeline.run(spark, spec)
    assert first.status == "succeeded"
    _assert_lake_equals_database(spark, spec, db, relations)

    _change(db, schema)
    second = pipeline.run(spark, spec)
    assert second.status == "succeeded"
    read = {t.name: t.rows_read for t in second.tables}
    assert read["order_lines"] < 50  # the changed window, not the 401 rows
    _assert_lake_equals_database(spark, spec, db, relations)

    page = tmp_path / "pipeline.html"
    assert main(["view", str(path), "--out", str(page)]) == 0
    assert capsys.readouterr().out.startswith(f"view: {page}: 5 nodes, 8 charts from 2 runs")
    _assert_view_page(chromium, spec, page, tmp_path / "pipeline.png")


def test_init_on_mariadb_handles_camel_case_and_on_update_and_keeps_state_on_s3(
    spark, tmp_path, capsys, mysql_shop, s3_bucket, chromium
):
    db, database = mysql_shop
    path, summary = _init(db, tmp_path, capsys)
    text = path.read_text()
    state = f"s3://{s3_bucket}/state"
    spec = load_spec(path, state_location=state)

    assert summary.startswith(f"init: mysql {db.host}:{db.port}/{database} schema {database}: ")
    assert "3 tables, 1 view (2 merge, 2 overwrite), 2 incremental, 1 quantile splits" in summary
    lines = spec.table("order_lines")
    assert lines.table == "OrderLines"
    assert lines.primary_key == ("order_id", "line_no")
    assert (lines.split_column, lines.split_strategy) == ("shipped_on", "quantiles")
    assert "EXPLAIN row estimates over index ix_shipped" in text
    assert lines.incremental_column == "LastUpdate"
    assert "ON UPDATE CURRENT_TIMESTAMP: the database stamps every change" in text
    assert lines.partition_by == ("shipped_on_year", "shipped_on_month")
    assert f"# foreign key (customer_id) -> {database}.customers (id)" in text
    customers = spec.table("customers")
    assert (customers.split_column, customers.split_strategy) == ("id", "range")
    assert customers.incremental_column == "updated_at"
    assert "nullable: rows where it is NULL are read by full runs only" in text
    assert (spec.table("event_log").sink.mode, spec.table("recent_lines").sink.mode) == (
        "overwrite",
        "overwrite",
    )

    relations = {t.name: f"`{t.table}`" for t in spec.tables}
    assert pipeline.run(spark, spec).status == "succeeded"
    _assert_lake_equals_database(spark, spec, db, relations)
    _change(db, database)
    second = pipeline.run(spark, spec)
    assert second.status == "succeeded"
    assert {t.name: t.rows_read for t in second.tables}["order_lines"] < 50
    _assert_lake_equals_database(spark, spec, db, relations)

    page = tmp_path / "pipeline.html"
    assert main(["view", str(path), "--state", state, "--out", str(page)]) == 0
    assert capsys.readouterr().out.startswith(f"view: {page}: 5 nodes, 8 charts from 2 runs")
    _assert_view_page(chromium, spec, page, tmp_path / "pipeline.png")


@pytest.mark.spark_free  # no Spark: scripts/test.sh runs it on one line only
def test_init_picks_tables_and_a_wrong_password_is_one_error(
    tmp_path, capsys, pg_shop, monkeypatch
):
    db, schema = pg_shop
    only, _ = _init(db, tmp_path, capsys, f"--schema={schema}", "--tables=recent_lines,order_lines")
    assert [t.name for t in load_spec(only).tables] == ["order_lines", "recent_lines"]
    rest, summary = _init(db, tmp_path, capsys, f"--schema={schema}", "--exclude=EventLog")
    assert [t.name for t in load_spec(rest).tables] == ["customers", "order_lines", "recent_lines"]
    assert "2 tables, 1 view" in summary

    def init(password_env: str, *extra: str) -> int:
        return main(
            [
                "init",
                "--engine=postgresql",
                f"--host={db.host}",
                f"--port={db.port}",
                f"--database={db.database}",
                f"--user={db.user}",
                f"--password-env={password_env}",
                f"--schema={schema}",
                *extra,
            ]
        )

    assert init("WRONG_PW") == 1
    assert capsys.readouterr().err.startswith(
        "sluiceway: error: init --password-env: environment variable WRONG_PW is not set"
    )
    monkeypatch.setenv("WRONG_PW", "not-the-password")
    assert init("WRONG_PW") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(
        f"sluiceway: error: postgresql {db.host}:{db.port}/{db.database}: cannot read the catalog: "
    ), err
    assert "password authentication failed" in err
    assert "not-the-password" not in err

    assert init(db.password_env, "--tables=customers,nope") == 1
    assert capsys.readouterr().err.startswith(
        "sluiceway: error: init: --tables: no table or view named 'nope' (have: EventLog, customers, "
    )


@pytest.mark.spark_free  # no Spark: scripts/test.sh runs it on one line only
def test_init_from_a_secret_writes_the_secret_id_and_no_login(
    tmp_path, capsys, pg_shop, monkeypatch
):
    """RDS's secret JSON (Secrets Manager on the moto server) gives the whole login: the spec
    names the secret only, and a secret that does not exist is one error at --secret-id."""
    import json

    import boto3

    db, schema = pg_shop
    moto_endpoint()
    secrets = boto3.client("secretsmanager")
    name = f"test-init-view/{uuid.uuid4().hex[:8]}"
    login = {"username": db.user, "password": db.password, "host": db.host, "port": db.port}
    secrets.create_secret(Name=name, SecretString=json.dumps({**login, "dbname": db.database}))
    monkeypatch.delenv(db.password_env, raising=False)  # the secret is the only way in
    try:
        base = ["init", "--engine=postgresql", f"--schema={schema}", "--tables=customers"]
        assert main([*base, f"--secret-id={name}"]) == 0
        out, err = capsys.readouterr()
        assert (
            err.strip()
            .splitlines()[-1]
            .startswith(
                f"init: postgresql {db.host}:{db.port}/{db.database} schema {schema}: 1 table, "
            )
        )
        conn = load_spec_text(tmp_path, out).connections[snake_name(db.database)]
        assert (conn.secret_id, conn.host, conn.user, conn.password_env) == (name, None, None, None)
        assert db.password not in out

        assert main([*base, f"--secret-id={name}-missing"]) == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert err.startswith(f"sluiceway: error: init --secret-id: secret {name}-missing"), err
    finally:
        secrets.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def load_spec_text(tmp_path: Path, text: str) -> PipelineSpec:
    path = tmp_path / "from_secret.toml"
    path.write_text(text, encoding="utf-8")
    return load_spec(path)
