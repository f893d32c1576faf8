"""Event-stream transforms: parse JSON payloads, tag bad records, derive event partitions.

Every function here works on a streaming DataFrame as well as on a static one (no
window functions, no actions), so the same code runs before and inside foreachBatch.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from sluiceway.errors import TransformError
from sluiceway.transforms._common import col, quote, require_columns
from sluiceway.transforms.quality import ERROR_COLUMN, FAILURES_COLUMN

_CORRUPT = "_corrupt_record"
_PARSED = "__sluiceway_parsed"
_TEXT = "__sluiceway_text"


def _field_check(text: Column, field: StructField) -> Column:
    """The field's name and expected type when the payload has it but it does not parse."""
    alone = F.from_json(
        text,
        StructType([field, StructField(_CORRUPT, StringType())]),
        {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT},
    )
    raw = F.get_json_object(text, f"$.{field.name}")
    # A nested value that does not fit leaves the field partly parsed: the corrupt-record
    # column is what tells.
    return F.when(
        raw.isNotNull() & (alone[field.name].isNull() | alone[_CORRUPT].isNotNull()),
        F.lit(f"{field.name}: expected {field.dataType.simpleString()}"),
    )


def with_parsed_payload(
    df: DataFrame, payload: str, schema: StructType, required: Sequence[str] = ()
) -> DataFrame:
    """Parse the JSON object in `payload` (binary or string) into one column per schema field.

    Requires: `payload`. Adds: each field of `schema` (NULL when the record is bad) and
    `_error`, NULL for a good record, else why it is bad: an empty payload, a payload that
    is not a JSON object, a field whose value does not fit its type (named, with the type
    expected), or a `required` field that is missing or null. JSON keys absent from the
    schema are ignored. Existing columns named like schema fields are replaced.
    """
    require_columns(df, [payload], "with_parsed_payload")
    missing = [name for name in required if name not in schema.fieldNames()]
    if missing:
        raise TransformError(f"with_parsed_payload: required field(s) {missing} not in the schema")
    text = F.col(_TEXT)
    with_corrupt = StructType([*schema.fields, StructField(_CORRUPT, StringType())])
    parsed = F.from_json(
        text, with_corrupt, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT}
    )
    is_object = F.ltrim(text).startswith("{") & F.get_json_object(text, "$").isNotNull()
    field_errors = F.concat_ws("; ", *[_field_check(text, f) for f in schema.fields])
    failed = F.col(_PARSED).isNull() | F.col(f"{_PARSED}.{_CORRUPT}").isNotNull()
    # `failed` comes first so a good record is parsed once: `is_object` parses it again.
    error = (
        F.when(text.isNull() | (F.trim(text) == ""), F.lit("empty payload"))
        .when(failed & ~is_object, F.lit("malformed JSON: not a JSON object"))
        .when(
            failed,
            F.concat(
                F.lit("schema violation: "),
                F.coalesce(F.nullif(field_errors, F.lit("")), F.lit("does not match the schema")),
            ),
        )
    )
    for name in required:
        error = error.when(F.col(f"{_PARSED}.{quote(name)}").isNull(), F.lit(f"missing {name}"))
    kept = [c for c in df.columns if c not in schema.fieldNames() and c != ERROR_COLUMN]
    good = F.col(ERROR_COLUMN).isNull()
    return (
        df.withColumn(_TEXT, col(payload).cast("string"))
        .withColumn(_PARSED, parsed)
        .withColumn(ERROR_COLUMN, error)
        .select(
            *[col(c) for c in kept],
            *[
                F.when(good, F.col(f"{_PARSED}.{quote(f.name)}")).alias(f.name)
                for f in schema.fields
            ],
            F.col(ERROR_COLUMN),
        )
    )


def with_event_partitions(
    df: DataFrame, column: str, date_column: str = "event_date", hour_column: str = "event_hour"
) -> DataFrame:
    """Add the date and the hour (0-23) of `column`, read in the session time zone.

    Requires: `column` (timestamp, timestamp_ntz or date; a date gives hour 0). Adds:
    `date_column` (date) and `hour_column` (int); NULL in gives NULL out.
    """
    require_columns(df, [column], "with_event_partitions")
    data_type = df.schema[column].dataType
    if not isinstance(data_type, TimestampType | TimestampNTZType | DateType):
        raise TransformError(
            f"with_event_partitions: column {column!r} is {data_type.simpleString()}, "
            "not a timestamp or date"
        )
    value = col(column)
    hour = F.lit(0) if isinstance(data_type, DateType) else F.hour(value)
    return df.withColumns({date_column: F.to_date(value), hour_column: hour.cast("int")})


def with_quality_errors(df: DataFrame) -> DataFrame:
    """Fold `_dq_failures` into `_error` ("quality: not_null(x), range(y)"), dropping it.

    Requires: `_dq_failures`; `_error` is added when absent. An existing `_error` wins.
    """
    require_columns(df, [FAILURES_COLUMN], "with_quality_errors")
    failures = F.col(FAILURES_COLUMN)
    quality = F.when(
        F.coalesce(F.array_size(failures), F.lit(0)) > 0,
        F.concat(F.lit("quality: "), F.array_join(failures, ", ")),
    )
    current = F.col(ERROR_COLUMN) if ERROR_COLUMN in df.columns else F.lit(None).cast("string")
    return df.withColumn(ERROR_COLUMN, F.coalesce(current, quality)).drop(FAILURES_COLUMN)
