from __future__ import annotations

from decimal import Decimal

import pytest
from chispa import assert_df_equality

from sluiceway.errors import TransformError
from sluiceway.transforms import QualityRule, keep_quarantined, keep_valid, with_quality_failures

SCHEMA = "o_orderkey int, o_custkey int, o_orderstatus string, o_totalprice decimal(15,2)"
TAGGED = SCHEMA + ", _dq_failures array<string>"

RULES = [
    QualityRule("not_null", "o_custkey"),
    QualityRule("unique", "o_orderkey"),
    QualityRule("accepted_values", "o_orderstatus", values=("F", "O", "P")),
    QualityRule("range", "o_totalprice", min=Decimal("0"), max=Decimal("1000")),
]

ROWS = [
    (1, 10, "F", Decimal("0.00")),  # passes; both bounds are inclusive
    (2, 11, "O", Decimal("1000.00")),
    (3, None, "X", Decimal("1000.01")),  # fails not_null, accepted_values, range
    (4, 12, None, None),  # NULL passes accepted_values and range
    (5, 13, "P", Decimal("-0.01")),
    (6, 14, "F", None),
    (6, 15, "F", None),  # duplicate key: both rows fail unique
    (None, 16, "O", None),  # NULL keys are never duplicates
    (None, 17, "O", None),
]

EXPECTED_FAILURES = [
    [],
    [],
    ["not_null(o_custkey)", "accepted_values(o_orderstatus)", "range(o_totalprice)"],
    [],
    ["range(o_totalprice)"],
    ["unique(o_orderkey)"],
    ["unique(o_orderkey)"],
    [],
    [],
]


def _tagged_rows():
    return [(*row, failures) for row, failures in zip(ROWS, EXPECTED_FAILURES, strict=True)]


def test_with_quality_failures_lists_the_rules_each_row_fails(spark):
    df = spark.createDataFrame(ROWS, SCHEMA)
    expected = spark.createDataFrame(_tagged_rows(), TAGGED)
    assert_df_equality(
        with_quality_failures(df, RULES), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_with_quality_failures_range_with_one_open_bound(spark):
    df = spark.createDataFrame([(1, -5), (2, 5), (3, None)], "id int, qty int")
    result = with_quality_failures(df, [QualityRule("range", "qty", min=0)])
    expected = spark.createDataFrame(
        [(1, -5, ["range(qty)"]), (2, 5, []), (3, None, [])],
        "id int, qty int, _dq_failures array<string>",
    )
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_with_quality_failures_without_rules_adds_empty_array(spark):
    df = spark.createDataFrame([(1,), (None,)], "id int")
    expected = spark.createDataFrame([(1, []), (None, [])], "id int, _dq_failures array<string>")
    assert_df_equality(
        with_quality_failures(df, []), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_with_quality_failures_rejects_rule_on_missing_column_naming_it(spark):
    df = spark.createDataFrame([(None,)], "id int")
    with pytest.raises(TransformError, match="'o_custkey'"):
        with_quality_failures(df, [QualityRule("not_null", "o_custkey")])


def test_keep_valid_keeps_passing_rows_and_drops_failures_column(spark):
    tagged = spark.createDataFrame(_tagged_rows(), TAGGED)
    expected = spark.createDataFrame(
        [row for row, failures in zip(ROWS, EXPECTED_FAILURES, strict=True) if not failures],
        SCHEMA,
    )
    assert_df_equality(keep_valid(tagged), expected, ignore_row_order=True)


def test_keep_quarantined_keeps_failing_rows_with_their_failures(spark):
    tagged = spark.createDataFrame(_tagged_rows(), TAGGED)
    expected = spark.createDataFrame([row for row in _tagged_rows() if row[-1]], TAGGED)
    assert_df_equality(keep_quarantined(tagged), expected, ignore_row_order=True)


def test_keep_valid_and_keep_quarantined_send_unchecked_rows_to_quarantine(spark):
    tagged = spark.createDataFrame([(1, []), (2, None)], "id int, _dq_failures array<string>")
    assert [row.id for row in keep_valid(tagged).collect()] == [1]
    assert [row.id for row in keep_quarantined(tagged).collect()] == [2]


def test_keep_valid_rejects_frame_without_failures_column(spark):
    df = spark.createDataFrame([(None,)], "id int")
    with pytest.raises(TransformError, match="with_quality_failures first"):
        keep_valid(df)


@pytest.mark.parametrize(
    ("rule", "name"),
    [
        (QualityRule("not_null", "o_custkey"), "not_null(o_custkey)"),
        (QualityRule("unique", "o_orderkey"), "unique(o_orderkey)"),
        (
            QualityRule("accepted_values", "o_orderstatus", values=("F",)),
            "accepted_values(o_orderstatus)",
        ),
        (QualityRule("range", "o_totalprice", max=5), "range(o_totalprice)"),
    ],
)
def test_quality_rule_name_is_kind_of_column(rule, name):
    assert rule.name == name


def test_quality_rule_keeps_values_from_a_list_as_a_tuple():
    rule = QualityRule("accepted_values", "s", values=["F", "O"])  # type: ignore[arg-type]
    assert rule.values == ("F", "O")
    assert hash(rule) == hash(QualityRule("accepted_values", "s", values=("F", "O")))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "positive", "column": "x"}, "unknown kind 'positive'"),
        ({"kind": "accepted_values", "column": "x"}, "give the accepted values"),
        ({"kind": "accepted_values", "column": "x", "values": "FO"}, "give the accepted values"),
        ({"kind": "accepted_values", "column": "x", "values": ("F", None)}, "not_null"),
        ({"kind": "range", "column": "x"}, "give min, max or both"),
        ({"kind": "range", "column": "x", "min": 5, "max": 1}, "above max"),
        ({"kind": "not_null", "column": "x", "values": ("a",)}, "only apply to accepted_values"),
        ({"kind": "unique", "column": "x", "min": 0}, "only apply to range"),
    ],
)
def test_quality_rule_rejects_invalid_definitions(kwargs, message):
    with pytest.raises(ValueError, match=message):
        QualityRule(**kwargs)
