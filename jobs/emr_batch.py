"""EMR Serverless entryPoint: run the Sluiceway batch pipeline whose spec is --spec.

`sluiceway submit emr` sends --spec (an s3:// URI) and, when asked, --output, --state
(s3:// URIs) and --full-refresh as entryPointArguments. The same file runs under local
spark-submit unchanged.
"""

from __future__ import annotations

import argparse
import sys

from sluiceway.logs import configure_logging
from sluiceway.runtimes.emr import emr_session
from sluiceway.runtimes.job import run_batch_job


def main() -> int:
    parser = argparse.ArgumentParser(description="Run a Sluiceway batch pipeline on EMR")
    parser.add_argument("--spec", required=True, help="pipeline spec: s3:// URI or local path")
    parser.add_argument("--full-refresh", action="store_true", help="ignore watermarks")
    parser.add_argument("--output", help="output root (s3://), instead of the spec's")
    parser.add_argument("--state", help="state location (s3://), instead of the spec's")
    args = parser.parse_args()
    configure_logging()
    return run_batch_job(
        emr_session(),
        args.spec,
        full_refresh=args.full_refresh,
        output_root=args.output,
        state_location=args.state,
    )


if __name__ == "__main__":
    sys.exit(main())
