"""AWS Glue streaming job entrypoint for a Sluiceway stream.

Job parameters: --spec s3://bucket/specs/clickstream.toml (or a file from --extra-files)
"""

from __future__ import annotations

import sys

from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext

from sluiceway.errors import SluicewayError
from sluiceway.logs import configure_logging
from sluiceway.runtimes import glue_streaming
from sluiceway.runtimes.spec_location import read_stream_spec_location


def main() -> int:
    args = getResolvedOptions(sys.argv, ["JOB_NAME", "spec"])
    configure_logging()
    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(args["JOB_NAME"], args)
    try:
        glue_streaming.run(glue_context, read_stream_spec_location(args["spec"]))
    except SluicewayError as exc:
        print(f"sluiceway: error: {exc}", file=sys.stderr)
        return 1
    job.commit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
