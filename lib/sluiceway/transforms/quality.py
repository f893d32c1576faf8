"""Data-quality rules: tag each row with the rules it fails, then split valid from quarantined."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from sluiceway.errors import TransformError
from sluiceway.transforms._common import col, require_columns

FAILURES_COLUMN = "_dq_failures"
RULE_KINDS = ("not_null", "unique", "accepted_values", "range")


@dataclass(frozen=True)
class QualityRule:
    """One check on one column; `name` ("not_null(o_custkey)") is what a failing row carries."""

    kind: str
    column: str
    values: tuple[Any, ...] | None = None
    min: Any = None
    max: Any = None

    def __post_init__(self) -> None:
        if self.kind not in RULE_KINDS:
            raise ValueError(
                f"quality rule on {self.column!r}: unknown kind {self.kind!r}; "
                f"expected one of {', '.join(RULE_KINDS)}"
            )
        if not self.column:
            raise ValueError(f"{self.kind} quality rule: column is empty")
        if self.kind == "accepted_values":
            if isinstance(self.values, str) or not self.values:
                raise ValueError(f"{self.name}: give the accepted values as a list or tuple")
            if any(value is None for value in self.values):
                raise ValueError(
                    f"{self.name}: NULL always passes accepted_values; "
                    "use a not_null rule to reject NULL"
                )
            # Lists arrive from parsed specs; a tuple keeps the rule hashable.
            object.__setattr__(self, "values", tuple(self.values))
        elif self.values is not None:
            raise ValueError(f"{self.name}: values only apply to accepted_values rules")
        if self.kind == "range":
            if self.min is None and self.max is None:
                raise ValueError(f"{self.name}: give min, max or both")
            if self.min is not None and self.max is not None:
                try:
                    inverted = self.min > self.max
                except TypeError as exc:
                    raise ValueError(
                        f"{self.name}: min {self.min!r} and max {self.max!r} cannot be compared"
                    ) from exc
                if inverted:
                    raise ValueError(f"{self.name}: min {self.min!r} is above max {self.max!r}")
        elif self.min is not None or self.max is not None:
            raise ValueError(f"{self.name}: min and max only apply to range rules")

    @property
    def name(self) -> str:
        """The rule as it appears in `_dq_failures`, e.g. "range(o_totalprice)"."""
        return f"{self.kind}({self.column})"


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
