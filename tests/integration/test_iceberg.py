"""Iceberg sinks on real Spark with the pinned Iceberg runtime: merge, append, dynamic
overwrite, the watermark committed in the snapshot summary, and the jdbc catalog."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sluiceway import pipeline
from sluiceway.errors import SinkError, SluicewayError, SpecError
from sluiceway.sinks.dataset import Batch
from sluiceway.sinks.iceberg import RUN_ID_PROPERTY, WATERMARK_PROPERTY, IcebergDataset
from sluiceway.spec import PartitionField, load_spec

from .dbs import Db, write_spec
from .iceberg import iceberg_dataset

BASE = datetime(2024, 1, 1, tzinfo=UTC)
LATER = BASE + timedelta(days=2)
COLUMNS = ("id", "grp", "d", "amount", "updated_at")


def _create_source(db: Db, name: str, keyed: bool = True) -> None:
    key = " PRIMARY KEY" if keyed else ""
    rows = [
        (i, "a" if i % 2 else "b", f"2024-0{1 + i % 3}-1{i % 10}", Decimal(i) / 4, BASE)
        for i in range(1, 9)
    ]
    db.execute(
        f"DROP TABLE IF EXISTS {name}",
        f"CREATE TABLE {name} (id int{key}, grp text NOT NULL, d date NOT NULL, "
        "amount numeric(10,2), updated_at timestamptz(6) NOT NULL)",
        f"INSERT INTO {name} VALUES (%s, %s, %s, %s, %s)",
        params=rows,
    )


def _db_rows(db: Db, name: str) -> list[tuple]:
    rows = db.query(f"SELECT id, grp, d, amount, updated_at FROM {name}")
    return sorted(
        (i, g, str(d), a, u.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
        for i, g, d, a, u in rows
    )


def _table_rows(spark, ident: str) -> list[tuple]:
    df = spark.table(ident).select(
        "id",
        "grp",
        F.col("d").cast("string"),
        "amount",
        F.date_format("updated_at", "yyyy-MM-dd HH:mm:ss.SSSSSS"),
    )
    return sorted(tuple(r) for r in df.collect())


def _summaries(spark, ident: str) -> list[dict]:
    rows = spark.sql(f"SELECT summary FROM {ident}.snapshots ORDER BY committed_at").collect()
    return [dict(r["summary"]) for r in rows]


def _spec(tmp_path, db: Db, source: str, *, sink: str, extra: str = "", key: bool = True):
    keys = 'primary_key = ["id"]\n' if key else ""
    return load_spec(
        write_spec(
            tmp_path,
            db,
            f"""
{extra}
[tables.{source}]
table = "{source}"
{keys}incremental_column = "updated_at"
overlap_minutes = 10
partition_by = ["grp", "months(d)"]
sink = {sink}
""",
            name="ice",
        )
    )


def test_merge_lands_inserts_updates_and_moves_with_the_watermark_in_the_snapshot(
    spark, tmp_path, pg_conn_info
):
    db = pg_conn_info
    _create_source(db, "ice_merge")
    spec = _spec(
        tmp_path, db, "ice_merge", sink='{ format = "iceberg", write_mode = "merge-on-read" }'
    )
    ident = "lake.ice.ice_merge"

    first = pipeline.run(spark, spec).tables[0]
    assert (first.mode, first.rows_written) == ("full", 8)
    assert _table_rows(spark, ident) == _db_rows(db, "ice_merge")
    summary = _summaries(spark, ident)[-1]
    assert json.loads(summary[WATERMARK_PROPERTY]) == first.watermark_after
    assert summary[RUN_ID_PROPERTY] == spark.table(ident).select("_run_id").first()[0]
    assert first.commit is not None
    assert (first.commit["added-records"], first.commit["deleted-records"]) == (8, 0)

    stamp = "TIMESTAMPTZ '2024-01-03 00:00:00+00'"
    db.execute(
        f"UPDATE ice_merge SET amount = amount + 100, updated_at = {stamp} WHERE id = 2",
        # Moves key 3 to another grp and another month: another partition.
        f"UPDATE ice_merge SET grp = 'b', d = '2024-03-01', updated_at = {stamp} WHERE id = 3",
        f"INSERT INTO ice_merge VALUES (20, 'a', '2024-02-02', 5.00, {stamp})",
    )
    # The state store's watermark goes: the next run must take it from the snapshot.
    state_file = tmp_path / "out" / "_state" / "ice" / "tables" / "ice_merge.json"
    assert state_file.is_file()
    state_file.unlink()

    second = pipeline.run(spark, spec).tables[0]
    assert second.mode == "incremental"
    assert second.watermark_before == first.watermark_after
    assert second.rows_written == 9  # the overlap re-reads the 8 rows stamped BASE, and 20
    assert _table_rows(spark, ident) == _db_rows(db, "ice_merge")
    summaries = _summaries(spark, ident)
    assert json.loads(summaries[-1][WATERMARK_PROPERTY]) == second.watermark_after
    assert summaries[-1]["total-records"] != "0"
    # The report names the commit: merge-on-read adds the 9 rows' new versions and marks
    # the 8 old ones with position deletes, deleting no data file.
    newest = spark.sql(f"SELECT snapshot_id FROM {ident}.snapshots ORDER BY committed_at")
    assert second.commit is not None
    assert second.commit["snapshot_id"] == newest.collect()[-1][0]
    assert second.commit["added-records"] == 9
    assert second.commit["deleted-data-files"] == 0
    assert second.commit["added-delete-files"] > 0
    props = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {ident}").collect()}
    assert props["write.merge.mode"] == "merge-on-read"
    partitions = spark.sql(f"SELECT partition.* FROM {ident}.partitions").columns
    assert partitions == ["grp", "d_month"]

    # A rerun of the same window: one more commit, the same content.
    third = pipeline.run(spark, spec, run_id="rerun-1").tables[0]
    assert third.watermark_before == second.watermark_after
    assert _table_rows(spark, ident) == _db_rows(db, "ice_merge")
    assert _summaries(spark, ident)[-1][RUN_ID_PROPERTY] == "rerun-1"


def _dataset(spark, tmp_path, *, key: tuple[str, ...] = ("id",), partitioning=()) -> IcebergDataset:
    return iceberg_dataset(spark, tmp_path, key=key, partitioning=partitioning)


SCHEMA = "id INT, grp STRING, d DATE, amount DECIMAL(10,2), updated_at TIMESTAMP"


def _df(spark, rows):
    parsed = [
        (i, g, datetime.strptime(d, "%Y-%m-%d").date(), Decimal(a), datetime.fromisoformat(u))
        for i, g, d, a, u in rows
    ]
    return spark.createDataFrame(parsed, SCHEMA)


def _rows(spark, dataset) -> list[tuple]:
    df = dataset.read().select(
        "id",
        "grp",
        F.col("d").cast("string"),
        F.col("amount").cast("string"),
        F.date_format("updated_at", "yyyy-MM-dd HH:mm:ss"),
    )
    return sorted(tuple(r) for r in df.collect())


def test_merge_keeps_the_newest_of_duplicate_keys_and_moves_changed_partitions(spark, tmp_path):
    ds = _dataset(
        spark,
        tmp_path,
        partitioning=(PartitionField("days", "d"), PartitionField("bucket", "id", 4)),
    )
    ds.write(
        Batch(
            _df(
                spark,
                [
                    (1, "a", "2024-01-01", "1.00", "2024-01-01 00:00:00"),
                    (2, "a", "2024-01-01", "2.00", "2024-01-01 00:00:00"),
                ],
            )
        ),
        "overwrite",
    )
    batch = [
        # Key 1 three times: the newest (10:00) wins whatever the order.
        (1, "a", "2024-01-01", "1.50", "2024-01-02 09:00:00"),
        (1, "b", "2024-01-05", "1.70", "2024-01-02 10:00:00"),
        (1, "c", "2024-01-01", "1.60", "2024-01-02 08:00:00"),
        (3, "a", "2024-01-03", "3.00", "2024-01-02 00:00:00"),
        (3, "a", "2024-01-03", "3.10", "2024-01-02 00:00:01"),
    ]
    ds.write(Batch(_df(spark, batch), commit_properties={"sluiceway.run-id": "r2"}), "merge")
    expected = [
        (1, "b", "2024-01-05", "1.70", "2024-01-02 10:00:00"),  # moved to day 2024-01-05
        (2, "a", "2024-01-01", "2.00", "2024-01-01 00:00:00"),
        (3, "a", "2024-01-03", "3.10", "2024-01-02 00:00:01"),
    ]
    assert _rows(spark, ds) == expected
    assert ds.committed() == {
        "run_id": "r2",
        "watermark": None,
        "snapshot_id": ds.committed()["snapshot_id"],
    }
    # No data file of day 2024-01-01 still holds key 1 (the old version is gone, not hidden).
    ds.write(Batch(_df(spark, batch)), "merge")
    assert _rows(spark, ds) == expected


def test_overwrite_partitions_replaces_only_the_partitions_the_batch_has(spark, tmp_path):
    ds = _dataset(spark, tmp_path, key=(), partitioning=(PartitionField("identity", "grp"),))
    ds.write(
        Batch(
            _df(
                spark,
                [
                    (1, "a", "2024-01-01", "1.00", "2024-01-01 00:00:00"),
                    (2, "b", "2024-01-01", "2.00", "2024-01-01 00:00:00"),
                    (3, "b", "2024-01-01", "3.00", "2024-01-01 00:00:00"),
                ],
            )
        ),
        "overwrite",
    )
    ds.write(
        Batch(
            _df(
                spark,
                [
                    (4, "b", "2024-01-02", "4.00", "2024-01-02 00:00:00"),
                    (5, "c", "2024-01-02", "5.00", "2024-01-02 00:00:00"),
                ],
            )
        ),
        "overwrite_partitions",
    )
    assert _rows(spark, ds) == [
        (1, "a", "2024-01-01", "1.00", "2024-01-01 00:00:00"),
        (4, "b", "2024-01-02", "4.00", "2024-01-02 00:00:00"),
        (5, "c", "2024-01-02", "5.00", "2024-01-02 00:00:00"),
    ]
    operations = [
        r[0]
        for r in spark.sql(
            f"SELECT operation FROM {ds.identifier}.snapshots ORDER BY committed_at"
        ).collect()
    ]
    assert operations[-1] == "overwrite"


def test_keyless_append_lands_each_row_once_across_reruns(spark, tmp_path, pg_conn_info):
    db = pg_conn_info
    _create_source(db, "ice_events", keyed=False)
    spec = _spec(tmp_path, db, "ice_events", sink='{ format = "iceberg" }', key=False)
    ident = "lake.ice.ice_events"
    first = pipeline.run(spark, spec).tables[0]
    assert first.rows_written == 8
    db.execute(
        "INSERT INTO ice_events VALUES (9, 'a', '2024-01-09', 9.00, "
        "TIMESTAMPTZ '2024-01-01 00:05:00+00')",
        "INSERT INTO ice_events VALUES (30, 'b', '2024-01-30', 1.00, "
        "TIMESTAMPTZ '2024-01-03 00:00:00+00')",
    )
    second = pipeline.run(spark, spec).tables[0]
    # The overlap re-reads the 8 landed rows: only the 2 new ones are appended.
    assert second.mode == "incremental"
    third = pipeline.run(spark, spec).tables[0]  # a rerun of a window already landed
    assert third.watermark_before == second.watermark_after
    assert _table_rows(spark, ident) == _db_rows(db, "ice_events")
    operations = [r[0] for r in spark.sql(f"SELECT operation FROM {ident}.snapshots").collect()]
    assert set(operations[1:]) <= {"append"}


def test_unknown_partition_transform_is_refused_before_anything_is_written(tmp_path, pg_conn_info):
    db = pg_conn_info
    body = """
[tables.x]
table = "x"
primary_key = ["id"]
partition_by = ["weeks(d)"]
sink = { format = "iceberg" }
"""
    with pytest.raises(
        SpecError, match=r"tables\.x\.partition_by\[0\]: unknown partition transform 'weeks\(d\)'"
    ):
        load_spec(write_spec(tmp_path, db, body, name="bad"))
    bad_mode = body.replace('["weeks(d)"]', '["days(d)"]').replace(
        '{ format = "iceberg" }', '{ format = "iceberg", write_mode = "merge-on-write" }'
    )
    with pytest.raises(SpecError, match=r"tables\.x\.sink\.write_mode"):
        load_spec(write_spec(tmp_path, db, bad_mode, name="bad"))
    assert not (tmp_path / "out").exists()


def test_jdbc_catalog_on_postgresql_keeps_the_table_and_its_watermark(
    spark, tmp_path, pg_conn_info
):
    db = pg_conn_info
    _create_source(db, "ice_jdbc")
    name = f"meta{uuid.uuid4().hex[:8]}"
    extra = (
        f'[catalogs.{name}]\ntype = "jdbc"\nconnection = "db"\nwarehouse = "{tmp_path / "wh"}"\n'
    )
    spec = _spec(
        tmp_path, db, "ice_jdbc", sink=f'{{ format = "iceberg", catalog = "{name}" }}', extra=extra
    )
    ident = f"{name}.ice.ice_jdbc"
    try:
        first = pipeline.run(spark, spec).tables[0]
        db.execute(
            "UPDATE ice_jdbc SET amount = 0, updated_at = TIMESTAMPTZ '2024-01-05 00:00:00+00' "
            "WHERE id = 4"
        )
        second = pipeline.run(spark, spec).tables[0]
        assert second.watermark_before == first.watermark_after
        assert _table_rows(spark, ident) == _db_rows(db, "ice_jdbc")
        registered = db.query(
            f"SELECT table_namespace, table_name FROM iceberg_tables WHERE catalog_name = '{name}'"
        )
        assert registered == [("ice", "ice_jdbc")]
        assert (
            json.loads(_summaries(spark, ident)[-1][WATERMARK_PROPERTY]) == second.watermark_after
        )
    finally:
        db.execute(f"DELETE FROM iceberg_tables WHERE catalog_name = '{name}'")


def grp_totals(ice_fail: DataFrame) -> DataFrame:
    """An output builder: rows per grp."""
    return ice_fail.groupBy("grp").agg(F.count(F.lit(1)).alias("n")).select("grp", "n")


def test_a_run_failing_after_the_iceberg_commit_keeps_the_watermark_it_committed(
    spark, tmp_path, pg_conn_info, monkeypatch
):
    db = pg_conn_info
    _create_source(db, "ice_fail")
    output = """
[outputs.totals]
builder = "tests.integration.test_iceberg:grp_totals"
inputs = ["ice_fail"]
sink = { format = "iceberg" }
"""
    spec = load_spec(
        write_spec(
            tmp_path,
            db,
            """
[tables.ice_fail]
table = "ice_fail"
primary_key = ["id"]
incremental_column = "updated_at"
sink = { format = "iceberg" }
"""
            + output,
            name="ice",
        )
    )
    real_commit = pipeline._commit

    def failing_commit(ctx, key, name, **state):
        if name == "ice_fail":
            raise SluicewayError("state store unreachable")
        real_commit(ctx, key, name, **state)

    monkeypatch.setattr(pipeline, "_commit", failing_commit)
    with pytest.raises(SluicewayError, match="state store unreachable"):
        pipeline.run(spark, spec, run_id="failed-1")
    monkeypatch.setattr(pipeline, "_commit", real_commit)
    # The data landed with its watermark; the state store has none.
    assert not (tmp_path / "out" / "_state" / "ice" / "tables" / "ice_fail.json").exists()
    landed = _summaries(spark, "lake.ice.ice_fail")[-1]
    assert landed[RUN_ID_PROPERTY] == "failed-1"

    db.execute(
        "UPDATE ice_fail SET grp = 'a', updated_at = TIMESTAMPTZ '2024-01-04 00:00:00+00' "
        "WHERE id = 2"
    )
    table, totals = pipeline.run(spark, spec, run_id="ok-2").tables
    assert table.mode == "incremental"
    assert table.watermark_before == json.loads(landed[WATERMARK_PROPERTY])
    assert totals.status == "written"
    assert _table_rows(spark, "lake.ice.ice_fail") == _db_rows(db, "ice_fail")
    expected = sorted(db.query("SELECT grp, count(*) FROM ice_fail GROUP BY grp"))
    assert sorted(tuple(r) for r in spark.table("lake.ice.totals").collect()) == expected
    assert _summaries(spark, "lake.ice.totals")[-1][RUN_ID_PROPERTY] == "ok-2"


def test_a_null_key_fails_the_merge_in_its_own_pass_and_lands_nothing(spark, tmp_path):
    ds = _dataset(spark, tmp_path)
    first = [(1, "a", "2024-01-01", "1.00", "2024-01-01 00:00:00")]
    ds.write(Batch(_df(spark, first)), "overwrite")
    before = ds.committed()
    batch = _df(
        spark,
        [
            (2, "a", "2024-01-02", "2.00", "2024-01-02 00:00:00"),
            (None, "b", "2024-01-03", "3.00", "2024-01-03 00:00:00"),
        ],
    )

    with pytest.raises(SinkError) as caught:
        ds.write(Batch(batch, commit_properties={"sluiceway.run-id": "bad"}), "merge")

    assert str(caught.value).endswith(
        "a row has a NULL in primary key (id), which no merge can match; refused"
    ), str(caught.value)
    assert _rows(spark, ds) == [(1, "a", "2024-01-01", "1.00", "2024-01-01 00:00:00")]
    assert ds.committed() == before
