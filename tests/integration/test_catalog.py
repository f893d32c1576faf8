"""Glue Data Catalog tables kept in step with what the pipeline writes to S3."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3
import pytest

from sluiceway import pipeline
from sluiceway.errors import SinkError
from sluiceway.spec import load_spec

from .dbs import Db, write_spec
from .s3 import download, objects, partition_dirs

BASE = datetime(2024, 1, 1, tzinfo=UTC)
LATER = BASE + timedelta(days=1)
TABLE = "catalog_inc"


@pytest.fixture
def glue():
    return boto3.client("glue")


@pytest.fixture
def source(pg_conn_info) -> Db:
    rows = [(i, i % 3, Decimal(i) / 4, BASE + timedelta(minutes=i)) for i in range(1, 31)]
    rows.append((99, 9, Decimal("9.99"), BASE))  # alone in partition grp=9
    pg_conn_info.execute(
        f"DROP TABLE IF EXISTS {TABLE}",
        f"CREATE TABLE {TABLE} (id int PRIMARY KEY, grp int NOT NULL, amount numeric(10,2), "
        "updated_at timestamptz(6) NOT NULL)",
        f"INSERT INTO {TABLE} VALUES (%s, %s, %s, %s)",
        params=rows,
    )
    return pg_conn_info


def _spec(tmp_path, db: Db, bucket: str, database: str | None):
    catalog = f'catalog = {{ database = "{database}" }}' if database else ""
    text = f"""
        [tables.inc]
        table = "{TABLE}"
        primary_key = ["id"]
        incremental_column = "updated_at"
        partition_by = ["grp"]
        {catalog}
    """
    return load_spec(write_spec(tmp_path, db, text), output_root=f"s3://{bucket}/lake")


def _glue_table(glue, database: str) -> dict:
    return glue.get_table(DatabaseName=database, Name="inc")["Table"]


def _glue_partitions(glue, database: str) -> dict[str, dict]:
    pages = glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName="inc")
    return {f"grp={p['Values'][0]}": p for page in pages for p in page["Partitions"]}


def _parquet_columns(spark, s3_client, bucket: str, tmp_path) -> list[tuple[str, str]]:
    """Name and type of every column in the written files (a local copy, read by Spark)."""
    local = tmp_path / f"copy-{uuid.uuid4().hex[:6]}"
    assert download(s3_client, bucket, "lake/tables/inc", local) > 0
    schema = spark.read.option("mergeSchema", "true").parquet(str(local)).schema
    return [(f.name, f.dataType.simpleString()) for f in schema.fields if f.name != "grp"]


def test_catalog_follows_writes_adds_only_new_partitions_and_new_columns(
    spark, tmp_path, source, s3_client, s3_bucket, glue
):
    database = f"sluiceway_it_{uuid.uuid4().hex[:8]}"
    spec = _spec(tmp_path, source, s3_bucket, database)
    pipeline.run(spark, spec)

    table = _glue_table(glue, database)
    sd = table["StorageDescriptor"]
    assert sd["Location"] == f"s3://{s3_bucket}/lake/tables/inc/"
    assert sd["SerdeInfo"]["SerializationLibrary"] == (
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == _parquet_columns(
        spark, s3_client, s3_bucket, tmp_path
    )
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]][:3] == [
        ("id", "int"),
        ("amount", "decimal(10,2)"),
        ("updated_at", "timestamp"),
    ]
    assert [(c["Name"], c["Type"]) for c in table["PartitionKeys"]] == [("grp", "int")]
    written = partition_dirs(s3_client, s3_bucket, "lake/tables/inc")
    assert written == {"grp=0", "grp=1", "grp=2", "grp=9"}
    partitions = _glue_partitions(glue, database)
    assert set(partitions) == written
    for name, partition in partitions.items():
        location = partition["StorageDescriptor"]["Location"]
        assert location == f"s3://{s3_bucket}/lake/tables/inc/{name}/"
    created = {name: p["CreationTime"] for name, p in partitions.items()}

    # Second run: a new partition (grp=5), and the only row of grp=9 moves to grp=1.
    source.execute(
        f"INSERT INTO {TABLE} VALUES (100, 5, 1.25, TIMESTAMPTZ '{LATER:%Y-%m-%d %H:%M:%S}+00')",
        f"UPDATE {TABLE} SET grp = 1, updated_at = TIMESTAMPTZ '{LATER:%Y-%m-%d %H:%M:%S}+00' "
        "WHERE id = 99",
    )
    second = pipeline.run(spark, spec).tables[0]
    assert second.catalog is not None
    assert (second.catalog["partitions_added"], second.catalog["partitions_removed"]) == (1, 1)
    written = partition_dirs(s3_client, s3_bucket, "lake/tables/inc")
    assert written == {"grp=0", "grp=1", "grp=2", "grp=5"}
    partitions = _glue_partitions(glue, database)
    assert set(partitions) == written
    # The partitions that were already registered were left alone, not re-created.
    assert {n: partitions[n]["CreationTime"] for n in ("grp=0", "grp=1", "grp=2")} == {
        n: created[n] for n in ("grp=0", "grp=1", "grp=2")
    }

    # Third run: a nullable column appears at the source; the table gains it at the end.
    source.execute(
        f"ALTER TABLE {TABLE} ADD COLUMN note text",
        f"UPDATE {TABLE} SET note = 'n', updated_at = TIMESTAMPTZ '{LATER + timedelta(hours=1):%Y-%m-%d %H:%M:%S}+00' WHERE id = 3",
    )
    third = pipeline.run(spark, spec).tables[0]
    assert list(third.catalog["columns_added"]) == ["note"]
    columns = [
        (c["Name"], c["Type"]) for c in _glue_table(glue, database)["StorageDescriptor"]["Columns"]
    ]
    assert columns[-1] == ("note", "string")
    assert sorted(columns) == sorted(_parquet_columns(spark, s3_client, s3_bucket, tmp_path))
    assert set(_glue_partitions(glue, database)) == written


def test_a_table_added_later_gets_every_partition_and_a_changed_type_is_refused(
    spark, tmp_path, source, s3_client, s3_bucket, glue
):
    pipeline.run(spark, _spec(tmp_path, source, s3_bucket, None))  # no catalog yet
    database = f"sluiceway_it_{uuid.uuid4().hex[:8]}"
    spec = _spec(tmp_path, source, s3_bucket, database)
    source.execute(
        f"INSERT INTO {TABLE} VALUES (100, 5, 1.25, TIMESTAMPTZ '{LATER:%Y-%m-%d %H:%M:%S}+00')"
    )
    pipeline.run(spark, spec)  # touches grp=5 only, registers all five
    written = partition_dirs(s3_client, s3_bucket, "lake/tables/inc")
    assert written == {"grp=0", "grp=1", "grp=2", "grp=5", "grp=9"}
    assert set(_glue_partitions(glue, database)) == written

    state_key = "lake/_state/t/tables/inc.json"
    data_before = objects(s3_client, s3_bucket, "lake/tables/")
    state_before = s3_client.get_object(Bucket=s3_bucket, Key=state_key)["Body"].read()
    table_before = _glue_table(glue, database)
    source.execute(
        f"ALTER TABLE {TABLE} ALTER COLUMN amount TYPE double precision",
        f"UPDATE {TABLE} SET amount = 1.5, updated_at = TIMESTAMPTZ "
        f"'{LATER + timedelta(hours=1):%Y-%m-%d %H:%M:%S}+00' WHERE id = 1",
    )
    with pytest.raises(SinkError) as info:
        pipeline.run(spark, spec)
    assert str(info.value) == (
        f"{spec.source_file}: tables.inc: Glue table {database}.inc: column 'amount' changes "
        "type from decimal(10,2) to double; refusing to write an incompatible schema "
        "(Glue/Athena would misread the existing files)"
    )
    assert objects(s3_client, s3_bucket, "lake/tables/") == data_before
    assert [k for k in objects(s3_client, s3_bucket, "lake/_staging/") if not k.endswith("/")] == []
    assert s3_client.get_object(Bucket=s3_bucket, Key=state_key)["Body"].read() == state_before
    assert _glue_table(glue, database)["StorageDescriptor"] == table_before["StorageDescriptor"]
    assert set(_glue_partitions(glue, database)) == written
