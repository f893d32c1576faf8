from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality

from sluiceway.errors import TransformError
from sluiceway.transforms import keep_quarantined, keep_valid
from sluiceway.transforms.events import (
    with_event_partitions,
    with_parsed_payload,
    with_quality_errors,
)

SCHEMA_DDL = "id string, at timestamp, n bigint, meta struct<a:int>"


def _schema(spark):
    return spark.createDataFrame([], SCHEMA_DDL).schema


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b'{"id":"a","at":"2026-01-02T03:04:05Z","n":1,"meta":{"a":1},"x":9}', None),
        (None, "empty payload"),
        (b"  ", "empty payload"),
        (b'{"id":"a"', "malformed JSON: not a JSON object"),
        (b"[1, 2]", "malformed JSON: not a JSON object"),
        (b'{"id":"a","at":"2026-01-02T03:04:05Z","n":"x"}', "schema violation: n: expected bigint"),
        (
            b'{"id":"a","at":"2026-01-02T03:04:05Z","meta":{"a":"z"}}',
            "schema violation: meta: expected struct<a:int>",
        ),
        (b'{"at":"2026-01-02T03:04:05Z"}', "missing id"),
        (b'{"id":"a","at":null}', "missing at"),
    ],
)
def test_with_parsed_payload_tags_each_kind_of_bad_record(spark, payload, error):
    df = spark.createDataFrame([(payload,)], "data binary")

    row = df.transform(with_parsed_payload, "data", _schema(spark), ["id", "at"]).first()

    assert row["_error"] == error
    if error is None:
        assert (row["id"], row["n"], row["meta"]["a"]) == ("a", 1, 1)
        assert row["at"] == dt.datetime(2026, 1, 2, 3, 4, 5)
    else:
        assert row["id"] is None and row["n"] is None  # a bad record carries no fields


def test_with_parsed_payload_keeps_other_columns_and_refuses_unknown_required(spark):
    df = spark.createDataFrame([("k", b'{"id":"a"}')], "key string, data string")

    out = df.transform(with_parsed_payload, "data", _schema(spark))

    assert out.columns == ["key", "data", "id", "at", "n", "meta", "_error"]
    with pytest.raises(TransformError, match="required field"):
        df.transform(with_parsed_payload, "data", _schema(spark), ["nope"])


def test_with_event_partitions_gives_date_and_hour_and_null_for_null(spark):
    df = spark.createDataFrame([(dt.datetime(2026, 1, 2, 23, 59, 59),), (None,)], "at timestamp")

    out = df.transform(with_event_partitions, "at")

    expected = spark.createDataFrame(
        [(dt.datetime(2026, 1, 2, 23, 59, 59), dt.date(2026, 1, 2), 23), (None, None, None)],
        "at timestamp, event_date date, event_hour int",
    )
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)
    with pytest.raises(TransformError, match="not a timestamp"):
        spark.createDataFrame([(1,)], "at int").transform(with_event_partitions, "at")


def test_with_quality_errors_keeps_an_earlier_error_and_splits_good_from_bad(spark):
    df = spark.createDataFrame(
        [("a", None, []), ("b", None, ["not_null(n)", "range(x)"]), ("c", "missing id", ["q"])],
        "k string, _error string, _dq_failures array<string>",
    )

    out = df.transform(with_quality_errors)

    errors = {r["k"]: r["_error"] for r in out.collect()}
    assert errors == {"a": None, "b": "quality: not_null(n), range(x)", "c": "missing id"}
    assert [r["k"] for r in out.transform(keep_valid).collect()] == ["a"]
    assert sorted(r["k"] for r in out.transform(keep_quarantined).collect()) == ["b", "c"]
    assert "_error" not in out.transform(keep_valid).columns
