"""A planned parallel read returns exactly the rows of a single-partition read."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sluiceway.errors import SourceError
from sluiceway.sources import jdbc
from sluiceway.sources.credentials import resolve_credentials
from sluiceway.spec import load_spec

from .dbs import Db, write_spec

ROWS = 3000


def _load(db: Db) -> None:
    """ids 1..3000; a date and a timestamp spread over time; `skewed` is 90% one value;
    every 97th row has NULL split values (they must land in exactly one partition)."""
    gen = (
        "SELECT g FROM generate_series(1, 3000) g"
        if db.engine == "postgresql"
        else "SELECT a.n + 10 * b.n + 100 * c.n + 1000 * d.n + 1 AS g FROM "
        + " CROSS JOIN ".join(
            f"(SELECT 0 n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 "
            f"UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) {t}"
            for t in "abcd"
        )
        + " WHERE a.n + 10 * b.n + 100 * c.n + 1000 * d.n < 3000"
    )
    ts_type = "timestamp(6)" if db.engine == "postgresql" else "datetime(6)"
    add_days = (
        "DATE '2020-01-01' + (g % 1500)"
        if db.engine == "postgresql"
        else "DATE_ADD(DATE '2020-01-01', INTERVAL (g % 1500) DAY)"
    )
    add_secs = (
        "TIMESTAMP '2020-01-01 00:00:00' + g * INTERVAL '1 second' * 3607 + g * INTERVAL '1 microsecond'"
        if db.engine == "postgresql"
        else "TIMESTAMP '2020-01-01 00:00:00' + INTERVAL (g * 3607) SECOND + INTERVAL g MICROSECOND"
    )
    db.execute(
        "DROP TABLE IF EXISTS planning",
        f"CREATE TABLE planning (id int PRIMARY KEY, d date, ts {ts_type}, skewed int, payload varchar(20))",
        f"INSERT INTO planning (id, d, ts, skewed, payload) "
        f"SELECT g, CASE WHEN g % 97 = 0 THEN NULL ELSE {add_days} END, "
        f"CASE WHEN g % 97 = 0 THEN NULL ELSE {add_secs} END, "
        f"CASE WHEN g % 97 = 0 THEN NULL WHEN g % 10 = 0 THEN g ELSE 7 END, "
        f"CONCAT('row-', g) FROM ({gen}) AS gen",
    )


@pytest.fixture(scope="module", params=["postgresql", "mysql"])
def db(request) -> Db:
    database = request.getfixturevalue(
        f"{'pg' if request.param == 'postgresql' else 'mysql'}_conn_info"
    )
    _load(database)
    return database


CASES = [
    ("id", "range"),
    ("d", "range"),
    ("ts", "range"),
    ("skewed", "range"),
    ("skewed", "quantiles"),
    ("ts", "quantiles"),
    ("d", "quantiles"),
]


@pytest.mark.parametrize("split, strategy", CASES, ids=[f"{c}-{s}" for c, s in CASES])
def test_planned_read_equals_single_partition_read(spark, tmp_path, db, split, strategy):
    spec = load_spec(
        write_spec(
            tmp_path,
            db,
            f"""
        [tables.planning]
        table = "planning"
        primary_key = ["id"]
        split_column = "{split}"
        split_strategy = "{strategy}"
    """,
            connection_extra={"rows_per_partition": 400, "max_connections": 4},
        )
    )
    table = spec.table("planning")
    conn = spec.connections["db"]
    source = jdbc.jdbc_source(conn, resolve_credentials(conn))

    plan = jdbc.plan_read(spark, source, table, None, "planning")
    assert plan.rows_expected == ROWS
    assert 2 <= len(plan.predicates) <= 4  # parallel, but never more than max_connections
    parallel = jdbc.read(spark, source, plan, "planning")
    assert parallel.rdd.getNumPartitions() == len(plan.predicates)

    single_plan = jdbc.plan_read(spark, source, replace(table, split_column=None), None, "planning")
    single = jdbc.read(spark, source, single_plan, "planning")
    assert single.rdd.getNumPartitions() == 1

    rows = parallel.collect()
    assert len(rows) == ROWS  # no row read twice
    assert sorted(rows) == sorted(single.collect())  # and none missing
    # Each partition holds rows: the bounds are balanced enough to be worth their connections.
    sizes = parallel.rdd.glom().map(len).collect()
    assert min(sizes) > 0, sizes
    if strategy == "quantiles" and split != "skewed":
        assert max(sizes) <= 2 * min(sizes), sizes


def test_skewed_column_with_quantiles_still_reads_everything(spark, tmp_path, db):
    """90% of rows share one value: quantile cuts collapse, the read stays complete."""
    spec = load_spec(
        write_spec(
            tmp_path,
            db,
            """
        [tables.planning]
        table = "planning"
        split_column = "skewed"
        split_strategy = "quantiles"
    """,
            connection_extra={"rows_per_partition": 100, "max_connections": 8},
        )
    )
    conn = spec.connections["db"]
    source = jdbc.jdbc_source(conn, resolve_credentials(conn))
    plan = jdbc.plan_read(spark, source, spec.table("planning"), None, "planning")
    df = jdbc.read(spark, source, plan, "planning")
    assert df.count() == ROWS
    assert df.select("id").distinct().count() == ROWS


def test_small_table_is_read_in_one_partition(spark, tmp_path, db):
    spec = load_spec(
        write_spec(
            tmp_path,
            db,
            """
        [tables.planning]
        table = "planning"
        split_column = "id"
    """,
        )
    )  # default rows_per_partition (500k) > 3000 rows
    conn = spec.connections["db"]
    source = jdbc.jdbc_source(conn, resolve_credentials(conn))
    plan = jdbc.plan_read(spark, source, spec.table("planning"), None, "planning")
    assert len(plan.predicates) == 1


def test_a_tables_rows_per_partition_wins_over_the_connections(spark, tmp_path, db):
    spec = load_spec(
        write_spec(
            tmp_path,
            db,
            """
        [tables.planning]
        table = "planning"
        split_column = "id"
        rows_per_partition = 1000
    """,
        )
    )  # the connection keeps the default, 500k
    conn = spec.connections["db"]
    source = jdbc.jdbc_source(conn, resolve_credentials(conn))
    plan = jdbc.plan_read(spark, source, spec.table("planning"), None, "planning")
    assert len(plan.predicates) == 3  # 3000 rows, 1000 a partition


def test_split_column_all_null_is_one_clear_error(spark, tmp_path, db):
    db.execute(
        "DROP TABLE IF EXISTS all_null",
        "CREATE TABLE all_null (id int PRIMARY KEY, s int)",
        "INSERT INTO all_null VALUES (1, NULL), (2, NULL)",
    )
    spec = load_spec(
        write_spec(
            tmp_path,
            db,
            """
        [tables.all_null]
        table = "all_null"
        split_column = "s"
    """,
        )
    )
    conn = spec.connections["db"]
    source = jdbc.jdbc_source(conn, resolve_credentials(conn))
    with pytest.raises(SourceError, match=r"split_column: 's' is NULL in all 2 rows"):
        jdbc.plan_read(spark, source, spec.table("all_null"), None, "tables.all_null")
