"""EMR Serverless (STREAMING mode) entrypoint for a Sluiceway stream.

entryPoint jobs/emr_stream.py, entryPointArguments [SPEC, --reader aws-kinesis|python].
EMR cancels a run with SIGTERM: the running micro-batch is finished first. The same file
runs under local spark-submit unchanged.
"""

from __future__ import annotations

import argparse
import sys

from sluiceway.logs import configure_logging
from sluiceway.runtimes.emr import emr_session
from sluiceway.runtimes.job import run_stream_job
from sluiceway.streaming import READERS


def main() -> int:
    parser = argparse.ArgumentParser(description="Run a Sluiceway stream on EMR")
    parser.add_argument("spec", help="stream spec: local, shipped with --files, or s3://")
    parser.add_argument("--output", help="override the spec's output root")
    parser.add_argument("--checkpoint", help="override the spec's checkpoint location")
    parser.add_argument("--reader", choices=READERS, default="aws-kinesis")
    args = parser.parse_args()
    configure_logging()
    spark = emr_session("sluiceway-stream")
    try:
        return run_stream_job(
            spark,
            args.spec,
            reader=args.reader,
            output_root=args.output,
            checkpoint=args.checkpoint,
        )
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
