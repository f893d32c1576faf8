"""Data-quality rules: tag each row with the rules it fails, then split valid from quarantined."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from sluiceway.errors import TransformError
from sluiceway.quality_rules import QualityRule
from sluiceway.transforms._common import col, require_columns

FAILURES_COLUMN = "_dq_failures"


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


def _passes(df: DataFrame, transform: str) -> Column:
    """True for a row with an empty `_dq_failures`; false for failures or a NULL array."""
    if FAILURES_COLUMN not in df.columns:
        raise TransformError(
            f"{transform}: column {FAILURES_COLUMN!r} not found; apply with_quality_failures first"
        )
    return F.coalesce(F.array_size(F.col(FAILURES_COLUMN)) == 0, F.lit(False))


def keep_valid(df: DataFrame) -> DataFrame:
    """Keep the rows that failed no rule. Requires: `_dq_failures`, which is dropped."""
    return df.filter(_passes(df, "keep_valid")).select(
        [col(name) for name in df.columns if name != FAILURES_COLUMN]
    )


def keep_quarantined(df: DataFrame) -> DataFrame:
    """Keep the rows that failed at least one rule (or were never checked), `_dq_failures` kept.

    Requires: `_dq_failures`.
    """
    return df.filter(~_passes(df, "keep_quarantined"))
