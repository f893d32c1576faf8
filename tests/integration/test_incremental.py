"""Incremental extraction: newest version of every changed row exactly once, and safe reruns."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from sluiceway import pipeline
from sluiceway.errors import SinkError
from sluiceway.spec import load_spec

from .dbs import Db, write_spec

BASE = datetime(2024, 1, 1)
OLD_MAX = BASE + timedelta(minutes=200)
NEW_TIME = OLD_MAX + timedelta(hours=1)


def _ts(db: Db, value: datetime) -> str:
    text = value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"TIMESTAMP '{text}'" if db.engine == "mysql" else f"TIMESTAMPTZ '{text}+00'"


def _create(db: Db) -> None:
    ts_type = "timestamptz(6)" if db.engine == "postgresql" else "datetime(6)"
    rows = [(i, i % 5, Decimal(i) / 4, BASE + timedelta(minutes=i)) for i in range(1, 201)]
    rows.append((300, 9, Decimal("3.00"), BASE))  # alone in partition grp=9
    if db.engine == "postgresql":
        rows = [(*r[:3], r[3].replace(tzinfo=UTC)) for r in rows]
    db.execute(
        "DROP TABLE IF EXISTS inc",
        f"CREATE TABLE inc (id int PRIMARY KEY, grp int NOT NULL, amount numeric(10,2), updated_at {ts_type} NOT NULL)",
        "INSERT INTO inc VALUES (%s, %s, %s, %s)",
        params=rows,
    )


def _spec(tmp_path, db: Db):
    return load_spec(
        write_spec(
            tmp_path,
            db,
            """
        [tables.inc]
        table = "inc"
        primary_key = ["id"]
        split_column = "id"
        incremental_column = "updated_at"
        overlap_minutes = 10
        partition_by = ["grp"]
    """,
            connection_extra={"rows_per_partition": 60},
        )
    )


def _db_rows(db: Db) -> list[tuple]:
    rows = db.query("SELECT id, grp, amount, updated_at FROM inc ORDER BY id")
    return [
        (
            i,
            g,
            a,
            (u.astimezone(UTC).replace(tzinfo=None) if u.tzinfo else u).strftime(
                "%Y-%m-%d %H:%M:%S.%f"
            ),
        )
        for i, g, a, u in rows
    ]


def _out_rows(spark, spec) -> list[tuple]:
    df = spark.read.parquet(spec.table("inc").sink.path).select(
        "id", "grp", "amount", F.date_format("updated_at", "yyyy-MM-dd HH:mm:ss.SSSSSS").alias("u")
    )
    return sorted(tuple(r) for r in df.collect())


def _mutate(db: Db) -> None:
    db.execute(
        f"UPDATE inc SET amount = amount + 1000, updated_at = {_ts(db, NEW_TIME)} WHERE id IN (5, 6)",
        # Moves row 7 from partition grp=2 to grp=4.
        f"UPDATE inc SET grp = 4, updated_at = {_ts(db, NEW_TIME)} WHERE id = 7",
        # Moves row 300 out of grp=9, its only row: that partition must disappear.
        f"UPDATE inc SET grp = 1, updated_at = {_ts(db, NEW_TIME)} WHERE id = 300",
        f"INSERT INTO inc VALUES (201, 1, 1.50, {_ts(db, NEW_TIME)})",
        # Committed late with a timestamp inside the overlap window of the old watermark.
        f"INSERT INTO inc VALUES (202, 2, 2.50, {_ts(db, OLD_MAX - timedelta(minutes=5))})",
        # Exactly equal to the old watermark.
        f"INSERT INTO inc VALUES (203, 3, 3.50, {_ts(db, OLD_MAX)})",
    )


@pytest.fixture(params=["postgresql", "mysql"])
def db(request) -> Db:
    database = request.getfixturevalue(
        f"{'pg' if request.param == 'postgresql' else 'mysql'}_conn_info"
    )
    _create(database)
    return database


def test_incremental_run_yields_newest_version_of_each_changed_row_once(spark, tmp_path, db):
    spec = _spec(tmp_path, db)
    first = pipeline.run(spark, spec)
    assert first.tables[0].mode == "full" and first.tables[0].rows_read == 201
    assert _out_rows(spark, spec) == _db_rows(db)

    _mutate(db)
    second = pipeline.run(spark, spec)
    item = second.tables[0]
    # The window is [old watermark - 10 min, now]: 10 unchanged rows at its start
    # (ids 190..200), the 4 updated rows, and the 3 inserted ones.
    in_window = db.query(
        f"SELECT COUNT(*) FROM inc WHERE updated_at >= {_ts(db, OLD_MAX - timedelta(minutes=10))}"
    )[0][0]
    assert item.mode == "incremental"
    assert item.rows_read == in_window == 18
    assert item.watermark_after == {"kind": "timestamp", "value": "2024-01-01 04:20:00"}
    assert {p["grp"] for p in item.partitions} == {"0", "1", "2", "3", "4", "9"}

    out = _out_rows(spark, spec)
    assert [r[0] for r in out] == sorted({r[0] for r in out})  # every key exactly once
    assert out == _db_rows(db)
    grp_of_7 = spark.read.parquet(f"{spec.table('inc').sink.path}/grp=2").filter("id = 7").count()
    assert grp_of_7 == 0  # the old version left its old partition
    assert not Path(spec.table("inc").sink.path, "grp=9").exists()  # emptied partition removed

    # A third run with no changes re-reads only the overlap and changes nothing.
    third = pipeline.run(spark, spec)
    assert third.tables[0].rows_read == 5  # rows 5, 6, 7, 201 and 300, at the new watermark
    assert _out_rows(spark, spec) == _db_rows(db)


def test_sink_failure_keeps_watermark_and_rerun_completes(spark, tmp_path, db):
    spec = _spec(tmp_path, db)
    pipeline.run(spark, spec)
    state_file = tmp_path / "out" / "_state" / "t" / "tables" / "inc.json"
    state_before = state_file.read_text()
    data_before = _out_rows(spark, spec)

    _mutate(db)
    # The staging location is a file, so the merge cannot stage: the write fails.
    shutil.rmtree(tmp_path / "out" / "_staging", ignore_errors=True)
    (tmp_path / "out" / "_staging").write_text("in the way")
    with pytest.raises(SinkError, match=r"tables\.inc: writing .* failed"):
        pipeline.run(spark, spec)
    assert state_file.read_text() == state_before
    assert _out_rows(spark, spec) == data_before
    latest = json.loads((state_file.parent.parent / "runs" / "latest.json").read_text())
    assert latest["status"] == "failed" and "tables.inc" in latest["error"]
    # The report of a failed run shows no watermark it never committed.
    assert latest["tables"][0]["watermark_after"] is None

    (tmp_path / "out" / "_staging").unlink()
    rerun = pipeline.run(spark, spec)
    assert rerun.tables[0].status == "written"
    assert _out_rows(spark, spec) == _db_rows(db)
    assert json.loads(state_file.read_text())["watermark"]["value"] == "2024-01-01 04:20:00"
