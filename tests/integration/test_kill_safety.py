"""The demo pipeline, run clean and SIGKILLed at moments spread over its runs.

The clean runs are the demo end to end: a full run, then an incremental run after `demo
mutate`, each checked against the database (row counts, every order's values, revenue per
nation to the cent, hashed columns, only the change read on the second run).

The killed runs: the demo (small scale) runs in a subprocess with its own process group,
armed with `SLUICEWAY_KILL_AT` (see `sluiceway.faults`): it dies, with its JVM, at the
chosen point. Each kill is followed by the next killed run on the same output, then one run
to the end. Phase 1 is the first (full) run, phase 2 the incremental merge run. After each
phase every dataset and every watermark must equal those of the clean run on the same
database content: same rows, same values, nothing missing, nothing twice (only the per-run
audit columns `_run_id` and `_extracted_at` may differ).

Catalog publishing is not in the chain: the output is local, where the pipeline keeps no
Glue table (tests/integration/test_catalog.py covers a failed publish being redone).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyspark

from sluiceway.demo.tpch_db import MutationSummary, mutate
from sluiceway.faults import ENV as KILL_AT

from .tpch import demo_spec, query, revenue_by_nation

DATASETS = {
    "nation": "silver/nation",
    "customer": "silver/customer",
    "orders": "silver/orders",
    "lineitem": "bronze/lineitem",
    "order_lines": "gold/order_lines",
    "revenue_by_nation_daily": "gold/revenue_by_nation_daily",
}
PER_RUN = {"_run_id", "_extracted_at"}

# (kill point, what it interrupts). Tables run nation, customer, orders, lineitem, then the
# outputs order_lines and revenue_by_nation_daily.
FULL_RUN = [
    ("plan:customer", "planning, one table committed before it"),
    ("staged:orders", "read and staged, nothing committed"),
    ("swap:orders@3", "inside the swap of a first write"),
    ("commit:lineitem", "written, its watermark not yet committed"),
    ("swap:order_lines@2", "inside the swap of an output"),
    ("planned:revenue_by_nation_daily", "an output's plan committed, nothing moved"),
]
INCREMENTAL_RUN = [
    ("swap:orders@1", "inside a merge's swap: old files of touched partitions still there"),
    ("swapped:lineitem", "merge swapped, staging not dropped, watermark not committed"),
    ("committed:orders", "a watermark committed, the rest of the run not"),
    ("swap:order_lines@1", "inside an output's swap after the inputs changed"),
]

# The chain is the suite's longest test (one Spark start-up per killed run), so each line
# runs a complementary half and CI, which runs both lines, tries every point once. PySpark
# 3.5 takes one point per kind of moment (inside a swap, a plan committed, state not yet
# committed, a watermark committed); 4.x the rest. The kill points and the recovery are the
# project's Python, the same on both lines.
_ON_3_5 = {
    "swap:orders@3",
    "planned:revenue_by_nation_daily",
    "swap:orders@1",
    "committed:orders",
}
_SPARK_3 = pyspark.__version__.startswith("3.")
FULL_RUN = [kill for kill in FULL_RUN if (kill[0] in _ON_3_5) == _SPARK_3]
INCREMENTAL_RUN = [kill for kill in INCREMENTAL_RUN if (kill[0] in _ON_3_5) == _SPARK_3]


def _run(spec: Path, out: Path, password: str, kill_at: str | None = None):
    env = {
        **os.environ,
        "SLUICEWAY_TPCH_PASSWORD": password,
        "SLUICEWAY_HASH_SALT": "test-salt",
        "SLUICEWAY_SPARK_MASTER": "local[2]",
        "SLUICEWAY_SHUFFLE_PARTITIONS": "2",  # two cores, small data: fewer, larger tasks
    }
    env.pop(KILL_AT, None)
    if kill_at:
        env[KILL_AT] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "sluiceway.cli", "run", str(spec), "--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        start_new_session=True,  # its own process group: the kill takes the JVM with it
    )


def _completed(spec: Path, out: Path, password: str) -> dict[str, Any]:
    """Run to the end; the run's report."""
    result = _run(spec, out, password)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert re.search(r"^run \S+: succeeded, 6 datasets, \d+ rows written", result.stdout, re.M), (
        result.stdout
    )
    return json.loads((out / "_state" / "tpch_demo" / "runs" / "latest.json").read_text())


def _kill_chain(spec: Path, out: Path, password: str, kills: list[tuple[str, str]]) -> None:
    for point, moment in kills:
        result = _run(spec, out, password, point)
        name, _, arrival = point.partition("@")
        assert result.returncode == -signal.SIGKILL, (
            f"{point} ({moment}) was never reached:\n{result.stdout}\n{result.stderr[-3000:]}"
        )
        assert f"sluiceway: killed at {name} (arrival {arrival or 1})" in result.stderr
    _completed(spec, out, password)


def _hashable(value: object) -> object:
    return tuple(map(_hashable, value)) if isinstance(value, list) else value


def _dataset(spark, path: Path) -> Counter:
    df = spark.read.parquet(str(path))
    kept = sorted(set(df.columns) - PER_RUN)
    return Counter(tuple(map(_hashable, row)) for row in df.select(*kept).collect())


def _watermarks(out: Path) -> dict[str, object]:
    tables = out / "_state" / "tpch_demo" / "tables"
    return {p.stem: json.loads(p.read_text())["watermark"] for p in sorted(tables.glob("*.json"))}


def _assert_same(spark, killed: Path, clean: Path, phase: str) -> None:
    quarantines = {
        f"quarantine of {p.name}": f"_quarantine/{p.name}"
        for p in sorted((clean / "_quarantine").glob("*"))
    }
    assert sorted((killed / "_quarantine").glob("*")) == [
        killed / relative for relative in quarantines.values()
    ], phase
    for name, relative in {**DATASETS, **quarantines}.items():
        got, want = _dataset(spark, killed / relative), _dataset(spark, clean / relative)
        assert sum(want.values()) > 0, f"{phase}: {name}: the clean run wrote nothing"
        assert not want - got, f"{phase}: {name}: {sum((want - got).values())} rows missing"
        assert not got - want, f"{phase}: {name}: {sum((got - want).values())} rows extra"
    assert _watermarks(killed) == _watermarks(clean), phase
    assert not [p for p in (killed / "_staging").rglob("*") if p.is_file()], phase


def _revenue(spark, out: Path) -> dict[str, object]:
    df = spark.read.parquet(str(out / "gold" / "revenue_by_nation_daily"))
    return {r[0].rstrip(): r[1] for r in df.groupBy("nation_name").sum("revenue").collect()}


def _orders(spark, out: Path) -> list[tuple]:
    columns = ("o_orderkey", "o_orderstatus", "o_totalprice")
    return sorted(
        tuple(r)
        for r in spark.read.parquet(str(out / "silver" / "orders")).select(*columns).collect()
    )


def _check_full_run(spark, out: Path, report: dict[str, Any], conninfo: str, schema: str) -> None:
    """The demo's first run: every source row landed, in the spec's layout, exact values."""
    by_name = {t["name"]: t for t in report["tables"]}
    ((orders, lines),) = query(
        conninfo, schema, "SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM lineitem)"
    )
    assert by_name["orders"]["rows_written"] == orders
    assert by_name["lineitem"]["rows_written"] == lines
    assert by_name["order_lines"]["rows_written"] == lines
    years = {p["order_year"] for p in by_name["orders"]["partitions"]}
    assert years == {str(year) for year in range(1992, 1999)}  # as in the directory names
    assert (out / "silver" / "orders" / "order_year=1995" / "order_month=6").is_dir()
    assert (out / "bronze" / "lineitem" / "ship_year=1995").is_dir()
    assert _revenue(spark, out) == revenue_by_nation(conninfo, schema)  # exact decimals
    hashed = (
        spark.read.parquet(str(out / "silver" / "customer")).select("c_name", "c_phone").first()
    )
    assert all(re.fullmatch(r"[0-9a-f]{64}", value) for value in hashed), hashed


def _check_incremental_run(
    spark,
    out: Path,
    first: dict[str, Any],
    second: dict[str, Any],
    change: MutationSummary,
    conninfo: str,
    schema: str,
) -> None:
    """The demo's second run read only the change (and the overlap window) and merged it."""
    orders = {t["name"]: t for t in second["tables"]}["orders"]
    watermark = {t["name"]: t for t in first["tables"]}["orders"]["watermark_after"]["value"]
    ((in_window,),) = query(
        conninfo,
        schema,
        f"SELECT COUNT(*) FROM orders WHERE updated_at >= "
        f"TIMESTAMPTZ '{watermark}+00' - INTERVAL '10 minutes'",
    )
    changed = len(change.new_order_keys) + len(change.updated_order_keys)
    assert orders["mode"] == "incremental"
    assert orders["rows_read"] == in_window
    assert changed <= in_window <= changed + 11  # loaded rows are one minute apart
    want = sorted(
        query(conninfo, schema, "SELECT o_orderkey, o_orderstatus, o_totalprice FROM orders")
    )
    assert _orders(spark, out) == want
    assert _revenue(spark, out) == revenue_by_nation(conninfo, schema)


def test_demo_runs_exactly_and_killed_at_every_phase_ends_as_a_clean_run(
    spark, tmp_path, pg_conn_info, tpch_schema
):
    conninfo, schema = tpch_schema
    spec = demo_spec(tmp_path, schema, pg_conn_info.port)
    password = pg_conn_info.password
    clean, killed = tmp_path / "clean", tmp_path / "killed"

    first = _completed(spec, clean, password)
    _check_full_run(spark, clean, first, conninfo, schema)
    _kill_chain(spec, killed, password, FULL_RUN)
    _assert_same(spark, killed, clean, "full run")

    change = mutate(conninfo, new_orders=20, updated_orders=30, seed=11, schema=schema)
    _kill_chain(spec, killed, password, INCREMENTAL_RUN)
    second = _completed(spec, clean, password)
    _check_incremental_run(spark, clean, first, second, change, conninfo, schema)
    _assert_same(spark, killed, clean, "incremental run")

    tried = len(FULL_RUN) + len(INCREMENTAL_RUN)
    print(f"\nkill-safety harness: {tried} kill points tried, all runs matched the clean run")
