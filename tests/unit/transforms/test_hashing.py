from __future__ import annotations

import hashlib

import pytest
from chispa import assert_df_equality

from sluiceway.errors import TransformError
from sluiceway.transforms import with_hashed_columns

SALT = "pepper-7f3a"


def _digest(value: str) -> str:
    return hashlib.sha256((SALT + value).encode("utf-8")).hexdigest()


def test_with_hashed_columns_replaces_values_with_salted_sha256_keeping_nulls(spark):
    df = spark.createDataFrame(
        [(1, "ann@example.com", 42, "keep"), (2, None, None, None)],
        "id int, email string, phone bigint, note string",
    )
    expected = spark.createDataFrame(
        [(1, _digest("ann@example.com"), _digest("42"), "keep"), (2, None, None, None)],
        "id int, email string, phone string, note string",
    )
    assert_df_equality(
        with_hashed_columns(df, ["email", "phone"], SALT),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_with_hashed_columns_differs_by_salt(spark):
    df = spark.createDataFrame([("a",), (None,)], "v string")
    one = with_hashed_columns(df, ["v"], SALT).collect()
    other = with_hashed_columns(df, ["v"], SALT + "x").collect()
    assert one[0].v != other[0].v
    assert one[1].v is None and other[1].v is None


def test_with_hashed_columns_rejects_missing_column_without_revealing_salt(spark):
    df = spark.createDataFrame([(None,)], "v string")
    with pytest.raises(TransformError, match="'ssn'") as raised:
        with_hashed_columns(df, ["ssn"], SALT)
    assert SALT not in str(raised.value)


def test_with_hashed_columns_rejects_empty_salt(spark):
    df = spark.createDataFrame([(None,)], "v string")
    with pytest.raises(TransformError, match="salt is empty"):
        with_hashed_columns(df, ["v"], "")
