"""pipeline.build_table and build_output: the pure composition of a table's and an output's
DataFrame, on hand-written rows with NULLs in keys, partition sources and rule columns."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sluiceway.errors import TransformError
from sluiceway.pipeline import build_output, build_table
from sluiceway.spec import parse_spec

SALT = "pepper-7f3a"
RUN = "20240506T070809Z-abc123"
EXTRACTED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
T1 = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
T2 = datetime(2024, 1, 2, 0, 0, tzinfo=UTC)

# The keys of tables.orders in the order build_table applies them.
SPEC = f"""
connections.db = {{ engine = "postgresql", host = "127.0.0.1", password_env = "PW" }}

[pipeline]
name = "p"
output = "/data/out"
hash_salt_env = "SALT"

[tables.orders]
table = "public.orders"
primary_key = ["o_orderkey"]
incremental_column = "updated_at"
transforms = [
  {{ name = "with_date_partitions", params = {{ column = "o_orderdate", prefix = "order_", grain = "month" }} }},
  {{ name = "{__name__}:with_email_domain" }},
]
hash_columns = ["o_email"]
quality = [
  {{ rule = "not_null", column = "o_custkey" }},
  {{ rule = "accepted_values", column = "o_orderstatus", values = ["F", "O"] }},
]
partition_by = ["order_year", "order_month"]

[tables.events]
table = "public.events"
audit = false

[tables.customers]
table = "public.customers"
primary_key = ["c_custkey"]

[outputs.order_customers]
builder = "{__name__}:join_orders_to_customers"
inputs = ["orders", "customers"]
params = {{ how = "left" }}
"""

RAW = (
    "o_orderkey int, o_custkey int, o_orderstatus string, o_orderdate date, "
    "o_email string, updated_at timestamp"
)
BUILT = (
    "o_orderkey int, o_custkey int, o_orderstatus string, o_orderdate date, o_email string, "
    "updated_at timestamp, order_year int, order_month int, o_email_domain string, "
    "_run_id string, _extracted_at timestamp, _source string, _dq_failures array<string>"
)


def with_email_domain(df: DataFrame) -> DataFrame:
    """A user transform: it runs before hashing, so it sees the address in clear."""
    return df.withColumn("o_email_domain", F.substring_index(F.col("o_email"), "@", -1))


def join_orders_to_customers(orders: DataFrame, customers: DataFrame, how: str) -> DataFrame:
    """A user builder: each order with its customer's name."""
    joined = orders.join(customers, orders["o_custkey"] == customers["c_custkey"], how=how)
    return joined.select("o_orderkey", "c_name")


def _spec():
    return parse_spec(SPEC, "p.toml")


def _digest(value: str) -> str:
    return hashlib.sha256((SALT + value).encode("utf-8")).hexdigest()


def _build(df: DataFrame, table: str = "orders", **kwargs) -> DataFrame:
    options = {"run_id": RUN, "extracted_at": EXTRACTED, "source": "postgresql:public.orders"}
    return build_table(df, _spec().table(table), salt=SALT, **{**options, **kwargs})


def _audit(failures: list[str]) -> tuple:
    return (RUN, EXTRACTED, "postgresql:public.orders", failures)


def test_build_table_dedupes_transforms_hashes_stamps_and_checks_rows_with_nulls(spark):
    raw = spark.createDataFrame(
        [
            (1, 10, "O", date(2024, 1, 31), "ann@a.example", T1),  # older version of key 1
            (1, 10, "F", date(2024, 1, 31), "ann@a.example", T2),
            (2, None, None, None, None, T1),  # NULL rule column, partition source, PII
            (None, 30, "P", date(2024, 2, 29), "bo@b.example", T1),  # NULL key: kept as is,
            (None, 30, "P", date(2024, 2, 29), "bo@b.example", T1),  # never folded together
            (3, 40, "O", date(2024, 3, 1), "cy@c.example", None),  # NULL cursor sorts last
            (3, 40, "F", date(2024, 3, 2), "cy@c.example", T1),
        ],
        RAW,
    )
    ann, bo, cy = _digest("ann@a.example"), _digest("bo@b.example"), _digest("cy@c.example")
    expected = spark.createDataFrame(
        [
            (1, 10, "F", date(2024, 1, 31), ann, T2, 2024, 1, "a.example", *_audit([])),
            (2, None, None, None, None, T1, None, None, None, *_audit(["not_null(o_custkey)"])),
            (None, 30, "P", date(2024, 2, 29), bo, T1, 2024, 2, "b.example",
             *_audit(["accepted_values(o_orderstatus)"])),
            (None, 30, "P", date(2024, 2, 29), bo, T1, 2024, 2, "b.example",
             *_audit(["accepted_values(o_orderstatus)"])),
            (3, 40, "F", date(2024, 3, 2), cy, T1, 2024, 3, "c.example", *_audit([])),
        ],
        BUILT,
    )  # fmt: skip

    assert_df_equality(_build(raw), expected, ignore_row_order=True, ignore_nullable=True)


def test_build_table_keeps_every_version_when_the_read_cannot_repeat_a_key(spark):
    raw = spark.createDataFrame([(1, 10, "O", None, None, T1), (1, 10, "F", None, None, T2)], RAW)
    expected = spark.createDataFrame(
        [
            (1, 10, "O", None, None, T1, None, None, None, *_audit([])),
            (1, 10, "F", None, None, T2, None, None, None, *_audit([])),
        ],
        BUILT,
    )

    built = _build(raw, dedupe=False)

    assert_df_equality(built, expected, ignore_row_order=True, ignore_nullable=True)


def test_build_table_without_key_or_audit_only_adds_the_empty_failures(spark):
    raw = spark.createDataFrame([(1, "a"), (1, "a"), (None, None)], "id int, kind string")
    expected = spark.createDataFrame(
        [(1, "a", []), (1, "a", []), (None, None, [])],
        "id int, kind string, _dq_failures array<string>",
    )

    built = _build(raw, "events")

    assert_df_equality(built, expected, ignore_row_order=True, ignore_nullable=True)


def test_build_table_names_the_table_and_transform_a_bad_parameter_breaks(spark):
    spec = parse_spec(
        SPEC.replace('grain = "month"', 'grain = "month", granularity = "day"'), "p.toml"
    )
    raw = spark.createDataFrame([], RAW)

    with pytest.raises(
        TransformError, match=r"^tables\.orders\.transforms: with_date_partitions: "
    ):
        build_table(
            raw, spec.table("orders"), run_id=RUN, extracted_at=EXTRACTED, source="s", salt=SALT
        )


def test_build_output_passes_each_input_by_name_with_the_params(spark):
    orders = spark.createDataFrame([(1, 10), (2, None), (3, 99)], "o_orderkey int, o_custkey int")
    customers = spark.createDataFrame(
        [(10, "Ann"), (None, "nobody"), (20, "Bo")], "c_custkey int, c_name string"
    )
    # A NULL key matches nothing, not even the customer with a NULL key.
    expected = spark.createDataFrame(
        [(1, "Ann"), (2, None), (3, None)], "o_orderkey int, c_name string"
    )
    output = _spec().outputs[0]

    built = build_output(output, {"customers": customers, "orders": orders, "events": orders})

    assert_df_equality(built, expected, ignore_row_order=True, ignore_nullable=True)


def test_build_output_names_the_output_and_builder_when_the_call_does_not_fit(spark):
    spec = parse_spec(SPEC.replace('params = { how = "left" }', "params = { on = 1 }"), "p.toml")
    df = spark.createDataFrame([], "id int")

    with pytest.raises(
        TransformError,
        match=rf"^outputs\.order_customers\.builder: {__name__}:join_orders_to_customers: ",
    ):
        build_output(spec.outputs[0], {"orders": df, "customers": df})
