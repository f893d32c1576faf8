"""spark-submit entrypoint for a batch pipeline on a laptop or server.

spark-submit --jars "$(sluiceway jars path)" --driver-class-path "$(sluiceway jars classpath)" \
    jobs/local_batch.py SPEC [--full-refresh] [--output DIR_OR_S3_URI]

scripts/demo.sh shows the whole command line (driver memory, UTC, log configuration).
"""

from __future__ import annotations

import argparse
import sys

from sluiceway.logs import configure_logging
from sluiceway.runtimes.job import run_batch_job
from sluiceway.runtimes.local import submitted_session


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Run a Sluiceway batch pipeline under spark-submit"
    )
    parser.add_argument("spec")
    parser.add_argument("--full-refresh", action="store_true")
    parser.add_argument("--output")
    args = parser.parse_args()
    configure_logging()
    spark = submitted_session("sluiceway-batch")
    try:
        return run_batch_job(
            spark, args.spec, full_refresh=args.full_refresh, output_root=args.output
        )
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
