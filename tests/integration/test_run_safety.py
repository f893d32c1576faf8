"""Whole runs on the real PostgreSQL: append-only tables, integer overlaps, a far-future
cursor, quarantines of key-less tables, output rebuilds, the driver's time zone and the
run lock."""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from pyspark.sql import DataFrame

from sluiceway import pipeline
from sluiceway.errors import StateError
from sluiceway.spec import load_spec

from .dbs import Db, write_spec

ROOT = Path(__file__).resolve().parents[2]


def passthrough(events: DataFrame) -> DataFrame:
    """An output builder: the input as it is (minus audit columns)."""
    return events.select("seq", "kind")


def _events(db: Db, rows: list[tuple[int, str]]) -> None:
    db.execute(
        "DROP TABLE IF EXISTS events",
        "CREATE TABLE events (seq int NOT NULL, kind text)",
        "INSERT INTO events VALUES (%s, %s)",
        params=rows,
    )


def _append_spec(tmp_path: Path, db: Db, extra: str = "") -> Path:
    return write_spec(
        tmp_path,
        db,
        f"""
        [tables.events]
        table = "events"
        incremental_column = "seq"
        overlap_ids = 5
        partition_by = ["kind"]
        {extra}
    """,
    )


def _rows(spark, path: str, *columns: str) -> list[tuple]:
    return sorted(tuple(r) for r in spark.read.parquet(path).select(*columns).collect())


def test_append_only_table_keeps_every_window_and_rereads_late_ids_once(
    spark, tmp_path, pg_conn_info
):
    _events(pg_conn_info, [(i, "a" if i % 2 else "b") for i in range(1, 21) if i != 18])
    spec = load_spec(_append_spec(tmp_path, pg_conn_info))
    assert spec.table("events").sink.mode == "append"  # no key, a cursor: the default
    path = spec.table("events").sink.path

    first = pipeline.run(spark, spec)
    assert first.tables[0].mode == "full" and first.tables[0].rows_written == 19
    pg_conn_info.execute("INSERT INTO events VALUES (21, 'a'), (22, 'b')")
    second = pipeline.run(spark, spec)  # reads seq >= 15: 15..20 are in already
    # Id 18 was allocated before the first plan and committed only now: within the overlap.
    pg_conn_info.execute("INSERT INTO events VALUES (18, 'late')")
    third = pipeline.run(spark, spec)
    again = pipeline.run(spark, spec)  # nothing new: the overlap is read, nothing appended

    assert second.tables[0].mode == "incremental"
    assert third.tables[0].watermark_after == {"kind": "int", "value": "22"}
    expected = sorted(pg_conn_info.query("SELECT seq, kind FROM events"))
    assert _rows(spark, path, "seq", "kind") == expected  # run 2 did not shrink run 1's rows
    assert again.tables[0].status == "written"
    assert _rows(spark, path, "seq", "kind") == expected


def test_a_cursor_in_the_far_future_waits_and_extraction_goes_on(
    spark, tmp_path, pg_conn_info, caplog
):
    pg_conn_info.execute(
        "DROP TABLE IF EXISTS stamped",
        "CREATE TABLE stamped (id int PRIMARY KEY, at timestamp NOT NULL)",
        "INSERT INTO stamped VALUES (1, now() - interval '1 day'), (2, '2999-01-01'), "
        "(3, now() - interval '1 hour')",
    )
    spec = load_spec(
        write_spec(
            tmp_path,
            pg_conn_info,
            """
        [tables.stamped]
        table = "stamped"
        primary_key = ["id"]
        incremental_column = "at"
        overlap_minutes = 0
    """,
        )
    )
    path = spec.table("stamped").sink.path

    with caplog.at_level(logging.WARNING, logger="sluiceway.sources.jdbc"):
        first = pipeline.run(spark, spec)
    assert "reaches 2999-01-01 00:00:00, past the database clock" in caplog.text
    assert _rows(spark, path, "id") == [(1,), (3,)]
    assert first.tables[0].watermark_after["value"] < "2999"

    pg_conn_info.execute("INSERT INTO stamped VALUES (4, now() - interval '1 second')")
    pipeline.run(spark, spec)
    assert _rows(spark, path, "id") == [(1,), (3,), (4,)]  # not frozen at 2999


def test_key_less_table_without_audit_columns_quarantines_once_per_run(
    spark, tmp_path, pg_conn_info
):
    _events(pg_conn_info, [(1, "a"), (2, None), (3, "b"), (4, None)])
    spec_path = write_spec(
        tmp_path,
        pg_conn_info,
        """
        [tables.events]
        table = "events"
        audit = false
        quality = [{ rule = "not_null", column = "kind" }]
    """,
    )
    spec = load_spec(spec_path)
    quarantine = spec.table("events").sink.quarantine_path

    first = pipeline.run(spark, spec)
    second = pipeline.run(spark, spec)

    assert first.tables[0].rows_quarantined == second.tables[0].rows_quarantined == 2
    bad = spark.read.parquet(quarantine)
    assert sorted(r.seq for r in bad.collect()) == [2, 4]  # a full read replaces it
    assert {r._run_id for r in bad.collect()} == {second.run_id}
    assert _rows(spark, spec.table("events").sink.path, "seq") == [(1,), (3,)]


def test_output_is_rebuilt_when_named_or_its_input_changed_and_only_then(
    spark, tmp_path, pg_conn_info
):
    _events(pg_conn_info, [(1, "a"), (2, "b")])
    spec = load_spec(
        _append_spec(
            tmp_path,
            pg_conn_info,
            """
        [outputs.copy]
        builder = "tests.integration.test_run_safety:passthrough"
        inputs = ["events"]
        """,
        )
    )
    first = pipeline.run(spark, spec)
    assert [t.status for t in first.tables] == ["written", "written"]

    # Named on the command line (`--tables copy`): rebuilt although it has data.
    named = pipeline.run(spark, spec, only=["copy"])
    assert [(t.name, t.status) for t in named.tables] == [("copy", "written")]

    # The overlap re-read rewrites events (a new version): the output follows it.
    changed = pipeline.run(spark, spec)
    assert [t.status for t in changed.tables] == ["written", "written"]

    # Nothing new in the window and nothing named: the output is left alone.
    pg_conn_info.execute("DELETE FROM events")
    unchanged = pipeline.run(spark, spec)
    assert [t.status for t in unchanged.tables] == ["unchanged", "unchanged"]
    assert _rows(spark, spec.dataset_path("copy"), "seq") == [(1,), (2,)]


def test_timestamps_stay_exact_when_the_driver_jvm_was_in_another_zone(
    spark, tmp_path, pg_conn_info, caplog
):
    pg_conn_info.execute(
        "DROP TABLE IF EXISTS zoned",
        "CREATE TABLE zoned (id int PRIMARY KEY, plain timestamp, aware timestamptz)",
        "INSERT INTO zoned VALUES (1, '2024-03-10 02:30:00', '2024-03-10 02:30:00+00')",
    )
    spec = load_spec(write_spec(tmp_path, pg_conn_info, '[tables.zoned]\ntable = "zoned"\n'))
    jvm = spark.sparkContext._jvm
    zones = jvm.java.util.TimeZone
    # A zone whose clocks skip 02:00-03:00 that very night: a shifted value shows.
    zones.setDefault(zones.getTimeZone("America/New_York"))
    try:
        with caplog.at_level(logging.WARNING, logger="sluiceway.sources.jdbc"):
            pipeline.run(spark, spec)
        assert str(zones.getDefault().getID()) == "UTC"
    finally:
        zones.setDefault(zones.getTimeZone("UTC"))
    assert "the JVM runs in America/New_York; switching it to UTC" in caplog.text
    row = spark.read.parquet(spec.table("zoned").sink.path).first()
    assert row.plain == row.aware == datetime(2024, 3, 10, 2, 30)


def _lock_held(path: Path) -> bool:
    if not path.exists():
        return False
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def test_a_second_run_of_the_same_pipeline_is_refused_while_the_first_holds_the_lock(
    spark, tmp_path, pg_conn_info
):
    _events(pg_conn_info, [(i, "a") for i in range(1, 2001)])
    spec_path = _append_spec(tmp_path, pg_conn_info)
    spec = load_spec(spec_path)
    lock = tmp_path / "out" / "_state" / spec.name / "run.lock"
    first = subprocess.Popen(
        [sys.executable, "-m", "sluiceway.cli", "run", str(spec_path)],
        cwd=ROOT,
        env={**os.environ, "SLUICEWAY_SPARK_MASTER": "local[1]"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not _lock_held(lock):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.05)

        with pytest.raises(StateError, match=r"pipeline t: locked by run \S+ since \S+"):
            pipeline.run(spark, spec, run_id="refused")
    finally:
        out, err = first.communicate(timeout=600)
    assert first.returncode == 0, out + err
    assert _rows(spark, spec.table("events").sink.path, "seq") == [(i,) for i in range(1, 2001)]
    # The refused run wrote nothing, not even a report over the first run's.
    runs = tmp_path / "out" / "_state" / spec.name / "runs"
    assert not (runs / "refused.json").exists()
    assert '"status": "succeeded"' in (runs / "latest.json").read_text()
