from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from chispa import assert_df_equality

from sluiceway.transforms import with_audit_columns

EXTRACTED = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def test_with_audit_columns_stamps_every_row_with_run_time_and_source(spark):
    df = spark.createDataFrame([(1,), (None,)], "id int")
    expected = spark.createDataFrame(
        [(1, "run-1", EXTRACTED, "pg.orders"), (None, "run-1", EXTRACTED, "pg.orders")],
        "id int, _run_id string, _extracted_at timestamp, _source string",
    )
    assert_df_equality(
        with_audit_columns(df, "run-1", EXTRACTED, "pg.orders"),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )


@pytest.fixture
def python_local_time_in_new_york(monkeypatch):
    # PySpark converts a naive datetime with the Python process's local zone; make that
    # zone differ from UTC so the test can tell the two readings apart.
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("python_local_time_in_new_york")
def test_with_audit_columns_reads_naive_extracted_at_as_utc(spark):
    df = spark.createDataFrame([(None,)], "id int")
    naive = with_audit_columns(df, "r", EXTRACTED.replace(tzinfo=None), "s")
    plus_two = EXTRACTED.astimezone(timezone(timedelta(hours=2)))
    aware = with_audit_columns(df, "r", plus_two, "s")
    assert naive.collect() == aware.collect()
    as_text = naive.selectExpr("CAST(_extracted_at AS STRING) AS t").first()
    assert as_text.t == "2024-05-06 07:08:09.123456"
