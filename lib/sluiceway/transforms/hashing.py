"""Pseudonymisation: with_hashed_columns replaces values with salted SHA-256 digests."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sluiceway.errors import TransformError
from sluiceway.transforms._common import col, require_columns


def with_hashed_columns(df: DataFrame, columns: Sequence[str], salt: str) -> DataFrame:
    """Replace each listed column with the lowercase hex SHA-256 of salt + value as string.

    Requires: `columns`. Each keeps its position and becomes a string; NULL stays NULL.
    The salt is never put in an error message or log line. It does travel as a literal in
    the query plan, so `explain()` and the Spark UI show it unless the session sets
    `spark.sql.redaction.string.regex` to cover it.
    """
    # Messages below describe the salt, never echo it.
    if not isinstance(salt, str):
        raise TransformError(
            f"with_hashed_columns: salt must be a string, got {type(salt).__name__}"
        )
    if not salt:
        raise TransformError("with_hashed_columns: salt is empty; an unsalted hash is reversible")
    names = list(dict.fromkeys([columns] if isinstance(columns, str) else columns))
    require_columns(df, names, "with_hashed_columns")
    return df.withColumns(
        {name: F.sha2(F.concat(F.lit(salt), col(name).cast("string")), 256) for name in names}
    )
