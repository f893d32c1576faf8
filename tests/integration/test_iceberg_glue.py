"""An Iceberg table in a `glue` catalog (Iceberg's GlueCatalog and S3FileIO) against
moto_server: the Glue Data Catalog and S3 at AWS_ENDPOINT_URL, reached through the catalog
settings the local runtime derives from the standard AWS variables.

moto serves every Glue and S3 call Iceberg makes here (the namespace created as a Glue
database, the table created, each commit's table update moving metadata_location, and the
S3 reads and writes of metadata and data files): nothing is stubbed or shimmed.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import boto3
import pytest
from pyspark.sql import functions as F

from sluiceway import pipeline
from sluiceway.errors import SluicewayError, SpecError
from sluiceway.sinks.iceberg import WATERMARK_PROPERTY
from sluiceway.spec import load_spec

from .aws import moto_endpoint
from .dbs import Db, write_spec

BASE = datetime(2024, 1, 1, tzinfo=UTC)


def _create_source(db: Db, name: str) -> None:
    rows = [(i, "a" if i % 2 else "b", Decimal(i) / 4, BASE) for i in range(1, 7)]
    db.execute(
        f"DROP TABLE IF EXISTS {name}",
        f"CREATE TABLE {name} (id int PRIMARY KEY, grp text NOT NULL, amount numeric(10,2), "
        "updated_at timestamptz(6) NOT NULL)",
        f"INSERT INTO {name} VALUES (%s, %s, %s, %s)",
        params=rows,
    )


def _db_rows(db: Db, name: str) -> list[tuple]:
    rows = db.query(f"SELECT id, grp, amount, updated_at FROM {name}")
    return sorted((i, g, a, u.astimezone(UTC).replace(tzinfo=None)) for i, g, a, u in rows)


def _table_rows(spark, ident: str) -> list[tuple]:
    df = spark.table(ident).select("id", "grp", "amount", "updated_at")
    return sorted(tuple(r) for r in df.collect())


@pytest.fixture
def glue_database():
    """A Glue database name no other test uses; dropped (with its tables) afterwards,
    since moto_server outlives the test session."""
    moto_endpoint()
    name = f"ice_{uuid.uuid4().hex[:10]}"
    yield name
    glue = boto3.client("glue")
    try:
        for table in glue.get_tables(DatabaseName=name)["TableList"]:
            glue.delete_table(DatabaseName=name, Name=table["Name"])
        glue.delete_database(Name=name)
    except glue.exceptions.EntityNotFoundException:
        pass


def test_merge_into_a_glue_catalog_table_on_s3_registers_it_in_glue(
    spark, tmp_path, pg_conn_info, s3_bucket, glue_database
):
    db = pg_conn_info
    _create_source(db, "ice_glue")
    catalog = f"glue{uuid.uuid4().hex[:8]}"
    spec = load_spec(
        write_spec(
            tmp_path,
            db,
            f"""
[catalogs.{catalog}]
type = "glue"
warehouse = "s3a://{s3_bucket}/warehouse/"

[tables.ice_glue]
table = "ice_glue"
primary_key = ["id"]
incremental_column = "updated_at"
partition_by = ["grp"]
sink = {{ format = "iceberg", table = "{glue_database}.orders" }}
""",
            name="ice",
        )
    )
    ident = f"{catalog}.{glue_database}.orders"
    sink = spec.tables[0].sink
    assert sink.path == f"s3://{s3_bucket}/warehouse/{glue_database}.db/orders"

    first = pipeline.run(spark, spec).tables[0]
    assert (first.mode, first.rows_written) == ("full", 6)
    assert _table_rows(spark, ident) == _db_rows(db, "ice_glue")

    glue = boto3.client("glue")
    stored = glue.get_table(DatabaseName=glue_database, Name="orders")["Table"]
    params = stored["Parameters"]
    assert params["table_type"].upper() == "ICEBERG"
    location = params["metadata_location"]
    assert location.startswith(f"s3://{s3_bucket}/warehouse/{glue_database}.db/orders/metadata/")
    assert stored["StorageDescriptor"]["Location"] == sink.path
    # The metadata file Glue points at is the table's current one, and it is in S3.
    current = spark.sql(
        f"SELECT file FROM {ident}.metadata_log_entries ORDER BY timestamp DESC LIMIT 1"
    ).first()[0]
    assert current == location
    key = location.removeprefix(f"s3://{s3_bucket}/")
    assert boto3.client("s3").head_object(Bucket=s3_bucket, Key=key)["ContentLength"] > 0

    stamp = "TIMESTAMPTZ '2024-01-03 00:00:00+00'"
    db.execute(
        f"UPDATE ice_glue SET amount = 99, grp = 'b', updated_at = {stamp} WHERE id = 3",
        f"INSERT INTO ice_glue VALUES (40, 'a', 4.00, {stamp})",
    )
    # Without the state store's watermark the next run must read it from the snapshot.
    (tmp_path / "out" / "_state" / "ice" / "tables" / "ice_glue.json").unlink()
    second = pipeline.run(spark, spec).tables[0]
    assert second.mode == "incremental"
    assert second.watermark_before == first.watermark_after
    assert _table_rows(spark, ident) == _db_rows(db, "ice_glue")
    after = glue.get_table(DatabaseName=glue_database, Name="orders")["Table"]["Parameters"]
    assert after["metadata_location"] != location  # the commit moved Glue's pointer
    assert after["previous_metadata_location"] == location

    third = pipeline.run(spark, spec, run_id="rerun-1").tables[0]
    assert third.watermark_before == second.watermark_after
    assert _table_rows(spark, ident) == _db_rows(db, "ice_glue")
    summary = spark.sql(
        f"SELECT summary FROM {ident}.snapshots ORDER BY committed_at DESC LIMIT 1"
    ).first()[0]
    assert json.loads(summary[WATERMARK_PROPERTY]) == third.watermark_after
    assert summary["sluiceway.run-id"] == "rerun-1"
    partitions = spark.sql(f"SELECT partition.grp FROM {ident}.partitions").collect()
    assert sorted(r[0] for r in partitions) == ["a", "b"]
    assert spark.table(ident).filter(F.col("id") == 3).first()["grp"] == "b"


def test_a_missing_warehouse_bucket_fails_before_glue_or_s3_is_touched(
    spark, tmp_path, pg_conn_info, glue_database
):
    db = pg_conn_info
    _create_source(db, "ice_glue_nob")
    bucket = f"sluiceway-missing-{uuid.uuid4().hex[:10]}"
    spec = load_spec(
        write_spec(
            tmp_path,
            db,
            f"""
[catalogs.g{uuid.uuid4().hex[:8]}]
type = "glue"
warehouse = "s3://{bucket}/wh"

[tables.ice_glue_nob]
table = "ice_glue_nob"
primary_key = ["id"]
sink = {{ format = "iceberg", table = "{glue_database}.orders" }}
""",
            name="ice",
        )
    )
    with pytest.raises(SluicewayError) as info:
        pipeline.run(spark, spec)
    assert info.value.where == f"{spec.source_file}: tables.ice_glue_nob.sink.path"
    assert bucket in info.value.message
    glue = boto3.client("glue")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_database(Name=glue_database)
    assert not (tmp_path / "out" / "_state" / "ice" / "tables").exists()


@pytest.mark.spark_free  # no Spark: scripts/test.sh runs it on one line only
def test_a_glue_catalog_off_s3_is_refused_naming_the_key(tmp_path, pg_conn_info):
    body = """
[catalogs.g]
type = "glue"
warehouse = "warehouse/g"

[tables.x]
table = "x"
primary_key = ["id"]
sink = { format = "iceberg" }
"""
    with pytest.raises(SpecError, match=r"catalogs\.g\.warehouse: a glue catalog's warehouse"):
        load_spec(write_spec(tmp_path, pg_conn_info, body, name="bad"))
    assert not (tmp_path / "out").exists()
