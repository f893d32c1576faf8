"""spark-submit entrypoint for a batch pipeline on a laptop or server.

spark-submit --jars "$(sluiceway jars path)" --driver-class-path "$(sluiceway jars classpath)" \
    jobs/local_batch.py SPEC [--full-refresh] [--output DIR_OR_S3_URI]

scripts/demo.sh shows the whole command line (driver memory, UTC, log configuration).
"""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import SparkSession

from sluiceway import pipeline
from sluiceway.errors import SluicewayError
from sluiceway.logs import configure_logging
from sluiceway.report import print_summary
from sluiceway.runtimes.local import apply_pipeline_conf, configure_s3a
from sluiceway.spec import load_spec


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Run a Sluiceway batch pipeline under spark-submit"
    )
    parser.add_argument("spec")
    parser.add_argument("--full-refresh", action="store_true")
    parser.add_argument("--output")
    args = parser.parse_args()
    configure_logging()
    spark = apply_pipeline_conf(SparkSession.builder.appName("sluiceway-batch").getOrCreate())
    configure_s3a(spark)
    try:
        report = pipeline.run(
            spark, load_spec(args.spec, output_root=args.output), full_refresh=args.full_refresh
        )
    except SluicewayError as exc:
        print(f"sluiceway: error: {exc}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    print_summary(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
