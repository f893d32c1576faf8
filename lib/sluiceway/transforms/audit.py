"""Lineage columns: with_audit_columns stamps each row with its run, time and source."""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sluiceway.errors import TransformError


def with_audit_columns(
    df: DataFrame, run_id: str, extracted_at: datetime, source: str
) -> DataFrame:
    """Add the run's lineage to every row; a naive `extracted_at` is taken as UTC.

    Adds: `_run_id` (string), `_extracted_at` (timestamp), `_source` (string), replacing
    existing columns of those names.
    """
    if not isinstance(extracted_at, datetime):
        raise TransformError(
            "with_audit_columns: extracted_at must be a datetime, "
            f"got {type(extracted_at).__name__}"
        )
    # PySpark reads a naive datetime in the Python process's local zone, which differs
    # between a laptop and a Glue worker; pin it to UTC like the session time zone.
    if extracted_at.tzinfo is None:
        extracted_at = extracted_at.replace(tzinfo=UTC)
    return df.withColumns(
        {
            "_run_id": F.lit(run_id).cast("string"),
            "_extracted_at": F.lit(extracted_at).cast("timestamp"),
            "_source": F.lit(source).cast("string"),
        }
    )
