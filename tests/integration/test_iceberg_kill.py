"""Iceberg tables under kills and concurrency: a pipeline whose tables and output are
Iceberg tables, SIGKILLed around and inside its Iceberg commits, must end as a clean run
ends; two writers merging into one table lose no row; a reader pinned to a snapshot sees
exactly that snapshot while a merge commits the next.

The killed runs follow tests/integration/test_kill_safety.py: the pipeline runs in a
subprocess with its own process group and dies with its JVM, either at a named kill point
(`SLUICEWAY_KILL_AT`, see `sluiceway.faults`) or, for a kill inside a write, when the test
sees the write's first data file appear under the table and SIGKILLs the group then. The
clean runs run in the test's own session, on specs of their own (another catalog, another
output), over the same database content.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyspark
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sluiceway import pipeline
from sluiceway.demo.tpch_db import mutate
from sluiceway.errors import SinkError
from sluiceway.faults import ENV as KILL_AT
from sluiceway.sinks.dataset import Batch
from sluiceway.sinks.iceberg import RUN_ID_PROPERTY, IcebergDataset, watermark_properties
from sluiceway.spec import IcebergSink, load_spec

from .iceberg import iceberg_dataset
from .tpch import query

PIPELINE = "ice_kill"
PER_RUN = {"_run_id", "_extracted_at"}
# Each table's key, and the columns whose values a watermark vouches for.
KEYS = {"nation": "n_nationkey", "customer": "c_custkey", "orders": "o_orderkey"}
VALUES = {
    "nation": ("n_name",),
    "customer": ("c_nationkey", "c_acctbal"),
    "orders": ("o_orderstatus", "o_totalprice"),
}

SPEC = """
[pipeline]
name = "{pipeline}"
output = "{out}"

[connections.tpch]
engine = "postgresql"
host = "127.0.0.1"
port = {port}
database = "tpch"
user = "{user}"
password_env = "SLUICEWAY_TPCH_PASSWORD"
max_connections = 2
rows_per_partition = 8000

[catalogs.{catalog}]
type = "hadoop"
warehouse = "warehouse"

[tables.nation]
table = "{schema}.nation"
primary_key = ["n_nationkey"]
incremental_column = "updated_at"
sink = {{ format = "iceberg" }}

[tables.customer]
table = "{schema}.customer"
primary_key = ["c_custkey"]
incremental_column = "updated_at"
sink = {{ format = "iceberg", write_mode = "merge-on-read" }}

[tables.orders]
table = "{schema}.orders"
primary_key = ["o_orderkey"]
split_column = "o_orderkey"
incremental_column = "updated_at"
overlap_minutes = 10
partition_by = ["months(o_orderdate)"]
# Partly filled orders ('P', about 2 %) are rejected: the quarantine has rows to lose.
quality = [{{ rule = "accepted_values", column = "o_orderstatus", values = ["F", "O"] }}]
sink = {{ format = "iceberg", mode = "merge" }}

[outputs.orders_by_nation]
builder = "tests.integration.test_iceberg_kill:aggregate_orders_by_nation"
inputs = ["orders", "customer", "nation"]
sink = {{ format = "iceberg" }}
"""


def aggregate_orders_by_nation(
    orders: DataFrame, customer: DataFrame, nation: DataFrame
) -> DataFrame:
    """The output builder: orders and their total value per nation and status."""
    customers = customer.select(
        F.col("c_custkey").alias("o_custkey"), F.col("c_nationkey").alias("n_nationkey")
    )
    return (
        orders.join(customers, on="o_custkey", how="inner")
        .join(nation.select("n_nationkey", "n_name"), on="n_nationkey", how="inner")
        .groupBy("n_name", "o_orderstatus")
        .agg(F.count(F.lit(1)).alias("orders"), F.sum("o_totalprice").alias("total"))
        .select("n_name", "o_orderstatus", "orders", "total")
    )


# (kill point, what it interrupts). `inside:<table>` is the timed kill: SIGKILL as soon as
# the table's write has put its first data file on disk, before its commit.
FULL_RUN = [
    ("write:orders", "orders read, its rejected rows quarantined, its Iceberg commit not made"),
    ("inside:orders", "inside the first write (REPLACE TABLE AS SELECT) of orders"),
    ("written:orders", "orders committed with its watermark, its state not"),
]
INCREMENTAL_RUN = [
    ("inside:orders", "inside the MERGE INTO of orders"),
    ("written:orders", "the merge committed with its watermark, its state not"),
    ("written:orders_by_nation", "the output rebuilt and committed, its state not"),
]
# As in test_kill_safety.py: each line runs a complementary half (one Spark start-up per
# killed run), so CI, which runs both lines, tries every point once; each line gets a
# timed kill inside a write and a kill right after a commit.
_ON_3_5 = {
    ("full", "written:orders"),
    ("incremental", "inside:orders"),
    ("incremental", "written:orders_by_nation"),
}
_SPARK_3 = pyspark.__version__.startswith("3.")
FULL_RUN = [k for k in FULL_RUN if (("full", k[0]) in _ON_3_5) == _SPARK_3]
INCREMENTAL_RUN = [k for k in INCREMENTAL_RUN if (("incremental", k[0]) in _ON_3_5) == _SPARK_3]


def _write_spec(tmp_path: Path, name: str, schema: str, db: Any) -> Path:
    out = tmp_path / name
    catalog = f"{name}_{uuid.uuid4().hex[:8]}"
    text = SPEC.format(
        pipeline=PIPELINE, out=out, port=db.port, user=db.user, catalog=catalog, schema=schema
    )
    spec = tmp_path / f"{name}.toml"
    spec.write_text(text)
    return spec


def _env(password: str, kill_at: str | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "SLUICEWAY_TPCH_PASSWORD": password,
        "SLUICEWAY_SPARK_MASTER": "local[2]",
        "SLUICEWAY_SHUFFLE_PARTITIONS": "2",
    }
    env.pop(KILL_AT, None)
    if kill_at:
        env[KILL_AT] = kill_at
    return env


def _command(spec: Path) -> list[str]:
    return [sys.executable, "-m", "sluiceway.cli", "run", str(spec)]


def _completed(spec: Path, password: str) -> None:
    result = subprocess.run(
        _command(spec),
        capture_output=True,
        text=True,
        env=_env(password),
        timeout=600,
        start_new_session=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]


def _killed_at(spec: Path, password: str, point: str, moment: str) -> None:
    result = subprocess.run(
        _command(spec),
        capture_output=True,
        text=True,
        env=_env(password, point),
        timeout=600,
        start_new_session=True,  # its own process group: the kill takes the JVM with it
    )
    assert result.returncode == -signal.SIGKILL, (
        f"{point} ({moment}) was never reached:\n{result.stdout}\n{result.stderr[-3000:]}"
    )
    assert f"sluiceway: killed at {point} (arrival 1)" in result.stderr


def _data_files(table_dir: Path) -> set[Path]:
    return set((table_dir / "data").rglob("*.parquet")) if table_dir.exists() else set()


def _killed_inside(spark, spec: Path, password: str, table: str, moment: str) -> None:
    """SIGKILL the run as soon as `table`'s write puts a new data file on disk; then check
    the kill landed inside the write: its files are there, its commit is not."""
    dataset = _datasets(spark, spec)[table]
    before = dataset.committed()
    table_dir = Path(dataset.sink.path)
    old = _data_files(table_dir)
    log = spec.with_suffix(f".{table}.log")
    with log.open("w") as err:  # a file, not a pipe: an unread pipe could stall the run
        proc = subprocess.Popen(
            _command(spec),
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=_env(password),
            start_new_session=True,  # its own process group: the kill takes the JVM with it
        )
        deadline = time.monotonic() + 600
        new: set[Path] = set()
        while proc.poll() is None and time.monotonic() < deadline:
            new = _data_files(table_dir) - old
            if new:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        proc.wait(timeout=60)
    stderr = log.read_text()
    assert new, f"{table}'s write ({moment}) never started:\n{stderr[-3000:]}"
    assert proc.returncode == -signal.SIGKILL, stderr[-3000:]
    # Inside the write: no commit of it made it into the table.
    after = _datasets(spark, spec)[table].committed()
    assert after == before, f"{moment}: the kill landed after the commit ({after})"


def _kill_chain(spark, spec: Path, password: str, kills, schema_info) -> None:
    for point, moment in kills:
        if point.startswith("inside:"):
            _killed_inside(spark, spec, password, point.partition(":")[2], moment)
        else:
            _killed_at(spec, password, point, moment)
        _assert_watermarks_not_ahead(spark, spec, schema_info, f"killed at {point}")
    _completed(spec, password)


_CATALOGS: set[str] = set()


def _datasets(spark, spec_path: Path) -> dict[str, IcebergDataset]:
    """Every Iceberg table of the spec, read through a catalog without a table cache (the
    subprocess runs change them under this session)."""
    spec = load_spec(spec_path)
    found = {}
    for item in (*spec.tables, *spec.outputs):
        assert isinstance(item.sink, IcebergSink)
        name = item.sink.catalog.name
        if name not in _CATALOGS:
            spark.conf.set(f"spark.sql.catalog.{name}.cache-enabled", "false")
            _CATALOGS.add(name)
        found[item.name] = IcebergDataset(spark, item.sink, where=f"{spec_path}: {item.name}")
    return found


def _hashable(value: object) -> object:
    return tuple(map(_hashable, value)) if isinstance(value, list) else value


def _rows(df: DataFrame) -> Counter:
    kept = sorted(set(df.columns) - PER_RUN)
    return Counter(tuple(map(_hashable, row)) for row in df.select(*kept).collect())


def _quarantine(spark, spec_path: Path, table: str) -> DataFrame | None:
    path = Path(load_spec(spec_path).item(table).sink.quarantine_path)
    return spark.read.parquet(str(path)) if path.exists() else None


def _assert_same(spark, killed: Path, clean: Path, phase: str) -> None:
    got, want = _datasets(spark, killed), _datasets(spark, clean)
    for name, dataset in want.items():
        rows_got, rows_want = _rows(got[name].read()), _rows(dataset.read())
        assert sum(rows_want.values()) > 0, f"{phase}: {name}: the clean run wrote nothing"
        assert not rows_want - rows_got, f"{phase}: {name}: {rows_want - rows_got} missing"
        assert not rows_got - rows_want, f"{phase}: {name}: {rows_got - rows_want} extra"
    for name in KEYS:
        assert _watermark(got[name]) == _watermark(want[name]), f"{phase}: {name}"
    bad_got, bad_want = _quarantine(spark, killed, "orders"), _quarantine(spark, clean, "orders")
    assert bad_want is not None and bad_want.count() > 0, f"{phase}: no quarantine to compare"
    assert bad_got is not None, f"{phase}: the quarantine of orders is missing"
    assert _rows(bad_got) == _rows(bad_want), f"{phase}: the quarantine of orders differs"
    state = Path(load_spec(killed).state_location) / PIPELINE / "tables"
    clean_state = Path(load_spec(clean).state_location) / PIPELINE / "tables"
    for name in KEYS:
        got_state = json.loads((state / f"{name}.json").read_text())["watermark"]
        want_state = json.loads((clean_state / f"{name}.json").read_text())["watermark"]
        assert got_state == want_state, f"{phase}: {name}: the state's watermark differs"


def _watermark(dataset: IcebergDataset) -> dict[str, str] | None:
    committed = dataset.committed()
    return committed["watermark"] if committed else None


def _assert_watermarks_not_ahead(spark, spec: Path, schema_info, moment: str) -> None:
    """Every source row at or below a table's committed watermark is in the table (or, if
    rejected, in its quarantine) with the values the source has: the watermark in the
    newest snapshot never runs ahead of the data."""
    conninfo, schema = schema_info
    datasets = _datasets(spark, spec)
    for name, key in KEYS.items():
        watermark = _watermark(datasets[name])
        if watermark is None:
            continue
        columns = (key, *VALUES[name])
        source = set(
            query(
                conninfo,
                schema,
                f"SELECT {', '.join(columns)} FROM {name} "
                f"WHERE updated_at <= TIMESTAMPTZ '{watermark['value']}+00'",
            )
        )
        landed = {tuple(r) for r in datasets[name].read().select(*columns).collect()}
        if name == "orders":
            bad = _quarantine(spark, spec, name)
            if bad is not None:
                landed |= {tuple(r) for r in bad.select(*columns).collect()}
        missing = source - landed
        assert not missing, (
            f"{moment}: {name}: watermark {watermark['value']} is ahead of the data: "
            f"{len(missing)} rows at or below it are not landed, e.g. {sorted(missing)[:3]}"
        )


def test_iceberg_pipeline_killed_around_and_inside_its_commits_ends_as_a_clean_run(
    spark, tmp_path, pg_conn_info, tpch_schema, monkeypatch
):
    conninfo, schema = tpch_schema
    password = pg_conn_info.password
    monkeypatch.setenv("SLUICEWAY_TPCH_PASSWORD", password)
    clean = _write_spec(tmp_path, "clean", schema, pg_conn_info)
    killed = _write_spec(tmp_path, "killed", schema, pg_conn_info)

    pipeline.run(spark, load_spec(clean))
    _kill_chain(spark, killed, password, FULL_RUN, tpch_schema)
    _assert_same(spark, killed, clean, "full run")

    mutate(conninfo, new_orders=20, updated_orders=30, seed=11, schema=schema)
    _kill_chain(spark, killed, password, INCREMENTAL_RUN, tpch_schema)
    second = pipeline.run(spark, load_spec(clean))
    assert {t.name: t.mode for t in second.tables}["orders"] == "incremental"
    _assert_same(spark, killed, clean, "incremental run")
    _assert_watermarks_not_ahead(spark, killed, tpch_schema, "after the runs")
    tried = len(FULL_RUN) + len(INCREMENTAL_RUN)
    print(f"\niceberg kill harness: {tried} kill points tried, all runs matched the clean run")


# ---------------------------------------------------------------------------------------
# Concurrency: two writers, and a reader pinned to a snapshot.

ROWS_SCHEMA = "id INT, name STRING, amount DECIMAL(10,2), updated_at TIMESTAMP, _run_id STRING"


def _batch(spark, ids: range, name: str, run_id: str) -> DataFrame:
    rows = [(i, name, Decimal(i) / 4, datetime(2024, 1, 2, 0, 0, i % 60), run_id) for i in ids]
    return spark.createDataFrame(rows, ROWS_SCHEMA)


def _keyed_dataset(spark, tmp_path: Path) -> IcebergDataset:
    return iceberg_dataset(spark, tmp_path, where="concurrency test")


def _table(dataset: IcebergDataset) -> dict[int, tuple]:
    return {r[0]: tuple(r) for r in dataset.read().select("id", "name", "_run_id").collect()}


def _commit_order(spark, dataset: IcebergDataset) -> list[str]:
    """The run ids of the table's current history, oldest first."""
    ident = dataset.identifier
    rows = spark.sql(
        f"SELECT s.summary['{RUN_ID_PROPERTY}'] FROM {ident}.history h "
        f"JOIN {ident}.snapshots s ON h.snapshot_id = s.snapshot_id "
        "WHERE h.is_current_ancestor ORDER BY h.made_current_at"
    ).collect()
    return [r[0] for r in rows]


def test_two_writers_merging_into_one_table_lose_no_row(spark, tmp_path):
    base = _keyed_dataset(spark, tmp_path)
    base_rows = _batch(spark, range(1, 41), "base", "base")
    base.write(Batch(base_rows, commit_properties={RUN_ID_PROPERTY: "base"}), "overwrite")
    ids = {"run-a": range(1, 31), "run-b": range(20, 51)}  # 20..30 in both
    batches = {run_id: _batch(spark, keys, run_id[-1], run_id) for run_id, keys in ids.items()}
    start = threading.Barrier(2)
    errors: dict[str, SinkError] = {}

    def merge(run_id: str) -> None:
        # Two writers of one table, each with its own dataset object, as two runs have.
        dataset = IcebergDataset(
            spark, base.sink, where=base.where, primary_key=("id",), incremental_column="updated_at"
        )
        props = watermark_properties(run_id, {"kind": "timestamp", "value": run_id})
        start.wait()
        try:
            dataset.write(Batch(batches[run_id], commit_properties=props), "merge")
        except SinkError as exc:
            errors[run_id] = exc

    threads = [threading.Thread(target=merge, args=(run_id,)) for run_id in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert len(errors) <= 1, errors  # at least one writer commits
    for run_id, exc in errors.items():
        # The loser failed with one clear error naming the table: Iceberg's conflict check
        # refused to commit a merge computed from a snapshot another writer replaced.
        assert exc.where == "concurrency test"
        assert base.identifier in str(exc) and "conflict" in str(exc).lower(), str(exc)
        # Its watermark did not move, so its next run merges the same batch again.
        assert base.committed()["run_id"] != run_id
        props = watermark_properties(run_id, {"kind": "timestamp", "value": run_id})
        base.write(Batch(batches[run_id], commit_properties=props), "merge")

    order = _commit_order(spark, base)
    assert order[0] == "base" and sorted(order[1:]) == ["run-a", "run-b"], order
    # Every key of both batches is there, each with the values of the last commit that
    # wrote it: the table is the base with the two merges applied in commit order.
    expected = {i: (i, "base", "base") for i in range(1, 41)}
    for run_id in order[1:]:
        expected.update({i: (i, run_id[-1], run_id) for i in ids[run_id]})
    assert _table(base) == expected
    assert base.committed()["run_id"] == order[-1]
    assert base.committed()["watermark"] == {"kind": "timestamp", "value": order[-1]}
    print(f"\ntwo writers: {len(errors)} refused by Iceberg's conflict check and merged again")


# The DataFrame option that pins a snapshot depends on the line (checked on both):
# Iceberg 1.10 (Spark 3.5) honours its own `snapshot-id`, while Spark's `versionAsOf` given
# to .table() is silently dropped (the read sees the newest snapshot); Iceberg 1.11
# (Spark 4.1) refuses `snapshot-id` ("no longer supported") and honours `versionAsOf`.
# SQL's VERSION AS OF pins on both.
PIN_OPTION = "snapshot-id" if _SPARK_3 else "versionAsOf"


def test_a_reader_pinned_to_a_snapshot_reads_exactly_it_while_a_merge_commits(spark, tmp_path):
    dataset = _keyed_dataset(spark, tmp_path)
    base_rows = _batch(spark, range(1, 41), "base", "base")
    dataset.write(Batch(base_rows, commit_properties={RUN_ID_PROPERTY: "base"}), "overwrite")
    pinned = dataset.committed()
    assert pinned is not None
    snapshot = pinned["snapshot_id"]
    want = _table(dataset)
    ident = dataset.identifier
    # Planned before the merge starts, run while it runs and after it committed.
    by_option = spark.read.option(PIN_OPTION, snapshot).table(ident)
    by_sql = spark.sql(f"SELECT * FROM {ident} VERSION AS OF {snapshot}")

    def read(df: DataFrame) -> dict[int, tuple]:
        return {r[0]: tuple(r) for r in df.select("id", "name", "_run_id").collect()}

    merged = threading.Event()

    def merge() -> None:
        change = _batch(spark, range(30, 61), "new", "run-new")
        dataset.write(Batch(change, commit_properties={RUN_ID_PROPERTY: "run-new"}), "merge")
        merged.set()

    writer = threading.Thread(target=merge)
    writer.start()
    reads_during = 0
    while not merged.is_set() and writer.is_alive():
        assert read(by_option) == want
        if not merged.is_set():  # this read ended before the merge committed
            reads_during += 1
    writer.join(timeout=300)
    assert merged.is_set()
    assert reads_during > 0, "no read ran while the merge was in flight"
    print(f"\npinned reader: {reads_during} reads of snapshot {snapshot} during the merge")
    assert dataset.committed()["run_id"] == "run-new"
    assert read(by_option) == want
    assert read(by_sql) == want
    latest = _table(dataset)
    assert latest != want and len(latest) == 60
    assert read(spark.read.option(PIN_OPTION, snapshot).table(ident)) == want
    if _SPARK_3:
        # The trap the README warns of: on 3.5 Spark's option is dropped by .table().
        assert read(spark.read.option("versionAsOf", snapshot).table(ident)) == latest
    assert {i: latest[i] for i in range(1, 30)} == {i: want[i] for i in range(1, 30)}
