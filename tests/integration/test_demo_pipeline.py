"""The TPC-H demo pipeline end to end: load, run with the CLI, mutate, run again."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from sluiceway.demo.tpch_db import load, mutate

ROOT = Path(__file__).resolve().parents[2]
SCALE = 0.01
REVENUE_SQL = (
    "SELECT n.n_name, SUM(l.l_extendedprice * (1 - l.l_discount)) FROM lineitem l "
    "JOIN orders o ON o.o_orderkey = l.l_orderkey JOIN customer c ON c.c_custkey = o.o_custkey "
    "JOIN nation n ON n.n_nationkey = c.c_nationkey GROUP BY n.n_name"
)


@pytest.fixture
def tpch_schema(pg_conn_info, tmp_path_factory):
    schema = f"demo_{uuid.uuid4().hex[:8]}"
    conninfo = pg_conn_info.libpq_conninfo("tpch")
    load(conninfo, SCALE, ROOT / ".cache" / "tpch", schema=schema)
    yield conninfo, schema
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _query(conninfo: str, schema: str, query: str) -> list[tuple]:
    with psycopg.connect(conninfo) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        return conn.execute(query).fetchall()


def _run(spec: Path, out: Path, password: str) -> dict:
    env = {**os.environ, "SLUICEWAY_TPCH_PASSWORD": password, "SLUICEWAY_HASH_SALT": "test-salt"}
    result = subprocess.run(
        [sys.executable, "-m", "sluiceway.cli", "run", str(spec), "--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^run \S+: succeeded, 6 datasets, \d+ rows written", result.stdout, re.M), (
        result.stdout
    )
    return json.loads((out / "_state" / "tpch_demo" / "runs" / "latest.json").read_text())


def test_demo_pipeline_end_to_end_then_incremental(spark, tmp_path, pg_conn_info, tpch_schema):
    conninfo, schema = tpch_schema
    text = (ROOT / "pipelines" / "tpch_demo.toml").read_text()
    text = text.replace('table = "public.', f'table = "{schema}.').replace(
        "port = 25432", f"port = {pg_conn_info.port}"
    )
    spec = tmp_path / "tpch_demo.toml"
    spec.write_text(text)
    out = tmp_path / "out"

    first = _run(spec, out, pg_conn_info.password)
    by_name = {t["name"]: t for t in first["tables"]}
    (orders_count,) = _query(conninfo, schema, "SELECT COUNT(*) FROM orders")[0]
    (lines_count,) = _query(conninfo, schema, "SELECT COUNT(*) FROM lineitem")[0]
    assert by_name["orders"]["rows_written"] == orders_count
    assert by_name["lineitem"]["rows_written"] == lines_count
    assert by_name["order_lines"]["rows_written"] == lines_count
    years = {p["order_year"] for p in by_name["orders"]["partitions"]}
    assert years == {str(year) for year in range(1992, 1999)}  # as in the directory names
    assert (out / "silver" / "orders" / "order_year=1995" / "order_month=6").is_dir()
    assert (out / "bronze" / "lineitem" / "ship_year=1995").is_dir()

    def revenue() -> dict[str, object]:
        df = spark.read.parquet(str(out / "gold" / "revenue_by_nation_daily"))
        return {
            r["nation_name"].rstrip(): r["revenue"]
            for r in df.groupBy("nation_name")
            .sum("revenue")
            .withColumnRenamed("sum(revenue)", "revenue")
            .collect()
        }

    expected = {name.rstrip(): total for name, total in _query(conninfo, schema, REVENUE_SQL)}
    assert revenue() == expected  # exact decimals, every nation

    customers = spark.read.parquet(str(out / "silver" / "customer"))
    hashed = customers.select("c_name", "c_phone").first()
    assert re.fullmatch(r"[0-9a-f]{64}", hashed["c_name"]) and re.fullmatch(
        r"[0-9a-f]{64}", hashed["c_phone"]
    )

    change = mutate(conninfo, new_orders=20, updated_orders=30, seed=5, schema=schema)
    second = _run(spec, out, pg_conn_info.password)
    by_name = {t["name"]: t for t in second["tables"]}
    watermark = first["tables"][2]["watermark_after"]["value"]
    (in_window,) = _query(
        conninfo,
        schema,
        f"SELECT COUNT(*) FROM orders WHERE updated_at >= "
        f"TIMESTAMPTZ '{watermark}+00' - INTERVAL '10 minutes'",
    )[0]
    changed = len(change.new_order_keys) + len(change.updated_order_keys)
    # Only the change, plus the few loaded rows inside the 10-minute overlap window.
    assert by_name["orders"]["mode"] == "incremental"
    assert by_name["orders"]["rows_read"] == in_window
    assert changed <= in_window <= changed + 11  # loaded rows are one minute apart

    silver = spark.read.parquet(str(out / "silver" / "orders"))
    got = sorted(
        (r["o_orderkey"], r["o_orderstatus"], r["o_totalprice"])
        for r in silver.select("o_orderkey", "o_orderstatus", "o_totalprice").collect()
    )
    want = sorted(
        _query(conninfo, schema, "SELECT o_orderkey, o_orderstatus, o_totalprice FROM orders")
    )
    assert got == want
    expected = {name.rstrip(): total for name, total in _query(conninfo, schema, REVENUE_SQL)}
    assert revenue() == expected
