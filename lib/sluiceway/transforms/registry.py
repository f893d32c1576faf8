"""Turn a transform name from a pipeline spec into the function it names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sluiceway.spec_check import import_transform
from sluiceway.transforms.audit import with_audit_columns
from sluiceway.transforms.columns import cast_to_schema, normalize_column_names
from sluiceway.transforms.dedupe import dedupe_latest
from sluiceway.transforms.hashing import with_hashed_columns
from sluiceway.transforms.partitions import with_date_partitions

BUILTIN_TRANSFORMS: dict[str, Callable[..., Any]] = {
    "normalize_column_names": normalize_column_names,
    "cast_to_schema": cast_to_schema,
    "dedupe_latest": dedupe_latest,
    "with_date_partitions": with_date_partitions,
    "with_hashed_columns": with_hashed_columns,
    "with_audit_columns": with_audit_columns,
}


def resolve_transform(name: str) -> Callable[..., Any]:
    """Return the built-in `name`, or the function at "pkg.module:func" or "pkg.module.func"."""
    return BUILTIN_TRANSFORMS.get(name.strip()) or import_transform(name)
