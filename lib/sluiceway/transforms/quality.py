"""Data-quality rules: tag each row with the rules it fails, then split valid from quarantined.

The one bad-row vocabulary of batch and stream: a row's tag says what is wrong with it,
`keep_valid` and `keep_quarantined` split on it. The tag is `_dq_failures`, the rules the row
fails (a table's quarantine keeps it), or, once a stream has folded its parse error and
rule failures into one reason (transforms.events.with_quality_errors), `_error` (a dead
letter's `error`). A frame with `_dq_failures` is split on it alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from sluiceway.errors import TransformError
from sluiceway.quality_rules import QualityRule
from sluiceway.transforms._common import col, require_columns

FAILURES_COLUMN = "_dq_failures"
ERROR_COLUMN = "_error"


def _fails(rule: QualityRule) -> Column:
    """A condition that is true when a row fails `rule` (NULL counts as passing)."""
    value = col(rule.column)
    if rule.kind == "not_null":
        return value.isNull()
    if rule.kind == "accepted_values":
        return ~value.isin(list(rule.values or ()))
    if rule.kind == "range":
        below = value < F.lit(rule.min) if rule.min is not None else F.lit(False)
        above = value > F.lit(rule.max) if rule.max is not None else F.lit(False)
        return below | above
    # unique: NULLs are never duplicates of each other.
    occurrences = F.count(F.lit(1)).over(Window.partitionBy(value))
    return value.isNotNull() & (occurrences > 1)


def with_quality_failures(df: DataFrame, rules: Sequence[QualityRule]) -> DataFrame:
    """Tag each row with the names of the rules it fails.

    Requires: each rule's column. Adds: `_dq_failures` array<string>, empty when the row
    passes every rule (also when there are no rules). not_null fails NULL; accepted_values
    and range pass NULL (range bounds are inclusive); unique fails every row whose non-NULL
    value occurs more than once. Give values and bounds in the column's type: Spark's
    implicit casts between, say, string and int differ under 4.x's ANSI mode.
    """
    require_columns(df, [rule.column for rule in rules], "with_quality_failures")
    tags = [F.when(_fails(rule), F.lit(rule.name)) for rule in rules]
    # Two rules of one kind on one column share a name; report it once.
    failures = F.array_distinct(F.array_compact(F.array(*tags))) if tags else F.array()
    return df.withColumn(FAILURES_COLUMN, failures.cast("array<string>"))


def _tag(df: DataFrame, transform: str) -> str:
    """The column that says what is wrong with a row: `_dq_failures`, else `_error`."""
    for name in (FAILURES_COLUMN, ERROR_COLUMN):
        if name in df.columns:
            return name
    raise TransformError(
        f"{transform}: column {FAILURES_COLUMN!r} not found; apply with_quality_failures first"
    )


def _passes(tag: str) -> Column:
    """True for a row that failed nothing; a NULL `_dq_failures` (never checked) fails."""
    if tag == ERROR_COLUMN:
        return F.col(ERROR_COLUMN).isNull()
    return F.coalesce(F.array_size(F.col(FAILURES_COLUMN)) == 0, F.lit(False))


def keep_valid(df: DataFrame) -> DataFrame:
    """Keep the rows that failed nothing. Requires: `_dq_failures` or `_error`, dropped."""
    tag = _tag(df, "keep_valid")
    return df.filter(_passes(tag)).select([col(name) for name in df.columns if name != tag])


def keep_quarantined(df: DataFrame) -> DataFrame:
    """Keep the rows that failed a rule or have an `_error` (or were never checked), tag kept.

    Requires: `_dq_failures` or `_error`.
    """
    return df.filter(~_passes(_tag(df, "keep_quarantined")))
