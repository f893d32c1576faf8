from __future__ import annotations

from datetime import UTC, datetime

import pytest
from chispa import assert_df_equality

from sluiceway.errors import TransformError
from sluiceway.transforms import dedupe_latest

SCHEMA = "id int, updated_at timestamp, version int, payload string"


def _ts(day: int) -> datetime:
    return datetime(2024, 1, day, tzinfo=UTC)


def test_dedupe_latest_keeps_newest_row_per_key_and_never_folds_null_keys(spark):
    df = spark.createDataFrame(
        [
            (1, _ts(1), 1, "old"),
            (1, _ts(3), 3, "newest"),
            (1, _ts(2), 2, "middle"),
            (1, None, 9, "undated"),
            (2, None, 1, "only undated"),
            (None, _ts(1), 1, "null key old"),
            (None, _ts(2), 2, "null key new"),
        ],
        SCHEMA,
    )
    expected = spark.createDataFrame(
        [
            (1, _ts(3), 3, "newest"),
            (2, None, 1, "only undated"),
            (None, _ts(1), 1, "null key old"),
            (None, _ts(2), 2, "null key new"),
        ],
        SCHEMA,
    )
    result = dedupe_latest(df, ["id"], "updated_at")
    assert result.columns == df.columns
    assert_df_equality(result, expected, ignore_row_order=True)


def test_dedupe_latest_orders_by_several_columns_in_turn(spark):
    df = spark.createDataFrame(
        [(1, _ts(5), 1, "a"), (1, _ts(5), 2, "b"), (1, _ts(4), 7, "c"), (1, _ts(5), None, "d")],
        SCHEMA,
    )
    expected = spark.createDataFrame([(1, _ts(5), 2, "b")], SCHEMA)
    assert_df_equality(
        dedupe_latest(df, ["id"], ["updated_at", "version"]), expected, ignore_row_order=True
    )


def test_dedupe_latest_breaks_ties_deterministically(spark):
    tied = [(1, _ts(1), 1, f"copy {n}") for n in range(8)] + [
        (None, None, None, None),
        (None, None, None, "null key twin"),
    ]
    winners = set()
    for rows, partitions in [(tied, 1), (tied[::-1], 1), (tied[3:] + tied[:3], 3)]:
        df = spark.createDataFrame(rows, SCHEMA).repartition(partitions)
        result = dedupe_latest(df, ["id"], "updated_at").orderBy("id", "payload").collect()
        assert len(result) == 3  # one of the tied copies, and both NULL-key rows
        winners.add(tuple(result))
    assert len(winners) == 1


def test_dedupe_latest_accepts_map_columns(spark):
    schema = "id int, updated_at timestamp, attrs map<string,string>"
    rows = [(1, _ts(1), {"k": "a"}), (1, _ts(1), {"k": "b"}), (1, _ts(1), None)]
    first = dedupe_latest(spark.createDataFrame(rows, schema), ["id"], "updated_at").collect()
    reversed_df = spark.createDataFrame(rows[::-1], schema).repartition(2)
    assert len(first) == 1
    assert dedupe_latest(reversed_df, ["id"], "updated_at").collect() == first


def test_dedupe_latest_rejects_missing_key_naming_it(spark):
    df = spark.createDataFrame([(1, None, None, None)], SCHEMA)
    with pytest.raises(TransformError, match="'order_id'"):
        dedupe_latest(df, ["order_id"], "updated_at")


def test_dedupe_latest_rejects_empty_keys(spark):
    df = spark.createDataFrame([(1, None, None, None)], SCHEMA)
    with pytest.raises(TransformError, match="keys"):
        dedupe_latest(df, [], "updated_at")
