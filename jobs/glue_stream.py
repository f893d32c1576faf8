"""AWS Glue streaming job script for a Sluiceway stream.

Job parameters: --spec s3://bucket/specs/clickstream.toml (or a file from --extra-files).
The same file runs under local spark-submit, where sluiceway.runtimes.glue supplies
stand-ins for Glue's JVM-backed GlueContext and Job (the stream then reads the spec's own
source, as `sluiceway stream` does).
"""

from __future__ import annotations

import sys

from sluiceway.logs import configure_logging
from sluiceway.runtimes.glue import glue_arguments, start_glue_job
from sluiceway.runtimes.job import run_stream_job


def main() -> int:
    configure_logging()
    args = glue_arguments(sys.argv, ["JOB_NAME", "spec"])
    context, job = start_glue_job(args)
    status = run_stream_job(context.spark_session, args["spec"], glue_context=context)
    if status == 0:
        job.commit()
    return status


if __name__ == "__main__":
    sys.exit(main())
