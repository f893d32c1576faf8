"""Rows/s of the SQL sinks' upsert path beside a plain INSERT of the same rows, same run.

    source scripts/env.sh && source .run/services.env
    python benchmarks/upsert.py                 # --engine postgresql --rows 200000 --repeat 3

Variants, interleaved round by round in one Spark session (the batch is cached first, so
generating it is not timed):
- `insert`: Spark's JDBC append of the batch into an empty table (batched inserts tuned
  as in the sink): the baseline.
- `upsert`: `sinks.jdbc.write_jdbc(mode="upsert")` into a target already holding half the
  keys (older versions): dedupe, schema check, staging table, one INSERT ... ON CONFLICT /
  ON DUPLICATE KEY UPDATE transaction, drop staging.
Prints the median seconds, rows/s and the ratio to `insert`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sluiceway.runtimes.local import build_local_session
from sluiceway.sinks.jdbc import BATCH_PROPERTIES, write_jdbc
from sluiceway.sinks.sql import JvmJdbcRunner
from sluiceway.sources.credentials import Credentials
from sluiceway.sources.jdbc import JdbcSource, jdbc_source
from sluiceway.spec import Connection


def _source(engine: str) -> JdbcSource:
    prefix = "SLUICEWAY_PG_" if engine == "postgresql" else "SLUICEWAY_MYSQL_"
    host = os.environ.get(prefix + "HOST", "127.0.0.1")
    port = int(os.environ.get(prefix + "PORT", "25432" if engine == "postgresql" else "23306"))
    user = os.environ.get(prefix + "USER", "sluiceway")
    database = os.environ.get(prefix + "DB", "sluiceway_test")
    password = os.environ.get(prefix + "PASSWORD", "sluiceway-local")
    conn = Connection(
        "bench", engine, host, port, database, user, prefix + "PASSWORD", None, 4, 10_000, 1
    )
    return jdbc_source(conn, Credentials(user, password, host, port, database))


def _batch(spark: SparkSession, rows: int, version: int) -> DataFrame:
    return spark.range(rows).select(
        F.col("id").cast("bigint").alias("id"),
        F.concat(F.lit(f"name-{version}-"), F.col("id").cast("string")).alias("name"),
        (F.col("id") % 100_000 / 100 + version).cast("decimal(12,2)").alias("amount"),
        (F.lit("2024-01-01").cast("timestamp") + F.make_interval(days=F.lit(version))).alias(
            "updated_at"
        ),
    )


def _runner(spark: SparkSession, source: JdbcSource) -> JvmJdbcRunner:
    props = {k: v for k, v in source.properties.items() if k != "driver"}
    return JvmJdbcRunner(spark, source.url, source.description, props, source.dialect.driver)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("postgresql", "mysql"), default="postgresql")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    source = _source(args.engine)
    spark = build_local_session("bench-upsert", master="local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    runner = _runner(spark, source)
    q = source.dialect.quote
    ts = "timestamp" if args.engine == "postgresql" else "datetime(6)"
    ddl = f"(id bigint PRIMARY KEY, name varchar(64), amount numeric(12,2), updated_at {ts})"
    new = _batch(spark, args.rows, 2).persist()
    old = _batch(spark, args.rows // 2, 1).persist()
    print(f"==> {args.engine}: {new.count()} rows per load, {old.count()} already in the target")
    props = {
        **{k: v for k, v in source.properties.items() if k != "fetchsize"},
        **BATCH_PROPERTIES[args.engine],
        "batchsize": "10000",
    }

    def reset(table: str, prefill: bool) -> None:
        runner.run([f"DROP TABLE IF EXISTS {q(table)}", f"CREATE TABLE {q(table)} {ddl}"])
        if prefill:
            old.write.jdbc(source.url, q(table), "append", props)

    def insert() -> None:
        new.write.jdbc(source.url, q("bench_insert"), "append", props)

    def upsert() -> None:
        write_jdbc(
            spark, new, source, "bench_upsert", mode="upsert", key=["id"], order_by=["updated_at"]
        )

    variants: dict[str, tuple[str, bool, Callable[[], None]]] = {
        "insert": ("bench_insert", False, insert),
        "upsert": ("bench_upsert", True, upsert),
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.repeat):
        for name, (table, prefill, fn) in variants.items():
            reset(table, prefill)
            started = time.monotonic()
            fn()
            seconds[name].append(time.monotonic() - started)
            rows = runner.query(f"SELECT count(*) FROM {q(table)}")[0][0]
            if int(rows) != args.rows:
                print(f"{name}: target holds {rows} rows, expected {args.rows}")
                return 1
        print(
            f"    round {round_ + 1}: " + ", ".join(f"{n} {s[-1]:.2f}s" for n, s in seconds.items())
        )
    base = statistics.median(seconds["insert"])
    print(
        f"==> {args.engine}, {args.rows} rows, median of {args.repeat}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    for name, values in seconds.items():
        median = statistics.median(values)
        print(
            f"    {name:13s} {median:7.2f}s {args.rows / median:10.0f} rows/s  x{median / base:.2f}"
        )
    for table, _, _ in variants.values():
        runner.run([f"DROP TABLE IF EXISTS {q(table)}"])
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
