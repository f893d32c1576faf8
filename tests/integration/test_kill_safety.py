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

Silver and gold are Iceberg tables in the hadoop catalog under the output, lineitem Parquet:
the chain kills around Iceberg commits and inside Parquet swaps, and the Iceberg tables'
snapshot watermarks must equal the clean run's too. Catalog publishing is not in the
chain: the output is local, where the pipeline keeps no Glue table (tests/integration/test_catalog.py covers a failed publish being redone).
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
from sluiceway.spec import load_spec

from .tpch import demo_dataset, demo_spec, query, revenue_by_nation, snapshot_watermark

# Silver and gold are Iceberg tables, bronze (lineitem) Parquet: both kinds of dataset.
DATASETS = ("nation", "customer", "orders", "lineitem", "order_lines", "revenue_by_nation_daily")
ICEBERG_TABLES = ("nation", "customer", "orders")  # the outputs' commits carry no watermark
PER_RUN = {"_run_id", "_extracted_at"}

# (kill point, what it interrupts). Tables run nation, customer, orders, lineitem, then the
# outputs order_lines and revenue_by_nation_daily. `write:`/`written:` surround a dataset's
# write (for an Iceberg table: its one commit, carrying the watermark), `commit:`/`committed:`
# the state store's record of it; the other points are the Parquet sink's (sinks/parquet.py).
FULL_RUN = [
    ("plan:customer", "planning, one Iceberg table committed before it"),
    ("write:orders", "orders read, rejected rows quarantined, its Iceberg commit not made"),
    ("written:orders", "orders committed with its watermark, its state not"),
    ("swap:lineitem@3", "inside the swap of a first Parquet write"),
    ("commit:lineitem", "Parquet written, its watermark not yet committed"),
    ("written:order_lines", "an output's table replaced, its state not"),
]
INCREMENTAL_RUN = [
    ("written:orders", "the MERGE INTO committed with its watermark, its state not"),
    ("swap:lineitem@1", "inside a merge's swap: old files of touched partitions still there"),
    ("swapped:lineitem", "merge swapped, staging not dropped, watermark not committed"),
    ("write:order_lines", "an output about to replace its table after the inputs changed"),
]

# The chain is the suite's longest test (one Spark start-up per killed run), so each line
# runs a complementary half and CI, which runs both lines, tries every point once. PySpark
# 3.5 takes one point per kind of moment (inside a Parquet swap, an Iceberg commit made and
# its state not, a Parquet watermark not yet committed, an output before its commit); 4.x
# the rest. The kill points and the recovery are the project's Python, the same on both
# lines.
_ON_3_5 = {
    "written:orders",
    "commit:lineitem",
    "swap:lineitem@1",
    "write:order_lines",
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


def _rows(df) -> Counter:
    kept = sorted(set(df.columns) - PER_RUN)
    return Counter(tuple(map(_hashable, row)) for row in df.select(*kept).collect())


def _watermarks(spark, spec: Path, out: Path) -> dict[str, object]:
    """The state store's watermarks, and each Iceberg table's: the one its newest snapshot
    carries, which is what the next run starts from."""
    tables = out / "_state" / "tpch_demo" / "tables"
    marks: dict[str, object] = {
        p.stem: json.loads(p.read_text())["watermark"] for p in sorted(tables.glob("*.json"))
    }
    for name in ICEBERG_TABLES:
        location = load_spec(spec, output_root=str(out)).item(name).sink.path
        marks[f"{name} (snapshot)"] = snapshot_watermark(spark, location)
    return marks


def _assert_same(spark, spec: Path, killed: Path, clean: Path, phase: str) -> None:
    quarantines = [p.name for p in sorted((clean / "_quarantine").glob("*"))]
    assert sorted((killed / "_quarantine").glob("*")) == [
        killed / "_quarantine" / name for name in quarantines
    ], phase
    pairs = {
        name: (demo_dataset(spark, spec, killed, name), demo_dataset(spark, spec, clean, name))
        for name in DATASETS
    }
    for name in quarantines:
        relative = f"_quarantine/{name}"
        pairs[f"quarantine of {name}"] = tuple(  # type: ignore[assignment]
            spark.read.parquet(str(out / relative)) for out in (killed, clean)
        )
    for name, (killed_df, clean_df) in pairs.items():
        got, want = _rows(killed_df), _rows(clean_df)
        assert sum(want.values()) > 0, f"{phase}: {name}: the clean run wrote nothing"
        assert not want - got, f"{phase}: {name}: {sum((want - got).values())} rows missing"
        assert not got - want, f"{phase}: {name}: {sum((got - want).values())} rows extra"
    clean_marks = _watermarks(spark, spec, clean)
    assert all(clean_marks.values()), clean_marks
    assert _watermarks(spark, spec, killed) == clean_marks, phase
    assert not [p for p in (killed / "_staging").rglob("*") if p.is_file()], phase


def _revenue(spark, spec: Path, out: Path) -> dict[str, object]:
    df = demo_dataset(spark, spec, out, "revenue_by_nation_daily")
    return {r[0].rstrip(): r[1] for r in df.groupBy("nation_name").sum("revenue").collect()}


def _orders(spark, spec: Path, out: Path) -> list[tuple]:
    columns = ("o_orderkey", "o_orderstatus", "o_totalprice")
    df = demo_dataset(spark, spec, out, "orders")
    return sorted(tuple(r) for r in df.select(*columns).collect())


def _check_full_run(
    spark, spec: Path, out: Path, report: dict[str, Any], conninfo: str, schema: str
) -> None:
    """The demo's first run: every source row landed, in the spec's layout, exact values."""
    by_name = {t["name"]: t for t in report["tables"]}
    ((orders, lines),) = query(
        conninfo, schema, "SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM lineitem)"
    )
    assert by_name["orders"]["rows_written"] == orders
    assert by_name["lineitem"]["rows_written"] == lines
    assert by_name["order_lines"]["rows_written"] == lines
    # orders: Iceberg's months(o_orderdate), one partition per month of the source.
    months = demo_dataset(spark, spec, out, "orders").selectExpr(
        "date_format(o_orderdate, 'yyyy-MM')"
    )
    orders_table = out / "warehouse" / "tpch_demo" / "orders" / "data"
    assert {p.name for p in orders_table.iterdir()} == {
        f"o_orderdate_month={r[0]}" for r in months.distinct().collect()
    }
    assert (out / "bronze" / "lineitem" / "ship_year=1995").is_dir()
    assert _revenue(spark, spec, out) == revenue_by_nation(conninfo, schema)  # exact decimals
    customer = demo_dataset(spark, spec, out, "customer")
    hashed = customer.select("c_name", "c_phone").first()
    assert all(re.fullmatch(r"[0-9a-f]{64}", value) for value in hashed), hashed


def _check_incremental_run(
    spark,
    spec: Path,
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
    assert _orders(spark, spec, out) == want
    assert _revenue(spark, spec, out) == revenue_by_nation(conninfo, schema)


def test_demo_runs_exactly_and_killed_at_every_phase_ends_as_a_clean_run(
    spark, tmp_path, pg_conn_info, tpch_schema
):
    conninfo, schema = tpch_schema
    spec = demo_spec(tmp_path, schema, pg_conn_info.port)
    password = pg_conn_info.password
    clean, killed = tmp_path / "clean", tmp_path / "killed"

    first = _completed(spec, clean, password)
    _check_full_run(spark, spec, clean, first, conninfo, schema)
    _kill_chain(spec, killed, password, FULL_RUN)
    _assert_same(spark, spec, killed, clean, "full run")

    change = mutate(conninfo, new_orders=20, updated_orders=30, seed=11, schema=schema)
    _kill_chain(spec, killed, password, INCREMENTAL_RUN)
    second = _completed(spec, clean, password)
    _check_incremental_run(spark, spec, clean, first, second, change, conninfo, schema)
    _assert_same(spark, spec, killed, clean, "incremental run")

    tried = len(FULL_RUN) + len(INCREMENTAL_RUN)
    print(f"\nkill-safety harness: {tried} kill points tried, all runs matched the clean run")
