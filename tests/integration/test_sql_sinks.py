"""Upserts into SQL targets against the real test servers.

The `jdbc` sink runs on PostgreSQL and MariaDB. Redshift cannot run here, so the `redshift`
sink's statements (schema check, ALTER, staging LIKE target, MERGE) run on PostgreSQL 15,
which speaks MERGE, with the staging table loaded over JDBC from the staged Parquet
instead of by COPY from S3; the COPY text itself is checked in tests/unit.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from sluiceway.errors import SinkError
from sluiceway.sinks.jdbc import write_jdbc
from sluiceway.sinks.redshift import write_redshift
from sluiceway.sinks.sql import DIALECTS, JvmJdbcRunner
from sluiceway.sources.credentials import Credentials
from sluiceway.sources.jdbc import JdbcSource, jdbc_source
from sluiceway.spec import Connection

from .dbs import Db

SCHEMA = "id int, name string, amount decimal(10,2), updated_at timestamp"
T1 = datetime(2024, 1, 1, 10, 0)
T2 = datetime(2024, 1, 2, 10, 0)
T3 = datetime(2024, 1, 3, 10, 0)


def _source(db: Db) -> JdbcSource:
    conn = Connection(
        "db", db.engine, db.host, db.port, db.database, db.user, db.password_env, None, 2, 1000, 1
    )
    return jdbc_source(conn, Credentials(db.user, db.password, db.host, db.port, db.database))


def _create_target(db: Db) -> None:
    ts = "datetime(6)" if db.engine == "mysql" else "timestamp"
    db.execute(
        "DROP TABLE IF EXISTS serve",
        "DROP TABLE IF EXISTS serve_parent",
        "CREATE TABLE serve_parent (id int PRIMARY KEY)",
        "INSERT INTO serve_parent VALUES (1), (2), (3), (4), (5)",
        # The foreign key is on the target only (LIKE does not copy it), so a bad row loads
        # into staging and fails in the merge transaction.
        f"CREATE TABLE serve (id int PRIMARY KEY REFERENCES serve_parent (id), name varchar(20), "
        f"amount numeric(10,2), updated_at {ts} NOT NULL)",
        "INSERT INTO serve VALUES (%s, %s, %s, %s)",
        params=[(1, "one", Decimal("1.00"), T1), (2, "two", Decimal("2.00"), T1)],
    )


def _batch(spark, rows, schema=SCHEMA):
    return spark.createDataFrame(rows, schema)


def _target(db: Db, columns: str = "id, name, amount, updated_at") -> list[tuple]:
    return db.query(f"SELECT {columns} FROM serve ORDER BY id")


def _staging_tables(db: Db) -> list[tuple]:
    schema = "DATABASE()" if db.engine == "mysql" else "current_schema()"
    return db.query(
        "SELECT table_name FROM information_schema.tables "
        f"WHERE table_schema = {schema} AND table_name LIKE '\\_slw\\_stage%'"
    )


# A batch with a changed row (2), a new row (3) given twice (the newer one must win), an
# unchanged row (1) and a new column `note` that the target gains.
UPSERT_ROWS = [
    (1, "one", Decimal("1.00"), T1, None),
    (2, "two-changed", Decimal("20.00"), T2, "changed"),
    (3, "three-old", Decimal("3.00"), T2, "old"),
    (3, "three-new", Decimal("33.00"), T3, "new"),
]
UPSERT_SCHEMA = SCHEMA + ", note string"
EXPECTED = [
    (1, "one", Decimal("1.00"), T1, None),
    (2, "two-changed", Decimal("20.00"), T2, "changed"),
    (3, "three-new", Decimal("33.00"), T3, "new"),
]


def _loader_over_jdbc(spark, db: Db):
    """Fills the Redshift staging table from the staged Parquet, where COPY would."""
    source = _source(db)

    def load(path: str, staging: str) -> None:
        props = {k: v for k, v in source.properties.items() if k != "fetchsize"}
        spark.read.parquet(path).write.jdbc(source.url, f'"{staging}"', "append", props)

    return load


def _pg_runner(spark, db: Db) -> JvmJdbcRunner:
    source = _source(db)
    props = {k: v for k, v in source.properties.items() if k != "driver"}
    return JvmJdbcRunner(spark, source.url, source.description, props, source.dialect.driver)


def _load(spark, db: Db, sink: str, df, tmp_path, **kwargs):
    kwargs.setdefault("mode", "upsert")
    kwargs.setdefault("key", ["id"])
    kwargs.setdefault("order_by", ["updated_at"])
    if sink == "jdbc":
        return write_jdbc(spark, df, _source(db), "serve", batch_size=2, **kwargs)
    return write_redshift(
        spark,
        df,
        _pg_runner(spark, db),
        "serve",
        staging_uri=str(tmp_path / "staging"),
        iam_role="arn:aws:iam::123456789012:role/load",
        load_staging=kwargs.pop("load_staging", _loader_over_jdbc(spark, db)),
        **kwargs,
    )


CASES = [
    pytest.param("jdbc", "pg_conn_info", id="jdbc-postgresql"),
    pytest.param("jdbc", "mysql_conn_info", id="jdbc-mysql"),
    pytest.param("redshift", "pg_conn_info", id="redshift-merge-on-postgresql"),
]


@pytest.mark.parametrize(("sink", "db_fixture"), CASES)
def test_upsert_applies_new_and_changed_rows_newest_duplicate_wins_and_rerun_is_identical(
    spark, request, tmp_path, sink, db_fixture
):
    db: Db = request.getfixturevalue(db_fixture)
    _create_target(db)
    batch = _batch(spark, UPSERT_ROWS, UPSERT_SCHEMA)

    result = _load(spark, db, sink, batch, tmp_path)
    first = _target(db, "id, name, amount, updated_at, note")
    _load(spark, db, sink, batch, tmp_path)

    assert result.columns_added == ("note",)
    assert first == EXPECTED
    assert _target(db, "id, name, amount, updated_at, note") == first
    assert _staging_tables(db) == []
    if sink == "redshift":
        assert list((tmp_path / "staging" / "serve").iterdir()) == []  # staged Parquet deleted


@pytest.mark.parametrize(("sink", "db_fixture"), CASES)
def test_failure_between_staging_and_merge_leaves_target_untouched(
    spark, request, tmp_path, sink, db_fixture
):
    db: Db = request.getfixturevalue(db_fixture)
    _create_target(db)
    before = _target(db)
    # Row 2 changes and row 9 breaks the target's foreign key: staging takes both, the merge
    # transaction fails on row 9 after touching row 2, and must roll row 2 back.
    batch = _batch(
        spark, [(2, "two-changed", Decimal("20.00"), T2), (9, "orphan", Decimal("9.00"), T2)]
    )

    with pytest.raises(SinkError, match="(?i)^serve: .*foreign key"):
        _load(spark, db, sink, batch, tmp_path)

    assert _target(db) == before
    assert _staging_tables(db) == []


def test_redshift_failed_copy_leaves_target_untouched_and_cleans_up(spark, pg_conn_info, tmp_path):
    _create_target(pg_conn_info)
    before = _target(pg_conn_info)
    loader = _loader_over_jdbc(spark, pg_conn_info)

    def copy_fails_after_loading(path: str, staging: str) -> None:
        loader(path, staging)
        raise SinkError("COPY failed (simulated)")

    batch = _batch(spark, [(2, "two-changed", Decimal("20.00"), T2)])
    with pytest.raises(SinkError, match="simulated"):
        _load(
            spark, pg_conn_info, "redshift", batch, tmp_path, load_staging=copy_fails_after_loading
        )

    assert _target(pg_conn_info) == before
    assert _staging_tables(pg_conn_info) == []
    assert list((tmp_path / "staging" / "serve").iterdir()) == []


def test_incompatible_column_fails_before_anything_is_loaded(spark, pg_conn_info, tmp_path):
    _create_target(pg_conn_info)
    before = _target(pg_conn_info)
    batch = _batch(
        spark,
        [(2, "x", "not a number", T2)],
        "id int, name string, amount string, updated_at timestamp",
    )

    with pytest.raises(SinkError, match="column 'amount' is numeric in the target but string"):
        _load(spark, pg_conn_info, "jdbc", batch, tmp_path)

    assert _target(pg_conn_info) == before
    assert _staging_tables(pg_conn_info) == []


def test_overwrite_replaces_every_row_in_one_transaction(spark, mysql_conn_info, tmp_path):
    _create_target(mysql_conn_info)
    batch = _batch(spark, [(5, "five", Decimal("5.00"), T3)])

    _load(spark, mysql_conn_info, "jdbc", batch, tmp_path, mode="overwrite", order_by=[])

    assert _target(mysql_conn_info) == [(5, "five", Decimal("5.00"), T3)]


def test_table_name_with_sql_in_it_is_refused_before_any_statement(spark, pg_conn_info, tmp_path):
    batch = _batch(spark, [(1, "one", Decimal("1.00"), T1)])
    with pytest.raises(SinkError, match=r"table: 'x; drop table y' is not a plain"):
        write_jdbc(spark, batch, _source(pg_conn_info), "x; drop table y", mode="append")
    with pytest.raises(SinkError, match="is not a plain identifier"):
        DIALECTS["postgresql"].quote_part('serve" --')


def test_pipeline_loads_each_runs_rows_into_the_serving_table(
    spark, pg_conn_info, mysql_conn_info, tmp_path
):
    from sluiceway import pipeline
    from sluiceway.spec import load_spec

    from .dbs import write_spec

    pg_conn_info.execute(
        "DROP TABLE IF EXISTS load_src",
        "CREATE TABLE load_src (id int PRIMARY KEY, name text, updated_at timestamp NOT NULL)",
        "INSERT INTO load_src VALUES (1, 'a', '2023-12-31'), (2, 'b', '2024-01-01')",
    )
    mysql_conn_info.execute("DROP TABLE IF EXISTS served")
    import os

    os.environ.setdefault(mysql_conn_info.password_env, mysql_conn_info.password)
    spec = load_spec(
        write_spec(
            tmp_path,
            pg_conn_info,
            mysql_conn_info.connection_toml("serving")
            + """
[tables.load_src]
connection = "db"
table = "load_src"
primary_key = ["id"]
incremental_column = "updated_at"
overlap_minutes = 0

[[tables.load_src.load]]
kind = "jdbc"
connection = "serving"
table = "served"
""",
        )
    )

    first = pipeline.run(spark, spec)
    pg_conn_info.execute(
        "UPDATE load_src SET name = 'b2', updated_at = '2024-01-02' WHERE id = 2",
        "INSERT INTO load_src VALUES (3, 'c', '2024-01-02')",
    )
    second = pipeline.run(spark, spec)

    # Row 1 is older than the first run's watermark: the second run neither reads nor loads it.
    assert [t.loaded[0]["created"] for t in (*first.tables, *second.tables)] == [True, False]
    assert mysql_conn_info.query("SELECT id, name, _run_id FROM served ORDER BY id") == [
        (1, "a", first.run_id),
        (2, "b2", second.run_id),
        (3, "c", second.run_id),
    ]


def test_cli_refuses_a_load_table_name_with_sql_in_it(tmp_path, pg_conn_info):
    import subprocess
    import sys

    from .dbs import write_spec

    spec = write_spec(
        tmp_path,
        pg_conn_info,
        """
[tables.t]
table = "load_src"

[[tables.t.load]]
kind = "jdbc"
connection = "db"
table = "x; drop table y"
""",
    )
    result = subprocess.run(
        [sys.executable, "-m", "sluiceway.cli", "run", str(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"sluiceway: error: {spec}: tables.t.load[0].table: "
        "'x; drop table y' is not a plain [schema.]table name"
    ]
    assert not (tmp_path / "out").exists()
