"""AWS Glue job script: run the Sluiceway batch pipeline whose spec is --spec.

Glue passes --JOB_NAME; `sluiceway deploy glue` sets --spec (an s3:// URI),
--full_refresh (true|false) and, when given, --output and --state (s3:// URIs). The same
file runs under local spark-submit, where sluiceway.runtimes.glue supplies stand-ins for
Glue's JVM-backed GlueContext and Job.
"""

from __future__ import annotations

import sys

from sluiceway.logs import configure_logging
from sluiceway.runtimes.glue import (
    BATCH_ARGUMENTS,
    BATCH_OPTIONAL,
    glue_arguments,
    jdbc_conf_reader,
    start_glue_job,
)
from sluiceway.runtimes.job import run_batch_job


def main() -> int:
    configure_logging()
    args = glue_arguments(sys.argv, BATCH_ARGUMENTS, optional=BATCH_OPTIONAL)
    context, job = start_glue_job(args)
    status = run_batch_job(
        context.spark_session,
        args["spec"],
        full_refresh=args["full_refresh"],
        output_root=args.get("output"),
        state_location=args.get("state"),
        jdbc_conf=jdbc_conf_reader(context),
    )
    if status == 0:
        job.commit()
    return status


if __name__ == "__main__":
    sys.exit(main())
