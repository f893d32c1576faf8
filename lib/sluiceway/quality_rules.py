"""Data-quality rules as plain values: what a spec's `quality = [...]` parses into.

Standard library only, so a spec parses without Spark; the checks themselves are
`sluiceway.transforms.quality`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
