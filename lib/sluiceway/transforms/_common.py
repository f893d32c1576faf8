"""Helpers shared by the transforms: column references and input checks."""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sluiceway.errors import TransformError


def quote(name: str) -> str:
    """Return `name` backtick-quoted, so dots and spaces are part of the name."""
    return "`" + name.replace("`", "``") + "`"


def col(name: str) -> Column:
    """Reference a top-level column by its exact name (a dot is not a struct access)."""
    return F.col(quote(name))


def require_columns(df: DataFrame, names: Iterable[str], transform: str) -> None:
    """Raise TransformError naming every column of `names` that `df` does not have."""
    present = set(df.columns)
    missing = [name for name in names if name not in present]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise TransformError(
            f"{transform}: column(s) {listed} not found; the DataFrame has {df.columns}"
        )
