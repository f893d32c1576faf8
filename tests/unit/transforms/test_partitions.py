from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from chispa import assert_df_equality

from sluiceway.errors import TransformError
from sluiceway.transforms import with_date_partitions


def test_with_date_partitions_adds_year_month_day_from_a_date(spark):
    df = spark.createDataFrame([(1, date(2024, 2, 29)), (2, None)], "id int, d date")
    expected = spark.createDataFrame(
        [(1, date(2024, 2, 29), 2024, 2, 29), (2, None, None, None, None)],
        "id int, d date, year int, month int, day int",
    )
    assert_df_equality(
        with_date_partitions(df, "d"), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_with_date_partitions_reads_timestamps_in_utc_session_time_zone(spark):
    df = spark.createDataFrame(
        [(1, datetime(2024, 12, 31, 23, 30, tzinfo=UTC)), (2, None)], "id int, ts timestamp"
    )
    expected = spark.createDataFrame(
        [
            (1, datetime(2024, 12, 31, 23, 30, tzinfo=UTC), 2024, 12, 31),
            (2, None, None, None, None),
        ],
        "id int, ts timestamp, ts_year int, ts_month int, ts_day int",
    )
    assert_df_equality(
        with_date_partitions(df, "ts", prefix="ts_"),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )


@pytest.mark.parametrize(
    ("grain", "added"),
    [("year", ["year"]), ("month", ["year", "month"]), ("day", ["year", "month", "day"])],
)
def test_with_date_partitions_adds_only_the_columns_of_its_grain(spark, grain, added):
    df = spark.createDataFrame([(date(2023, 7, 4),), (None,)], "d date")
    result = with_date_partitions(df, "d", grain=grain)
    assert result.columns == ["d", *added]
    assert sorted(result.collect(), key=lambda row: row.d is None) == [
        (date(2023, 7, 4), *[2023, 7, 4][: len(added)]),
        (None, *[None] * len(added)),
    ]


def test_with_date_partitions_rejects_unknown_grain(spark):
    df = spark.createDataFrame([(None,)], "d date")
    with pytest.raises(TransformError, match="'hour'"):
        with_date_partitions(df, "d", grain="hour")


def test_with_date_partitions_rejects_a_string_column(spark):
    df = spark.createDataFrame([("2024-01-01",), (None,)], "d string")
    with pytest.raises(TransformError, match="'d' is string"):
        with_date_partitions(df, "d")


def test_with_date_partitions_rejects_missing_column_naming_it(spark):
    df = spark.createDataFrame([(None,)], "d date")
    with pytest.raises(TransformError, match="'shipped_at'"):
        with_date_partitions(df, "shipped_at")
