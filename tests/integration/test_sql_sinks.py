"""Loads into SQL targets against the real test servers.

The `jdbc` sink runs on PostgreSQL and MariaDB. Redshift cannot run here, so the `redshift`
sink's shipped statements (CREATE TEMP TABLE ... (LIKE target), ALTER ... DROP COLUMN,
COPY, MERGE, DROP TABLE, in one transaction) run on PostgreSQL 15, which speaks MERGE, with
only the COPY replaced: `PostgresCopy` loads the staged Parquet into the temp table with
PostgreSQL's COPY FROM STDIN, over the transaction's own connection. The COPY text itself
is checked in tests/unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from pyspark.sql import functions as F

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
    if db.engine == "postgresql":  # every schema, the temp ones included
        return db.query("SELECT relname FROM pg_class WHERE relname LIKE '\\_slw\\_stage%'")
    return db.query(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name LIKE '\\_slw\\_stage%'"
    )


def _poison_trigger(db: Db) -> None:
    """A trigger on the target (LIKE does not copy it to staging) refusing name 'poison'."""
    if db.engine == "mysql":
        db.execute(
            "CREATE TRIGGER serve_poison BEFORE INSERT ON serve FOR EACH ROW BEGIN "
            "IF NEW.name = 'poison' THEN "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'poisoned row refused'; "
            "END IF; END"
        )
        return
    db.execute(
        "CREATE OR REPLACE FUNCTION serve_poison() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF NEW.name = 'poison' THEN RAISE EXCEPTION 'poisoned row refused'; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER serve_poison BEFORE INSERT OR UPDATE ON serve "
        "FOR EACH ROW EXECUTE FUNCTION serve_poison()",
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


@dataclass
class Recorder(JvmJdbcRunner):
    """A JvmJdbcRunner that records every statement that ran without error, with the
    connection's auto-commit setting, and how many rows the target holds, seen from inside
    the same transaction, right after a DELETE ran."""

    done: list[tuple[str, bool]] = field(default_factory=list)
    rows_after_delete: list[int] = field(default_factory=list)

    def _execute(self, stmt: Any, sql: str) -> None:
        super()._execute(stmt, sql)
        self.done.append((sql, bool(stmt.getConnection().getAutoCommit())))
        if sql.startswith("DELETE FROM"):
            result = stmt.executeQuery("SELECT count(*) FROM serve")
            result.next()
            self.rows_after_delete.append(int(result.getLong(1)))

    def statements(self) -> list[str]:
        return [sql for sql, _ in self.done]


COPY_ROOT = "s3://sluiceway-test/staging"
_COPY = re.compile(r"^COPY \"(?P<table>\w+)\" FROM '(?P<uri>[^']+)' IAM_ROLE .+ FORMAT AS PARQUET$")


@dataclass
class PostgresCopy(Recorder):
    """Runs the Redshift sink's COPY as PostgreSQL's COPY FROM STDIN; every other statement
    as is. The s3:// URI is mapped back to the directory Spark staged the Parquet in, read
    with Spark and streamed into the staging (temp) table over the transaction's own
    connection: a temp table exists only in the connection that created it."""

    staging_root: str = ""
    copied: list[int] = field(default_factory=list)  # rows loaded, per COPY

    def _execute(self, stmt: Any, sql: str) -> None:
        copy = _COPY.match(sql)
        if copy is None:
            super()._execute(stmt, sql)
            return
        assert copy["uri"].startswith(COPY_ROOT + "/"), sql
        staged = self.spark.read.parquet(self.staging_root + copy["uri"][len(COPY_ROOT) :])
        # NULL is an unquoted empty field, an empty string a quoted one; UTC, as Spark wrote.
        lines = staged.select(
            F.to_csv(
                F.struct(*staged.columns), {"timestampFormat": "yyyy-MM-dd HH:mm:ss.SSSSSSXXX"}
            ).alias("line")
        )
        text = "".join(f"{row.line}\n" for row in lines.toLocalIterator())
        jvm = self.spark.sparkContext._jvm
        manager = jvm.org.postgresql.copy.CopyManager(stmt.getConnection())
        self.copied.append(
            int(
                manager.copyIn(
                    f'COPY "{copy["table"]}" FROM STDIN (FORMAT csv)',
                    jvm.java.io.StringReader(text),
                )
            )
        )
        self.done.append((sql, bool(stmt.getConnection().getAutoCommit())))


def _runner(spark, db: Db, cls: type[Recorder] = Recorder, **kwargs) -> Recorder:
    source = _source(db)
    props = {k: v for k, v in source.properties.items() if k != "driver"}
    return cls(spark, source.url, source.description, props, source.dialect.driver, **kwargs)


def _sink_runner(spark, db: Db, sink: str, tmp_path) -> Recorder:
    """The recording runner for `sink`: statements as they are, or COPY served by PostgreSQL."""
    if sink == "jdbc":
        return _runner(spark, db)
    return _runner(spark, db, PostgresCopy, staging_root=str(tmp_path / "staging"))


def _load(spark, db: Db, sink: str, df, tmp_path, runner: Recorder | None = None, **kwargs):
    kwargs.setdefault("mode", "upsert")
    kwargs.setdefault("key", ["id"])
    kwargs.setdefault("order_by", ["updated_at"])
    if sink == "jdbc":
        return write_jdbc(
            spark,
            df,
            _source(db),
            "serve",
            batch_size=2,
            runner=runner or _sink_runner(spark, db, sink, tmp_path),
            **kwargs,
        )
    staging = tmp_path / "staging"
    return write_redshift(
        spark,
        df,
        runner or _sink_runner(spark, db, sink, tmp_path),
        "serve",
        staging_uri=str(staging),
        copy_uri=COPY_ROOT,
        iam_role="arn:aws:iam::123456789012:role/load",
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
    runner = _sink_runner(spark, pg_conn_info, "redshift", tmp_path)
    # The temp table is LIKE the target, NOT NULL updated_at included: the COPY fails.
    batch = _batch(spark, [(2, "two-changed", Decimal("20.00"), None)])

    with pytest.raises(SinkError, match=r'^serve: .*null value in column "updated_at"'):
        _load(spark, pg_conn_info, "redshift", batch, tmp_path, runner=runner)

    assert [sql.split()[0] for sql in runner.statements()] == ["CREATE"]  # then the COPY failed
    assert _target(pg_conn_info) == before
    assert _staging_tables(pg_conn_info) == []
    assert list((tmp_path / "staging" / "serve").iterdir()) == []


def test_redshift_runs_the_shipped_statements_in_one_transaction(spark, pg_conn_info, tmp_path):
    _create_target(pg_conn_info)
    # A target column the batch lacks: the temp table drops it, the MERGE leaves it alone.
    pg_conn_info.execute(
        "ALTER TABLE serve ADD COLUMN extra text", "UPDATE serve SET extra = 'kept'"
    )
    runner = _sink_runner(spark, pg_conn_info, "redshift", tmp_path)
    batch = _batch(
        spark,
        [(2, "two-changed", Decimal("20.00"), T2), (3, "three", Decimal("3.00"), T2)],
    )

    _load(spark, pg_conn_info, "redshift", batch, tmp_path, runner=runner)

    [stage] = set(re.findall(r'"(_slw_stage_[0-9a-f]+)"', " ".join(runner.statements())))
    assert [(sql.split(" (")[0], autocommit) for sql, autocommit in runner.done] == [
        (f'CREATE TEMP TABLE "{stage}"', False),
        (f'ALTER TABLE "{stage}" DROP COLUMN "extra"', False),
        (
            f"COPY \"{stage}\" FROM '{COPY_ROOT}/serve/{stage}/' IAM_ROLE 'arn:aws:iam::123456789012:role/load' FORMAT AS PARQUET",
            False,
        ),
        (
            f'MERGE INTO "serve" USING "{stage}" ON "serve"."id" = "{stage}"."id" WHEN MATCHED THEN UPDATE SET "name" = "{stage}"."name", "amount" = "{stage}"."amount", "updated_at" = "{stage}"."updated_at" WHEN NOT MATCHED THEN INSERT',
            False,
        ),
        (f'DROP TABLE "{stage}"', False),
    ]
    assert runner.copied == [2]
    assert _target(pg_conn_info, "id, name, amount, updated_at, extra") == [
        (1, "one", Decimal("1.00"), T1, "kept"),
        (2, "two-changed", Decimal("20.00"), T2, "kept"),
        (3, "three", Decimal("3.00"), T2, None),
    ]
    assert _staging_tables(pg_conn_info) == []


def test_redshift_failure_between_copy_and_merge_leaves_target_untouched(
    spark, pg_conn_info, tmp_path
):
    _create_target(pg_conn_info)
    _poison_trigger(pg_conn_info)
    before = _target(pg_conn_info)
    runner = _sink_runner(spark, pg_conn_info, "redshift", tmp_path)
    # The MERGE updates row 2, then the target's trigger refuses row 4.
    batch = _batch(
        spark, [(2, "two-changed", Decimal("20.00"), T2), (4, "poison", Decimal("4.00"), T2)]
    )

    with pytest.raises(SinkError, match="^serve: .*poisoned row refused") as info:
        _load(spark, pg_conn_info, "redshift", batch, tmp_path, runner=runner)

    assert "\n" not in str(info.value)
    assert [sql.split()[0] for sql in runner.statements()] == ["CREATE", "COPY"]
    assert runner.copied == [2]  # the COPY ran: the staged rows were in the temp table
    assert _target(pg_conn_info) == before
    assert _staging_tables(pg_conn_info) == []
    assert list((tmp_path / "staging" / "serve").iterdir()) == []


@pytest.mark.parametrize("db_fixture", ["pg_conn_info", "mysql_conn_info"])
def test_overwrite_failing_after_its_delete_rolls_back_to_every_old_row(
    spark, request, tmp_path, db_fixture
):
    db: Db = request.getfixturevalue(db_fixture)
    _create_target(db)
    _poison_trigger(db)
    before = _target(db)
    runner = _runner(spark, db)
    # Staging has no trigger and takes both rows; in the transaction the DELETE empties the
    # target, then the target's trigger refuses row 4 of the INSERT.
    batch = _batch(spark, [(3, "three", Decimal("3.00"), T3), (4, "poison", Decimal("4.00"), T3)])

    with pytest.raises(SinkError, match="^serve: .*poisoned row refused") as info:
        _load(spark, db, "jdbc", batch, tmp_path, runner=runner, mode="overwrite", order_by=[])

    assert "\n" not in str(info.value)
    delete, *_ = [(sql, ac) for sql, ac in runner.done if sql.startswith("DELETE")]
    assert delete[1] is False  # inside the transaction
    assert runner.rows_after_delete == [0]  # the DELETE really ran before the INSERT failed
    assert runner.statements()[-1].startswith("DROP TABLE IF EXISTS")  # staging, after it
    assert not any(sql.startswith("INSERT") for sql in runner.statements())
    assert _target(db) == before
    assert _staging_tables(db) == []


@pytest.mark.parametrize(("sink", "db_fixture"), CASES)
def test_upsert_of_null_keys_is_refused_with_their_count_before_the_transaction(
    spark, request, tmp_path, sink, db_fixture
):
    db: Db = request.getfixturevalue(db_fixture)
    _create_target(db)
    before = _target(db)
    runner = _sink_runner(spark, db, sink, tmp_path)
    # Two NULL-key rows (which a dedupe must not fold into one) beside a good row.
    batch = _batch(
        spark,
        [
            (2, "two-changed", Decimal("20.00"), T2),
            (None, "a", Decimal("1.00"), T2),
            (None, "b", Decimal("2.00"), T3),
        ],
    )

    with pytest.raises(SinkError) as info:
        _load(spark, db, sink, batch, tmp_path, runner=runner)

    assert str(info.value) == (
        "serve: 2 row(s) with a NULL in key column(s) id; a NULL key matches no row, so each "
        "rerun would add them again: refusing the upsert, target untouched"
    )
    assert not any(sql.split()[0] in ("INSERT", "MERGE", "COPY") for sql in runner.statements())
    assert _target(db) == before
    assert _staging_tables(db) == []
    if sink == "redshift":
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
        write_jdbc(spark, batch, _source(pg_conn_info), "x; drop table y", mode="overwrite")
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
