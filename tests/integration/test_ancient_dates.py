"""Dates and timestamps before the Gregorian switch (1582-10-15) land as the database holds
them. Spark 3.5 refused to write them to Parquet (WRITE_ANCIENT_DATETIME) until the
pipeline set the rebase mode; Spark 4 writes them by default.

Not covered, because Spark's JDBC path cannot give it: a PostgreSQL timestamp inside the
ten days the Julian calendar skipped (1582-10-05 to 14) arrives shifted by ten days, as
the driver's java.sql.Timestamp reads it (seen: 1582-10-10 became 1582-10-20).
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from sluiceway import pipeline
from sluiceway.spec import load_spec

from .dbs import mysql, pg, write_spec

# id, d, ts: MySQL's DATETIME starts at 1000-01-01.
ROWS = [
    (1, date(1500, 3, 1), datetime(1000, 1, 1, 12, 0, 0)),
    (2, date(1, 1, 1), datetime(1582, 10, 4, 23, 59, 59, 999999)),
    (3, date(1582, 10, 15), datetime(1200, 2, 29, 0, 0, 0)),  # 1200 is a leap year in both
]


@pytest.mark.parametrize("db", [pg(), mysql()], ids=["postgresql", "mysql"])
def test_dates_before_1582_are_written_exactly(spark, tmp_path, db):
    db.execute(
        "DROP TABLE IF EXISTS ancient",
        "CREATE TABLE ancient (id int PRIMARY KEY, d date, ts "
        + ("timestamp(6))" if db.engine == "postgresql" else "datetime(6))"),
        "INSERT INTO ancient VALUES (%s, %s, %s)",
        params=ROWS,
    )
    spec = write_spec(tmp_path, db, '[tables.ancient]\ntable = "ancient"\nprimary_key = ["id"]\n')

    report = pipeline.run(spark, load_spec(spec))

    assert [(t.status, t.rows_written) for t in report.tables] == [("written", 3)]
    back = spark.read.parquet(str(tmp_path / "out" / "tables" / "ancient"))
    rows = back.selectExpr("id", "d", "CAST(ts AS STRING) AS ts").orderBy("id").collect()
    assert [(r.id, r.d, r.ts) for r in rows] == [
        (1, date(1500, 3, 1), "1000-01-01 12:00:00"),
        (2, date(1, 1, 1), "1582-10-04 23:59:59.999999"),
        (3, date(1582, 10, 15), "1200-02-29 00:00:00"),
    ]
