from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql.types import DateType, DecimalType, LongType, StructField, StructType

from sluiceway.errors import TransformError
from sluiceway.transforms import cast_to_schema, normalize_column_names
from sluiceway.transforms.columns import snake_case


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("OrderID", "order_id"),
        ("Ship Date", "ship_date"),
        ("o-totalPrice", "o_total_price"),
        ("HTTPStatusCode", "http_status_code"),
        ("address2Line", "address2_line"),
        ("  Customer  Name ", "customer_name"),
        ("a.b", "a_b"),
        ("already_snake", "already_snake"),
        ("_run_id", "_run_id"),
        ("Größe", "größe"),
    ],
)
def test_snake_case_converts_camel_case_spaces_and_punctuation(original, expected):
    assert snake_case(original) == expected


def test_normalize_column_names_renames_to_lower_snake_case_keeping_values(spark):
    df = spark.createDataFrame(
        [(1, "2024-01-02", "10.5", "x"), (None, None, None, None)],
        "`OrderID` int, `Ship Date` string, `o-totalPrice` string, `a.b` string",
    )
    expected = spark.createDataFrame(
        [(1, "2024-01-02", "10.5", "x"), (None, None, None, None)],
        "order_id int, ship_date string, o_total_price string, a_b string",
    )
    assert_df_equality(normalize_column_names(df), expected, ignore_row_order=True)


def test_normalize_column_names_is_idempotent(spark):
    df = spark.createDataFrame([(1, None)], "`OrderID` int, `_Run Id` string")
    once = normalize_column_names(df)
    assert once.columns == ["order_id", "_run_id"]
    assert normalize_column_names(once).columns == once.columns


def test_normalize_column_names_rejects_collision_naming_both_originals(spark):
    df = spark.createDataFrame([(1, None)], "`OrderID` int, order_id int")
    with pytest.raises(TransformError, match=r"'OrderID' and 'order_id' normalise to 'order_id'"):
        normalize_column_names(df)


def test_normalize_column_names_rejects_name_without_letters_or_digits(spark):
    df = spark.createDataFrame([(None,)], "`--` int")
    with pytest.raises(TransformError, match="'--'"):
        normalize_column_names(df)


def test_cast_to_schema_casts_reorders_and_drops_extra_columns(spark):
    df = spark.createDataFrame(
        [("7.5", "x", "12", "2024-03-01"), (None, "y", None, None)],
        "o_totalprice string, extra string, o_orderkey string, o_orderdate string",
    )
    schema = "o_orderkey bigint, o_orderdate date, o_totalprice decimal(15,2)"
    expected = spark.createDataFrame(
        [(12, date(2024, 3, 1), Decimal("7.50")), (None, None, None)], schema
    )
    assert_df_equality(
        cast_to_schema(df, schema), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_cast_to_schema_accepts_struct_type(spark):
    df = spark.createDataFrame([("3", "2024-02-29"), (None, None)], "k string, d string")
    schema = StructType([StructField("d", DateType()), StructField("k", LongType())])
    expected = spark.createDataFrame([(date(2024, 2, 29), 3), (None, None)], schema)
    assert_df_equality(
        cast_to_schema(df, schema), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_cast_to_schema_turns_unparseable_values_into_null_on_every_spark_line(spark):
    # Spark 4's ANSI mode would raise on each of these with a plain cast.
    df = spark.createDataFrame(
        [("abc", "2024-02-30", "1e30", "12.5"), (None, None, None, None)],
        "n string, d string, m string, i string",
    )
    schema = "n int, d date, m decimal(15,2), i int"
    expected = spark.createDataFrame([(None, None, None, None)] * 2, schema)
    assert_df_equality(
        cast_to_schema(df, schema), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_cast_to_schema_casts_inside_structs_with_quoted_field_names(spark):
    df = spark.createDataFrame(
        [(("5", "1.25"),), ((None, None),), (None,)],
        "s struct<`unit count`: string, price: string>",
    )
    schema = "s struct<`unit count`: int, price: decimal(15,2)>"
    expected = spark.createDataFrame([((5, Decimal("1.25")),), ((None, None),), (None,)], schema)
    result = cast_to_schema(df, schema)
    assert result.schema["s"].dataType.fields[1].dataType == DecimalType(15, 2)
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_cast_to_schema_rejects_missing_column_naming_it(spark):
    df = spark.createDataFrame([(1,), (None,)], "o_orderkey int")
    with pytest.raises(TransformError, match="'o_custkey'"):
        cast_to_schema(df, "o_orderkey bigint, o_custkey bigint")


def test_cast_to_schema_rejects_unparseable_schema(spark):
    df = spark.createDataFrame([(1,), (None,)], "a int")
    with pytest.raises(TransformError, match="cannot parse schema"):
        cast_to_schema(df, "a integr")


def test_cast_to_schema_rejects_a_single_type_instead_of_columns(spark):
    df = spark.createDataFrame([(1,), (None,)], "a int")
    with pytest.raises(TransformError, match="single type"):
        cast_to_schema(df, "bigint")


def test_cast_to_schema_rejects_cast_spark_does_not_support(spark):
    df = spark.createDataFrame([(1,), (None,)], "a bigint")
    with pytest.raises(TransformError, match="unsupported cast"):
        cast_to_schema(df, "a array<int>")
