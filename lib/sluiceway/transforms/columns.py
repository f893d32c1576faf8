"""Column-name and column-type transforms: normalize_column_names, cast_to_schema."""

from __future__ import annotations

import re

from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, MapType, StructType, _parse_datatype_string

from sluiceway.errors import TransformError
from sluiceway.transforms._common import col, quote, require_columns

_ACRONYM_BEFORE_WORD = re.compile(r"([A-Z]+)([A-Z][a-z])")  # "HTTPServer" -> "HTTP_Server"
_LOWER_BEFORE_UPPER = re.compile(r"([a-z0-9])([A-Z])")  # "totalPrice" -> "total_Price"
_SEPARATORS = re.compile(r"[\W_]+")  # spaces, hyphens, dots, runs of underscores


def snake_case(name: str) -> str:
    """Return `name` in lower snake_case ("OrderID" -> "order_id"); leading underscores stay."""
    body = name.lstrip("_")
    # Leading underscores mark system columns (_run_id, _dq_failures); keep them so the
    # normalisation is idempotent on our own output.
    prefix = name[: len(name) - len(body)]
    body = _ACRONYM_BEFORE_WORD.sub(r"\1_\2", body)
    body = _LOWER_BEFORE_UPPER.sub(r"\1_\2", body)
    body = _SEPARATORS.sub("_", body).strip("_").lower()
    return prefix + body if body else ""


def normalize_column_names(df: DataFrame) -> DataFrame:
    """Rename every top-level column to lower snake_case ("Ship Date" -> "ship_date").

    Column order and values are unchanged; struct fields keep their names. Two columns that
    normalise to one name raise TransformError naming both.
    """
    originals_by_new: dict[str, list[str]] = {}
    for name in df.columns:
        new = snake_case(name)
        if not new:
            raise TransformError(
                f"normalize_column_names: column {name!r} has no letters or digits to keep"
            )
        originals_by_new.setdefault(new, []).append(name)
    collisions = {new: olds for new, olds in originals_by_new.items() if len(olds) > 1}
    if collisions:
        described = "; ".join(
            " and ".join(repr(old) for old in olds) + f" normalise to {new!r}"
            for new, olds in collisions.items()
        )
        raise TransformError(f"normalize_column_names: column names collide: {described}")
    return df.select([col(name).alias(snake_case(name)) for name in df.columns])


def _first_line(exc: Exception) -> str:
    """Spark's message without the SQL excerpt and plan it appends on later lines."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _sql_type(data_type: DataType) -> str:
    """Render `data_type` as SQL type text, quoting struct field names."""
    if isinstance(data_type, StructType):
        fields = ",".join(f"{quote(f.name)}:{_sql_type(f.dataType)}" for f in data_type.fields)
        return f"struct<{fields}>"
    if isinstance(data_type, ArrayType):
        return f"array<{_sql_type(data_type.elementType)}>"
    if isinstance(data_type, MapType):
        return f"map<{_sql_type(data_type.keyType)},{_sql_type(data_type.valueType)}>"
    return data_type.simpleString()


def _parse_schema(schema: str | StructType) -> StructType:
    if isinstance(schema, StructType):
        return schema
    try:
        # Needs the active SparkContext, which exists whenever a DataFrame does. Spark 3.5 has
        # no public DDL parser (StructType.fromDDL is 4.0+).
        parsed = _parse_datatype_string(schema)
    except ParseException as exc:
        raise TransformError(
            f"cast_to_schema: cannot parse schema {schema!r}: {_first_line(exc)}"
        ) from exc
    if not isinstance(parsed, StructType):
        raise TransformError(
            f"cast_to_schema: schema {schema!r} is a single type; give columns, e.g. 'id bigint'"
        )
    return parsed


def cast_to_schema(df: DataFrame, schema: str | StructType) -> DataFrame:
    """Keep exactly the schema's columns, in schema order, each cast to the schema's type.

    `schema` is a DDL string ("o_orderkey bigint, o_totalprice decimal(15,2)") or a
    StructType. The cast is Spark's `try_cast`, so a value that does not fit its type (a
    malformed number or date, an overflow) becomes NULL on Spark 3.5 and 4.x alike, instead
    of NULL on 3.5 and an error under 4.x's default ANSI mode; pair it with a not_null
    quality rule where NULL is not acceptable. Nullability in the schema is not enforced.
    A cast Spark does not support at all (bigint to array) raises TransformError.
    """
    struct = _parse_schema(schema)
    names = [field.name for field in struct.fields]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TransformError(f"cast_to_schema: schema names column(s) twice: {duplicates}")
    require_columns(df, names, "cast_to_schema")
    casts = [
        F.expr(f"try_cast({quote(field.name)} AS {_sql_type(field.dataType)})").alias(field.name)
        for field in struct.fields
    ]
    try:
        return df.select(casts)
    except AnalysisException as exc:
        raise TransformError(f"cast_to_schema: unsupported cast: {_first_line(exc)}") from exc
