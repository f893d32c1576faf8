"""Pure DataFrame -> DataFrame transforms; each chains with `df.transform(fn, *args)`."""

from __future__ import annotations

from sluiceway.quality_rules import QualityRule
from sluiceway.transforms.audit import with_audit_columns
from sluiceway.transforms.columns import cast_to_schema, normalize_column_names
from sluiceway.transforms.dedupe import dedupe_latest
from sluiceway.transforms.hashing import with_hashed_columns
from sluiceway.transforms.partitions import with_date_partitions
from sluiceway.transforms.quality import keep_quarantined, keep_valid, with_quality_failures
from sluiceway.transforms.registry import BUILTIN_TRANSFORMS, resolve_transform

__all__ = [
    "BUILTIN_TRANSFORMS",
    "QualityRule",
    "cast_to_schema",
    "dedupe_latest",
    "keep_quarantined",
    "keep_valid",
    "normalize_column_names",
    "resolve_transform",
    "with_audit_columns",
    "with_date_partitions",
    "with_hashed_columns",
    "with_quality_failures",
]
