"""Values survive PostgreSQL/MySQL -> Spark JDBC -> Parquet exactly: no widening, no rounding."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pyspark.sql import types as T

from sluiceway import pipeline
from sluiceway.spec import load_spec

from .dbs import Db, mysql, pg, write_spec

UNICODE = "Zürich – 東京 – ñandú – 🚀"
BIG = Decimal("1234567890123456789012345678.1234567890")
ROWS = [
    # id, amount, big, d, ts (wall clock), tstz (instant), txt, flag, blob
    (
        1,
        Decimal("12345678.99"),
        BIG,
        date(2024, 2, 29),
        datetime(2024, 2, 29, 23, 59, 59, 999999),
        datetime(2024, 3, 31, 1, 30, 0, 123456, tzinfo=UTC),
        UNICODE,
        True,
        b"\x00\xff\x10binary",
    ),
    (
        2,
        Decimal("-0.01"),
        Decimal("-0.0000000001"),
        date(1970, 1, 1),
        datetime(1999, 12, 31, 0, 0, 0),
        datetime(2000, 1, 1, 0, 0, 0, tzinfo=UTC),
        "",
        False,
        b"",
    ),
    (3, None, None, None, None, None, None, None, None),
]


def _create(db: Db, table: str) -> None:
    if db.engine == "postgresql":
        ddl = (
            f"CREATE TABLE {table} (id int PRIMARY KEY, amount numeric(12,2), big numeric(38,10), "
            "d date, ts timestamp(6), tstz timestamptz(6), txt text, flag boolean, bin bytea)"
        )
    else:
        ddl = (
            f"CREATE TABLE {table} (id int PRIMARY KEY, amount decimal(12,2), big decimal(38,10), "
            "d date, ts datetime(6), tstz timestamp(6) NULL, txt text, flag boolean, bin blob) "
            "CHARACTER SET utf8mb4"
        )
    rows = [
        r[:5] + ((r[5].replace(tzinfo=None) if db.engine == "mysql" and r[5] else r[5]),) + r[6:]
        for r in ROWS
    ]
    db.execute(
        f"DROP TABLE IF EXISTS {table}",
        ddl,
        f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        params=rows,
    )


@pytest.mark.parametrize("db", [pg(), mysql()], ids=["postgresql", "mysql"])
def test_round_trip_keeps_types_and_values_exactly(spark, tmp_path, db):
    _create(db, "fidelity")
    spec_path = write_spec(
        tmp_path,
        db,
        """
        [tables.fidelity]
        table = "fidelity"
        primary_key = ["id"]
        audit = false
    """,
    )
    report = pipeline.run(spark, load_spec(spec_path))
    assert report.tables[0].rows_written == 3

    out = spark.read.parquet(str(tmp_path / "out" / "tables" / "fidelity"))
    types = {f.name: f.dataType for f in out.schema.fields}
    assert types["amount"] == T.DecimalType(12, 2)
    assert types["big"] == T.DecimalType(38, 10)
    assert types["d"] == T.DateType()
    assert types["ts"] == T.TimestampType()
    assert types["tstz"] == T.TimestampType()
    assert types["txt"] == T.StringType()
    assert types["flag"] == T.BooleanType()
    assert types["bin"] == T.BinaryType()

    got = {r["id"]: r for r in out.collect()}
    assert set(got) == {1, 2, 3}
    for row in ROWS:
        back = got[row[0]]
        assert back["amount"] == row[1]
        assert back["big"] == row[2]
        assert back["d"] == row[3]
        assert back["txt"] == row[6]
        assert back["flag"] == row[7]
        assert (bytes(back["bin"]) if back["bin"] is not None else None) == row[8]
    # Timestamps as UTC wall clock: the session time zone is UTC (see tests/conftest.py).
    as_utc = {
        r["id"]: r
        for r in out.selectExpr(
            "id", "CAST(ts AS STRING) AS ts", "CAST(tstz AS STRING) AS tstz"
        ).collect()
    }
    assert as_utc[1]["ts"] == "2024-02-29 23:59:59.999999"
    assert as_utc[1]["tstz"] == "2024-03-31 01:30:00.123456"
    assert as_utc[2]["ts"] == "1999-12-31 00:00:00"
    assert as_utc[2]["tstz"] == "2000-01-01 00:00:00"
    assert as_utc[3]["ts"] is None and as_utc[3]["tstz"] is None
