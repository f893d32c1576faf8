"""spark-submit entrypoint for a batch pipeline on a laptop or server.

spark-submit --jars "$(sluiceway jars path)" --driver-class-path "$(sluiceway jars classpath)" \
    jobs/local_batch.py SPEC [--full-refresh] [--output DIR_OR_S3_URI] [--iceberg-catalog glue]

scripts/demo.sh shows the whole command line (driver memory, UTC, log configuration).
`submitted_session` adds Iceberg's SQL extensions to whatever spark-submit was given: no
session exists yet when this script starts, so the static setting can still be set.
"""

from __future__ import annotations

import argparse
import sys

from sluiceway.logs import configure_logging
from sluiceway.runtimes.job import run_batch_job
from sluiceway.runtimes.local import submitted_session
from sluiceway.spec import DEFAULT_CATALOG_TYPES, ICEBERG_CATALOG_HELP


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Run a Sluiceway batch pipeline under spark-submit"
    )
    parser.add_argument("spec")
    parser.add_argument("--full-refresh", action="store_true")
    parser.add_argument("--output")
    parser.add_argument(
        "--iceberg-catalog", choices=DEFAULT_CATALOG_TYPES, help=ICEBERG_CATALOG_HELP
    )
    args = parser.parse_args()
    configure_logging()
    spark = submitted_session("sluiceway-batch")
    try:
        return run_batch_job(
            spark,
            args.spec,
            full_refresh=args.full_refresh,
            output_root=args.output,
            iceberg_catalog=args.iceberg_catalog,
        )
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
