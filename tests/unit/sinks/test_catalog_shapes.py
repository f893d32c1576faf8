"""The Glue table shape of written data, and which schema changes the catalog accepts."""

from __future__ import annotations

import pytest
from pyspark.sql import types as T

from sluiceway.errors import SinkError
from sluiceway.sinks.catalog import (
    Column,
    TableShape,
    catalog_location,
    hive_type,
    merge_shapes,
    shape_of,
)

DDL = (
    "id BIGINT, Amount DECIMAL(10,2), tags ARRAY<STRING>, attrs MAP<STRING,INT>, "
    "pos STRUCT<X: DOUBLE, y: FLOAT>, at TIMESTAMP, day DATE, ok BOOLEAN, grp INT"
)


def _schema(spark, ddl: str) -> T.StructType:
    return spark.createDataFrame([], ddl).schema


def test_shape_takes_hive_types_lower_case_names_and_partition_keys_last(spark):
    shape = shape_of(_schema(spark, DDL), ["grp"], "w")
    assert shape.columns == (
        Column("id", "bigint"),
        Column("amount", "decimal(10,2)"),
        Column("tags", "array<string>"),
        Column("attrs", "map<string,int>"),
        Column("pos", "struct<x:double,y:float>"),
        Column("at", "timestamp"),
        Column("day", "date"),
        Column("ok", "boolean"),
    )
    assert shape.partition_keys == (Column("grp", "int"),)


def test_types_without_a_hive_name_are_refused():
    with pytest.raises(ValueError, match="no Glue/Hive equivalent"):
        hive_type(T.NullType())
    with pytest.raises(SinkError, match="w: column 'v'"):
        shape_of(T.StructType([T.StructField("v", T.NullType())]), [], "w")


def test_columns_differing_only_in_case_are_refused():
    schema = T.StructType(
        [T.StructField("id", T.IntegerType()), T.StructField("ID", T.IntegerType())]
    )
    with pytest.raises(SinkError, match="columns 'id' and 'ID' differ only in case"):
        shape_of(schema, [], "w")


OLD = TableShape(
    (Column("id", "bigint"), Column("amount", "decimal(10,2)")), (Column("grp", "int"),)
)


def test_a_new_column_is_appended_and_existing_ones_keep_their_place():
    new = TableShape((Column("note", "string"), Column("id", "bigint")), (Column("grp", "int"),))
    merged = merge_shapes(OLD, new, "w")
    assert merged.columns == (*OLD.columns, Column("note", "string"))
    assert merged.partition_keys == OLD.partition_keys
    assert merge_shapes(None, new, "w") == new


def test_a_changed_column_type_is_refused_with_both_types_named():
    new = TableShape((Column("id", "bigint"), Column("amount", "double")), (Column("grp", "int"),))
    with pytest.raises(
        SinkError, match=r"^w: column 'amount' changes type from decimal\(10,2\) to double"
    ):
        merge_shapes(OLD, new, "w")


@pytest.mark.parametrize(
    "keys",
    [(), (Column("grp", "bigint"),), (Column("grp", "int"), Column("day", "date"))],
    ids=["dropped", "retyped", "added"],
)
def test_changed_partition_keys_are_refused(keys):
    with pytest.raises(SinkError, match=r"partition keys change from \(grp int\)"):
        merge_shapes(OLD, TableShape(OLD.columns, keys), "w")


def test_a_data_column_named_like_a_partition_key_is_refused():
    new = TableShape((*OLD.columns, Column("grp", "int")), OLD.partition_keys)
    with pytest.raises(SinkError, match="'grp' is a partition key"):
        merge_shapes(OLD, new, "w")


def test_catalog_locations_use_s3_and_end_with_a_slash():
    assert catalog_location("s3a://b/x/orders") == "s3://b/x/orders/"
    assert catalog_location("s3://b/x/orders/") == "s3://b/x/orders/"
