"""Partition columns derived from a date or timestamp: with_date_partitions."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

from sluiceway.errors import TransformError
from sluiceway.transforms._common import col, require_columns

_PARTS_BY_GRAIN: dict[str, tuple[str, ...]] = {
    "year": ("year",),
    "month": ("year", "month"),
    "day": ("year", "month", "day"),
}
_EXTRACT = {"year": F.year, "month": F.month, "day": F.dayofmonth}


def with_date_partitions(
    df: DataFrame, column: str, prefix: str = "", grain: str = "day"
) -> DataFrame:
    """Add integer partition columns from a date or timestamp column.

    Requires: `column` (date, timestamp or timestamp_ntz; a timestamp is read in the
    session time zone). Adds: `{prefix}year`, then `{prefix}month` for grain "month" or
    "day", then `{prefix}day` for grain "day". A NULL input gives NULL partitions. An
    existing column of the same name is replaced in place.
    """
    if grain not in _PARTS_BY_GRAIN:
        raise TransformError(
            f"with_date_partitions: unknown grain {grain!r}; expected one of "
            f"{sorted(_PARTS_BY_GRAIN)}"
        )
    require_columns(df, [column], "with_date_partitions")
    data_type = df.schema[column].dataType
    if not isinstance(data_type, DateType | TimestampType | TimestampNTZType):
        raise TransformError(
            f"with_date_partitions: column {column!r} is {data_type.simpleString()}, "
            "not a date or timestamp; cast it first"
        )
    parts: dict[str, Column] = {
        f"{prefix}{part}": _EXTRACT[part](col(column)) for part in _PARTS_BY_GRAIN[grain]
    }
    return df.withColumns(parts)
