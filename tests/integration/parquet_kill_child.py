"""A merge into a Parquet dataset, run in a subprocess a test kills at a sink kill point.

    python -m tests.integration.parquet_kill_child <dataset> <staging>

merges `BATCH` into the dataset the test wrote with `BASE`, through the real
`write_parquet(mode="merge")`; the test arms `SLUICEWAY_KILL_AT`.
"""

from __future__ import annotations

import sys
from datetime import datetime
from decimal import Decimal

SCHEMA = "id int, day string, at timestamp, price decimal(10,2), name string"


def _row(i: int, day: int, name: str) -> tuple:
    return (i, f"0{day}", datetime(2024, 1, day, 10, 30, i % 60), Decimal(i) / 4, name)


BASE = [_row(i, 1 + i % 4, "base") for i in range(1, 41)]
# Updates in days 01 and 02, a key moving from day 03 to day 04, and new keys.
BATCH = [_row(i, 1 + i % 2, "changed") for i in (4, 5, 8, 9)] + [
    _row(3, 4, "moved"),
    _row(41, 1, "new"),
    _row(42, 4, "new"),
]
PARTITION_BY = ("day",)


def merge(spark, dataset: str, staging: str):  # -> WriteResult
    from sluiceway.sinks.parquet import write_parquet

    return write_parquet(
        spark,
        spark.createDataFrame(BATCH, SCHEMA),
        dataset,
        mode="merge",
        partition_by=PARTITION_BY,
        primary_key=("id",),
        staging_path=staging,
        where="kill test",
    )


def main() -> None:
    from sluiceway.runtimes.local import build_local_session

    dataset, staging = sys.argv[1:3]
    spark = build_local_session("parquet-kill", master="local[1]")
    merge(spark, dataset, staging)
    print("merged", flush=True)


if __name__ == "__main__":
    main()
