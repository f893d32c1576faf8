"""AWS Glue job script: run the Sluiceway batch pipeline whose spec is --spec.

Glue passes --JOB_NAME; `sluiceway deploy glue` sets --spec (an s3:// URI) and
--full_refresh (true|false). The same file runs under local spark-submit, where
sluiceway.runtimes.glue supplies stand-ins for Glue's JVM-backed GlueContext and Job.
"""

from __future__ import annotations

import sys

from awsglue.utils import GlueArgumentError, getResolvedOptions
from pyspark import SparkContext

from sluiceway.logs import configure_logging
from sluiceway.runtimes.batch import run_batch_job
from sluiceway.runtimes.glue import glue_context, glue_job


def main() -> int:
    configure_logging()
    try:
        args = getResolvedOptions(sys.argv, ["JOB_NAME", "spec", "full_refresh"])
    except GlueArgumentError as exc:
        print(f"sluiceway: error: job arguments: {exc}", file=sys.stderr)
        return 2
    context = glue_context(SparkContext.getOrCreate())
    job = glue_job(context)
    job.init(args["JOB_NAME"], args)
    status = run_batch_job(context.spark_session, args["spec"], full_refresh=args["full_refresh"])
    if status == 0:
        job.commit()
    return status


if __name__ == "__main__":
    sys.exit(main())
