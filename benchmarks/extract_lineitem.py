#!/usr/bin/env python3
"""TPC-H lineitem from PostgreSQL to Parquet partitioned by ship year/month: how fast, how big.

    source scripts/env.sh && python benchmarks/extract_lineitem.py [--scale 1] [--repeat 3]

Variants, each run in a fresh subprocess (its peak memory is its own), rounds interleaved:
  copy                 `COPY (SELECT * FROM lineitem) TO STDOUT` drained by psycopg: the
                       ceiling for reading out of this PostgreSQL, and the ratio baseline
  naive                one-partition `spark.read.jdbc` with Spark's defaults, then a
                       partitioned Parquet write (the PostgreSQL driver buffers the whole
                       result when no fetchsize is set; an OOM is recorded as the result)
  naive-fetch          the same with fetchsize=10000
  sluiceway            `sluiceway.pipeline.run`, split on l_orderkey (range), first full run
  sluiceway-quantiles  the same, split on l_shipdate by quantiles

Spark variants share one session recipe (`build_local_session`: local[*], UTC, pinned jars,
SLUICEWAY_DRIVER_MEMORY, default 2g). Every Spark output is read back and its row count
must equal the table's, or the benchmark exits 1. Peak RSS is the whole process tree
(Python plus its JVM), sampled from /proc every 100 ms. A variant that fails is not retried
in later rounds. Results also go to benchmarks/results/ as JSON (gitignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DATABASE = "tpch"
PASSWORD_ENV = "SLUICEWAY_BENCH_PG_PASSWORD"  # how the password reaches workers and the spec
VARIANTS = ("copy", "naive", "naive-fetch", "sluiceway", "sluiceway-quantiles")
SAMPLE_EVERY_S = 0.1
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1 << 20

SPEC = """\
[pipeline]
name = "bench_extract_lineitem"
output = {output}

[connections.bench]
engine = "postgresql"
host = {host}
port = {port}
database = "{database}"
user = {user}
password_env = "{password_env}"
max_connections = 4

[tables.lineitem]
table = "{schema}.lineitem"
primary_key = ["l_orderkey", "l_linenumber"]
split_column = "{split_column}"
split_strategy = "{split_strategy}"
incremental_column = "updated_at"
partition_by = ["ship_year", "ship_month"]

[[tables.lineitem.transforms]]
name = "with_date_partitions"
params = {{ column = "l_shipdate", prefix = "ship_", grain = "month" }}
"""


class WrongResult(Exception):
    """A variant produced a different number of rows than the table holds."""


@dataclass(frozen=True)
class Pg:
    host: str
    port: int
    user: str
    password: str = field(repr=False)

    def conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host, port=self.port, dbname=DATABASE, user=self.user, password=self.password
        )

    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{DATABASE}"


@dataclass
class Run:
    variant: str
    round: int
    status: str  # "ok" | "failed" | "wrong" | "timeout"
    seconds: float | None = None  # the extract+write itself (Spark session start excluded)
    startup_s: float | None = None  # Spark session start (JVM launch), Spark variants only
    process_s: float = 0.0  # the whole subprocess, as the parent saw it
    peak_rss_mib: float = 0.0  # max over samples of the tree's summed RSS
    hwm_sum_mib: float | None = None  # sum of each process's VmHWM at the end (upper bound)
    rows: int | None = None
    bytes: int | None = None  # COPY text bytes (copy variant only)
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


# -------------------------------------------------------------------------------------------
# /proc: process tree memory


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # exited between scandir and open
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _tree(pid: int) -> list[int]:
    children = _children_map()
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(children.get(current, ()))
    return pids


def _statm(pid: int) -> list[int]:
    """size, resident, shared, text, lib, data, dt in pages; [] once the process is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return [int(x) for x in handle.read().split()]
    except (OSError, ValueError):
        return []


def _tree_rss_bytes(pid: int) -> int:
    """Summed RSS of `pid` and its descendants, each address space counted once.

    The JVM starts helpers (Hadoop's shell commands) with vfork/posix_spawn: until it
    execs, the child shares the JVM's memory and /proc shows it the JVM's RSS again.
    """
    children = _children_map()
    total, todo = 0, [(pid, (-1, -1))]
    while todo:
        current, parent_layout = todo.pop()
        statm = _statm(current)
        # Same virtual size and data size as the parent: the parent's address space.
        layout = (statm[0], statm[5]) if len(statm) > 5 else (-1, -1)
        if statm and layout != parent_layout:
            total += statm[1] * PAGE
        todo.extend((child, layout) for child in children.get(current, ()))
    return total


def _status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_hwm_mib(pid: int) -> float:
    return sum(_status_kib(p, "VmHWM") for p in _tree(pid)) / 1024


# -------------------------------------------------------------------------------------------
# workers: one variant, in this (fresh) process


def _worker(
    variant: str, schema: str, expected_rows: int, result_path: Path, work_dir: Path
) -> int:
    pg = Pg(
        os.environ["SLUICEWAY_PG_HOST"],
        int(os.environ["SLUICEWAY_PG_PORT"]),
        os.environ["SLUICEWAY_PG_USER"],
        os.environ[PASSWORD_ENV],
    )
    result: dict[str, Any] = {"status": "ok", "detail": {}}
    try:
        if variant == "copy":
            _run_copy(pg, schema, expected_rows, result)
        else:
            _run_spark(variant, pg, schema, expected_rows, work_dir, result)
    except WrongResult as exc:
        result.update(status="wrong", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - the failure (OOM, lost JVM, ...) is the measurement
        result.update(status="failed", error=f"{type(exc).__name__}: {_one_line(exc)}")
    result["hwm_sum_mib"] = _tree_hwm_mib(os.getpid())
    result_path.write_text(json.dumps(result))
    return 0


def _one_line(exc: BaseException) -> str:
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            from sluiceway.jvm_errors import describe_spark_error

            return describe_spark_error(exc)
        except Exception:  # noqa: BLE001 - the JVM may be gone; fall back to Python's text
            pass
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    oom = [line for line in lines if "OutOfMemoryError" in line]
    return (oom or lines or [type(exc).__name__])[0][:300]


def _run_copy(pg: Pg, schema: str, expected_rows: int, result: dict[str, Any]) -> None:
    import psycopg

    started = time.monotonic()
    rows = size = 0
    copy_sql = f'COPY (SELECT * FROM "{schema}".lineitem) TO STDOUT'
    with psycopg.connect(pg.conninfo()) as conn, conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for chunk in copy:  # libpq hands over one row per chunk
            rows += 1
            size += len(chunk)
    result["seconds"] = time.monotonic() - started
    result.update(rows=rows, bytes=size, detail={"psycopg_impl": psycopg.pq.__impl__})
    if rows != expected_rows:
        raise WrongResult(f"copy: {rows} rows, the table has {expected_rows}")


def _run_spark(
    variant: str, pg: Pg, schema: str, expected_rows: int, work_dir: Path, result: dict[str, Any]
) -> None:
    from sluiceway.runtimes.local import build_local_session

    started = time.monotonic()
    spark = build_local_session(
        app_name=f"bench-{variant}", extra_conf={"spark.local.dir": str(work_dir / "spark-local")}
    )
    result["startup_s"] = time.monotonic() - started
    jvm = spark.sparkContext._jvm
    result["detail"].update(
        master=spark.sparkContext.master,
        driver_memory=spark.sparkContext.getConf().get("spark.driver.memory"),
        max_heap_mib=round(jvm.java.lang.Runtime.getRuntime().maxMemory() / MIB),
    )
    out = work_dir / "out"
    started = time.monotonic()
    if variant.startswith("naive"):
        path = _naive(spark, pg, schema, out, fetchsize=variant == "naive-fetch")
    else:
        path = _sluiceway(spark, pg, schema, out, work_dir, variant, result)
    result["seconds"] = time.monotonic() - started
    rows = spark.read.parquet(str(path)).count()
    result["rows"] = rows
    result["detail"]["parquet_mib"] = round(
        sum(f.stat().st_size for f in path.rglob("*.parquet")) / MIB, 1
    )
    result["detail"]["partition_dirs"] = len({f.parent for f in path.rglob("*.parquet")})
    if rows != expected_rows:
        raise WrongResult(f"{variant}: wrote {rows} rows to {path}, the table has {expected_rows}")
    spark.stop()


def _naive(spark: Any, pg: Pg, schema: str, out: Path, fetchsize: bool) -> Path:
    from pyspark.sql import functions as F

    properties = {"user": pg.user, "password": pg.password, "driver": "org.postgresql.Driver"}
    if fetchsize:
        properties["fetchsize"] = "10000"
    df = spark.read.jdbc(pg.jdbc_url(), f"{schema}.lineitem", properties=properties)
    (
        df.withColumns({"ship_year": F.year("l_shipdate"), "ship_month": F.month("l_shipdate")})
        .write.mode("overwrite")
        .partitionBy("ship_year", "ship_month")
        .parquet(str(out))
    )
    return out


def _sluiceway(
    spark: Any, pg: Pg, schema: str, out: Path, work_dir: Path, variant: str, result: dict[str, Any]
) -> Path:
    from sluiceway import pipeline
    from sluiceway.spec import load_spec

    quantiles = variant == "sluiceway-quantiles"
    spec_file = work_dir / "spec.toml"
    spec_file.write_text(
        SPEC.format(
            output=json.dumps(str(out)),
            host=json.dumps(pg.host),
            port=pg.port,
            database=DATABASE,
            user=json.dumps(pg.user),
            password_env=PASSWORD_ENV,
            schema=schema,
            split_column="l_shipdate" if quantiles else "l_orderkey",
            split_strategy="quantiles" if quantiles else "range",
        )
    )
    report = pipeline.run(spark, load_spec(spec_file))
    table = report.tables[0]
    result["detail"].update(
        report_seconds=report.seconds,
        rows_read=table.rows_read,
        rows_written=table.rows_written,
        partitions=len(table.partitions),
    )
    if report.status != "succeeded" or table.status != "written":
        raise WrongResult(f"{variant}: run {report.status}, table {table.status}: {table.error}")
    return Path(table.path)


# -------------------------------------------------------------------------------------------
# the parent: services, data, interleaved rounds, the table


def _postgres() -> Pg:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "services.py"), "start", "postgres"], check=True
    )
    env = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "services.py"), "env", "postgres"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    values = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1)
        for line in env.splitlines()
        if line.startswith("export ")
    )
    return Pg(
        values["SLUICEWAY_PG_HOST"],
        int(values["SLUICEWAY_PG_PORT"]),
        values["SLUICEWAY_PG_USER"],
        values["SLUICEWAY_PG_PASSWORD"],
    )


def _csv_rows(path: Path) -> int:
    newlines, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 23):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    return newlines + (last != b"\n") - 1  # minus the header


def _table_counts(pg: Pg, schema: str, tables: list[str]) -> dict[str, int | None]:
    import psycopg
    from psycopg import sql

    counts: dict[str, int | None] = {}
    with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
        for table in tables:
            exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()
            if not exists or exists[0] is None:
                counts[table] = None
                continue
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
            ).fetchone()
            counts[table] = int(row[0]) if row else None
    return counts


def _ensure_loaded(pg: Pg, scale: float, data_dir: Path, schema: str) -> int:
    """Load TPC-H into `schema` unless every table already has the generated row count."""
    from sluiceway.demo import tpch_db

    files = tpch_db.generate(scale, data_dir)
    expected = {table: _csv_rows(path) for table, path in files.items()}
    if _table_counts(pg, schema, list(expected)) == expected:
        print(f"==> {schema}: already loaded ({expected['lineitem']:,} lineitem rows)", flush=True)
        return expected["lineitem"]
    print(f"==> loading TPC-H scale {scale:g} into {DATABASE}.{schema}", flush=True)
    started = time.monotonic()
    tpch_db.load(pg.conninfo(), scale, data_dir, schema=schema)
    actual = _table_counts(pg, schema, list(expected))
    if actual != expected:
        raise SystemExit(f"after loading, {schema} has {actual}, expected {expected}")
    print(f"==> loaded in {time.monotonic() - started:.1f}s", flush=True)
    return expected["lineitem"]


def _run_variant(
    variant: str, rnd: int, pg: Pg, schema: str, expected_rows: int, timeout_s: float
) -> Run:
    work_dir = Path(tempfile.mkdtemp(prefix=f"sluiceway-bench-{variant}-"))
    result_path = work_dir / "result.json"
    log_path = work_dir / "worker.log"
    env = {
        **os.environ,
        PASSWORD_ENV: pg.password,
        "SLUICEWAY_PG_HOST": pg.host,
        "SLUICEWAY_PG_PORT": str(pg.port),
        "SLUICEWAY_PG_USER": pg.user,
    }
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        variant,
        "--schema",
        schema,
        "--expected-rows",
        str(expected_rows),
        "--result",
        str(result_path),
        "--work-dir",
        str(work_dir),
    ]
    peak = 0
    started = time.monotonic()
    timed_out = False
    oom_at: float | None = None
    try:
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            while proc.poll() is None:
                peak = max(peak, _tree_rss_bytes(proc.pid))
                elapsed = time.monotonic() - started
                # A JVM out of heap often neither recovers nor exits (local mode: the task's
                # OOM also hits the driver's threads), so the OOM in its log ends the run.
                if elapsed > timeout_s or (oom_at is None and _log_has_oom(log_path)):
                    if elapsed <= timeout_s:
                        oom_at = elapsed
                    else:
                        timed_out = True
                    os.killpg(proc.pid, 9)  # our own worker's process group, and only it
                    proc.wait()
                    break
                time.sleep(SAMPLE_EVERY_S)
        run = Run(variant, rnd, "ok", process_s=time.monotonic() - started, peak_rss_mib=peak / MIB)
        if timed_out:
            run.status, run.error = "timeout", f"killed after {timeout_s:.0f}s"
        elif oom_at is not None:
            run.status = "failed"
            run.error = (
                f"java.lang.OutOfMemoryError in the worker log {oom_at:.0f}s after start; killed"
            )
        elif result_path.exists():
            data = json.loads(result_path.read_text())
            for key in (
                "status",
                "seconds",
                "startup_s",
                "hwm_sum_mib",
                "rows",
                "bytes",
                "error",
                "detail",
            ):
                if key in data:
                    setattr(run, key, data[key])
        else:
            run.status = "failed"
            run.error = f"worker exited with {proc.returncode} and no result"
        if run.status != "ok":
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            run.detail["log_tail"] = tail
            if (
                run.error
                and "OutOfMemoryError" not in run.error
                and any("OutOfMemoryError" in t for t in tail)
            ):
                run.error += " (log: java.lang.OutOfMemoryError)"
        return run
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _log_has_oom(log_path: Path) -> bool:
    try:
        return b"java.lang.OutOfMemoryError" in log_path.read_bytes()
    except OSError:
        return False


def _versions(pg: Pg) -> dict[str, str]:
    import psycopg
    import pyspark

    java = (
        os.path.join(os.environ["JAVA_HOME"], "bin", "java")
        if os.environ.get("JAVA_HOME")
        else "java"
    )
    java_out = subprocess.run(
        [java, "-version"], capture_output=True, text=True, check=False
    ).stderr
    with psycopg.connect(pg.conninfo()) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return {
        "pyspark": pyspark.__version__,
        "java": java_out.splitlines()[0] if java_out else "?",
        "postgresql": str(row[0]) if row else "?",
        "psycopg": f"{psycopg.__version__} ({psycopg.pq.__impl__})",
        "python": platform.python_version(),
    }


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _summary(runs: list[Run], variants: list[str], rows: int) -> list[dict[str, Any]]:
    copy_ok = [r.seconds for r in runs if r.variant == "copy" and r.status == "ok" and r.seconds]
    copy_median = statistics.median(copy_ok) if copy_ok else None
    table = []
    for variant in variants:
        mine = [r for r in runs if r.variant == variant]
        ok = [r for r in mine if r.status == "ok" and r.seconds is not None]
        row: dict[str, Any] = {"variant": variant, "runs": len(mine), "ok": len(ok)}
        if ok:
            secs = [r.seconds for r in ok]
            median = statistics.median(secs)
            row.update(
                median_s=median,
                min_s=min(secs),
                max_s=max(secs),
                ratio=median / copy_median if copy_median else None,
                rows_per_s=rows / median,
                startup_s=statistics.median([r.startup_s for r in ok])
                if ok[0].startup_s is not None
                else None,
            )
        row["peak_rss_mib"] = max(r.peak_rss_mib for r in mine) if mine else None
        failures = [r for r in mine if r.status != "ok"]
        if failures:
            f = failures[0]
            row["failure"] = f"{f.status} after {f.process_s:.0f}s: {f.error}"
        table.append(row)
    return table


def _print_table(summary: list[dict[str, Any]]) -> None:
    head = (
        f"{'variant':<20} {'n':>3} {'median s':>9} {'min s':>8} {'max s':>8} {'x COPY':>7} "
        f"{'rows/s':>10} {'peak RSS MiB':>13} {'JVM start s':>11}"
    )
    print(head)
    print("-" * len(head))
    for row in summary:
        if row.get("median_s") is None:
            print(
                f"{row['variant']:<20} {row['ok']:>3}/{row['runs']} FAILED ({row.get('failure')}); "
                f"peak RSS {row['peak_rss_mib']:.0f} MiB"
            )
            continue
        ratio = f"{row['ratio']:.2f}" if row.get("ratio") else "-"
        start = f"{row['startup_s']:.1f}" if row.get("startup_s") is not None else "-"
        print(
            f"{row['variant']:<20} {row['ok']:>3} {row['median_s']:>9.1f} {row['min_s']:>8.1f} "
            f"{row['max_s']:>8.1f} {ratio:>7} {row['rows_per_s']:>10,.0f} "
            f"{row['peak_rss_mib']:>13.0f} {start:>11}"
        )
        if row.get("failure"):
            print(f"{'':<20}     also failed: {row['failure']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds; each runs every variant once"
    )
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}"
    )
    parser.add_argument(
        "--timeout", type=float, default=1200, help="seconds before a run is killed"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / ".cache" / "tpch", help="TPC-H CSV cache"
    )
    parser.add_argument(
        "--no-json", action="store_true", help="do not write benchmarks/results/*.json"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--expected-rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.worker, args.schema, args.expected_rows, args.result, args.work_dir)

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or args.repeat < 1:
        parser.error(f"unknown variants {unknown}" if unknown else "--repeat must be >= 1")
    schema = f"bench_sf{args.scale:g}".replace(".", "_")
    started_at = datetime.now(UTC)
    load_start = _loadavg()
    pg = _postgres()
    rows = _ensure_loaded(pg, args.scale, args.data_dir, schema)
    versions = _versions(pg)
    memory = os.environ.get("SLUICEWAY_DRIVER_MEMORY", "2g")
    print(f"==> {', '.join(f'{k} {v}' for k, v in versions.items())}")
    print(
        f"==> {os.cpu_count()} cores, driver memory {memory}, load average at start {load_start}",
        flush=True,
    )

    runs: list[Run] = []
    failed: set[str] = set()
    for rnd in range(args.repeat):
        # Rotate the order each round so no variant always runs first (cold caches) or last.
        order = variants[rnd % len(variants) :] + variants[: rnd % len(variants)]
        for variant in order:
            if variant in failed:
                continue
            run = _run_variant(variant, rnd + 1, pg, schema, rows, args.timeout)
            runs.append(run)
            took = f"{run.seconds:.1f}s" if run.seconds is not None else "-"
            print(
                f"  round {rnd + 1}/{args.repeat} {variant:<20} {run.status:<7} {took:>8} "
                f"(process {run.process_s:.1f}s, peak RSS {run.peak_rss_mib:.0f} MiB)"
                + (f" {run.error}" if run.error else ""),
                flush=True,
            )
            if run.status == "wrong":
                print(f"WRONG RESULT: {run.error}", file=sys.stderr)
                return 1
            if run.status != "ok":
                failed.add(variant)

    load_end = _loadavg()
    summary = _summary(runs, variants, rows)
    print()
    print(
        f"TPC-H SF{args.scale:g} {schema}.lineitem: {rows:,} rows; "
        f"Spark local[*], driver memory {memory}; "
        f"PySpark {versions['pyspark']}, {versions['java']}, PostgreSQL {versions['postgresql']}"
    )
    copy_bytes = [r.bytes for r in runs if r.variant == "copy" and r.bytes]
    if copy_bytes:
        print(f"COPY text: {copy_bytes[0] / MIB:,.0f} MiB")
    print(f"load average: start {load_start}, end {load_end}  (x COPY = median / COPY median)")
    _print_table(summary)
    if not args.no_json:
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = (
            RESULTS / f"extract_lineitem-{started_at:%Y%m%dT%H%M%SZ}-sf{args.scale:g}"
            f"-pyspark{versions['pyspark']}.json"
        )
        out.write_text(
            json.dumps(
                {
                    "started_at": started_at.isoformat(),
                    "scale": args.scale,
                    "schema": schema,
                    "rows": rows,
                    "driver_memory": memory,
                    "cpus": os.cpu_count(),
                    "versions": versions,
                    "loadavg_start": load_start,
                    "loadavg_end": load_end,
                    "summary": summary,
                    "runs": [asdict(r) for r in runs],
                },
                indent=2,
            )
        )
        print(f"results: {out.relative_to(ROOT)}")
    bad = [r for r in runs if r.status != "ok" and not r.variant.startswith("naive")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
