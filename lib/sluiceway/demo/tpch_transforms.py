"""TPC-H business transforms for the demo pipelines: order lines and revenue by nation."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def join_order_lines(lineitem: DataFrame, orders: DataFrame) -> DataFrame:
    """Join each line item to its order and price it; lines without an order are dropped.

    Requires: lineitem l_orderkey, l_linenumber, l_partkey, l_suppkey, l_quantity,
    l_extendedprice, l_discount, l_tax, l_returnflag, l_linestatus, l_shipdate; orders
    o_orderkey, o_custkey, o_orderdate, o_orderstatus, o_orderpriority.
    Adds: net_revenue (decimal(18,4), l_extendedprice * (1 - l_discount)), order_year and
    order_month (int, from o_orderdate).
    """
    # decimal(15,2) * decimal(16,2) is an exact decimal(32,4); decimal(18,4) holds any
    # TPC-H line. A value that overflowed it would be NULL on Spark 3.5, an error on 4.x.
    net_revenue = F.col("l_extendedprice") * (F.lit(1) - F.col("l_discount"))
    return lineitem.join(orders, F.col("l_orderkey") == F.col("o_orderkey"), how="inner").select(
        "l_orderkey",
        "l_linenumber",
        "o_custkey",
        "o_orderdate",
        "o_orderstatus",
        "o_orderpriority",
        "l_partkey",
        "l_suppkey",
        "l_quantity",
        "l_extendedprice",
        "l_discount",
        "l_tax",
        net_revenue.cast("decimal(18,4)").alias("net_revenue"),
        "l_returnflag",
        "l_linestatus",
        "l_shipdate",
        F.year("o_orderdate").alias("order_year"),
        F.month("o_orderdate").alias("order_month"),
    )


def aggregate_revenue_by_nation_by_day(
    order_lines: DataFrame, customer: DataFrame, nation: DataFrame
) -> DataFrame:
    """Sum net revenue per customer nation per order date.

    Requires: order_lines (from join_order_lines) o_custkey, o_orderdate, l_orderkey,
    net_revenue; customer c_custkey, c_nationkey; nation n_nationkey, n_name.
    Adds: one row per (order_date, nation) with order_date, order_year, nation_key,
    nation_name, revenue (decimal(28,4)), orders (distinct orders) and lines (line count).
    Lines whose customer or nation is unknown are dropped.
    """
    customers = customer.select("c_custkey", "c_nationkey")
    nations = nation.select("n_nationkey", "n_name")
    return (
        order_lines.join(customers, F.col("o_custkey") == F.col("c_custkey"), how="inner")
        .join(nations, F.col("c_nationkey") == F.col("n_nationkey"), how="inner")
        .groupBy("o_orderdate", "n_nationkey", "n_name")
        .agg(
            F.sum("net_revenue").alias("revenue"),
            F.countDistinct("l_orderkey").alias("orders"),
            F.count(F.lit(1)).alias("lines"),
        )
        .select(
            F.col("o_orderdate").alias("order_date"),
            F.year("o_orderdate").alias("order_year"),
            F.col("n_nationkey").alias("nation_key"),
            F.col("n_name").alias("nation_name"),
            F.col("revenue").cast("decimal(28,4)").alias("revenue"),
            F.col("orders").cast("long").alias("orders"),
            F.col("lines").cast("long").alias("lines"),
        )
    )
