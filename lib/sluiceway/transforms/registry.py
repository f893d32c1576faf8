"""Turn a transform name from a pipeline spec into the function it names."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from sluiceway.errors import TransformError
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
    spec = name.strip()
    if spec in BUILTIN_TRANSFORMS:
        return BUILTIN_TRANSFORMS[spec]
    if ":" in spec:
        module_name, _, attr_path = spec.partition(":")
    else:
        module_name, _, attr_path = spec.rpartition(".")
    if not module_name or not attr_path:
        raise TransformError(
            f"transform {name!r}: not a built-in ({', '.join(BUILTIN_TRANSFORMS)}) "
            "and not a dotted path like 'package.module:function'"
        )
    try:
        target: Any = importlib.import_module(module_name)
    except (ImportError, SyntaxError) as exc:
        raise TransformError(
            f"transform {name!r}: cannot import module {module_name!r}: {exc}"
        ) from exc
    for attr in attr_path.split("."):
        try:
            target = getattr(target, attr)
        except AttributeError as exc:
            raise TransformError(
                f"transform {name!r}: {module_name!r} has no attribute {attr_path!r}"
            ) from exc
    if not callable(target):
        raise TransformError(
            f"transform {name!r}: {module_name}.{attr_path} is a "
            f"{type(target).__name__}, not a function"
        )
    return target
