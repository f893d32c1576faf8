#!/usr/bin/env python3
"""Incremental runs beside the full run: Parquet merge, Iceberg copy-on-write, merge-on-read.

    source scripts/env.sh && source .run/services.env
    python benchmarks/incremental.py            # --scale 1 --fractions 0.001,0.01 --repeat 1

TPC-H `orders` + `lineitem` in PostgreSQL (database `tpch_bench_inc`, schema `bench_sf<N>`,
loaded by `sluiceway.demo.tpch_db` unless both tables already have the generated row
count). Each round, per variant, with its own output directory and state:

  full      a first run of the pipeline (no watermark yet: everything is read and written)
  0.1 %     after `tpch_db.mutate` updated 0.1 % of the orders (random keys, so every date;
            each changed order's line items change too), an incremental run
  1 %       the same after 1 % more
(`--fractions 0,0.001,0.01` adds a run with nothing changed: the floor of an incremental run.)

The spec sets `overlap_minutes = 0`: the steps are minutes apart, so the default 10-minute
overlap would re-read the previous step's changes and blur the fractions.

Variants (the same spec but for the sink):
  parquet      Parquet `mode = "merge"`, partitioned by order / ship year and month
  iceberg-cow  Iceberg `mode = "merge"`, copy-on-write, partitioned by months(date)
  iceberg-mor  the same, merge-on-read
(`--iceberg-grain years` partitions the Iceberg tables by years(date) instead.)

Every run is `sluiceway.pipeline.run` in a fresh subprocess; with SLUICEWAY_SPARK_LOCK set
to a lock file, under `flock` on it (a machine shared with other Spark work lets one run at
a time hold it, so other work can interleave between runs); its seconds are the run alone
(Spark start and lock wait excluded), and the load average is read when it starts. What a
run rewrote: for Parquet, the files added and removed under the table directories (bytes of
the added files, rows from their footers); for Iceberg, the run's snapshot summaries. Bytes
rewritten are shown as a fraction of the table's bytes after the run. After every run the
tables are checked against PostgreSQL (row counts, sum(o_totalprice), sum(l_extendedprice)):
a mismatch fails the benchmark (exit 1).
Results also go to benchmarks/results/ as JSON (gitignored).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DATABASE = "tpch_bench_inc"
# A lock file shared with other Spark work on this machine (none: runs are not locked).
LOCK = os.environ.get("SLUICEWAY_SPARK_LOCK")
PASSWORD_ENV = "SLUICEWAY_BENCH_PG_PASSWORD"  # how the password reaches workers and the spec
VARIANTS = ("parquet", "iceberg-cow", "iceberg-mor")
TABLES = ("orders", "lineitem")
# What each table's sum is checked on (the columns mutate changes).
CHECKED_SUM = {"orders": "o_totalprice", "lineitem": "l_extendedprice"}
MIB = 1 << 20

SPEC_HEAD = """\
[pipeline]
name = "bench_inc"
output = {output}

[connections.bench]
engine = "postgresql"
host = {host}
port = {port}
database = "{database}"
user = {user}
password_env = "{password_env}"
max_connections = 4
"""

PARQUET_TABLE = """
[tables.{table}]
table = "{schema}.{table}"
primary_key = {key}
split_column = "{split}"
incremental_column = "updated_at"
overlap_minutes = 0
partition_by = ["{prefix}year", "{prefix}month"]
sink = {{ mode = "merge", compression = "zstd" }}

[[tables.{table}.transforms]]
name = "with_date_partitions"
params = {{ column = "{date}", prefix = "{prefix}", grain = "month" }}
"""

ICEBERG_TABLE = """
[tables.{table}]
table = "{schema}.{table}"
primary_key = {key}
split_column = "{split}"
incremental_column = "updated_at"
overlap_minutes = 0
partition_by = ["{grain}({date})"]
sink = {{ format = "iceberg", mode = "merge", write_mode = "{write_mode}" }}
"""

SHAPES = {
    "orders": {"key": '["o_orderkey"]', "split": "o_orderkey", "date": "o_orderdate"},
    "lineitem": {
        "key": '["l_orderkey", "l_linenumber"]',
        "split": "l_orderkey",
        "date": "l_shipdate",
    },
}
PREFIX = {"orders": "order_", "lineitem": "ship_"}


class WrongResult(Exception):
    """A table differs from PostgreSQL after a run."""


@dataclass
class Run:
    variant: str
    round: int
    phase: str  # "full" or the fraction changed, e.g. "0.1%"
    status: str  # "ok" | "failed" | "wrong" | "timeout"
    seconds: float | None = None  # pipeline.run alone
    loadavg: str = ""  # when the run started (after the lock was taken)
    lock_wait_s: float = 0.0
    rows_read: int = 0
    rows_written: int = 0  # rows in the data files the run added
    position_deletes: int = 0  # Iceberg merge-on-read: rows marked deleted by delete files
    bytes_added: int = 0
    bytes_removed: int = 0
    files_added: int = 0  # data files (Parquet files for the Parquet variant)
    files_removed: int = 0
    delete_files_added: int = 0
    table_bytes: int = 0  # both tables after the run
    table_files: int = 0
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.seconds is not None


# -------------------------------------------------------------------------------------------
# the worker: one pipeline run in a fresh process, under the Spark lock


def spec_text(
    variant: str, schema: str, output: Path, pg: dict[str, Any], grain: str = "months"
) -> str:
    text = SPEC_HEAD.format(
        output=json.dumps(str(output)),
        host=json.dumps(pg["host"]),
        port=pg["port"],
        database=DATABASE,
        user=json.dumps(pg["user"]),
        password_env=PASSWORD_ENV,
    )
    for table in TABLES:
        shape = {**SHAPES[table], "table": table, "schema": schema}
        if variant == "parquet":
            text += PARQUET_TABLE.format(**shape, prefix=PREFIX[table])
        else:
            write_mode = "merge-on-read" if variant == "iceberg-mor" else "copy-on-write"
            text += ICEBERG_TABLE.format(**shape, write_mode=write_mode, grain=grain)
    return text


def _parquet_files(path: Path) -> dict[str, int]:
    return {str(p): p.stat().st_size for p in path.rglob("*.parquet")} if path.exists() else {}


def _parquet_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    import pyarrow.parquet as pq

    added = [p for p in after if p not in before]
    removed = [p for p in before if p not in after]
    return {
        "rows_written": sum(pq.read_metadata(p).num_rows for p in added),
        "bytes_added": sum(after[p] for p in added),
        "bytes_removed": sum(before[p] for p in removed),
        "files_added": len(added),
        "files_removed": len(removed),
        "table_bytes": sum(after.values()),
        "table_files": len(after),
    }


# Snapshot summary key -> Run field, summed over the run's snapshots.
ICEBERG_COUNTERS = {
    "added-records": "rows_written",
    "added-position-deletes": "position_deletes",
    "added-files-size": "bytes_added",
    "removed-files-size": "bytes_removed",
    "added-data-files": "files_added",
    "deleted-data-files": "files_removed",
    "added-delete-files": "delete_files_added",
}


def _iceberg_delta(spark: Any, ident: str, run_id: str) -> dict[str, int]:
    rows = spark.sql(
        f"SELECT summary FROM {ident}.snapshots "
        f"WHERE summary['sluiceway.run-id'] = '{run_id}' ORDER BY committed_at"
    ).collect()
    delta = {name: 0 for name in ICEBERG_COUNTERS.values()}
    for row in rows:
        for key, name in ICEBERG_COUNTERS.items():
            delta[name] += int(row["summary"].get(key) or 0)
    current = spark.sql(
        f"SELECT summary FROM {ident}.snapshots ORDER BY committed_at DESC LIMIT 1"
    ).collect()[0]["summary"]
    delta["table_bytes"] = int(current.get("total-files-size") or 0)
    delta["table_files"] = int(current.get("total-data-files") or 0) + int(
        current.get("total-delete-files") or 0
    )
    return delta


def _source_totals(pg: dict[str, Any], schema: str) -> dict[str, tuple[int, Decimal]]:
    import psycopg

    with psycopg.connect(_conninfo(pg)) as conn:
        return {
            table: tuple(  # type: ignore[misc]
                conn.execute(f'SELECT count(*), sum({column}) FROM "{schema}".{table}').fetchone()
                or (0, Decimal(0))
            )
            for table, column in CHECKED_SUM.items()
        }


def _check(spark: Any, frames: dict[str, Any], expected: dict[str, tuple[int, Decimal]]) -> None:
    from pyspark.sql import functions as F

    for table, df in frames.items():
        row = df.agg(F.count(F.lit(1)), F.sum(CHECKED_SUM[table])).collect()[0]
        got = (int(row[0]), Decimal(row[1]))
        if got != expected[table]:
            raise WrongResult(f"{table}: {got} (rows, sum) in the sink, {expected[table]} in PG")


def _worker(args: argparse.Namespace) -> int:
    result: dict[str, Any] = {
        "status": "ok",
        "loadavg": _loadavg(),
        "lock_wait_s": time.time() - args.queued_at,
        "detail": {},
    }
    # The pipeline's own progress lines, timestamped, go to the run's log (kept by --keep).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    pg = json.loads(os.environ["SLUICEWAY_BENCH_PG"])
    pg["password"] = os.environ[PASSWORD_ENV]
    try:
        _measure(args, pg, result)
    except WrongResult as exc:
        result.update(status="wrong", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a failed run is the measurement
        result.update(status="failed", error=f"{type(exc).__name__}: {str(exc)[:400]}")
    args.result.write_text(json.dumps(result, default=str))
    return 0


def _measure(args: argparse.Namespace, pg: dict[str, Any], result: dict[str, Any]) -> None:
    from sluiceway import pipeline
    from sluiceway.runtimes.local import build_local_session
    from sluiceway.spec import load_spec

    output = args.work_dir / args.worker
    spec_file = args.work_dir / f"{args.worker}.toml"
    spec_file.write_text(spec_text(args.worker, args.schema, output, pg, args.iceberg_grain))
    spec = load_spec(spec_file)
    spark = build_local_session(
        app_name=f"bench-inc-{args.worker}",
        extra_conf={"spark.local.dir": str(args.work_dir / "spark-local")},
    )
    spark.sparkContext.setLogLevel("ERROR")
    before = _parquet_files(output) if args.worker == "parquet" else {}
    logging.getLogger("bench").info("pipeline.run starts")
    started = time.monotonic()
    report = pipeline.run(spark, spec)
    result["seconds"] = time.monotonic() - started
    if report.status != "succeeded":
        errors = "; ".join(f"{t.name}: {t.error}" for t in report.tables if t.error)
        raise RuntimeError(f"run {report.status}: {report.error or errors}")
    result["rows_read"] = sum(t.rows_read for t in report.tables)
    result["detail"]["tables"] = {
        t.name: {"mode": t.mode, "rows_read": t.rows_read, "seconds": round(t.seconds, 2)}
        for t in report.tables
    }
    if args.worker == "parquet":
        delta = _parquet_delta(before, _parquet_files(output))
        frames = {t.name: spark.read.parquet(t.path) for t in report.tables}
    else:
        delta = {}
        for table in TABLES:
            ident = f"lake.bench_inc.{table}"
            for key, value in _iceberg_delta(spark, ident, report.run_id).items():
                delta[key] = delta.get(key, 0) + value
        frames = {table: spark.table(f"lake.bench_inc.{table}") for table in TABLES}
    result.update(delta)
    _check(spark, frames, _source_totals(pg, args.schema))
    spark.stop()


# -------------------------------------------------------------------------------------------
# the parent: data, mutations, interleaved runs, the table


def _pg() -> dict[str, Any]:
    return {
        "host": os.environ.get("SLUICEWAY_PG_HOST", "127.0.0.1"),
        "port": int(os.environ.get("SLUICEWAY_PG_PORT", "25432")),
        "user": os.environ.get("SLUICEWAY_PG_USER", "sluiceway"),
        "password": os.environ.get("SLUICEWAY_PG_PASSWORD", "sluiceway-local"),
    }


def _conninfo(pg: dict[str, Any], dbname: str = DATABASE) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(
        host=pg["host"], port=pg["port"], dbname=dbname, user=pg["user"], password=pg["password"]
    )


def _ensure_loaded(pg: dict[str, Any], scale: float, data_dir: Path, schema: str) -> int:
    """Load TPC-H into `schema` unless orders and lineitem already have the generated
    counts (earlier runs' mutations only update rows); returns the number of orders."""
    import psycopg

    from sluiceway.demo import tpch_db

    with psycopg.connect(_conninfo(pg, "postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    files = tpch_db.generate(scale, data_dir)
    expected = {t: _csv_rows(files[t]) for t in TABLES}
    if _counts(pg, schema) == expected:
        print(f"==> {DATABASE}.{schema}: already loaded", flush=True)
        return expected["orders"]
    print(f"==> loading TPC-H scale {scale:g} into {DATABASE}.{schema}", flush=True)
    tpch_db.load(_conninfo(pg), scale, data_dir, schema=schema)
    if _counts(pg, schema) != expected:
        raise SystemExit(f"after loading, {schema} does not have {expected}")
    return expected["orders"]


def _csv_rows(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 23), b"")) - 1


def _counts(pg: dict[str, Any], schema: str) -> dict[str, int | None]:
    import psycopg

    counts: dict[str, int | None] = {}
    with psycopg.connect(_conninfo(pg), autocommit=True) as conn:
        for table in TABLES:
            if conn.execute("SELECT to_regclass(%s)", (f'"{schema}".{table}',)).fetchone() == (
                None,
            ):
                counts[table] = None
                continue
            row = conn.execute(f'SELECT count(*) FROM "{schema}".{table}').fetchone()
            counts[table] = int(row[0]) if row else None
    return counts


def _run(
    variant: str, rnd: int, phase: str, schema: str, work: Path, timeout: float, grain: str
) -> Run:
    pg = _pg()
    result_path = work / f"{variant}-{phase}.json"
    log_path = work / f"{variant}-{phase}.log"
    env = {
        **os.environ,
        PASSWORD_ENV: pg["password"],
        "SLUICEWAY_BENCH_PG": json.dumps({k: v for k, v in pg.items() if k != "password"}),
    }
    # flock: the run (and only the run) holds the machine's shared Spark lock, if any.
    cmd = ["flock", LOCK] if LOCK else []
    cmd += [sys.executable, str(Path(__file__).resolve()), "--worker", variant]
    cmd += ["--schema", schema, "--work-dir", str(work), "--result", str(result_path)]
    cmd += ["--queued-at", str(time.time()), "--iceberg-grain", grain]
    started = time.monotonic()
    run = Run(variant, rnd, phase, "ok")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # our own worker's process group (flock and its child)
            proc.wait()
            run.status, run.error = "timeout", f"killed after {timeout:.0f}s"
            return run
    if not result_path.exists():
        run.status = "failed"
        run.error = f"worker exited with {proc.returncode} after {time.monotonic() - started:.0f}s"
        run.detail["log_tail"] = log_path.read_text(errors="replace").splitlines()[-15:]
        return run
    for key, value in json.loads(result_path.read_text()).items():
        setattr(run, key, value)
    return run


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _phase_name(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def _print_run(run: Run, full: Run | None) -> None:
    if run.status != "ok" or run.seconds is None:
        print(f"  {run.variant:<12} {run.phase:>5} r{run.round}: {run.status} {run.error}")
        return
    ratio = f"{run.seconds / full.seconds:6.1%}" if full and full.seconds else "     -"
    share = run.bytes_added / run.table_bytes if run.table_bytes else 0
    print(
        f"  {run.variant:<12} {run.phase:>5} r{run.round}: {run.seconds:7.1f}s ({ratio} of full)"
        f"  read {run.rows_read:>9,}  wrote {run.rows_written:>9,} rows"
        f" {run.bytes_added / MIB:7.1f} MiB ({share:6.1%} of {run.table_bytes / MIB:.0f} MiB)"
        f"  files +{run.files_added}/-{run.files_removed} deletes +{run.delete_files_added}"
        f" ({run.position_deletes:,} rows)  load {run.loadavg}",
        flush=True,
    )


def _summary(runs: list[Run], variants: list[str], phases: list[str]) -> list[dict[str, Any]]:
    table = []
    for variant in variants:
        fulls = [
            r.seconds
            for r in runs
            if r.variant == variant and r.phase == "full" and r.seconds is not None and r.ok
        ]
        full_median = statistics.median(fulls) if fulls else None
        for phase in phases:
            ok = [r for r in runs if (r.variant, r.phase) == (variant, phase) and r.ok]
            if not ok:
                table.append({"variant": variant, "phase": phase, "ok": 0})
                continue

            def med(name: str, rows: list[Run] = ok) -> float:
                return statistics.median(getattr(r, name) for r in rows)

            shares = [r.bytes_added / r.table_bytes for r in ok if r.table_bytes]
            seconds = med("seconds")
            table.append(
                {
                    "variant": variant,
                    "phase": phase,
                    "ok": len(ok),
                    "seconds": seconds,
                    "x_full": seconds / full_median if full_median else None,
                    "rows_read": med("rows_read"),
                    "rows_written": med("rows_written"),
                    "position_deletes": med("position_deletes"),
                    "mib_added": med("bytes_added") / MIB,
                    "mib_removed": med("bytes_removed") / MIB,
                    "bytes_share": statistics.median(shares) if shares else None,
                    "table_mib": med("table_bytes") / MIB,
                    "files_added": med("files_added"),
                    "files_removed": med("files_removed"),
                    "delete_files_added": med("delete_files_added"),
                    "table_files": med("table_files"),
                    "loadavg": [r.loadavg for r in ok],
                }
            )
    return table


def _print_table(summary: list[dict[str, Any]]) -> None:
    head = (
        "| variant | run | n | s (median) | x full | rows read | rows written | pos. deletes "
        "| MiB written | MiB removed | written / table | table MiB | files +/- | delete files + "
        "| table files | load avg at start |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for row in summary:
        if not row["ok"]:
            print(f"| {row['variant']} | {row['phase']} | 0 | failed |" + " |" * 12)
            continue
        x_full = f"{row['x_full']:.1%}" if row["x_full"] is not None else "-"
        share = f"{row['bytes_share']:.1%}" if row["bytes_share"] is not None else "-"
        print(
            f"| {row['variant']} | {row['phase']} | {row['ok']} | {row['seconds']:.1f} "
            f"| {x_full} | {row['rows_read']:,.0f} | {row['rows_written']:,.0f} "
            f"| {row['position_deletes']:,.0f} | {row['mib_added']:.1f} | {row['mib_removed']:.1f} "
            f"| {share} | {row['table_mib']:.0f} "
            f"| +{row['files_added']:.0f} / -{row['files_removed']:.0f} "
            f"| {row['delete_files_added']:.0f} | {row['table_files']:.0f} "
            f"| {'; '.join(row['loadavg'])} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds (full run + incrementals)")
    parser.add_argument("--fractions", default="0.001,0.01", help="orders changed before each")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma list")
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds per run, lock wait included"
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".cache" / "tpch")
    parser.add_argument(
        "--iceberg-grain",
        choices=("months", "years"),
        default="months",
        help="the Iceberg tables' date partition transform",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=int(time.time()),
        help="mutate's seed (default: the clock, so a rerun does not change the same orders)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the output directories")
    parser.add_argument("--no-json", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--queued-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)

    from sluiceway.demo import tpch_db

    variants = [v for v in args.variants.split(",") if v]
    fractions = [float(f) for f in args.fractions.split(",") if f]
    if set(variants) - set(VARIANTS) or not all(0 <= f <= 1 for f in fractions):
        parser.error(f"variants are {', '.join(VARIANTS)}; fractions are in [0, 1]")
    phases = ["full", *(_phase_name(f) for f in fractions)]
    schema = f"bench_sf{args.scale:g}".replace(".", "_")
    started_at = datetime.now(UTC)
    load_start = _loadavg()
    pg = _pg()
    n_orders = _ensure_loaded(pg, args.scale, args.data_dir, schema)
    import pyspark

    print(
        f"==> TPC-H SF{args.scale:g}, {n_orders:,} orders; PySpark {pyspark.__version__}; "
        f"{os.cpu_count()} cores; driver memory {os.environ.get('SLUICEWAY_DRIVER_MEMORY', '2g')}; "
        f"SPARK_SUBMIT_OPTS={os.environ.get('SPARK_SUBMIT_OPTS', '')!r}; "
        f"load average at start {load_start}",
        flush=True,
    )
    runs: list[Run] = []
    for rnd in range(1, args.repeat + 1):
        work = Path(tempfile.mkdtemp(prefix="sluiceway-bench-inc-"))
        fulls: dict[str, Run] = {}
        # A run re-reads the rows equal to its watermark, and mutate stamps a whole step
        # with one updated_at: one changed order first keeps the previous round's last
        # step out of this round's first incremental run.
        tpch_db.mutate(
            _conninfo(pg), new_orders=0, updated_orders=1, seed=args.seed + rnd, schema=schema
        )
        try:
            for step, phase in enumerate(phases):
                fraction = fractions[step - 1] if step else 0.0
                if fraction:
                    changed = tpch_db.mutate(
                        _conninfo(pg),
                        new_orders=0,
                        updated_orders=max(1, round(fraction * n_orders)),
                        seed=args.seed + rnd * 100 + step,
                        schema=schema,
                    )
                    print(
                        f"==> round {rnd}: changed {len(changed.updated_order_keys):,} orders "
                        f"and {changed.updated_lineitems:,} line items ({phase})",
                        flush=True,
                    )
                # Rotate the order so no variant always runs first after a mutation.
                k = (rnd + step) % len(variants)
                for variant in variants[k:] + variants[:k]:
                    run = _run(variant, rnd, phase, schema, work, args.timeout, args.iceberg_grain)
                    runs.append(run)
                    if phase == "full":
                        fulls[variant] = run
                    _print_run(run, fulls.get(variant))
                    if run.status == "wrong":
                        print(f"WRONG RESULT: {run.error}", file=sys.stderr)
                        return 1
        finally:
            if args.keep:
                print(f"==> round {rnd} outputs kept in {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)

    summary = _summary(runs, variants, phases)
    print()
    print(
        f"TPC-H SF{args.scale:g} orders + lineitem, PySpark {pyspark.__version__}, "
        f"Iceberg partitioned by {args.iceberg_grain}(date), "
        f"{args.repeat} round(s); load average: start {load_start}, end {_loadavg()}"
    )
    _print_table(summary)
    if not args.no_json:
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / (
            f"incremental-{started_at:%Y%m%dT%H%M%SZ}-sf{args.scale:g}"
            f"-pyspark{pyspark.__version__}.json"
        )
        out.write_text(
            json.dumps(
                {"scale": args.scale, "summary": summary, "runs": [asdict(r) for r in runs]},
                indent=2,
                default=str,
            )
        )
        print(f"results: {out.relative_to(ROOT)}")
    return 0 if all(r.status == "ok" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
