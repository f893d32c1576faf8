"""Pseudonymisation: with_hashed_columns replaces values with salted SHA-256 digests."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sluiceway.errors import TransformError
from sluiceway.transforms._common import col, require_columns

# The salt's column, joined for the hashing and dropped after it.
SALT_COLUMN = "__sluiceway_salt"


def with_hashed_columns(df: DataFrame, columns: Sequence[str], salt: str) -> DataFrame:
    """Replace each listed column with the lowercase hex SHA-256 of salt + value as string.

    Requires: `columns`. Each keeps its position and becomes a string; NULL stays NULL.
    The salt is never in an error message, a log line or a query plan: it joins the rows as
    the one value of a broadcast one-row DataFrame, not as a literal, which every printed
    plan would show (`explain()`, the Spark UI, the event log).
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
    salt_row = df.sparkSession.createDataFrame([(salt,)], f"{SALT_COLUMN} string")
    salted = df.crossJoin(F.broadcast(salt_row))
    hashed = {
        name: F.sha2(F.concat(F.col(SALT_COLUMN), col(name).cast("string")), 256) for name in names
    }
    return salted.withColumns(hashed).drop(SALT_COLUMN)
