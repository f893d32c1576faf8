"""`sluiceway maintain` on real Spark and Iceberg: a merge-on-read table after a few merges
is compacted and its old snapshots expired, with its content, its committed watermark and
time travel inside the kept window unchanged; it takes the pipeline's run lock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sluiceway import pipeline
from sluiceway.errors import StateError
from sluiceway.maintenance import maintain
from sluiceway.sinks.iceberg import IcebergDataset
from sluiceway.spec import IcebergSink, load_spec
from sluiceway.state import acquire_run_lock, open_state_store

from .dbs import write_spec
from .test_iceberg import _create_source, _db_rows, _table_rows


def grp_counts(ice_maint: DataFrame) -> DataFrame:
    """An output builder: rows per grp (a Parquet output, which maintain skips)."""
    return ice_maint.groupBy("grp").agg(F.count(F.lit(1)).alias("n")).select("grp", "n")


def _spec_path(tmp_path, db, catalog: str):
    """A spec whose catalog is new to the session: Spark keeps a catalog's settings once
    loaded, and the CLI's own session must find the table where this one wrote it."""
    return write_spec(
        tmp_path,
        db,
        f"""
[catalogs.{catalog}]
type = "hadoop"

[tables.ice_maint]
table = "ice_maint"
primary_key = ["id"]
incremental_column = "updated_at"
sink = {{ format = "iceberg", write_mode = "merge-on-read", maintenance = {{ keep_days = 0, keep_snapshots = 1 }} }}

[outputs.grp_counts]
builder = "tests.integration.test_iceberg_maintain:grp_counts"
inputs = ["ice_maint"]
""",
        name="icem",
    )


def _files(spark, ident: str) -> dict[int, int]:
    """Data (0) and position delete (1) files of the current snapshot."""
    rows = spark.sql(f"SELECT content, count(*) FROM {ident}.files GROUP BY content").collect()
    return {r[0]: r[1] for r in rows}


def _snapshots(spark, ident: str) -> list[tuple[int, str]]:
    rows = spark.sql(
        f"SELECT snapshot_id, date_format(committed_at, 'yyyy-MM-dd HH:mm:ss.SSS') "
        f"FROM {ident}.snapshots ORDER BY committed_at"
    ).collect()
    return [(r[0], r[1]) for r in rows]


def test_maintain_compacts_and_expires_keeping_content_watermark_and_time_travel(
    spark, tmp_path, pg_conn_info
):
    db = pg_conn_info
    _create_source(db, "ice_maint")
    catalog = f"m{uuid.uuid4().hex[:8]}"
    spec_path = _spec_path(tmp_path, db, catalog)
    ident = f"{catalog}.icem.ice_maint"
    spec = load_spec(spec_path)
    pipeline.run(spark, spec)
    for day in (3, 4, 5):  # three merges, each updating rows: position delete files
        db.execute(
            f"UPDATE ice_maint SET amount = amount + 1, "
            f"updated_at = TIMESTAMPTZ '2024-01-0{day} 00:00:00+00' WHERE id % 3 = {day % 3}"
        )
        pipeline.run(spark, spec)
    sink = spec.tables[0].sink
    assert isinstance(sink, IcebergSink)
    dataset = IcebergDataset(spark, sink, where="test")
    content = _table_rows(spark, ident)
    assert content == _db_rows(db, "ice_maint")
    committed = dataset.committed()
    assert committed is not None and committed["watermark"]
    files = _files(spark, ident)
    assert files[0] > 1 and files.get(1, 0) > 0
    snapshots = _snapshots(spark, ident)
    last_merge = snapshots[-1]
    assert last_merge[0] == committed["snapshot_id"]
    # A file no snapshot references, older than the 3-day orphan margin.
    orphan = tmp_path / "out" / "warehouse" / catalog / "icem" / "ice_maint" / "data" / "x.parquet"
    orphan.write_bytes(b"not referenced")
    four_days_ago = time.time() - 4 * 86400
    os.utime(orphan, (four_days_ago, four_days_ago))

    result = subprocess.run(
        [sys.executable, "-m", "sluiceway.cli", "maintain", str(spec_path), "--master", "local[2]"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    line = next(x for x in lines if x.startswith(f"  ice_maint ({ident}): "))
    assert f"{len(snapshots) - 1} snapshots expired" in line
    assert f"{files[0]} data files rewritten into 1" in line
    assert f"delete files {files[1]} -> 0" in line
    assert "1 orphan files removed" in line
    assert "  grp_counts: skipped (Parquet dataset, nothing to maintain)" in lines

    spark.sql(f"REFRESH TABLE {ident}")  # the subprocess changed it
    assert _table_rows(spark, ident) == content
    assert dataset.committed() == committed  # the watermark's snapshot was kept from expiry
    assert _files(spark, ident) == {0: 1}
    assert not orphan.exists()
    kept = [s[0] for s in _snapshots(spark, ident)]
    assert kept[0] == last_merge[0] and len(kept) >= 2  # it and the compaction after it
    # Time travel inside the kept window; the expired snapshots are gone.
    as_of = f"SELECT * FROM {ident} VERSION AS OF {last_merge[0]}"
    assert _rows_of(spark, as_of) == _rows_of(spark, f"SELECT * FROM {ident}")
    at = f"SELECT * FROM {ident} TIMESTAMP AS OF '{last_merge[1]}'"
    assert _rows_of(spark, at) == _rows_of(spark, f"SELECT * FROM {ident}")
    with pytest.raises(Exception, match=str(snapshots[0][0])):
        spark.sql(f"SELECT * FROM {ident} VERSION AS OF {snapshots[0][0]}").collect()

    # The next run resumes from the kept watermark (an incremental run, not a full read).
    after = pipeline.run(spark, spec).tables[0]
    assert after.mode == "incremental"
    assert after.watermark_before == committed["watermark"]


def _rows_of(spark, sql: str) -> list[tuple]:
    return sorted(tuple(r) for r in spark.sql(sql).collect())


def test_maintain_refuses_while_a_run_holds_the_pipeline_lock(spark, tmp_path, pg_conn_info):
    catalog = f"m{uuid.uuid4().hex[:8]}"
    spec = load_spec(_spec_path(tmp_path, pg_conn_info, catalog))
    assert isinstance(spec.tables[0].sink, IcebergSink)
    store = open_state_store(spec.state_location)
    with (
        acquire_run_lock(store, spec.name, "run-1"),
        pytest.raises(StateError, match="locked by run run-1"),
    ):
        maintain(spark, spec)
    # Free again: the table is not there yet, the output is Parquet.
    done = maintain(spark, spec)
    assert [(d.name, d.skipped) for d in done] == [
        ("ice_maint", f"{catalog}.icem.ice_maint does not exist yet"),
        ("grp_counts", "Parquet dataset, nothing to maintain"),
    ]
