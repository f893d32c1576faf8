"""Deduplication: dedupe_latest keeps the newest version of each key."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, MapType, StructType

from sluiceway.errors import TransformError
from sluiceway.transforms._common import col, require_columns

_RANK = "__sluiceway_dedupe_rank"


def _has_map(data_type: DataType) -> bool:
    """Whether `data_type` is or contains a map, which Spark can neither hash nor sort."""
    if isinstance(data_type, MapType):
        return True
    if isinstance(data_type, ArrayType):
        return _has_map(data_type.elementType)
    if isinstance(data_type, StructType):
        return any(_has_map(field.dataType) for field in data_type.fields)
    return False


def _tie_breakers(df: DataFrame) -> list[Column]:
    """Orderings that make the row choice a function of row content alone."""
    hashable = [
        F.to_json(col(field.name)) if _has_map(field.dataType) else col(field.name)
        for field in df.schema.fields
    ]
    # The hash settles almost every tie in one comparison; the columns themselves settle
    # the (vanishingly rare) hash collision between different rows. Rows equal in every
    # sortable column are interchangeable, so which one survives does not matter.
    sortable = [
        col(field.name).asc_nulls_last()
        for field in df.schema.fields
        if not _has_map(field.dataType)
    ]
    return [F.xxhash64(*hashable).asc(), *sortable]


def _any_null(keys: Sequence[str]) -> Column:
    null = col(keys[0]).isNull()
    for key in keys[1:]:
        null = null | col(key).isNull()
    return null


def dedupe_latest(df: DataFrame, keys: Sequence[str], order_by: str | Sequence[str]) -> DataFrame:
    """Keep one row per key: the newest by `order_by` (descending, NULLs last).

    Rows tied on `order_by` are ordered by a hash of all columns, then by the columns, so
    the same input rows give the same output under any partitioning. A row with a NULL in
    any key column is kept as it is: NULL matches no key, so such rows are never folded
    together (the sinks refuse them by name). Output columns are the input columns, in
    the same order.
    """
    keys = [keys] if isinstance(keys, str) else list(keys)
    ordering = [order_by] if isinstance(order_by, str) else list(order_by)
    if not keys:
        raise TransformError("dedupe_latest: keys must name at least one column")
    if not ordering:
        raise TransformError("dedupe_latest: order_by must name at least one column")
    require_columns(df, [*keys, *ordering], "dedupe_latest")
    window = Window.partitionBy([col(key) for key in keys]).orderBy(
        *[col(name).desc_nulls_last() for name in ordering], *_tie_breakers(df)
    )
    return (
        df.withColumn(_RANK, F.row_number().over(window))
        .filter((F.col(_RANK) == 1) | _any_null(keys))
        .select([col(name) for name in df.columns])
    )
