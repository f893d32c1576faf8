"""The TPC-H demo pipeline with its output, state and Glue tables on the local S3 endpoint.

The objects are read back without S3A: boto3 lists and downloads them, Spark reads the
local copy. Every row must equal the database's, and the layout must be the spec's.
(Incremental merges through S3 staging prefixes are covered, faster, in test_catalog.py.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import boto3

from sluiceway.state.s3 import S3StateStore

from .s3 import download, partition_dirs
from .tpch import demo_spec, query, revenue_by_nation

ORDER_COLUMNS = ("o_orderkey", "o_custkey", "o_orderstatus", "o_totalprice", "o_orderdate")
LINE_COLUMNS = ("l_orderkey", "l_linenumber", "l_quantity", "l_extendedprice", "l_shipdate")
PARTITIONED = {
    "silver/orders": ("orders", "o_orderdate", "order_year", "order_month"),
    "bronze/lineitem": ("lineitem", "l_shipdate", "ship_year", "ship_month"),
    "gold/order_lines": ("orders", "o_orderdate", "order_year", "order_month"),
}


def _run(spec: Path, output: str, password: str, *extra: str) -> None:
    env = {
        **os.environ,
        "SLUICEWAY_TPCH_PASSWORD": password,
        "SLUICEWAY_HASH_SALT": "test-salt",
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


def _expected_layout(conninfo: str, schema: str, table: str, column: str, y: str, m: str):
    rows = query(
        conninfo,
        schema,
        f"SELECT DISTINCT EXTRACT(YEAR FROM {column})::int, EXTRACT(MONTH FROM {column})::int "
        f"FROM {table}",
    )
    return {f"{y}={year}/{m}={month}" for year, month in rows}


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
    _run(spec, output, pg_conn_info.password)

    # Layout: the spec's partition columns, one directory per value in the source.
    for prefix, (table, column, y, m) in PARTITIONED.items():
        written = partition_dirs(s3_client, s3_bucket, f"tpch_demo/{prefix}")
        assert written == _expected_layout(conninfo, schema, table, column, y, m), prefix
    years = partition_dirs(s3_client, s3_bucket, "tpch_demo/gold/revenue_by_nation_daily")
    assert years == {f"order_year={y}" for y in range(1992, 1999)}
    assert partition_dirs(s3_client, s3_bucket, "tpch_demo/silver/customer") == set()

    # Rows: exactly the source's, values and types intact.
    orders = spark.read.parquet(
        _local_copy(s3_client, s3_bucket, "tpch_demo/silver/orders", tmp_path)
    )
    got = sorted(tuple(r) for r in orders.select(*ORDER_COLUMNS).collect())
    assert got == sorted(query(conninfo, schema, f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders"))
    lines = spark.read.parquet(
        _local_copy(s3_client, s3_bucket, "tpch_demo/bronze/lineitem", tmp_path)
    )
    got = sorted(tuple(r) for r in lines.select(*LINE_COLUMNS).collect())
    assert got == sorted(query(conninfo, schema, f"SELECT {', '.join(LINE_COLUMNS)} FROM lineitem"))
    revenue = spark.read.parquet(
        _local_copy(s3_client, s3_bucket, "tpch_demo/gold/revenue_by_nation_daily", tmp_path)
    )
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

    # Every dataset has its Glue table, partitioned exactly like the objects.
    glue = boto3.client("glue")
    for prefix in (*PARTITIONED, "gold/revenue_by_nation_daily"):
        name = prefix.split("/")[1]
        table = glue.get_table(DatabaseName=database, Name=name)["Table"]
        assert table["StorageDescriptor"]["Location"] == f"{output}/{prefix}/"
        keys = [k["Name"] for k in table["PartitionKeys"]]
        pages = glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=name)
        registered = {
            "/".join(f"{k}={v}" for k, v in zip(keys, p["Values"], strict=True))
            for page in pages
            for p in page["Partitions"]
        }
        assert registered == partition_dirs(s3_client, s3_bucket, f"tpch_demo/{prefix}"), name
    customer = glue.get_table(DatabaseName=database, Name="customer")["Table"]
    assert customer["PartitionKeys"] == []
