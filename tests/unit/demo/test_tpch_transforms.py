from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from chispa import assert_df_equality

from sluiceway.demo.tpch_transforms import aggregate_revenue_by_nation_by_day, join_order_lines

UPDATED = datetime(2024, 1, 1, tzinfo=UTC)

LINEITEM = (
    "l_orderkey bigint, l_partkey bigint, l_suppkey bigint, l_linenumber int, "
    "l_quantity decimal(15,2), l_extendedprice decimal(15,2), l_discount decimal(15,2), "
    "l_tax decimal(15,2), l_returnflag string, l_linestatus string, l_shipdate date, "
    "l_commitdate date, l_receiptdate date, l_shipinstruct string, l_shipmode string, "
    "l_comment string, updated_at timestamp"
)
ORDERS = (
    "o_orderkey bigint, o_custkey bigint, o_orderstatus string, o_totalprice decimal(15,2), "
    "o_orderdate date, o_orderpriority string, o_clerk string, o_shippriority int, "
    "o_comment string, updated_at timestamp"
)
ORDER_LINES = (
    "l_orderkey bigint, l_linenumber int, o_custkey bigint, o_orderdate date, "
    "o_orderstatus string, o_orderpriority string, l_partkey bigint, l_suppkey bigint, "
    "l_quantity decimal(15,2), l_extendedprice decimal(15,2), l_discount decimal(15,2), "
    "l_tax decimal(15,2), net_revenue decimal(18,4), l_returnflag string, "
    "l_linestatus string, l_shipdate date, order_year int, order_month int"
)
CUSTOMER = "c_custkey bigint, c_name string, c_nationkey bigint, updated_at timestamp"
NATION = "n_nationkey bigint, n_name string, n_regionkey bigint, updated_at timestamp"
REVENUE = (
    "order_date date, order_year int, nation_key bigint, nation_name string, "
    "revenue decimal(28,4), orders bigint, lines bigint"
)


def _line(orderkey, linenumber, price, discount):
    return (
        orderkey, 100 + linenumber, 200, linenumber, Decimal("1.00"), price, discount,
        Decimal("0.08"), "N", "O", date(1996, 3, 13), None, None, None, None, None, UPDATED,
    )  # fmt: skip


def _order(orderkey, custkey, orderdate):
    return (orderkey, custkey, "O", None, orderdate, "1-URGENT", None, 0, None, UPDATED)


def test_join_order_lines_prices_lines_and_drops_lines_without_order(spark):
    lineitem = spark.createDataFrame(
        [
            _line(1, 1, Decimal("1000.00"), Decimal("0.05")),
            _line(1, 2, Decimal("333.33"), Decimal("0.07")),
            _line(2, 1, Decimal("10.00"), None),  # NULL discount -> NULL revenue
            _line(9, 1, Decimal("5.00"), Decimal("0.00")),  # no such order
        ],
        LINEITEM,
    )
    orders = spark.createDataFrame(
        [_order(1, 7, date(1996, 1, 2)), _order(2, 8, date(1997, 12, 31)), _order(3, 9, None)],
        ORDERS,
    )

    def expected_row(orderkey, linenumber, custkey, orderdate, price, discount, revenue):
        return (
            orderkey, linenumber, custkey, orderdate, "O", "1-URGENT", 100 + linenumber, 200,
            Decimal("1.00"), price, discount, Decimal("0.08"), revenue, "N", "O",
            date(1996, 3, 13), orderdate.year, orderdate.month,
        )  # fmt: skip

    expected = spark.createDataFrame(
        [
            expected_row(
                1, 1, 7, date(1996, 1, 2), Decimal("1000.00"), Decimal("0.05"), Decimal("950.0000")
            ),
            # 333.33 * 0.93 = 309.9969 exactly; a double would round it.
            expected_row(
                1, 2, 7, date(1996, 1, 2), Decimal("333.33"), Decimal("0.07"), Decimal("309.9969")
            ),
            expected_row(2, 1, 8, date(1997, 12, 31), Decimal("10.00"), None, None),
        ],  # fmt: skip
        ORDER_LINES,
    )
    result = join_order_lines(lineitem=lineitem, orders=orders)
    assert result.columns == expected.columns
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def _order_line(orderkey, linenumber, custkey, orderdate, revenue):
    return (
        orderkey, linenumber, custkey, orderdate, "O", "1-URGENT", 1, 2, Decimal("1.00"),
        Decimal("1.00"), Decimal("0.00"), Decimal("0.00"), revenue, "N", "O", orderdate,
        orderdate.year, orderdate.month,
    )  # fmt: skip


def test_aggregate_revenue_by_nation_by_day_sums_exactly_and_counts_distinct_orders(spark):
    day, next_day = date(1995, 6, 30), date(1995, 7, 1)
    order_lines = spark.createDataFrame(
        [
            _order_line(1, 1, 7, day, Decimal("0.1000")),
            _order_line(1, 2, 7, day, Decimal("0.2000")),
            _order_line(2, 1, 8, day, None),  # NULL revenue counts as a line, adds nothing
            _order_line(3, 1, 9, day, Decimal("5.0000")),  # other nation
            _order_line(4, 1, 7, next_day, Decimal("99999999999999.9999")),
            _order_line(4, 2, 7, next_day, Decimal("99999999999999.9999")),
            _order_line(5, 1, 404, day, Decimal("1.0000")),  # unknown customer
        ],
        ORDER_LINES,
    )
    customer = spark.createDataFrame(
        [
            (7, "a", 3, UPDATED),
            (8, "b", 3, UPDATED),
            (9, "c", 6, UPDATED),
            (10, "d", None, UPDATED),
        ],
        CUSTOMER,
    )
    nation = spark.createDataFrame([(3, "CANADA", 1, UPDATED), (6, "FRANCE", 3, UPDATED)], NATION)
    expected = spark.createDataFrame(
        [
            (day, 1995, 3, "CANADA", Decimal("0.3000"), 2, 3),
            (day, 1995, 6, "FRANCE", Decimal("5.0000"), 1, 1),
            (next_day, 1995, 3, "CANADA", Decimal("199999999999999.9998"), 1, 2),
        ],
        REVENUE,
    )
    result = aggregate_revenue_by_nation_by_day(
        order_lines=order_lines, customer=customer, nation=nation
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)
