"""Schema evolution of an Iceberg table from the batch about to land in it: which columns to
add, which to widen, and which differences to refuse, decided from the two schemas alone
(no IO here: `IcebergDataset.write` runs the statements).

Iceberg changes a column's type in place only where every stored value stays readable:
int -> bigint, float -> double, decimal(P,S) -> decimal(P2,S) with P2 > P. A batch type the
table's column already holds without loss (a smallint into an int column: Iceberg has no
smallint, so every source smallint meets an int column; an int into a column widened to
bigint earlier) is written as is. Anything else would need the table rewritten, and is
refused before anything is written.

A table column the batch lacks keeps its stored value on a merge's update and is NULL in
inserted rows; a required (NOT NULL) one is refused, as an insert would fail on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ByteType,
    DataType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    ShortType,
    StructField,
    StructType,
)

from sluiceway.errors import SinkError

WIDENINGS = "int -> bigint, float -> double, decimal(P,S) -> decimal(P2,S) with P2 > P"


@dataclass(frozen=True)
class SchemaChanges:
    """What a batch needs from its table: columns to add, columns to widen (name, SQL type),
    and the table's columns the batch does not have."""

    added: tuple[StructField, ...] = ()
    widened: tuple[tuple[str, str], ...] = ()
    missing: tuple[StructField, ...] = ()

    def statements(self, identifier: str) -> list[str]:
        """The ALTER TABLE statements that make the table take the batch."""
        adds = [
            f"ALTER TABLE {identifier} ADD COLUMN `{f.name}` {f.dataType.simpleString()}"
            for f in self.added
        ]
        widens = [
            f"ALTER TABLE {identifier} ALTER COLUMN `{name}` TYPE {sql}"
            for name, sql in self.widened
        ]
        return adds + widens


def fits(new: DataType, old: DataType) -> bool:
    """A value of `new` is stored in an `old` column without loss or change."""
    if new == old:
        return True
    if isinstance(new, ByteType | ShortType | IntegerType):
        return isinstance(old, IntegerType | LongType)
    if isinstance(new, FloatType):
        return isinstance(old, DoubleType)
    if isinstance(new, DecimalType) and isinstance(old, DecimalType):
        return new.scale == old.scale and new.precision <= old.precision
    return False


def widened(new: DataType, old: DataType) -> str | None:
    """The type an `old` column widens to so it holds `new` (None: Iceberg cannot)."""
    if isinstance(old, IntegerType) and isinstance(new, LongType):
        return "BIGINT"
    if isinstance(old, FloatType) and isinstance(new, DoubleType):
        return "DOUBLE"
    if (
        isinstance(old, DecimalType)
        and isinstance(new, DecimalType)
        and new.scale == old.scale
        and new.precision > old.precision
    ):
        return f"DECIMAL({new.precision},{new.scale})"
    return None


def schema_changes(table: StructType, batch: StructType, *, where: str) -> SchemaChanges:
    """The changes `table` needs to take `batch`; SinkError (naming every column refused,
    its table and batch types) if one is a change Iceberg cannot make in place."""
    # Spark resolves column names case-insensitively (spark.sql.caseSensitive is off).
    stored = {f.name.lower(): f for f in table.fields}
    given = {f.name.lower() for f in batch.fields}
    added, widen, refused = [], [], []
    for column in batch.fields:
        old = stored.get(column.name.lower())
        if old is None:
            added.append(StructField(column.name, column.dataType, nullable=True))
        elif not fits(column.dataType, old.dataType):
            sql = widened(column.dataType, old.dataType)
            if sql is None:
                refused.append(
                    f"column {old.name!r}: {old.dataType.simpleString()} in the table, "
                    f"{column.dataType.simpleString()} in the batch"
                )
            else:
                widen.append((old.name, sql))
    missing = tuple(f for name, f in stored.items() if name not in given)
    for field in missing:
        if not field.nullable:
            refused.append(
                f"column {field.name!r}: NOT NULL in the table ({field.dataType.simpleString()}) "
                "but not in the batch"
            )
    if refused:
        raise SinkError(
            f"the batch does not fit the Iceberg table's schema: {'; '.join(refused)}. Iceberg "
            f"changes a column's type only by widening ({WIDENINGS}); nothing was written "
            "(a --full-refresh run replaces the table with the batch's schema)",
            where=where,
        )
    return SchemaChanges(tuple(added), tuple(widen), missing)


def with_missing_as_null(df: DataFrame, missing: tuple[StructField, ...]) -> DataFrame:
    """`df` with a NULL column, of the table's type, for each table column it lacks."""
    nulls = [F.lit(None).cast(f.dataType).alias(f.name) for f in missing]
    return df.select("*", *nulls) if nulls else df
