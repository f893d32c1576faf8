"""Schema evolution decisions of Iceberg sinks, from the two schemas alone (no Spark)."""

from __future__ import annotations

import re

import pytest
from pyspark.sql.types import (
    ByteType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructField,
    StructType,
)

from sluiceway.errors import SinkError
from sluiceway.sinks.iceberg_schema import SchemaChanges, schema_changes

TYPES = {
    "TINYINT": ByteType(),
    "SMALLINT": ShortType(),
    "INT": IntegerType(),
    "BIGINT": LongType(),
    "FLOAT": FloatType(),
    "DOUBLE": DoubleType(),
    "STRING": StringType(),
    "DATE": DateType(),
}


def _schema(ddl: str) -> StructType:
    """`name TYPE [NOT NULL], ...` (Spark's own DDL parser needs a running JVM)."""
    fields = []
    for part in ddl.split(", "):
        name, kind, *rest = part.split(" ")
        decimal = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", kind)
        data_type = DecimalType(int(decimal[1]), int(decimal[2])) if decimal else TYPES[kind]
        fields.append(StructField(name, data_type, nullable=rest != ["NOT", "NULL"]))
    return StructType(fields)


TABLE = _schema("id INT, n INT, f FLOAT, d DECIMAL(10,2), s STRING")


def test_new_columns_are_added_nullable_and_widenings_become_alter_statements():
    batch = _schema("ID INT, n BIGINT, f DOUBLE, d DECIMAL(12,2), s STRING, note STRING NOT NULL")
    changes = schema_changes(TABLE, batch, where="w")
    assert changes.statements("c.ns.t") == [
        "ALTER TABLE c.ns.t ADD COLUMN `note` string",
        "ALTER TABLE c.ns.t ALTER COLUMN `n` TYPE BIGINT",
        "ALTER TABLE c.ns.t ALTER COLUMN `f` TYPE DOUBLE",
        "ALTER TABLE c.ns.t ALTER COLUMN `d` TYPE DECIMAL(12,2)",
    ]
    assert changes.added[0].nullable and changes.missing == ()


def test_narrower_batch_types_fit_as_they_are_and_missing_columns_are_listed():
    batch = _schema("id SMALLINT, n TINYINT, d DECIMAL(8,2)")
    changes = schema_changes(TABLE, batch, where="w")
    assert changes.statements("t") == []
    assert [f.name for f in changes.missing] == ["f", "s"]
    assert schema_changes(TABLE, TABLE, where="w") == SchemaChanges()


@pytest.mark.parametrize(
    ("batch", "refused"),
    [
        ("s INT", "column 's': string in the table, int in the batch"),
        ("n STRING", "column 'n': int in the table, string in the batch"),
        ("d DECIMAL(12,3)", "column 'd': decimal(10,2) in the table, decimal(12,3) in the batch"),
        ("d DECIMAL(10,1)", "column 'd': decimal(10,2) in the table, decimal(10,1) in the batch"),
        ("f BIGINT", "column 'f': float in the table, bigint in the batch"),
        ("n DATE", "column 'n': int in the table, date in the batch"),
    ],
)
def test_a_change_iceberg_cannot_make_in_place_is_one_error_naming_column_and_types(batch, refused):
    with pytest.raises(SinkError) as info:
        schema_changes(TABLE, _schema(f"id INT, {batch}, extra STRING"), where="x.toml: tables.t")
    assert str(info.value).startswith("x.toml: tables.t: the batch does not fit")
    assert refused in str(info.value)


def test_every_refused_column_is_named_in_the_one_error():
    table = _schema("id INT NOT NULL, a STRING, b INT")
    with pytest.raises(SinkError) as info:
        schema_changes(table, _schema("a INT, b STRING"), where="w")
    message = str(info.value)
    assert "column 'a': string in the table, int in the batch" in message
    assert "column 'b': int in the table, string in the batch" in message
    assert "column 'id': NOT NULL in the table (int) but not in the batch" in message
