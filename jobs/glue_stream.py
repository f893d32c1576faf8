"""AWS Glue streaming job script for a Sluiceway stream.

`sluiceway deploy glue` of a stream spec creates a streaming job (Command.Name
gluestreaming) with --spec (an s3:// URI) and, when given, --output and --checkpoint
(s3:// URIs). The same file runs under local spark-submit, where sluiceway.runtimes.glue
supplies stand-ins for Glue's JVM-backed GlueContext and Job (the stream then reads the
spec's own source, as `sluiceway stream` does).
"""

from __future__ import annotations

import sys

from sluiceway.logs import configure_logging
from sluiceway.runtimes.glue import (
    STREAM_ARGUMENTS,
    STREAM_OPTIONAL,
    glue_arguments,
    start_glue_job,
)
from sluiceway.runtimes.job import run_stream_job


def main() -> int:
    configure_logging()
    args = glue_arguments(sys.argv, STREAM_ARGUMENTS, optional=STREAM_OPTIONAL)
    context, job = start_glue_job(args)
    status = run_stream_job(
        context.spark_session,
        args["spec"],
        output_root=args.get("output"),
        checkpoint=args.get("checkpoint"),
        glue_context=context,
    )
    if status == 0:
        job.commit()
    return status


if __name__ == "__main__":
    sys.exit(main())
