"""The TPC-H demo pipeline with its output, state and Glue tables on the local S3 endpoint,
run as `scripts/demo.sh --s3` runs it: `--iceberg-catalog glue`, so silver and gold are
Iceberg tables of the Glue Data Catalog (moto's) and bronze Parquet with a Glue table. As a
Glue or EMR job would, it reads the database password and the hash salt from Secrets
Manager (moto's), with neither in its environment.

The Parquet objects are read back without S3A: boto3 lists and downloads them, Spark reads
the local copy; the Iceberg tables are read through a glue catalog of the test's session.
Every row must equal the database's, and the layout must be the spec's. (Incremental
merges through S3 staging prefixes are covered, faster, in test_catalog.py.)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import boto3

from sluiceway.sinks.iceberg import register_catalog
from sluiceway.spec import load_spec
from sluiceway.state.s3 import S3StateStore

from .s3 import download, partition_dirs
from .tpch import demo_spec, query, revenue_by_nation

ORDER_COLUMNS = ("o_orderkey", "o_custkey", "o_orderstatus", "o_totalprice", "o_orderdate")
LINE_COLUMNS = ("l_orderkey", "l_linenumber", "l_quantity", "l_extendedprice", "l_shipdate")
ICEBERG = ("nation", "customer", "orders", "order_lines", "revenue_by_nation_daily")


SALT = "s3-demo-salt"


def _with_secrets(spec: Path, password: str) -> None:
    """The spec's password and salt from Secrets Manager instead of environment variables."""
    secrets = boto3.client("secretsmanager")
    tag = uuid.uuid4().hex[:8]
    login = secrets.create_secret(
        Name=f"tpch-{tag}", SecretString=json.dumps({"password": password})
    )
    salt = secrets.create_secret(Name=f"salt-{tag}", SecretString=SALT)
    text = spec.read_text()
    for old, new in [
        ('password_env = "SLUICEWAY_TPCH_PASSWORD"', f'secret_id = "{login["Name"]}"'),
        ('hash_salt_env = "SLUICEWAY_HASH_SALT"', f'hash_salt_secret_id = "{salt["Name"]}"'),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    spec.write_text(text)


def _run(spec: Path, output: str, *extra: str) -> None:
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in ("SLUICEWAY_TPCH_PASSWORD", "SLUICEWAY_HASH_SALT")
        },
        "SLUICEWAY_SHUFFLE_PARTITIONS": "2",  # two cores, small data: fewer files to move on S3
    }
    result = subprocess.run(
        [sys.executable, "-m", "sluiceway.cli", "run", str(spec), "--output", output, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^run \S+: succeeded, 6 datasets", result.stdout, re.M), result.stdout


def _months(conninfo: str, schema: str, table: str, column: str) -> set[tuple[int, int]]:
    rows = query(
        conninfo,
        schema,
        f"SELECT DISTINCT EXTRACT(YEAR FROM {column})::int, EXTRACT(MONTH FROM {column})::int "
        f"FROM {table}",
    )
    return {(year, month) for year, month in rows}


def _local_copy(s3_client, bucket: str, prefix: str, tmp_path: Path) -> str:
    target = tmp_path / "copy" / uuid.uuid4().hex[:6]
    assert download(s3_client, bucket, prefix, target) > 0
    return str(target)


def test_demo_pipeline_on_s3_writes_exactly_the_source_rows_in_the_spec_layout(
    spark,
    tmp_path,
    pg_conn_info,
    tpch_schema,
    s3_client,
    s3_bucket,
):
    conninfo, schema = tpch_schema
    database = f"tpch_it_{uuid.uuid4().hex[:8]}"
    spec = demo_spec(tmp_path, schema, pg_conn_info.port, glue_database=database)
    output = f"s3://{s3_bucket}/tpch_demo"
    _with_secrets(spec, pg_conn_info.password)
    _run(spec, output, "--iceberg-catalog", "glue")
    glue = boto3.client("glue")
    warehouse = f"{output}/warehouse/{database}.db"

    # Layout. Parquet (bronze): the spec's partition columns, one directory per month.
    lines_layout = partition_dirs(s3_client, s3_bucket, "tpch_demo/bronze/lineitem")
    assert lines_layout == {
        f"ship_year={y}/ship_month={m}"
        for y, m in _months(conninfo, schema, "lineitem", "l_shipdate")
    }
    # Iceberg: a Glue table of type ICEBERG pointing at its metadata in the warehouse, with
    # orders partitioned by Iceberg's months(o_orderdate), the gold tables by their columns.
    for name in ICEBERG:
        params = glue.get_table(DatabaseName=database, Name=name)["Table"]["Parameters"]
        assert params["table_type"].upper() == "ICEBERG", name
        assert params["metadata_location"].startswith(f"{warehouse}/{name}/metadata/"), name
    order_months = _months(conninfo, schema, "orders", "o_orderdate")
    data = f"tpch_demo/warehouse/{database}.db"
    assert partition_dirs(s3_client, s3_bucket, f"{data}/orders/data") == {
        f"o_orderdate_month={y}-{m:02d}" for y, m in order_months
    }
    assert partition_dirs(s3_client, s3_bucket, f"{data}/order_lines/data") == {
        f"order_year={y}/order_month={m}" for y, m in order_months
    }
    years = partition_dirs(s3_client, s3_bucket, f"{data}/revenue_by_nation_daily/data")
    assert years == {f"order_year={y}" for y in range(1992, 1999)}

    # Rows: exactly the source's, values and types intact.
    catalog = load_spec(spec, output, iceberg_catalog="glue").catalogs["lake"]
    catalog = replace(catalog, name=f"demo_{uuid.uuid4().hex[:8]}")  # this test's own
    register_catalog(spark, catalog)
    orders = spark.table(f"{catalog.name}.{database}.orders")
    got = sorted(tuple(r) for r in orders.select(*ORDER_COLUMNS).collect())
    assert got == sorted(query(conninfo, schema, f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders"))
    lines = spark.read.parquet(
        _local_copy(s3_client, s3_bucket, "tpch_demo/bronze/lineitem", tmp_path)
    )
    got = sorted(tuple(r) for r in lines.select(*LINE_COLUMNS).collect())
    assert got == sorted(query(conninfo, schema, f"SELECT {', '.join(LINE_COLUMNS)} FROM lineitem"))
    # The PII columns hashed with the salt from the secret.
    customers = spark.table(f"{catalog.name}.{database}.customer").select("c_custkey", "c_name")
    names = dict(query(conninfo, schema, "SELECT c_custkey, c_name FROM customer"))
    assert {r[0]: r[1] for r in customers.collect()} == {
        key: hashlib.sha256((SALT + name).encode()).hexdigest() for key, name in names.items()
    }
    revenue = spark.table(f"{catalog.name}.{database}.revenue_by_nation_daily")
    by_nation = {
        r[0].rstrip(): r[1] for r in revenue.groupBy("nation_name").sum("revenue").collect()
    }
    assert by_nation == revenue_by_nation(conninfo, schema)

    # State and the run report live on S3 too.
    state = S3StateStore(f"{output}/_state")
    assert state.read_json("tpch_demo/tables/orders.json")["watermark"]["kind"] == "timestamp"
    report = state.read_json("tpch_demo/runs/latest.json")
    assert report["status"] == "succeeded"
    assert {t["name"]: t["rows_written"] for t in report["tables"]}["lineitem"] == len(got)

    # The Parquet dataset's Glue table is partitioned exactly like its objects.
    table = glue.get_table(DatabaseName=database, Name="lineitem")["Table"]
    assert table["StorageDescriptor"]["Location"] == f"{output}/bronze/lineitem/"
    keys = [k["Name"] for k in table["PartitionKeys"]]
    pages = glue.get_paginator("get_partitions").paginate(
        DatabaseName=database, TableName="lineitem"
    )
    registered = {
        "/".join(f"{k}={v}" for k, v in zip(keys, p["Values"], strict=True))
        for page in pages
        for p in page["Partitions"]
    }
    assert registered == lines_layout
